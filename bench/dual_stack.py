"""Dual stack on the lab: the API's gap through each VIP when the holder vanishes or the VIPs are
moved on purpose, IPv4 and IPv6 side by side, and how long a host that missed the takeover's
announcements takes to follow.

`lab up --family dual` (3 masters, 1 worker), the packaged configs deployed: one VRRPv3 instance
per family in a sync group. Per run:
  offline  the holder drops off the network. Two clients in the root namespace (on the lab's
           bridge, a neighbour as any host in front of the VIP is), one through each VIP, 20 fresh
           TLS connections a second: the longest gap each saw, and when each VIP appeared on the
           successor (the kernel's address events).
  failover the same clients through `k8s-ha-tui failover` (make-before-break: the successor's
           priority raised, then the old holder into maintenance; taken out of it afterwards).
  missed   the same (holder offline, or the failover: then the old holder stays on the wire, in
           maintenance, and no longer answers for the VIP), but the worker misses the successor's
           announcements (gratuitous ARPs and
           unsolicited neighbour advertisements: its ARP input and ICMPv6 neighbour
           advertisements dropped for the first 6 s, both of keepalived's bursts): seconds from
           the takeover until it reaches the API through each VIP again (tried every 0.2 s, at
           most --wait s). keepalived repeats the announcement every 10 s
           (vrrp_garp_master_refresh); Linux's own neighbour timers also re-check a silent entry.
Every loop is bounded; the lab is left up, dual stack, deployed.

usage: sudo .venv/bin/python bench/dual_stack.py [--runs 3] [--wait 40] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time

from benchlib import Client, VipWatch, deploy, tool, vip_holders, wait_for

from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote.apiserver import readyz_from_here

WORKER = "k8s-node-01"
MISSED_WINDOW_S = 6  # keepalived's two bursts: at the takeover and vrrp_garp_master_delay (5 s) later
TABLE = "k8s_ha_bench6"
FAMILIES = ("IPv4", "IPv6")


def in_ns(node: str, *cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", layout.netns_of(node), *cmd], capture_output=True, text=True,
                          timeout=30, check=check, input=input)


def settled(topo: topology.Topology, top: str) -> None:
    masters = [m.name for m in topo.masters]
    wait_for(lambda: all(vip_holders(masters, v) == [top] for v in topo.vips), 60, f"both VIPs on {top} alone")
    for vip in topo.vips:
        wait_for(lambda vip=vip: readyz_from_here(vip, topo.frontend_port), 20, f"the API through {vip}")


def move(topo: topology.Topology, path: str, how: str) -> dict:
    """The VIPs moved off the top master (`how`: offline, failover) under both clients."""
    old = topo.masters[0].name
    settled(topo, old)
    watches = [VipWatch([m.name for m in topo.masters], vip) for vip in topo.vips]
    clients = [Client(vip, topo.frontend_port) for vip in topo.vips]
    for c in clients:
        c.start()
    try:
        wait_for(lambda: all(c.ok_for(1.0) for c in clients), 10, "both clients answered")
        t0 = time.monotonic()
        if how == "offline":
            cluster.fault(old, "offline")
        else:
            tool("failover", "-t", path, "--yes")
        wait_for(lambda: all(c.ok_for(2.0) for c in clients) and time.monotonic() > t0 + 3, 30,
                 "the API back through both VIPs")
    finally:
        for c in clients:
            c.finish()
        for w in watches:
            w.close()
        if how == "offline":
            cluster.heal(old, "offline")
        else:
            tool("maintenance", "-t", path, "--yes", old, "off")
    out = {}
    for family, watch, c in zip(FAMILIES, watches, clients):
        added = watch.first_added(t0, other_than=old)
        out[family] = {"moved_s": round(added - t0, 3) if added else None, **c.report(since=t0)}
    return out


def worker_reaches(vip: str, port: int) -> bool:
    url = f"https://{topology.host_port(vip, port)}/readyz"
    res = in_ns(WORKER, "curl", "-gsk", "--max-time", "0.5", "-o", "/dev/null", "-w", "%{http_code}", url,
                check=False)
    return res.stdout.strip() == "200"


def missed(topo: topology.Topology, path: str, how: str, wait: float) -> dict:
    """Seconds from the takeover (`how`: offline, failover) until the worker, deaf to the
    announcements for MISSED_WINDOW_S, reaches the API through each VIP again (None: not within
    `wait`)."""
    old, new = topo.masters[0].name, topo.masters[1].name
    settled(topo, old)
    for vip in topo.vips:
        wait_for(lambda vip=vip: worker_reaches(vip, topo.frontend_port), 10, f"the worker reaching {vip}")
    deaf = (f"table arp {TABLE} {{\n chain input {{\n  type filter hook input priority 0; policy drop;\n }}\n}}\n"
            f"table ip6 {TABLE} {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
            "  icmpv6 type nd-neighbor-advert drop\n }\n}\n")
    in_ns(WORKER, "nft", "-f", "-", input=deaf)
    back: dict[str, float | None] = dict.fromkeys(FAMILIES)
    try:
        if how == "offline":
            cluster.fault(old, "offline")
        else:
            tool("failover", "-t", path, "--to", new, "--yes")
        wait_for(lambda: all(vip_holders([new], v) for v in topo.vips), 30, f"{new} holding both VIPs", step=0.05)
        took_over = time.monotonic()
        time.sleep(MISSED_WINDOW_S)  # the window the worker misses (a measured span, not synchronisation)
        for kind in ("arp", "ip6"):
            in_ns(WORKER, "nft", "delete", "table", kind, TABLE, check=False)
        while time.monotonic() < took_over + wait and None in back.values():
            for family, vip in zip(FAMILIES, topo.vips):
                if back[family] is None and worker_reaches(vip, topo.frontend_port):
                    back[family] = round(time.monotonic() - took_over, 1)
            time.sleep(0.2)
    finally:
        for kind in ("arp", "ip6"):
            in_ns(WORKER, "nft", "delete", "table", kind, TABLE, check=False)
        if how == "offline":
            cluster.heal(old, "offline")
        else:
            tool("maintenance", "-t", path, "--yes", old, "off")
    return back


def median(values: list) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "-"
    return f"{statistics.median(got):g}" + (f" ({len(values) - len(got)} never)" if len(got) < len(values) else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, choices=range(1, 11), metavar="1-10")
    ap.add_argument("--wait", type=float, default=40.0, help="seconds a missed worker is given (5-120)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not 5 <= args.wait <= 120:
        ap.error("--wait: choose 5-120 seconds")
    cluster.down(log=lambda _m: None)
    path = cluster.up(3, 1, log=lambda _m: None, family="dual")
    topo = topology.load_topology(path)
    deploy(path)
    runs = {how: [move(topo, str(path), how) for _ in range(args.runs)] for how in ("offline", "failover")}
    for how in ("offline", "failover"):
        runs[f"missed {how}"] = [missed(topo, str(path), how, args.wait) for _ in range(args.runs)]
    if args.json:
        print(json.dumps({"runs": args.runs, **runs}, indent=2))
        return 0
    print(f"dual stack, {args.runs} runs (median): VIP on the successor / longest client gap / failed")
    for how in ("offline", "failover"):
        for family in FAMILIES:
            cells = [r[family] for r in runs[how]]
            print(f"  {how:<8} {family}: {median([c['moved_s'] for c in cells])} s / "
                  f"{median([c['longest_gap_ms'] for c in cells])} ms / {median([c['failed'] for c in cells])}")
    for how in ("offline", "failover"):
        print(f"a host that missed the announcements ({how}), back after (s, median): "
              + ", ".join(f"{f} {median([r[f] for r in runs[f'missed {how}']])}" for f in FAMILIES))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
