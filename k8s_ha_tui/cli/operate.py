"""The cluster as it runs now: status, the monitor, and the actions (failover, maintenance,
backend, restart), each behind the lock, its interlocks and a question."""

from __future__ import annotations

import argparse
import json
import sys

from k8s_ha_tui.cli.common import Parents, bounded, go_ahead, lock_options, print_table
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.status import cells
from k8s_ha_tui.status.diagnosis import diagnose, document


def print_status(snap) -> None:
    """The snapshot as a few lines and one table a person reads at 3 a.m."""
    print(f"{snap.name}: VIP {cells.vips(snap)} held by {cells.holders(snap)} — {snap.health.name}")
    for d in diagnose(snap):  # every alarm, as node, cause, evidence and the next step
        print(f"  {d.severity.upper()} {d.line()}")
        for fact in d.evidence:
            print(f"      · {fact}")
    for notice in snap.notices:
        print(f"  NOTE {notice}")
    if snap.lock:
        print(f"  LOCKED {snap.lock.describe()}")

    rows = [[text for text, _tone in (*cells.master_row(m, snap.bootstrap), cells.apiservers_up(m))]
            for m in snap.masters]
    rows += [[w.name, "worker" if w.reachable else "lost", *[""] * 7, cells.api(w, snap.bootstrap)[0], ""]
             for w in snap.workers]
    print_table((*cells.MASTER_COLUMNS, "apiservers up"), rows)


def cmd_status(args: argparse.Namespace) -> int:
    import asyncio

    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.status.poll import snapshot

    topo = topology.load_topology(args.topology)
    snap = asyncio.run(snapshot(topo, policy_for(topo)))
    if args.json:
        print(json.dumps(document(snap), indent=2))
    else:
        print_status(snap)
    return int(snap.health)


def _run_action(args: argparse.Namespace, request) -> int:
    """Connect, lock, snapshot, interlocks, confirmation, action, audit (actions.perform)."""
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.operations import actions
    from k8s_ha_tui.operations.interrupts import Interrupted, Interrupts
    from k8s_ha_tui.remote.ssh import connect_reachable, policy_for
    from k8s_ha_tui.status.poll import snapshot

    topo = topology.load_topology(args.topology)
    policy = policy_for(topo)

    async def confirm(question: str) -> bool:
        print(question)
        return await go_ahead(args.yes, "act")

    async def main() -> str:
        conns, _errors = await connect_reachable(topo, topo.masters, policy)
        by_name = {c.name: c for c in conns}

        async def conn_for(name: str):
            if name not in by_name:
                raise UserError(f"{name} is unreachable", code=1)
            return by_name[name]
        try:
            outcome = await actions.perform(request, topo.name, conns, len(topo.masters),
                                            lambda: snapshot(topo, policy, census=False), conn_for, confirm,
                                            lock_options(args), lambda line: print(line, flush=True))
            return outcome.text()
        finally:
            for c in conns:
                c.close()

    try:
        print(Interrupts().run(main))
    except Interrupted:
        boost = " (a failover removes its priority boost first)"
        undone = {"failover": boost, "maintenance": boost,
                  "restart": f" ({request.state} on {request.node} may or may not have restarted)"}.get(request.kind, "")
        raise UserError(f"interrupted: {request.action} stopped{undone}; see `status` for where the VIP is and what "
                        "runs", code=130) from None
    return 0


def cmd_failover(args: argparse.Namespace) -> int:
    from k8s_ha_tui.operations.actions import Request

    return _run_action(args, Request("failover", args.to, method=args.method))


def cmd_maintenance(args: argparse.Namespace) -> int:
    from k8s_ha_tui.operations.actions import Request

    method = {"boost": "file", "stop": "stop"}[args.method] if args.method else None
    return _run_action(args, Request("maintenance", args.node, args.state, method=method))


def cmd_backend(args: argparse.Namespace) -> int:
    from k8s_ha_tui.operations.actions import Request

    return _run_action(args, Request("backend", args.server, args.state))


def cmd_restart(args: argparse.Namespace) -> int:
    from k8s_ha_tui.operations.actions import Request

    return _run_action(args, Request("restart", args.node, args.service))


