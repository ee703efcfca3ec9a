"""What one snapshot costs the monitor to show, for 3 masters + 3 workers and 9 masters + 500
workers: `apply`, the monitor's own work (events tracked, every widget given the snapshot and
the changed cells written), and `until idle`, from posting it to Textual being idle again (its
message queue, layout and drawing included; the headless driver's frame pacing dominates it).
Synthetic snapshots (no lab, no root, nothing connects): every second one moves the VIP and
flips a backend and a tenth of the workers, so cells really change.

usage: .venv/bin/python bench/monitor_apply.py [--snapshots N] [--json]   (N: 10-500, default 60)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

from k8s_ha_tui.model.topology import topology_from_dict
from k8s_ha_tui.remote.ssh import HostKeyPolicy
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, MasterStatus, WorkerStatus
from k8s_ha_tui.tui.app import MonitorApp
from k8s_ha_tui.tui.messages import StatusPolled


def topology(masters: int, workers: int):
    return topology_from_dict({
        "name": "bench", "vip": "10.20.0.10", "prefix": 16,
        "masters": [{"name": f"master-{i + 1:02d}", "address": f"10.20.0.{11 + i}"} for i in range(masters)],
        "workers": [{"name": f"worker-{i + 1:03d}", "address": f"10.20.{1 + i // 250}.{1 + i % 250}"}
                    for i in range(workers)]}, "bench")


def snapshot(topo, i: int) -> ClusterStatus:
    holder = i % 2
    masters = []
    for n, m in enumerate(topo.masters):
        backends = tuple(BackendServer("apiserver", a.name, "DOWN" if (i % 2 and a.name == topo.masters[-1].name)
                                       else "UP", "L7OK", 2, i, master=a.name) for a in topo.masters)
        masters.append(MasterStatus(m.name, m.address, True, api_via_vip=True, keepalived="active",
                                    haproxy="active", vrrp_state="MASTER" if n == holder else "BACKUP",
                                    base_priority=topo.priority_of(m), effective_priority=topo.priority_of(m),
                                    check="GOOD", holds_vip=n == holder, backends=backends, apiserver="up",
                                    tracks_maintenance=True, tracks_boost=True))
    workers = tuple(WorkerStatus(w.name, w.address, True, api_via_vip=not (i % 2 and k % 10 == 0))
                    for k, w in enumerate(topo.workers))
    return ClusterStatus(topo.name, topo.vip, topo.frontend_port, 1000.0 + i, tuple(masters), workers)


async def measure(masters: int, workers: int, count: int) -> tuple[list[float], list[float]]:
    topo = topology(masters, workers)
    snaps = [snapshot(topo, i) for i in range(count + 1)]
    app = MonitorApp(topo, HostKeyPolicy(known_hosts=Path("/nonexistent")), collect=False)
    apply, idle = [], []
    async with app.run_test(size=(160, 50)) as pilot:
        app.post_message(StatusPolled(snaps[0]))  # the first one builds every row
        await pilot.pause()
        for n, snap in enumerate(snaps[1:]):
            started = time.perf_counter()
            if n % 2:
                app.post_message(StatusPolled(snap))
                await pilot.pause()
                idle.append((time.perf_counter() - started) * 1000)
            else:
                app._polled(StatusPolled(snap))  # what the message handler does, timed alone
                apply.append((time.perf_counter() - started) * 1000)
                await pilot.pause()
    return apply, idle


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, choices=range(10, 501), default=60, metavar="N")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = {}
    for masters, workers in ((3, 3), (9, 500)):
        apply, idle = asyncio.run(measure(masters, workers, args.snapshots))
        out[f"{masters}+{workers}"] = {name: {"median_ms": round(statistics.median(v), 1),
                                              "max_ms": round(max(v), 1)}
                                       for name, v in (("apply", apply), ("until_idle", idle))}
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"{'masters+workers':<16} {'apply: median':>14} {'max':>7} {'until idle: median':>20} {'max':>7}   (ms)")
    for size, r in out.items():
        print(f"{size:<16} {r['apply']['median_ms']:>14} {r['apply']['max_ms']:>7} "
              f"{r['until_idle']['median_ms']:>20} {r['until_idle']['max_ms']:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
