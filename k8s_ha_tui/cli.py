"""Command line: argument parsing and one small function per command, no logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .errors import UserError


def _version() -> str:
    try:
        return version("k8s-ha-tui")
    except PackageNotFoundError:  # running from a source tree
        return "0+source"


# --- commands ----------------------------------------------------------------------------------

def cmd_wizard(args: argparse.Namespace) -> int:
    from . import render, topology, wizard

    if args.defaults:
        topo = wizard.defaults_topology() if not args.start else topology.load_topology(args.start)
        topology.save_topology(topo, args.output)
        print(f"wrote {args.output}")
    else:
        prompter = wizard.QuestionaryPrompter()
        try:
            topo = wizard.ask_topology(prompter, wizard.start_from(args.start))
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
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from . import render, topology

    topo = topology.load_topology(args.topology)
    files = render.render_all(topo, haproxy_version=args.haproxy_version)
    out = render.write_tree(files, args.output)
    print(f"rendered {len(files)} files for {len(topo.masters)} masters into {out}")
    return 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from None


def _included(path: str, text: str) -> dict[str, str]:
    """The files a local keepalived.conf includes (globs expanded, nested, bounded), by path."""
    import glob

    from .confparse import MAX_INCLUDE_DEPTH, include_patterns

    files: dict[str, str] = {}
    todo = [(str(Path(path).resolve()), text)]
    for _ in range(MAX_INCLUDE_DEPTH):
        found = [p for src, body in todo for pat in include_patterns(body, src) for p in sorted(glob.glob(pat))
                 if p not in files and Path(p).is_file()]
        todo = [(p, _read(p)) for p in dict.fromkeys(found)]
        files.update(todo)
        if not todo:
            break
    return files


def cmd_lint(args: argparse.Namespace) -> int:
    from . import lint, topology

    if args.topology and (args.keepalived or args.haproxy):
        raise UserError("lint takes either -t TOPOLOGY or --keepalived/--haproxy files, not both")
    if args.topology:
        findings = lint.lint_topology(topology.load_topology(args.topology))
    elif args.keepalived or args.haproxy:
        keepalived = _read(args.keepalived) if args.keepalived else None
        findings = lint.lint_configs(
            keepalived,
            _read(args.haproxy) if args.haproxy else None,
            _read(args.check_script) if args.check_script else None,
            keepalived_name=str(Path(args.keepalived).resolve()) if args.keepalived else "",
            haproxy_name=args.haproxy or "",
            keepalived_files=_included(args.keepalived, keepalived) if keepalived is not None else None,
        )
    else:
        raise UserError("lint needs -t TOPOLOGY, or --keepalived FILE and/or --haproxy FILE")
    _print_findings(findings, args.json)
    return 1 if lint.has_errors(findings) else 0


def _print_findings(findings, as_json: bool) -> None:
    if as_json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
        return
    for f in findings:
        print(f.text())
    errors = sum(f.level == "error" for f in findings)
    print(f"{errors} error(s), {len(findings) - errors} warning(s)")


def cmd_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from . import doctor, lint, topology
    from .collector.ssh import connect_reachable, policy_for
    from .nodeconfig import read_node

    topo = topology.load_topology(args.topology)

    async def main():
        conns, errors = await connect_reachable(topo, topo.masters, policy_for(topo))
        try:
            return await asyncio.gather(*(read_node(c) for c in conns)), errors
        finally:
            for c in conns:
                c.close()
    nodes, errors = asyncio.run(main())
    findings = doctor.diagnose(list(nodes), topo)
    _print_findings(findings, args.json)
    if errors:
        for why in errors.values():
            print(f"error: {why}", file=sys.stderr)
        return 2
    return 1 if lint.has_errors(findings) else 0


def _confirm_rollout(args: argparse.Namespace, what: str):
    """Ask before changing live nodes, unless --yes; never guess when nobody can answer."""
    async def confirm(plans) -> bool:
        from .deploy import rollout_order
        from .interrupts import ask

        order = " → ".join(p.name for p in rollout_order(plans) if p.changed)
        print(f"\nPlan: {what} {order} (one at a time, each verified before the next; "
              "the VIP holder last)")
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise UserError("not confirmed: run with --yes to deploy without a terminal")
        return (await ask("Go ahead? [y/N] ")).strip().lower() in ("y", "yes")
    return confirm


def _print_summary(plans) -> None:
    from .deploy import summary_rows

    rows = [("node", "result", "changed", "backup", "time"), *summary_rows(plans)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print()
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def _lock_options(args: argparse.Namespace):
    from .guard import LockOptions

    return LockOptions(wait=args.wait, break_stale=args.break_stale_lock)


def _rollout(args: argparse.Namespace, what: str, run) -> int:
    from . import deploy as d
    from . import topology
    from .collector.ssh import policy_for
    from .interrupts import Interrupted

    topo = topology.load_topology(args.topology)
    policy = policy_for(topo, args.accept_new_host_keys)
    options = d.Options(dry_run=args.dry_run, allow_install=not args.no_install,
                        verify_timeout=args.verify_timeout,
                        template_dir=Path(args.templates) if getattr(args, "templates", None) else None,
                        topology_file=args.topology, keep_backups=args.keep_backups, lock=_lock_options(args))
    ctx = d.Rollout(topo, policy, options, lambda line: print(line, flush=True))
    try:
        plans = ctx.interrupts.run(lambda: run(d, ctx, _confirm_rollout(args, what)))
    except Interrupted as exc:
        if ctx.plans:
            _print_summary(ctx.plans)
        if exc.abandoned:
            raise UserError("interrupted twice: cleanup abandoned. A node marked 'unreachable, state unknown' "
                            "may hold the new files (its swap finishes on the node by itself); the cluster lock "
                            "may be left behind (--break-stale-lock removes it once its holder is gone)",
                            code=130) from None
        raise UserError("interrupted: the rollout stopped; every node is as the table says", code=130) from None
    except UserError:
        if ctx.plans and any(p.result != "unchanged" for p in ctx.plans):
            _print_summary(ctx.plans)
        raise
    for entry in policy.recorded:
        print(f"recorded new host key: {entry}")
    if args.dry_run:
        for p in plans:
            text = d.diff_text(p)
            print(text if text else f"{p.name}: no change")
        order = " → ".join(p.name for p in d.rollout_order(plans) if p.changed)
        print(f"Plan (dry run): {what} {order or 'no node: nothing to change'}")
    _print_summary(plans)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    return _rollout(args, "deploy to", lambda d, ctx, confirm: d.deploy(ctx, confirm))


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.list:
        return _list_backups(args)
    return _rollout(args, f"restore backup {args.to or '(latest)'} on",
                    lambda d, ctx, confirm: d.rollback(ctx, args.to, confirm))


def _list_backups(args: argparse.Namespace) -> int:
    import asyncio

    from . import deploy as d
    from . import topology
    from .collector.ssh import policy_for

    topo = topology.load_topology(args.topology)
    found = asyncio.run(d.list_all_backups(topo, policy_for(topo, args.accept_new_host_keys)))
    if not found:
        raise UserError("no master could be reached", code=1)
    by_id: dict = {}
    for node, infos in found.items():
        for info in infos:
            by_id.setdefault(info.id, (info, []))[1].append(node)
    rows = [("backup", "made by", "for", "topology", "previous", "on"),
            *((i.id, i.who, i.action, i.topology, i.previous or "-", ", ".join(nodes))
              for i, nodes in (by_id[k] for k in sorted(by_id)))]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    missing = [m.name for m in topo.masters if m.name not in found]
    if missing:
        print(f"unreachable, not listed: {', '.join(missing)}")
    if len(rows) == 1:
        print("no backups yet (deploy makes one on every master it changes)")
    return 0


def _status_text(snap) -> str:
    """The snapshot as a few lines a person reads at 3 a.m."""
    holders = ", ".join(snap.holders) or "NOBODY"
    lines = [f"{snap.name}: VIP {snap.vip} held by {holders} — {snap.health.name}"]
    lines += [f"  ALARM {a}" for a in snap.alarms]
    if snap.lock:
        lines.append(f"  LOCKED {snap.lock.describe()}")
    lines.append(f"  {'master':<15} {'ssh':<5} {'vrrp':<7} {'prio':>9} {'check':<6} {'vip':<4} "
                 f"{'maint':<5} {'keepalived':<10} {'haproxy':<8} backends up")
    for m in snap.masters:
        if not m.reachable:
            lines.append(f"  {m.name:<15} DOWN  unreachable: {m.error or '?'}")
            continue
        prio = f"{m.effective_priority or '?'}/{m.base_priority or '?'}"
        ups = sum(b.up for b in m.backends)
        lines.append(f"  {m.name:<15} {'ok':<5} {m.vrrp_state:<7} {prio:>9} {m.check:<6} "
                     f"{'YES' if m.holds_vip else '-':<4} {'on' if m.maintenance else '-':<5} {m.keepalived:<10} "
                     f"{m.haproxy:<8} {ups}/{len(m.backends)}")
    for w in snap.workers:
        api = "?" if w.api_via_vip is None else ("ok" if w.api_via_vip else "FAILS")
        lines.append(f"  {w.name:<15} {'ok' if w.reachable else 'DOWN':<5} worker; API through the VIP: {api}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    import asyncio

    from . import topology
    from .collector.poll import snapshot
    from .collector.ssh import policy_for

    topo = topology.load_topology(args.topology)
    snap = asyncio.run(snapshot(topo, policy_for(topo)))
    print(json.dumps(snap.as_dict(), indent=2) if args.json else _status_text(snap))
    return int(snap.health)


def _run_action(args: argparse.Namespace, request) -> int:
    """Connect, lock, snapshot, interlocks, confirmation, action, audit (actions.perform)."""
    from . import actions, topology
    from .collector.poll import snapshot
    from .collector.ssh import connect_reachable, policy_for
    from .interrupts import Interrupted, Interrupts, ask

    topo = topology.load_topology(args.topology)
    policy = policy_for(topo)

    async def confirm(question: str) -> bool:
        print(question)
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise UserError("not confirmed: run with --yes to act without a terminal")
        return (await ask("Go ahead? [y/N] ")).strip().lower() in ("y", "yes")

    async def main() -> str:
        conns, _errors = await connect_reachable(topo, topo.masters, policy)
        by_name = {c.name: c for c in conns}

        async def conn_for(name: str):
            if name not in by_name:
                raise UserError(f"{name} is unreachable", code=1)
            return by_name[name]
        try:
            outcome = await actions.perform(request, topo.name, conns, len(topo.masters),
                                            lambda: snapshot(topo, policy), conn_for, confirm,
                                            _lock_options(args), lambda line: print(line, flush=True))
            return outcome.text()
        finally:
            for c in conns:
                c.close()

    try:
        print(Interrupts().run(main))
    except Interrupted:
        raise UserError(f"interrupted: {request.action} stopped (a failover removes its priority boost "
                        "first); see `status` for where the VIP is", code=130) from None
    return 0


def cmd_failover(args: argparse.Namespace) -> int:
    from .actions import Request

    return _run_action(args, Request("failover", args.to, method=args.method))


def cmd_maintenance(args: argparse.Namespace) -> int:
    from .actions import Request

    method = {"boost": "file", "stop": "stop"}[args.method] if args.method else None
    return _run_action(args, Request("maintenance", args.node, args.state, method=method))


def cmd_backend(args: argparse.Namespace) -> int:
    from .actions import Request

    return _run_action(args, Request("backend", args.server, args.state))


def _addresses(text: str, what: str) -> list[str]:
    from .topology import check_ipv4

    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            out.append(check_ipv4(part))
        except ValueError as exc:
            raise UserError(f"{what}: {exc}", code=2) from None
    if len(set(out)) != len(out):
        raise UserError(f"{what}: an address is given twice", code=2)
    return out


def cmd_discover(args: argparse.Namespace) -> int:
    import asyncio

    from . import discover, topology
    from .collector.ssh import HostKeyPolicy

    topology.check_writable(args.output)  # before connecting anywhere
    masters = _addresses(args.masters, "--masters")
    workers = _addresses(args.workers, "--workers") if args.workers else []
    try:
        ssh = topology.Ssh(user=args.ssh_user, port=args.ssh_port, identity_file=args.identity_file,
                           known_hosts=args.known_hosts, become=args.become)
    except ValueError as exc:
        raise UserError(f"ssh settings: {str(exc).splitlines()[-1].strip()}", code=2) from None
    policy = HostKeyPolicy(Path(ssh.known_hosts).expanduser(), args.accept_new_host_keys)
    found = asyncio.run(discover.read_cluster(masters, workers, ssh, policy))
    result = discover.describe(*found, ssh, args.name)
    for entry in policy.recorded:
        print(f"recorded new host key: {entry}")
    for note in result.notes:
        print(f"note: {note}")
    topology.save_topology(result.topology, args.output)
    t = result.topology
    print(f"wrote {args.output}: {t.name}, VIP {t.vip}/{t.prefix}, router id {t.vrrp.router_id}, VRRPv{t.vrrp.version}, "
          f"masters {', '.join(f'{m.name} ({t.priority_of(m)})' for m in t.masters)}")
    return 0


def cmd_exporter(args: argparse.Namespace) -> int:
    import asyncio

    from . import exporter, topology
    from .collector.ssh import policy_for

    topos = [topology.load_topology(path) for path in args.topology]
    names = [t.name for t in topos]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"cluster name {', '.join(twice)} appears in more than one topology file: the "
                        "`cluster` label would mix them; give each cluster its own name")
    try:
        listen = exporter.parse_listen(args.listen)
    except ValueError as exc:
        raise UserError(f"--listen: {exc}") from None
    try:
        asyncio.run(exporter.serve(topos, [policy_for(t) for t in topos], listen, args.interval,
                                   lambda where: print(f"serving /metrics on http://{where}/metrics for "
                                                       f"{', '.join(names)} (every {args.interval:g} s)", flush=True)))
    except OSError as exc:
        raise UserError(f"--listen {args.listen}: {exc.strerror or exc}") from None
    print("stopped")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from . import topology
    from .collector.ssh import policy_for
    from .tui.app import run_monitor

    topo = topology.load_topology(args.topology)
    run_monitor(topo, policy_for(topo), args.interval)
    return 0


def _lock_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask before changing the nodes")
    p.add_argument("--wait", type=_bounded(float, 0, 3600, " seconds"), nargs="?", const=600.0, default=0.0,
                   metavar="SECONDS",
                   help="if another operator holds the cluster lock, queue for it this long "
                        "(default: refuse at once; --wait alone: 600)")
    p.add_argument("--break-stale-lock", action="store_true",
                   help="remove a cluster lock whose holder is gone (its process died on this machine, or it "
                        "was not renewed for 120 s); a live holder's lock is never broken")


def _method_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=["boost", "stop"], default=None,
                   help="boost (default): this tool's track files, make-before-break, no dropped request; "
                        "stop: stop (or start) keepalived, for a running config without those files "
                        "(break-before-make: measured gap in the README)")


def _bounded(kind: type, low: float, high: float, unit: str = ""):
    """An argparse type: a number of `kind` within [low, high], else a one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value:g} is outside {low:g}–{high:g}{unit}")
        return value
    return parse


