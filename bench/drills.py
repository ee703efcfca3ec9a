"""Every drill scenario on the lab, N times, as an operator runs `k8s-ha-tui drill`: what its
clients saw, next to what the failover bench measured for the nearest fault.

Per scenario and run: `drill -t LAB SCENARIO --hold 3 --yes --json` (20 requests a second from
each of the 3 workers and from this machine); the figures are the drill's own: the worst
client's longest gap, the failed requests of all clients, how long the drill took. The bench
column is bench/failover.py's median for the fault it resembles (docs/speed.md, measured
2026-11-26 with one client on this machine).

usage: sudo .venv/bin/python bench/drills.py [--runs N] [--json]    (N: 1-5, default 3; ~25 s a drill)
Needs the lab up (`k8s-ha-tui lab up`); deploys the defaults and leaves them deployed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys

from benchlib import cli, deploy, top_holder, wait_for

from k8s_ha_tui.lab import cluster

SCENARIOS = ("failover", "holder-keepalived", "holder-haproxy", "apiserver-drain")
# bench/failover.py ("ours", median longest gap) for the fault each drill resembles
BENCH = {"failover": ("controlled failover", 0.21), "holder-keepalived": ("keepalived dies (SIGKILL)", 0.08),
         "holder-haproxy": ("HAProxy dies", 0.91), "apiserver-drain": ("apiserver dies", 0.07)}


def one_drill(topology: str, scenario: str) -> dict:
    wait_for(lambda: top_holder(cluster.lab_paths().topology, "k8s-master-01"), 60, "a healthy lab, VIP on master-01")
    res = cli("drill", "-t", topology, scenario, "--hold", "3", "--yes", "--json", timeout=300)
    if res.returncode not in (0, 1):
        raise SystemExit(f"drill {scenario} failed: {res.stderr.strip() or res.stdout[-500:]}")
    doc = json.loads(res.stdout)
    return {"passed": doc["passed"], "worst_gap_s": doc["worst_gap_s"],
            "failed": sum(c["failed"] for c in doc["clients"]), "requests": sum(c["requests"] for c in doc["clients"]),
            "seconds": round(doc["ended_at"] - doc["started_at"], 1), "restored": doc["restored"] == []}


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    med = statistics.median(values)
    return f"{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})" if len(values) > 1 else fmt.format(med)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, choices=range(1, 6), default=3, metavar="N")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    topology = cluster.lab_paths().topology
    deploy(topology)
    runs = {s: [one_drill(str(topology), s) for _ in range(args.runs)] for s in SCENARIOS}
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print("| drill | passed | longest gap (worst client) | failed / requests, all clients | drill took "
          "| bench: fault | bench: longest gap |")
    print("|---|---|---|---|---|---|---|")
    for s, rs in runs.items():
        fault, gap = BENCH[s]
        print(f"| `{s}` | {sum(r['passed'] for r in rs)}/{len(rs)} | {spread([r['worst_gap_s'] for r in rs])} s | "
              f"{spread([r['failed'] for r in rs], '{:.0f}')} / {statistics.median(r['requests'] for r in rs):.0f} | "
              f"{spread([r['seconds'] for r in rs], '{:.1f}')} s | {fault} | {gap:.2f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
