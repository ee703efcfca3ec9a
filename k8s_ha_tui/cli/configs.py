"""wizard, render and lint: from questions to a topology, from a topology to files, and findings
on a topology or on configs someone already runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from k8s_ha_tui.cli.common import Parents, print_findings, read_text
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model.profiles import PROFILES


def cmd_wizard(args: argparse.Namespace) -> int:
    from k8s_ha_tui import wizard
    from k8s_ha_tui.configs import render
    from k8s_ha_tui.model import profiles, topology

    if args.render_dir:
        tree, out = render.check_tree_target(args.render_dir), Path(args.output).expanduser().absolute()
        if out == tree or tree in out.parents or out in tree.parents:
            raise UserError(f"-o {args.output} and --render-dir {args.render_dir}: the topology file and the "
                            "rendered folder must be apart (render replaces its folder whole)")
    start = wizard.start_from(args.start)
    if args.profile:
        start = profiles.apply(start, args.profile)
    if args.census:
        if not args.start:
            raise UserError("--census listens on a master of the --from topology: give --from FILE")
        if topology.load_topology(args.start).family == 6:
            raise UserError(f"{args.start}: --census hears VRRP over IPv4 only, and this is an IPv6-only cluster: "
                            "it would call every router id free; choose one by hand (`tcpdump -nn ip6 proto 112` "
                            "on a master lists those in use)")
        import asyncio

        start["vrrp"]["router_id"], said = wizard.free_router_id_default(
            start, asyncio.run(wizard.listen_from_first_master(start)))
        print(said)
    prompter = None
    if args.defaults:
        topo = topology.topology_from_dict(start, args.start or "defaults")
        topology.save_topology(topo, args.output)
        print(f"wrote {args.output}" + (f" (speed profile {args.profile})" if args.profile else ""))
    else:
        topology.check_writable(args.output)
        prompter = wizard.QuestionaryPrompter()
        try:
            topo = wizard.ask_topology(prompter, start)
            if not wizard.confirm_and_write(prompter, topo, args.output,
                                            lambda t: topology.save_topology(t, args.output)):
                print("nothing written")
                return 1
        except KeyboardInterrupt:
            raise UserError("aborted; nothing was written", code=130) from None
        print(f"wrote {args.output}")
    if args.render_dir:
        out = render.write_tree(render.render_all(topo), args.render_dir)
        print(f"rendered configs for {len(topo.masters)} masters into {out}")
    args.then = _next_step(args.output, None if args.defaults else prompter)
    return 0


def _next_step(path: str, prompter) -> list[str] | None:
    """Say what comes next (deploy), and on a terminal offer to run it: deploy itself connects,
    shows the plan and asks again before it changes anything."""
    import shlex

    command = f"k8s-ha-tui deploy -t {shlex.quote(path)}"
    print(f"next: {command} --dry-run   (what would change on every master; nothing is changed)\n"
          f"      {command}             (keepalived + HAProxy on the masters; on fresh machines this comes "
          "before kubeadm init, and it prints the kubeadm commands)")
    if prompter is None:
        return None
    try:
        if not prompter.confirm(f"Run `{command}` now? It shows the plan and asks before changing anything", False):
            return None
    except KeyboardInterrupt:
        raise UserError(f"interrupted: {path} was written; nothing was deployed", code=130) from None
    return ["deploy", "-t", path]  # cli.main runs it once the wizard is done


def cmd_render(args: argparse.Namespace) -> int:
    from k8s_ha_tui.configs import render
    from k8s_ha_tui.model import topology

    topo = topology.load_topology(args.topology)
    files = render.render_all(topo, haproxy_version=args.haproxy_version, kubeadm_api=args.kubeadm_api)
    out = render.write_tree(files, args.output)
    print(f"rendered {len(files)} files for {len(topo.masters)} masters into {out}")
    return 0


def _included(path: str, text: str) -> dict[str, str]:
    """The files a local keepalived.conf includes (globs expanded, nested, bounded), by path."""
    import glob

    from k8s_ha_tui.configs.confparse import MAX_INCLUDE_DEPTH, include_patterns

    files: dict[str, str] = {}
    todo = [(str(Path(path).resolve()), text)]
    for _ in range(MAX_INCLUDE_DEPTH):
        found = [p for src, body in todo for pat in include_patterns(body, src) for p in sorted(glob.glob(pat))
                 if p not in files and Path(p).is_file()]
        todo = [(p, read_text(p)) for p in dict.fromkeys(found)]
        files.update(todo)
        if not todo:
            break
    return files


def cmd_lint(args: argparse.Namespace) -> int:
    from k8s_ha_tui.configs import daemon_check, lint
    from k8s_ha_tui.model import topology

    if args.topology and (args.keepalived or args.haproxy):
        raise UserError("lint takes either -t TOPOLOGY or --keepalived/--haproxy files, not both")
    if args.topology:
        findings = lint.lint_topology(topology.load_topology(args.topology))
    elif args.keepalived or args.haproxy:
        keepalived = read_text(args.keepalived) if args.keepalived else None
        findings = lint.lint_configs(
            keepalived,
            read_text(args.haproxy) if args.haproxy else None,
            read_text(args.check_script) if args.check_script else None,
            keepalived_name=str(Path(args.keepalived).resolve()) if args.keepalived else "",
            haproxy_name=args.haproxy or "",
            keepalived_files=_included(args.keepalived, keepalived) if keepalived is not None else None,
            on=args.on, apiserver_port=args.apiserver_port,
        )
        refused = daemon_check.haproxy_verdict(args.haproxy) if args.haproxy else None
        findings += [refused] if refused else []
    else:
        raise UserError("lint needs -t TOPOLOGY, or --keepalived FILE and/or --haproxy FILE")
    print_findings(findings, args.json)
    return 1 if lint.has_errors(findings) else 0


def add_parsers(sub, p: Parents) -> None:
    from k8s_ha_tui.configs.kubeadm_steps import APIS, DEFAULT_API

    w = sub.add_parser("wizard", help="ask for the topology, write it, render configs",
                       description="Ask for the cluster topology (the seed's cluster as defaults), "
                                   "check every answer, write the topology file and render configs.")
    w.add_argument("-o", "--output", default="topology.yaml", help="topology file to write (default: %(default)s)")
    w.add_argument("--from", dest="start", metavar="FILE", help="start from an existing topology file")
    w.add_argument("--defaults", action="store_true", help="write the defaults (or --from FILE) without asking")
    w.add_argument("--render-dir", metavar="DIR", help="also render the configs into DIR")
    w.add_argument("--census", action="store_true",
                   help="listen on the --from topology's first master (SSH, tcpdump, 2.5 s) for the VRRP routers "
                        "on the segment and offer a router id nobody else uses as the default")
    w.add_argument("--profile", choices=list(PROFILES),
                   help="speed profile: its VRRP and check values are written into the topology "
                        "(with --defaults; without, it is the question's default)")
    w.set_defaults(func=cmd_wizard)

    r = sub.add_parser("render", parents=[p.topology],
                       help="render per-node configs from a topology",
                       description="Write DIR/<master>/etc/... for every master and DIR/kubeadm-config.yaml.")
    r.add_argument("-o", "--output", required=True, metavar="DIR")
    r.add_argument("--haproxy-version", metavar="X.Y",
                   help="render for this HAProxy version (e.g. 2.0 on Ubuntu 20.04; default: 2.2 and newer)")
    r.add_argument("--kubeadm-api", choices=list(APIS), default=DEFAULT_API,
                   help="kubeadm-config.yaml's config API: " + "; ".join(f"{k} for {v}" for k, v in APIS.items())
                        + " (default: %(default)s)")
    r.set_defaults(func=cmd_render)

    li = sub.add_parser("lint", parents=[p.json],
                        help="find problems in a topology or in running configs",
                        description="Exit 0: no error; 1: errors found; 2: input cannot be read.")
    li.add_argument("-t", "--topology", metavar="FILE", help="lint a topology file (and simulate the election)")
    li.add_argument("--keepalived", metavar="FILE", help="an existing keepalived.conf")
    li.add_argument("--haproxy", metavar="FILE", help="an existing haproxy.cfg")
    li.add_argument("--check-script", metavar="FILE", help="the check script keepalived.conf runs")
    li.add_argument("--on", choices=("master", "lb"),
                    help="where the files run: on a master beside kube-apiserver, or on a dedicated load balancer "
                         "(findings that depend on it say their condition when this is not given)")
    li.add_argument("--apiserver-port", type=int, default=6443, metavar="PORT",
                    help="the port kube-apiserver listens on; backends that send there are the ones judged "
                         "(default: %(default)s)")
    li.set_defaults(func=cmd_lint)
