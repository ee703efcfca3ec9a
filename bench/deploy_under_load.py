"""A rolling deploy of a real change while a client hammers the API through the VIP.

The client opens a fresh TLS connection to https://VIP:8443/readyz every 50 ms (20 requests/s),
bounded in count and time, while `deploy` changes check.rise on every master (that touches
both keepalived.conf and haproxy.cfg, so both daemons reload), and once more to change it back.
Prints requests sent, failed and the longest gap without a success. Target: 0 failed.

usage: sudo .venv/bin/python bench/deploy_under_load.py [--json]
Needs the lab (it brings it up, deploys the baseline, and leaves it deployed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml
from benchlib import Client, deploy

from k8s_ha_tui.lab import cluster


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    base = cluster.up(3, 3, log=lambda _m: None)
    deploy(base)  # the baseline (a no-op when it is already there)
    data = yaml.safe_load(base.read_text())
    changed = Path("/var/lib/k8s-ha-tui/lab/bench-topology.yaml")
    data["check"]["rise"] = data["check"].get("rise", 2) + 1
    changed.write_text(yaml.safe_dump(data))
    changed.chmod(0o600)

    runs = []
    for label, topo in (("change check.rise", changed), ("change it back", base)):
        client = Client()
        client.start()
        time.sleep(1.0)  # load before the deploy starts, so its first node is under load too
        seconds = deploy(topo)
        time.sleep(1.0)
        client.finish()
        runs.append({"run": label, "deploy_seconds": round(seconds, 1), **client.report()})
    changed.unlink()

    if args.json:
        print(json.dumps(runs, indent=2))
    else:
        print(f"{'run':<20} {'deploy':>8} {'sent':>6} {'failed':>7} {'longest gap':>12}")
        for r in runs:
            print(f"{r['run']:<20} {r['deploy_seconds']:>7.1f}s {r['sent']:>6} {r['failed']:>7} "
                  f"{r['longest_gap_ms']:>10} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
