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
        topo = wizard.ask_topology(prompter, wizard.start_from(args.start))
        if not wizard.confirm_and_write(prompter, topo, args.output,
                                        lambda t: topology.save_topology(t, args.output)):
            print("nothing written")
            return 1
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


def cmd_lint(args: argparse.Namespace) -> int:
    from . import lint, topology

    if args.topology and (args.keepalived or args.haproxy):
        raise UserError("lint takes either -t TOPOLOGY or --keepalived/--haproxy files, not both")
    if args.topology:
        findings = lint.lint_topology(topology.load_topology(args.topology))
    elif args.keepalived or args.haproxy:
        findings = lint.lint_configs(
            _read(args.keepalived) if args.keepalived else None,
            _read(args.haproxy) if args.haproxy else None,
            _read(args.check_script) if args.check_script else None,
            keepalived_name=args.keepalived or "", haproxy_name=args.haproxy or "",
        )
    else:
        raise UserError("lint needs -t TOPOLOGY, or --keepalived FILE and/or --haproxy FILE")
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    else:
        for f in findings:
            print(f.text())
        errors = sum(f.level == "error" for f in findings)
        print(f"{errors} error(s), {len(findings) - errors} warning(s)")
    return 1 if lint.has_errors(findings) else 0


def _confirm_rollout(args: argparse.Namespace, what: str):
    """Ask before changing live nodes, unless --yes; never guess when nobody can answer."""
    def confirm(plans) -> bool:
        from .deploy import rollout_order

        order = " → ".join(p.name for p in rollout_order(plans) if p.changed)
        print(f"\nPlan: {what} {order} (one at a time, each verified before the next; "
              "the VIP holder last)")
        if args.yes:
            return True
        if not sys.stdin.isatty():
            raise UserError("not confirmed: run with --yes to deploy without a terminal")
        return input("Go ahead? [y/N] ").strip().lower() in ("y", "yes")
    return confirm


def _print_summary(plans) -> None:
    from .deploy import summary_rows

    rows = [("node", "result", "changed", "backup", "time"), *summary_rows(plans)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    print()
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())


def _rollout(args: argparse.Namespace, what: str, run) -> int:
    import asyncio

    from . import deploy as d, topology
    from .collector.ssh import policy_for

    topo = topology.load_topology(args.topology)
    policy = policy_for(topo, args.accept_new_host_keys)
    options = d.Options(dry_run=args.dry_run, allow_install=not args.no_install,
                        verify_timeout=args.verify_timeout,
                        template_dir=Path(args.templates) if getattr(args, "templates", None) else None)
    log = lambda line: print(line, flush=True)  # noqa: E731
    try:
        plans = asyncio.run(run(d, topo, policy, options, _confirm_rollout(args, what), log))
    except d.DeployError as exc:
        if exc.plans:
            _print_summary(exc.plans)
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
    return _rollout(args, "deploy to",
                    lambda d, topo, policy, options, confirm, log: d.deploy(topo, policy, options, confirm, log))


def cmd_rollback(args: argparse.Namespace) -> int:
    return _rollout(args, f"restore backup {args.to or '(latest)'} on",
                    lambda d, topo, policy, options, confirm, log: d.rollback(topo, policy, options, args.to,
                                                                            confirm, log))


def _status_text(snap) -> str:
    """The snapshot as a few lines a person reads at 3 a.m."""
    holders = ", ".join(snap.holders) or "NOBODY"
    lines = [f"{snap.name}: VIP {snap.vip} held by {holders} — {snap.health.name}"]
    lines += [f"  ALARM {a}" for a in snap.alarms]
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


def _ask(args: argparse.Namespace, question: str) -> None:
    """Actions that could drop the API ask first (or take --yes)."""
    print(question)
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise UserError("not confirmed: run with --yes to act without a terminal")
    if input("Go ahead? [y/N] ").strip().lower() not in ("y", "yes"):
        raise UserError("not confirmed; nothing was changed", code=1)


def _run_action(args: argparse.Namespace, describe, act) -> int:
    """Snapshot, interlocks and description, confirmation, then the action on kept connections."""
    import asyncio

    from . import topology
    from .collector.poll import snapshot
    from .collector.ssh import connect, policy_for

    topo = topology.load_topology(args.topology)
    policy = policy_for(topo)

    async def main() -> str:
        snap = await snapshot(topo, policy)
        _ask(args, describe(snap))
        conns: dict = {}

        async def conn_for(name: str):
            if name not in conns:
                conns[name] = await connect(topo, topo.master(name), policy)
            return conns[name]
        try:
            return (await act(snap, conn_for)).text()
        finally:
            for c in conns.values():
                c.close()

    print(asyncio.run(main()))
    return 0


def cmd_failover(args: argparse.Namespace) -> int:
    from . import actions

    def describe(snap) -> str:
        holder, target = actions.failover_target(snap, args.to)
        return (f"Failover: raise {target}'s priority so it takes the VIP from {holder} while {holder} still "
                f"serves, then put {holder} in maintenance (it stays out until 'maintenance {holder} off').")
    return _run_action(args, describe, lambda snap, conn_for: actions.failover(snap, conn_for, args.to))


def cmd_maintenance(args: argparse.Namespace) -> int:
    from . import actions

    on = args.state == "on"

    def describe(snap) -> str:
        actions.check_maintenance(snap, args.node, on)
        if on and args.node in snap.holders:
            return f"{args.node} holds the VIP: it moves first (make-before-break), then {args.node} enters maintenance."
        return (f"Maintenance {args.state} for {args.node}: " +
                ("keepalived there goes to FAULT and will not take the VIP." if on else
                 "it may take the VIP back if its priority is the highest."))
    return _run_action(args, describe, lambda snap, conn_for: actions.maintenance(snap, conn_for, args.node, on))


def cmd_backend(args: argparse.Namespace) -> int:
    from . import actions

    def describe(snap) -> str:
        actions.check_backend(snap, args.server, args.state)
        return f"Backend {args.server}: set state {args.state} on every reachable master's HAProxy."
    return _run_action(args, describe, lambda snap, conn_for: actions.backend(snap, conn_for, args.server, args.state))


def cmd_monitor(args: argparse.Namespace) -> int:
    from . import topology
    from .collector.ssh import policy_for
    from .tui.app import run_monitor

    topo = topology.load_topology(args.topology)
    run_monitor(topo, policy_for(topo), args.interval)
    return 0


def _rollout_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--topology", required=True, metavar="FILE")
    p.add_argument("--yes", action="store_true", help="do not ask before changing the nodes")
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
    rb.add_argument("--to", metavar="TIMESTAMP", help="the backup to restore (default: the latest)")
    rb.set_defaults(func=cmd_rollback)

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
    fo.add_argument("--yes", action="store_true", help="do not ask first")
    fo.set_defaults(func=cmd_failover)

    ma = sub.add_parser("maintenance", help="take a master out of (or back into) the VIP election")
    ma.add_argument("-t", "--topology", required=True, metavar="FILE")
    ma.add_argument("node")
    ma.add_argument("state", choices=["on", "off"])
    ma.add_argument("--yes", action="store_true", help="do not ask first")
    ma.set_defaults(func=cmd_maintenance)

    be = sub.add_parser("backend", help="drain, ready or maint one apiserver on every master's HAProxy")
    be.add_argument("-t", "--topology", required=True, metavar="FILE")
    be.add_argument("server")
    be.add_argument("state", choices=["drain", "ready", "maint"])
    be.add_argument("--yes", action="store_true", help="do not ask first")
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
        print("\naborted; nothing was written", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): say nothing more, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
