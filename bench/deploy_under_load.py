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
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from k8s_ha_tui.lab import cluster, layout

RATE = 20  # requests per second
MAX_SECONDS = 120  # the client stops by itself after this, whatever happens
TIMEOUT = 1.0


class Client(threading.Thread):
    """Fresh connections at a fixed rate until stopped (or MAX_SECONDS)."""

    def __init__(self, host: str, port: int):
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.results: list[tuple[float, bool]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self.stop.is_set() and n < RATE * MAX_SECONDS:
            due = start + n / RATE
            delay = due - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            ok = cluster.apiserver_ready(self.host, self.port, timeout=TIMEOUT)  # fresh TLS connection
            self.results.append((time.monotonic(), ok))
            n += 1

    def report(self) -> dict:
        ok_times = [t for t, ok in self.results if ok]
        edges = [self.results[0][0]] + ok_times + [self.results[-1][0]] if self.results else []
        gap = max((b - a for a, b in zip(edges, edges[1:])), default=0.0)
        return {"sent": len(self.results), "failed": sum(not ok for _, ok in self.results),
                "longest_gap_ms": round(gap * 1000)}


def deploy(topology: Path) -> float:
    started = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "deploy", "-t", str(topology), "--yes"],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise SystemExit(f"deploy failed: {res.stderr.strip()}")
    return time.monotonic() - started


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
        client = Client(layout.VIP, 8443)
        client.start()
        time.sleep(1.0)  # load before the deploy starts, so its first node is under load too
        seconds = deploy(topo)
        time.sleep(1.0)
        client.stop.set()
        client.join()
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
