"""What watching a fleet costs (lab, root): the monitor with `-t` for 1, 2 and 4 lab clusters
(`lab up --clusters 4`, 3 masters + 1 worker each), run headless for --seconds: CPU (user+sys of
this process: collectors, census, Textual), peak memory, SSH connections held, and on the nodes
what the census adds (tcpdump's CPU on a master over the same time).

usage: sudo .venv/bin/python bench/fleet.py [--seconds 30]
Leaves a 4-cluster lab up and deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time

from benchlib import deploy

from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.tui.app import MonitorApp

SIZES = (1, 2, 4)


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tcpdump_cpu() -> float:
    """CPU seconds of every census tcpdump on this machine (the lab's nodes share its kernel)."""
    total = 0.0
    for pid in subprocess.run(["pgrep", "-x", "tcpdump"], capture_output=True, text=True).stdout.split():
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def watch(paths, seconds: float) -> dict:
    topos = [topology.load_topology(p) for p in paths]
    fleet = [(t, policy_for(t)) for t in topos]
    app = MonitorApp(topos[0], fleet[0][1], 1.0, fleet=fleet if len(fleet) > 1 else ())
    cpu0, t0 = cpu_seconds(), time.monotonic()
    async with app.run_test(size=(120, 40)) as pilot:
        while time.monotonic() - t0 < 3:  # connected and the first rounds in
            await pilot.pause(0.2)
        dump0 = tcpdump_cpu()
        cpu1, t1 = cpu_seconds(), time.monotonic()
        while time.monotonic() - t1 < seconds:
            await pilot.pause(0.5)
        cpu2, t2 = cpu_seconds(), time.monotonic()
        collectors = list(app.collectors.values()) or [app.collector]
        conns = sum(1 for c in collectors if c for s in c.sessions if s.conn is not None)
        dump = tcpdump_cpu() - dump0
        rss = rss_mib()
    return {"clusters": len(paths), "cpu_pct": 100 * (cpu2 - cpu1) / (t2 - t1), "rss_mib": rss,
            "ssh": conns, "tcpdump_pct": 100 * dump / (t2 - t1), "startup_cpu": cpu1 - cpu0}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one size, in a process of its own
    args = ap.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(watch(cluster.lab_topologies()[:args.one], args.seconds))))
        return 0
    cluster.down(log=lambda _m: None)
    cluster.up(3, 1, log=lambda _m: None, clusters=max(SIZES))
    paths = cluster.lab_topologies()
    for p in paths:
        deploy(p)
    print(f"{'clusters':>8} {'nodes':>6} {'SSH':>4} {'CPU %':>6} {'RSS MiB':>8} {'tcpdump CPU % (all masters)':>28}")
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--seconds", str(args.seconds)],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(f"{n:>8} {4 * n:>6} {r['ssh']:>4} {r['cpu_pct']:>6.1f} {r['rss_mib']:>8.0f} {r['tcpdump_pct']:>28.2f}")
    print(f"(lab: {layout.SUBNET}; {args.seconds:g} s each; the monitor headless at 120x40, 1 s interval)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