def _rollout_arguments(p: argparse.ArgumentParser) -> None:
    from .backups import KEEP, KEEP_RANGE

    p.add_argument("-t", "--topology", required=True, metavar="FILE")
    _lock_arguments(p)
    p.add_argument("--keep-backups", type=_bounded(int, *KEEP_RANGE), default=KEEP, metavar="N",
                   help=f"backups kept per master, oldest pruned first; the one made now and the one restored are "
                        f"never pruned ({KEEP_RANGE[0]}–{KEEP_RANGE[1]}, default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="validate on the nodes and show the diff; change nothing")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="trust and record host keys not yet in known_hosts (never changed ones)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install missing packages")
    p.add_argument("--verify-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long a node may take to verify (default: %(default)s)")


# --- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="k8s-ha-tui",
        description="Set up, deploy and watch keepalived + HAProxy in front of kube-apiservers.",
    )
    p.add_argument("--version", action="version", version=f"k8s-ha-tui {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    w = sub.add_parser("wizard", help="ask for the topology, write it, render configs",
                       description="Ask for the cluster topology (the seed's cluster as defaults), "
                                   "check every answer, write the topology file and render configs.")
    w.add_argument("-o", "--output", default="topology.yaml", help="topology file to write (default: %(default)s)")
    w.add_argument("--from", dest="start", metavar="FILE", help="start from an existing topology file")
    w.add_argument("--defaults", action="store_true", help="write the defaults (or --from FILE) without asking")
    w.add_argument("--render-dir", metavar="DIR", help="also render the configs into DIR")
    w.set_defaults(func=cmd_wizard)

    r = sub.add_parser("render", help="render per-node configs from a topology",
                       description="Write DIR/<master>/etc/... for every master and DIR/kubeadm-config.yaml.")
    r.add_argument("-t", "--topology", required=True, metavar="FILE")
    r.add_argument("-o", "--output", required=True, metavar="DIR")
    r.add_argument("--haproxy-version", metavar="X.Y",
                   help="render for this HAProxy version (e.g. 2.0 on Ubuntu 20.04; default: 2.2 and newer)")
    r.set_defaults(func=cmd_render)

    li = sub.add_parser("lint", help="find problems in a topology or in running configs",
                        description="Exit 0: no error; 1: errors found; 2: input cannot be read.")
    li.add_argument("-t", "--topology", metavar="FILE", help="lint a topology file (and simulate the election)")
    li.add_argument("--keepalived", metavar="FILE", help="an existing keepalived.conf")
    li.add_argument("--haproxy", metavar="FILE", help="an existing haproxy.cfg")
    li.add_argument("--check-script", metavar="FILE", help="the check script keepalived.conf runs")
    li.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    li.set_defaults(func=cmd_lint)

    de = sub.add_parser("deploy", help="make the rendered configs live on every master over SSH",
                        description="Validate on each node, back up, install atomically, reload and verify, "
                                    "one master at a time, the VIP holder last; roll back a node that fails.")
    _rollout_arguments(de)
    de.add_argument("--templates", metavar="DIR", help="render from these templates instead of the packaged ones")
    de.set_defaults(func=cmd_deploy)

    rb = sub.add_parser("rollback", help="restore a deploy backup on every master, the same careful way")
    _rollout_arguments(rb)
    rb.add_argument("--to", metavar="BACKUP", help="the backup to restore (default: the latest; see --list)")
    rb.add_argument("--list", action="store_true", help="list every master's backups: who made them, for what, "
                                                        "from which topology, and the one before; change nothing")
    rb.set_defaults(func=cmd_rollback)

    dr = sub.add_parser("doctor", help="lint what really runs on every master, and what files alone cannot show",
                        description="Reads every master's live keepalived (includes followed) and HAProxy configs over "
                                    "SSH and lints them (findings name the node, the remote path and line); adds a "
                                    "reload pending (file differs from the running daemon), masters that disagree, "
                                    "priority ties, differing server sets, missing or unsafe check scripts. "
                                    "Exit 0: no error; 1: errors found; 2: a master could not be read.")
    dr.add_argument("-t", "--topology", required=True, metavar="FILE")
    dr.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    dr.set_defaults(func=cmd_doctor)

    di = sub.add_parser("discover", help="write a topology file that describes a running cluster",
                        description="Connects to the masters (host keys checked as deploy does), reads the running "
                                    "keepalived (its includes followed) and HAProxy configs, keepalived's own state "
                                    "and the interfaces, and writes a topology (0600) for status, monitor, doctor and "
                                    "the actions. Prints one line for each thing the model cannot express and each "
                                    "thing the masters disagree on.")
    di.add_argument("--masters", required=True, metavar="ADDR[,ADDR...]")
    di.add_argument("--workers", metavar="ADDR[,ADDR...]", help="workers, to see the API through the VIP from them")
    di.add_argument("-o", "--output", required=True, metavar="FILE")
    di.add_argument("--name", help="the cluster's name (default: from the VRRP instance's)")
    di.add_argument("--ssh-user", default="root", metavar="USER")
    di.add_argument("--ssh-port", type=_bounded(int, 1, 65535), default=22, metavar="PORT")
    di.add_argument("--identity-file", default="~/.ssh/id_ed25519", metavar="FILE")
    di.add_argument("--known-hosts", default="~/.ssh/known_hosts", metavar="FILE")
    di.add_argument("--accept-new-host-keys", action="store_true",
                    help="trust and record host keys not yet in known_hosts (never changed ones)")
    di.add_argument("--become", choices=["none", "sudo"], default="none",
                    help="sudo: run as root with passwordless sudo (default: log in as root)")
    di.set_defaults(func=cmd_discover)

    ex = sub.add_parser("exporter", help="Prometheus metrics for one or many clusters, until stopped",
                        description="Serves /metrics (Prometheus text format) for every cluster of the given "
                                    "topology files from one process: keepalived's and HAProxy's usual metric "
                                    "names with cluster and node labels, and k8s_ha_* for what only a view of the "
                                    "whole cluster shows (split brain, holders, the API through the VIP). A scrape "
                                    "never waits for SSH. Stop it with SIGTERM or Ctrl-C.")
    ex.add_argument("-t", "--topology", required=True, action="append", metavar="FILE",
                    help="a cluster's topology file; repeat for more clusters")
    ex.add_argument("--listen", default="127.0.0.1:9651", metavar="ADDR:PORT",
                    help="where to serve /metrics (default: %(default)s)")
    ex.add_argument("--interval", type=_bounded(float, 1, 300, " seconds"), default=5.0, metavar="SECONDS",
                    help="poll every node this often, 1-300 (default: %(default)s)")
    ex.set_defaults(func=cmd_exporter)

    mo = sub.add_parser("monitor", help="the live monitor (TUI): VIP holder, VRRP, backends, actions")
    mo.add_argument("-t", "--topology", required=True, metavar="FILE")
    mo.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                    help="poll every node this often (default: %(default)s; VIP moves show at once)")
    mo.set_defaults(func=cmd_monitor)

    st = sub.add_parser("status", help="one snapshot of the cluster (exit 0 healthy, 1 degraded, 2 critical)",
                        description="Who holds the VIP, every keepalived's state, every HAProxy backend, the API "
                                    "through the VIP. Exit 0 healthy, 1 degraded, 2 critical (no holder, split "
                                    "brain, API down through the VIP).")
    st.add_argument("-t", "--topology", required=True, metavar="FILE")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    fo = sub.add_parser("failover", help="move the VIP off its holder on purpose (it stays in maintenance)")
    fo.add_argument("-t", "--topology", required=True, metavar="FILE")
    fo.add_argument("--to", metavar="MASTER", help="the master to take the VIP (default: the best eligible one)")
    _method_argument(fo)
    _lock_arguments(fo)
    fo.set_defaults(func=cmd_failover)

    ma = sub.add_parser("maintenance", help="take a master out of (or back into) the VIP election")
    ma.add_argument("-t", "--topology", required=True, metavar="FILE")
    ma.add_argument("node")
    ma.add_argument("state", choices=["on", "off"])
    _method_argument(ma)
    _lock_arguments(ma)
    ma.set_defaults(func=cmd_maintenance)

    be = sub.add_parser("backend", help="drain, ready or maint one apiserver on every master's HAProxy",
                        description="Sets the state of every HAProxy server that sends to MASTER's apiserver "
                                    "(found by address and port, whatever the servers are called).")
    be.add_argument("-t", "--topology", required=True, metavar="FILE")
    be.add_argument("server", metavar="MASTER", help="the master whose apiserver to drain, ready or maint")
    be.add_argument("state", choices=["drain", "ready", "maint"])
    _lock_arguments(be)
    be.set_defaults(func=cmd_backend)

    from .lab.cli import add_lab_commands

    add_lab_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is still caught below
        return code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): say nothing more, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
