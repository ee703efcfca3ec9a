"""On call, measured on the lab: how long from each fault to its diagnosis, and what each remedy
does for the clients.

1. Time to diagnosis: the monitor's collector (1 s interval, the VIP watched as it moves) runs
   while each fault the lab injects hits the VIP's holder and a backup; the time is from the
   injection to the first snapshot whose diagnosis names that node and the expected cause.
2. Remedies, with the client loop (20 fresh TLS connections a second to /readyz through the
   VIP): the split brain ended by `maintenance CLAIMANT on` (the claimant nobody hears, which
   the clients reach: their host's neighbour entry for the VIP has its MAC, the worst case),
   time from the command to one holder and the failed requests; `restart NODE haproxy|keepalived` on
   the holder, time to active and the failed requests.

usage: .venv/bin/python bench/diagnosis.py [--runs N] [--part all|diagnosis|remedies] [--fault F ...] [--json]
       (root; N: 1-5, default 1)
Brings the lab up and deploys; leaves it up, healed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchlib import Client, cli, deploy, tool, vip_holders, wait_for

from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model.topology import load_topology
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status.diagnosis import diagnose
from k8s_ha_tui.status.poll import Collector

MASTERS = ["k8s-master-01", "k8s-master-02", "k8s-master-03"]
ROLES = {"holder": "k8s-master-01", "backup": "k8s-master-03"}
# fault (with its value) → the diagnosis code expected on the faulty node
FAULTS = {("apiserver-down", None): "apiserver-not-running", ("apiserver-hang", None): "apiserver-hung",
          ("apiserver-unready", None): "apiserver-not-ready",
          ("haproxy-down", None): "haproxy-down", ("keepalived-down", None): "keepalived-down",
          ("vrrp-drop", None): "cut-off", ("offline", None): "unreachable",
          ("config-edit", None): "reload-pending", ("priority", 140.0): "priority-tie"}
BOUND = 30.0


def healthy(topology: Path) -> bool:
    snap = json.loads(cli("status", "-t", str(topology), "--json").stdout or "{}")
    return snap.get("holders") == [ROLES["holder"]] and not snap.get("diagnosis")


async def time_to_diagnosis(topo, node: str, fault: str, value: float | None, code: str) -> float:
    """Seconds from the injection to the first snapshot that diagnoses it (the monitor's view)."""
    seen = asyncio.get_running_loop().create_future()
    first_round = asyncio.Event()
    started = 0.0

    def polled(snap) -> None:
        first_round.set()
        if started and not seen.done() and any(d.node == node and d.code == code for d in diagnose(snap)):
            seen.set_result(time.monotonic() - started)
    collector = Collector(topo, policy_for(topo), 1.0, on_snapshot=polled)
    task = asyncio.ensure_future(collector.run())
    try:
        # its first round is done (connections open, as in a running monitor), then the fault
        await asyncio.wait_for(first_round.wait(), BOUND)
        started = time.monotonic()
        await asyncio.to_thread(cluster.fault, node, fault, value)
        return await asyncio.wait_for(seen, BOUND)
    finally:
        task.cancel()
        collector.close()


def diagnoses(topology: Path, runs: int, only: list[str] | None = None) -> dict:
    out = {}
    topo = load_topology(topology)
    for (fault, value), code in FAULTS.items():
        if only and fault not in only:
            continue
        for role, node in ROLES.items():
            times = []
            for _ in range(runs):
                wait_for(lambda: healthy(topology), 60, "a healthy cluster")
                try:
                    times.append(asyncio.run(time_to_diagnosis(topo, node, fault, value, code)))
                finally:
                    cluster.heal(node, fault)
            out[f"{fault} on the {role}"] = {"code": code, "seconds": [round(t, 2) for t in times],
                                             "median_s": round(statistics.median(times), 2)}
            print(f"{fault:16} {role:7} → {code:22} {statistics.median(times):5.2f} s  (runs: "
                  f"{', '.join(f'{t:.2f}' for t in times)})", flush=True)
    return out


def with_clients(action) -> dict:
    """Run `action()` (it returns seconds to its effect) with the client loop; the failures
    counted from the action's start until the clients have answered for a whole second again."""
    client = Client()
    client.start()
    try:
        wait_for(lambda: client.ok_for(1.0), 20, "the clients answered")
        since = time.monotonic()
        seconds = action()
        wait_for(lambda: client.ok_for(1.0), 30, "the clients answering again")
    finally:
        client.finish()
    report = client.report(since)
    return {"seconds": round(seconds, 3), "sent": report["sent"], "failed": report["failed"],
            "longest_gap_ms": report["longest_gap_ms"]}


def reach(node: str) -> None:
    """Make the clients' host reach the VIP at `node` (its neighbour entry set to that node's MAC),
    as a host does whose last gratuitous ARP came from there: the remedy's worst case."""
    links = json.loads(subprocess.run(["ip", "-n", layout.netns_of(node), "-j", "link", "show", layout.NODE_LINK],
                                      capture_output=True, text=True, check=True).stdout)
    subprocess.run(["ip", "neigh", "replace", layout.VIP, "lladdr", links[0]["address"], "dev", layout.ROOT_LINK,
                    "nud", "reachable"], check=True)


def split_brain_remedy(topology: Path) -> dict:
    """vrrp-drop on the holder: it and the next master both hold the VIP, the clients reach the
    cut-off one; then the remedy."""
    wait_for(lambda: healthy(topology), 60, "a healthy cluster")
    cluster.fault(ROLES["holder"], "vrrp-drop")
    try:
        wait_for(lambda: len(vip_holders(MASTERS)) == 2, 20, "the split brain")
        reach(ROLES["holder"])

        def remedy() -> float:
            started = time.monotonic()
            tool("maintenance", "-t", str(topology), ROLES["holder"], "on", "--yes")
            wait_for(lambda: vip_holders(MASTERS) == ["k8s-master-02"], 20, "one holder", step=0.01)
            return time.monotonic() - started
        return with_clients(remedy)
    finally:
        cluster.heal(ROLES["holder"], "vrrp-drop")
        tool("maintenance", "-t", str(topology), ROLES["holder"], "off", "--yes")


def restart(topology: Path, service: str) -> dict:
    wait_for(lambda: healthy(topology), 60, "a healthy cluster")

    def action() -> float:
        started = time.monotonic()
        tool("restart", "-t", str(topology), ROLES["holder"], service, "--yes")
        return time.monotonic() - started
    return with_clients(action)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=1, choices=range(1, 6), metavar="N")
    ap.add_argument("--part", choices=["all", "diagnosis", "remedies"], default="all")
    ap.add_argument("--fault", action="append", choices=sorted({f for f, _ in FAULTS}),
                    help="only this fault (again for more; default: every one)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    topology = Path(cluster.up(3, 3, log=lambda _m: None))
    for m in MASTERS:
        cluster.heal(m)
    deploy(topology)
    result = {"time_to_diagnosis": diagnoses(topology, args.runs, args.fault)} if args.part != "remedies" else {}
    remedies: dict[str, list] = {}
    for _ in range(args.runs if args.part != "diagnosis" else 0):
        for name, measure in (("maintenance on the cut-off claimant", lambda: split_brain_remedy(topology)),
                              ("restart haproxy on the holder", lambda: restart(topology, "haproxy")),
                              ("restart keepalived on the holder", lambda: restart(topology, "keepalived"))):
            r = measure()
            remedies.setdefault(name, []).append(r)
            print(f"{name:36} {r['seconds']:6.2f} s to its effect; {r['failed']}/{r['sent']} requests failed, "
                  f"longest gap {r['longest_gap_ms']} ms", flush=True)
    result["remedies"] = remedies
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
