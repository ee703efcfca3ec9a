"""Should the VIP holder refresh its gratuitous ARPs? What a refresh fixes and what it costs (lab).

Both ways, with the packaged templates otherwise unchanged: `off` (keepalived's default: ARPs
only at a takeover, a burst and another 5 s later) and `on` (vrrp_garp_master_refresh R).
A worker stands in for the hosts, switches and routers in front of the VIP.
  missed   the worker misses the takeover's ARPs (its ARP input dropped until 6 s after the takeover:
           both bursts) and, like many routers, trusts a confirmed entry for an hour
           (base_reachable_time): after a controlled failover, how long until it reaches the API
           through the VIP again, counted from the takeover (tried every 0.2 s, at most --wait s);
  linux    the same with Linux's own neighbour timers (which re-check a silent entry by themselves);
  split    VRRP dropped on the holder for 30 s (two holders): how often the worker's entry for the
           VIP changes MAC (each change breaks the connections it has open);
  cost     gratuitous ARPs for the VIP a host receives in 60 s of calm.
Every loop is bounded; the whole run takes ~6 min.

usage: sudo .venv/bin/python bench/garp.py [--refresh 10] [--wait 90] [--json]
Leaves the 3+3 lab up with the plain defaults deployed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import deploy, tool, top_holder, vip_holders, wait_for

from k8s_ha_tui.configs.render import templates_dir
from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model import topology

WORKER = "k8s-node-01"
MISSED_WINDOW_S = 6  # after the takeover: keepalived's two bursts, at once and vrrp_garp_master_delay (5 s) later
SPLIT_S = 30
CALM_S = 60
TABLE = "k8s_ha_bench"


def in_ns(node: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", layout.netns_of(node), *cmd], capture_output=True, text=True,
                          timeout=30, check=check)


def nft(node: str, script: str) -> None:
    subprocess.run(["ip", "netns", "exec", layout.netns_of(node), "nft", "-f", "-"], input=script, text=True,
                   check=True, capture_output=True, timeout=30)


def drop_table(node: str) -> None:
    in_ns(node, "nft", "delete", "table", "arp", TABLE, check=False)


def api_answers_from_worker() -> bool:
    res = in_ns(WORKER, "curl", "-sk", "--max-time", "0.5", "-o", "/dev/null", "-w", "%{http_code}",
                f"https://{layout.VIP}:8443/readyz", check=False)
    return res.stdout.strip() == "200"


def vip_mac() -> str | None:
    words = in_ns(WORKER, "ip", "neigh", "show", layout.VIP).stdout.split()
    return words[words.index("lladdr") + 1] if "lladdr" in words else None


def templates(workdir: Path, refresh: int | None) -> Path:
    """The packaged templates, with the refresh line set as asked (or taken out)."""
    out = workdir / f"templates-{refresh or 'off'}"
    shutil.copytree(templates_dir(), out)
    conf = out / "keepalived.conf.j2"
    text = re.sub(r"(?m)^\s*vrrp_garp_master_refresh\b.*\n", "", conf.read_text())
    if refresh:
        text = text.replace("global_defs {\n", f"global_defs {{\n    vrrp_garp_master_refresh {refresh}\n", 1)
    conf.write_text(text)
    return out


def settled_holder(topo_file: Path) -> str:
    """The top master, once the cluster is healthy and it holds the VIP again (after a failover
    and `maintenance off` it takes the VIP back by priority)."""
    top = topology.load_topology(topo_file).masters[0].name
    return wait_for(lambda: top_holder(topo_file, top), 60, "a healthy cluster")


def missed(topo_file: Path, router_like: bool, wait: float) -> float | None:
    """Seconds from the takeover until the worker, which missed its ARPs, reaches the API again."""
    old = settled_holder(topo_file)
    new = topology.load_topology(topo_file).masters[1].name
    reach = f"net.ipv4.neigh.{layout.NODE_LINK}.base_reachable_time_ms"
    before = in_ns(WORKER, "sysctl", "-n", reach).stdout.strip()
    if router_like:
        in_ns(WORKER, "sysctl", "-qw", f"{reach}=3600000")
    try:
        wait_for(api_answers_from_worker, 10, "the worker reaching the API before the failover")
        nft(WORKER, f"table arp {TABLE} {{\n chain input {{\n  type filter hook input priority 0; policy drop;\n }}\n}}\n")
        tool("failover", "-t", str(topo_file), "--yes", "--to", new)
        wait_for(lambda: vip_holders([new]), 30, f"{new} to hold the VIP", step=0.05)
        took_over = time.monotonic()
        time.sleep(MISSED_WINDOW_S)  # the window the worker misses: both bursts of gratuitous ARPs
        drop_table(WORKER)
        while time.monotonic() < took_over + wait:
            if api_answers_from_worker():
                return round(time.monotonic() - took_over, 1)
            time.sleep(0.2)
        return None
    finally:
        drop_table(WORKER)
        in_ns(WORKER, "sysctl", "-qw", f"{reach}={before}")
        in_ns(WORKER, "ip", "neigh", "flush", "to", layout.VIP, check=False)
        tool("maintenance", "-t", str(topo_file), "--yes", old, "off")


def split(topo_file: Path) -> int:
    """MAC changes the worker sees for the VIP while two masters hold it."""
    old = settled_holder(topo_file)
    wait_for(api_answers_from_worker, 10, "the worker reaching the API")
    macs = [vip_mac()]
    cluster.fault(old, "vrrp-drop")
    try:
        t0 = time.monotonic()
        while time.monotonic() < t0 + SPLIT_S:
            api_answers_from_worker()  # keep the entry in use, as a client would
            mac = vip_mac()
            if mac and mac != macs[-1]:
                macs.append(mac)
            time.sleep(0.2)
    finally:
        cluster.heal(old, "vrrp-drop")
    return len(macs) - 1


def cost(topo_file: Path) -> int:
    """Gratuitous ARPs for the VIP that reach the worker in CALM_S seconds (counted where they
    arrive: keepalived sends them from a packet socket, which the sender's nftables never sees)."""
    settled_holder(topo_file)
    time.sleep(CALM_S / 4)  # let the bursts of the last takeover (at once and 5 s later) pass
    nft(WORKER, f"table arp {TABLE} {{\n chain input {{\n  type filter hook input priority 0; policy accept;\n"
                f"  arp saddr ip {layout.VIP} arp daddr ip {layout.VIP} counter\n }}\n}}\n")
    try:
        time.sleep(CALM_S)  # the measurement window
        listing = in_ns(WORKER, "nft", "list", "table", "arp", TABLE).stdout
    finally:
        drop_table(WORKER)
    found = re.search(r"counter packets (\d+)", listing)
    return int(found.group(1)) if found else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refresh", type=int, default=10, help="vrrp_garp_master_refresh for `on` (s, 1-600; default 10)")
    ap.add_argument("--wait", type=float, default=90, help="longest a `missed` run waits (s, 20-600; default 90)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not (1 <= args.refresh <= 600 and 20 <= args.wait <= 600):
        ap.error("--refresh 1-600, --wait 20-600")
    started = time.monotonic()
    base = cluster.up(3, 3, log=lambda _m: None)
    topology.load_topology(base)
    results = {}
    with tempfile.TemporaryDirectory(prefix="k8s-ha-garp-") as tmp:
        for name, refresh in (("off", None), ("on", args.refresh)):
            deploy(base, templates(Path(tmp), refresh))
            results[name] = {"missed_router_s": missed(base, True, args.wait),
                             "missed_linux_s": missed(base, False, args.wait),
                             "split_mac_changes": split(base), "garps_per_min": cost(base) * 60 / CALM_S}
            print(f"{name}: {results[name]}", file=sys.stderr)
        deploy(base)
    took = time.monotonic() - started
    if args.json:
        print(json.dumps({"when": time.strftime("%Y-%m-%d"), "refresh_s": args.refresh, "wait_s": args.wait,
                          "seconds": round(took), "results": results}, indent=2))
        return 0
    never = f"> {args.wait:g} s"
    print(f"{'':<34} {'off':>10} {f'on ({args.refresh} s)':>12}")
    for key, text in (("missed_router_s", "missed ARPs, router-like cache"), ("missed_linux_s", "missed ARPs, Linux"),
                      ("split_mac_changes", f"MAC changes, {SPLIT_S} s split brain"),
                      ("garps_per_min", "gratuitous ARPs a minute")):
        cells = [results[n][key] for n in ("off", "on")]
        shown = [never if c is None else (f"{c:g} s" if key.startswith("missed") else f"{c:g}") for c in cells]
        print(f"{text:<34} {shown[0]:>10} {shown[1]:>12}")
    print(f"whole run: {took / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