def cmd_monitor(args: argparse.Namespace) -> int:
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.tui.app import run_monitor

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("the monitor is a full-screen terminal app and needs a terminal; without one, use "
                        "`status --json` (one snapshot) or `exporter` (metrics)", code=2)
    topos = [topology.load_topology(path) for path in args.topology]
    names = [t.name for t in topos]
    if len(set(names)) < len(names):
        raise UserError(f"two topology files name the same cluster ({', '.join(n for n in names if names.count(n) > 1)}): "
                        "each cluster of a fleet needs its own name")
    fleet = [(t, policy_for(t)) for t in topos]
    code, changes = run_monitor(topos[0], fleet[0][1], args.interval, fleet)
    print("monitor closed" + (" (Ctrl-C)" if code == 130 else "") + ": "
          + ("; ".join(changes) if changes else "nothing was changed from it"), file=sys.stderr)
    return code


def method_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--method", choices=["boost", "stop"], default=None,
                   help="boost (default): this tool's track files, make-before-break, no dropped request; "
                        "stop: stop (or start) keepalived, for a running config without those files "
                        "(break-before-make: measured gap in docs/speed.md)")


def add_parsers(sub, p: Parents) -> None:
    mo = sub.add_parser("monitor", help="the live monitor (TUI): VIP holder, VRRP, backends, actions",
                        description="One -t: that cluster's monitor. Several: a fleet screen first (one row per "
                                    "cluster, worst first); enter opens a cluster, escape comes back.")
    mo.add_argument("-t", "--topology", required=True, action="append", metavar="FILE",
                    help="a cluster's topology file; repeat it to watch a fleet")
    mo.add_argument("--interval", type=bounded(float, 0.2, 60, " seconds"), default=1.0, metavar="SECONDS",
                    help="poll every node this often, 0.2-60 (default: %(default)s; VIP moves show at once)")
    mo.set_defaults(func=cmd_monitor)

    st = sub.add_parser("status", parents=[p.topology, p.json],
                        help="one snapshot of the cluster (exit 0 healthy, 1 degraded, 2 critical)",
                        description="Who holds the VIP, every keepalived's state, every HAProxy backend, the API "
                                    "through the VIP, each master's own kube-apiserver. Exit 0 healthy, 1 degraded "
                                    "(also a first-time setup: the load balancer is ready and no master has an "
                                    "apiserver yet, or some masters have not joined), 2 critical (no holder, split "
                                    "brain, API down through the VIP once an apiserver exists).")
    st.set_defaults(func=cmd_status)

    fo = sub.add_parser("failover", parents=[p.topology, p.lock],
                        help="move the VIP off its holder on purpose (it stays in maintenance)")
    fo.add_argument("--to", metavar="MASTER", help="the master to take the VIP (default: the best eligible one)")
    method_argument(fo)
    fo.set_defaults(func=cmd_failover)

    ma = sub.add_parser("maintenance", parents=[p.topology, p.lock],
                        help="take a master out of (or back into) the VIP election")
    ma.add_argument("node")
    ma.add_argument("state", choices=["on", "off"])
    method_argument(ma)
    ma.set_defaults(func=cmd_maintenance)

    re_ = sub.add_parser("restart", parents=[p.topology, p.lock],
                         help="restart keepalived or HAProxy on one master (its config checked first)",
                         description="Checks the config on disk with the node's own keepalived -t / haproxy -c "
                                     "(a restart that could not come back is refused), restarts the service and "
                                     "waits until it is active. Refused for keepalived on the only master that "
                                     "can hold the VIP.")
    re_.add_argument("node", metavar="MASTER")
    re_.add_argument("service", choices=["keepalived", "haproxy"])
    re_.set_defaults(func=cmd_restart)

    be = sub.add_parser("backend", parents=[p.topology, p.lock],
                        help="drain, ready or maint one apiserver on every master's HAProxy",
                        description="Sets the state of every HAProxy server that sends to MASTER's apiserver "
                                    "(found by address and port, whatever the servers are called).")
    be.add_argument("server", metavar="MASTER", help="the master whose apiserver to drain, ready or maint")
    be.add_argument("state", choices=["drain", "ready", "maint"])
    be.set_defaults(func=cmd_backend)
