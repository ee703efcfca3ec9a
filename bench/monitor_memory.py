"""Whether the monitor's memory levels off: hours of snapshots, one per simulated second, shown
by the real MonitorApp (headless) as fast as it draws them, its RSS sampled every simulated 10
minutes. The lab soak (bench/soak.py) runs an hour in real time and saw the monitor still
growing slowly at its end (render caches filling); this runs 4 hours in ~17 minutes (2 cores).

The snapshots are what an hour under churn shows: every backend's age in seconds since its last
change (a new cell every second), a fault every 20 s (the VIP moves, a backend goes down and
comes back, a worker drops off), so cells, rows and events really change. Synthetic: no lab, no
root, nothing connects.

usage: .venv/bin/python bench/monitor_memory.py [--hours H] [--json]   (H: 0.5-8, default 4)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from k8s_ha_tui.remote.ssh import HostKeyPolicy
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, MasterStatus, WorkerStatus
from k8s_ha_tui.tui.app import MonitorApp
from k8s_ha_tui.tui.messages import StatusPolled

sys.path.insert(0, str(Path(__file__).parent))
from monitor_apply import topology  # noqa: E402  (a bench beside this one)

SAMPLE_S = 600  # simulated seconds between samples


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def snapshot(topo, t: int) -> ClusterStatus:
    """The cluster at simulated second `t`: fault k (every 20 s) moves the VIP to master k % 3,
    takes one apiserver down for 5 s, and one worker off for 5 s."""
    fault, into = divmod(t, 20)
    holder = fault % len(topo.masters)
    down = topo.masters[(fault + 1) % len(topo.masters)].name if into < 5 else None
    changed = t - into if into < 5 else t - into + 5  # when the backends last changed
    masters = []
    for n, m in enumerate(topo.masters):
        backends = tuple(BackendServer("apiserver", a.name, "DOWN" if a.name == down else "UP",
                                       "L4CON" if a.name == down else "L7OK", 2, t - changed, master=a.name)
                         for a in topo.masters)
        masters.append(MasterStatus(m.name, m.address, True, api_via_vip=True, keepalived="active",
                                    haproxy="active", vrrp_state="MASTER" if n == holder else "BACKUP",
                                    base_priority=topo.priority_of(m), effective_priority=topo.priority_of(m),
                                    check="GOOD", holds_vip=n == holder, backends=backends, apiserver="up",
                                    tracks_maintenance=True, tracks_boost=True))
    lost = fault % len(topo.workers) if into < 5 else None
    workers = tuple(WorkerStatus(w.name, w.address, k != lost, api_via_vip=True if k != lost else None)
                    for k, w in enumerate(topo.workers))
    return ClusterStatus(topo.name, topo.vip, topo.frontend_port, 1_000_000.0 + t, tuple(masters), workers)


async def run(hours: float) -> list[dict]:
    topo = topology(3, 3)
    app = MonitorApp(topo, HostKeyPolicy(known_hosts=Path("/nonexistent")), collect=False)
    samples = []
    async with app.run_test(size=(120, 40)) as pilot:
        for t in range(int(hours * 3600) + 1):
            app.post_message(StatusPolled(snapshot(topo, t)))
            await pilot.pause()
            if t % SAMPLE_S == 0:
                samples.append({"simulated_min": t // 60, "rss_mib": round(rss_mib(), 1)})
    return samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=4.0, help="simulated hours (0.5-8; default 4)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not 0.5 <= args.hours <= 8:
        raise SystemExit("--hours 0.5-8")
    samples = asyncio.run(run(args.hours))
    if args.json:
        print(json.dumps(samples, indent=2))
        return 0
    print(f"{'simulated min':>13} {'RSS MiB':>8} {'change':>7}")
    for prev, s in zip([None, *samples], samples):
        change = "" if prev is None else f"{s['rss_mib'] - prev['rss_mib']:+.1f}"
        print(f"{s['simulated_min']:>13} {s['rss_mib']:>8} {change:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
