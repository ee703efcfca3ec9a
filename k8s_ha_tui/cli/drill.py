"""`drill`: a failover drill on the real cluster, scored by what its clients saw; `drill --list`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from k8s_ha_tui.cli.common import Parents, bounded, go_ahead, lock_options, print_table
from k8s_ha_tui.errors import UserError


def cmd_drill(args: argparse.Namespace) -> int:
    from k8s_ha_tui.drills import report

    if args.list:
        return _list(args.json)
    if not args.topology or not args.scenario:
        raise UserError("drill needs -t FILE and a SCENARIO (or --list)")
    from k8s_ha_tui.drills.run import DrillRun, Options
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.operations.interrupts import Interrupted, Interrupts
    from k8s_ha_tui.remote.ssh import policy_for

    topo = topology.load_topology(args.topology)
    interrupts = Interrupts()

    async def confirm(question: str) -> bool:
        print(question, file=sys.stderr if args.json else sys.stdout, flush=True)  # --json: stdout is the document
        return await go_ahead(args.yes, "drill")

    def log(line: str) -> None:
        if not args.json:
            print(line, flush=True)

    run = DrillRun(topo, policy_for(topo), args.scenario,
                   Options(args.rate, args.max_gap, args.abort_after, args.hold, args.node),
                   confirm, lock_options(args), log, interrupts)
    try:
        drill = interrupts.run(run.execute)
    except Interrupted as exc:
        d = run.drill
        if d is None:
            raise UserError("interrupted before the drill began; nothing was changed", code=130) from None
        restored = ("not known: the restore was abandoned; see `status`" if exc.abandoned else
                    "restored as found" if not d.restored else f"NOT restored: {'; '.join(d.restored)}")
        raise UserError(f"interrupted: the drill stopped; the cluster is {restored}"
                        + (f"; report in {run.folder}" if run.folder else ""), code=130) from None
    if args.json:
        print(json.dumps(drill.document(), indent=2))
    else:
        print_table(report.TABLE_HEADER, report.table_rows(drill))
        print(f"{drill.verdict}\nreport: {run.folder}")
    return 0 if drill.passed else 1


def _list(as_json: bool) -> int:
    from k8s_ha_tui.drills import report

    drills = report.past()
    if as_json:
        print(json.dumps([{"id": d.id, "cluster": d.cluster, "scenario": d.scenario, "verdict": d.verdict,
                           "passed": d.passed, "folder": str(report.drills_dir() / d.id)} for d in drills], indent=2))
        return 0
    if not drills:
        print(f"no drills yet (kept in {report.drills_dir()})")
        return 0
    print_table(("when", "cluster", "scenario", "target", "verdict", "id"),
                [[time.strftime("%Y-%m-%d %H:%M", time.localtime(d.started_at)), d.cluster, d.scenario, d.target,
                  d.verdict, d.id] for d in drills])
    print(f"reports in {report.drills_dir()}")
    return 0


def add_parsers(sub, p: Parents) -> None:
    from k8s_ha_tui.drills.scenarios import SCENARIOS

    dr = sub.add_parser(
        "drill", parents=[p.json, p.lock], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="a failover drill on the real cluster, scored by what its clients saw",
        description="Runs one scenario on the cluster while every reachable worker (and this machine, when it "
                    "reaches the VIP) asks /readyz through the VIP; then puts the cluster back as it found it, "
                    "also after a failure, Ctrl-C or SIGTERM. Asks first, takes the cluster lock, refuses (exit 3, "
                    "nothing changed) when the cluster is not healthy or could not survive it. Exit 0 when no client "
                    "waited longer than --max-gap, 1 otherwise. Reports are kept under "
                    "~/.local/state/k8s-ha-tui/drills/.\n\nscenarios:\n"
                    + "\n".join(f"  {name:18} {text}" for name, text in SCENARIOS.items()))
    dr.add_argument("scenario", nargs="?", choices=list(SCENARIOS), metavar="SCENARIO",
                    help=f"one of: {', '.join(SCENARIOS)}")
    dr.add_argument("-t", "--topology", metavar="FILE", help="the cluster's topology file")
    dr.add_argument("--list", action="store_true", help="the drills run so far, with their verdicts")
    dr.add_argument("--rate", type=bounded(float, 1, 100, " requests a second"), default=20.0, metavar="R",
                    help="requests a second from each client, 1-100 (default: %(default)g)")
    dr.add_argument("--max-gap", type=bounded(float, 0.05, 600, " seconds"), default=2.0, metavar="S",
                    help="the longest a client may go without an answer for the drill to pass (default: %(default)g)")
    dr.add_argument("--abort-after", type=bounded(float, 1, 300, " seconds"), default=10.0, metavar="S",
                    help="deadman: if most clients get no answer this long, undo at once (default: %(default)g)")
    dr.add_argument("--hold", type=bounded(float, 0, 600, " seconds"), default=5.0, metavar="S",
                    help="how long the fault stays once the cluster shows it (default: %(default)g)")
    dr.add_argument("--node", metavar="MASTER", help="apiserver-drain: whose apiserver (default: the VIP holder's)")
    dr.set_defaults(func=cmd_drill)
