"""Taking over a cluster this tool did not build, while a client hammers the API through the VIP.

On the lab's masters, a hand-made keepalived + HAProxy (`lab handmade`: VRRPv2, 1 s adverts,
unicast, PASS auth, router id 77, priorities 120/110/100, servers cp-a..c, no track files).
Under the 20 requests/s TLS client loop, for each run:
  failover --method stop   the only failover such a cluster allows (then started again);
  adoption deploy           `deploy` of the lab topology (our defaults: router id 51, VRRPv3 0.5 s,
                            no auth, multicast): the cut-over of clusters/adopt.py.
Prints requests sent and failed, the longest gap without an answer, the most masters that held
the VIP at once and for how long (kernel's view, every address event), and the longest time
nobody held it. Targets for the adoption: 0 failed, never two holders (a cut-over whose holder
is not the new top priority ends with an ordinary VRRP preemption inside the new group: the
new holder adds the VIP as the old one drops it, well under a millisecond apart).

usage: sudo .venv/bin/python bench/adoption.py [--runs N] [--json]    (N: 1-5, default 3; ~40 s a run)
Needs the lab (it brings it up) and leaves it running our configs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import Client, VipWatch, cli, deploy, tool, vip_holders, wait_for

from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model import topology


def discovered(lab_topology: Path, out: Path) -> Path:
    """`discover` on the hand-made cluster, as an operator would start."""
    topo = topology.load_topology(lab_topology)
    tool("discover", "--masters", ",".join(m.address for m in topo.masters), "--identity-file",
         str(topo.ssh.identity_file), "--known-hosts", str(topo.ssh.known_hosts), "-o", str(out))
    return out


def healthy(topo_file: Path) -> bool:
    return cli("status", "-t", str(topo_file)).returncode == 0


def measured(what, masters: list[str]) -> dict:
    wait_for(lambda: len(vip_holders(masters)) == 1, 30, "exactly one VIP holder before the run")
    client, watch = Client(), VipWatch(masters)
    client.start()
    time.sleep(1.0)  # load before the change starts
    since = time.monotonic()
    started = time.monotonic()
    what()
    seconds = time.monotonic() - started
    time.sleep(1.5)
    client.finish()
    watch.close()
    return {"seconds": round(seconds, 1), **client.report(since), **watch.holders_story(since)}


def one_run(lab_topology: Path, workdir: Path) -> list[dict]:
    masters = [m.name for m in topology.load_topology(lab_topology).masters]
    cluster.install_handmade()
    hand = discovered(lab_topology, workdir / "handmade.yaml")
    wait_for(lambda: healthy(hand), 30, "the hand-made cluster to be healthy")
    holder = masters[0]
    stop = measured(lambda: tool("failover", "-t", str(hand), "--method", "stop", "--yes"), masters)
    tool("maintenance", "-t", str(hand), holder, "off", "--method", "stop", "--yes")
    wait_for(lambda: healthy(hand), 30, "the hand-made cluster to be healthy again")
    adoption = measured(lambda: deploy(lab_topology), masters)
    wait_for(lambda: healthy(lab_topology), 30, "the adopted cluster to be healthy")
    return [{"run": "failover --method stop (hand-made)", **stop}, {"run": "adoption deploy", **adoption}]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, choices=range(1, 6), default=3, metavar="N")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("XDG_STATE_HOME", tempfile.mkdtemp(prefix="k8s-ha-tui-bench-"))
    lab_topology = cluster.up(3, 3, log=lambda _m: None)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for _ in range(args.runs) for row in one_run(lab_topology, Path(tmp))]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'run':<36} {'time':>6} {'sent':>5} {'failed':>6} {'longest gap':>12} {'holders':>8} "
          f"{'two holders':>12} {'no holder':>10}")
    for r in rows:
        print(f"{r['run']:<36} {r['seconds']:>5.1f}s {r['sent']:>5} {r['failed']:>6} {r['longest_gap_ms']:>9} ms "
              f"{r['most_holders_at_once']:>8} {r['longest_two_holders_ms']:>9} ms {r['longest_without_holder_ms']:>7} ms")
    for kind in ("failover --method stop (hand-made)", "adoption deploy"):
        mine = [r for r in rows if r["run"] == kind]
        print(f"{kind}: failed {sum(r['failed'] for r in mine)} of {sum(r['sent'] for r in mine)}, median gap "
              f"{statistics.median(r['longest_gap_ms'] for r in mine):.0f} ms, two holders for at most "
              f"{max(r['longest_two_holders_ms'] for r in mine)} ms")
    print(f"({args.runs} run(s) in {time.monotonic() - started:.0f} s on the lab: {layout.SUBNET})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
