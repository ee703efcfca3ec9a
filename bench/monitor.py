"""How fast and how cheaply the collector sees the cluster (lab, root).

1. Detection latency: the holder's HAProxy is killed (the VIP moves, real keepalived), then
   healed (it moves back). For each move: from the moment the kernel adds the VIP on the new
   holder (`ip monitor address` in that node's namespace, the ground truth) to the first
   ClusterStatus that names the new holder. --moves of them (default 10).
2. Cost: CPU (user+sys of this process) and peak memory while the collector watches 3 masters
   + 3 workers for --seconds (default 60).
3. Scale: a lab of 9 masters + 20 workers; time of one full status round, cold (connecting)
   and warm (connections kept open).

usage: sudo .venv/bin/python bench/monitor.py [--moves 10] [--seconds 60] [--no-scale]
Leaves the 3+3 lab up and deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time

from benchlib import VipWatch, deploy

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status.poll import Collector


async def latency(topo, moves: int) -> list[float]:
    first_seen: list[tuple[float, tuple]] = []

    def on_snapshot(snap):
        first_seen.append((time.monotonic(), tuple(snap.holders)))

    collector = Collector(topo, policy_for(topo), interval=1.0, on_snapshot=on_snapshot)
    task = asyncio.ensure_future(collector.run())
    watch = VipWatch([m.name for m in topo.masters])
    results = []
    try:
        await asyncio.sleep(3)
        for _ in range(2 * moves):  # a move that cannot be timed is tried again, within bounds
            if len(results) >= moves:
                break
            holder = collector.latest.holders[0] if collector.latest and collector.latest.holders else None
            if holder is None:
                await asyncio.sleep(1)
                continue
            # Odd moves: kill the holder's HAProxy; even: heal it (the VIP comes back by priority).
            faulted = [n for n, kinds in cluster.LabState.load(cluster.lab_paths()).faults.items() if kinds]
            if faulted:
                await asyncio.to_thread(cluster.heal, faulted[0])
            else:
                await asyncio.to_thread(cluster.fault, holder, "haproxy-down")
            started = time.monotonic()
            while time.monotonic() - started < 20:
                snap = collector.latest
                if snap and snap.holders and snap.holders != [holder] and len(snap.holders) == 1:
                    break
                await asyncio.sleep(0.01)
            new = collector.latest.holders[0]
            t_kernel = max((t for t, n in watch.added if n == new and t >= started), default=None)
            t_seen = next((t for t, h in first_seen if t >= started and h == (new,)), None)
            if t_kernel and t_seen:
                results.append(max(0.0, t_seen - t_kernel))
            await asyncio.sleep(2)
    finally:
        watch.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for n in topo.masters:
            try:
                cluster.heal(n.name)
            except Exception:  # noqa: BLE001 - best effort, the lab is left healthy
                pass
    return results


async def cost(topo, seconds: float) -> tuple[float, float]:
    collector = Collector(topo, policy_for(topo), interval=1.0)
    task = asyncio.ensure_future(collector.run())
    await asyncio.sleep(3)  # connected and warm
    before = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    after = resource.getrusage(resource.RUSAGE_SELF)
    elapsed = time.monotonic() - t0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return 100 * cpu / elapsed, after.ru_maxrss / 1024


async def scale_round(topo, rounds: int = 5) -> tuple[float, list[float]]:
    """One cold round (connecting), then `rounds` warm ones (connections kept open)."""
    collector = Collector(topo, policy_for(topo), watch_vip=False)
    try:
        t0 = time.monotonic()
        await collector.poll_once()
        cold = time.monotonic() - t0
        warm = []
        for _ in range(rounds):
            t0 = time.monotonic()
            snap = await collector.poll_once()
            warm.append(time.monotonic() - t0)
            if snap.unreachable:
                raise SystemExit(f"scale: unreachable nodes {snap.unreachable}")
        return cold, warm
    finally:
        collector.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-scale", action="store_true")
    args = ap.parse_args()

    if not args.no_scale:
        cluster.down(log=lambda _m: None)
        path = cluster.up(9, 20, log=lambda _m: None)
        deploy(path)
        cold, warm = asyncio.run(scale_round(topology.load_topology(path)))
        print(f"scale (9 masters + 20 workers): one status round {cold:.2f} s cold (connecting), warm median "
              f"{statistics.median(warm):.2f} s ({min(warm):.2f}-{max(warm):.2f}, {len(warm)} rounds)")
        cluster.down(log=lambda _m: None)

    path = cluster.up(3, 3, log=lambda _m: None)
    deploy(path)
    topo = topology.load_topology(path)
    lat = asyncio.run(latency(topo, args.moves))
    if lat:
        print(f"detection latency ({len(lat)} VIP moves): median {1000 * statistics.median(lat):.0f} ms, "
              f"worst {1000 * max(lat):.0f} ms")
    cpu, rss = asyncio.run(cost(topo, args.seconds))
    print(f"cost (3 masters + 3 workers, {args.seconds:g} s, 1 s interval): {cpu:.1f} % of one core, "
          f"peak RSS {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
