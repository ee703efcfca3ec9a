"""What one exporter process costs for 1, 5 and 20 clusters, and how fast it answers a scrape.

The lab has one cluster of 3 masters; N clusters are N topology files that list the lab's masters
under different cluster names (`bench-1` ... `bench-N`, no workers), so the exporter keeps N
independent collectors — N × 3 SSH connections, N × 3 probes per interval — against the same
three sshd (the masters do N times the work a real cluster's would; the exporter's own cost is
what is measured). Interval 5 s. Per size: wait until every cluster has been collected, then for
WINDOW seconds scrape /metrics every second and read the process's CPU time and memory from /proc.

Targets: a scrape answers in < 100 ms from the last snapshots (never waits for SSH); < 5 % of
one core per 3-master cluster at a 5 s interval.

usage: sudo .venv/bin/python bench/exporter.py [--sizes 1,5,20] [--window 30] [--json]
Runs about (30 + window) s per size; needs the lab (it brings it up and deploys).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml
from benchlib import deploy, wait_for

from k8s_ha_tui.lab import cluster

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def memory_mib(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def scrape(url: str) -> tuple[float, str]:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as r:
        body = r.read().decode()
    return time.monotonic() - started, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_size(n: int, lab_topology: Path, workdir: Path, window: float) -> dict:
    base = yaml.safe_load(lab_topology.read_text())
    files = []
    for i in range(1, n + 1):
        path = workdir / f"bench-{i}.yaml"
        path.write_text(yaml.safe_dump({**base, "name": f"bench-{i}", "workers": []}))
        path.chmod(0o600)
        files.append(path)
    port = free_port()
    args = [a for f in files for a in ("-t", str(f))]
    proc = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "exporter", *args, "--listen", f"127.0.0.1:{port}",
                             "--interval", "5"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        def all_collected() -> bool:
            try:
                body = scrape(url)[1]
            except OSError:
                return False
            return body.count("k8s_ha_last_collect_timestamp_seconds{") == n
        wait_for(all_collected, 60, f"all {n} clusters collected")
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        latencies = []
        while time.monotonic() - t0 < window:
            latencies.append(scrape(url)[0])
            time.sleep(1.0)
        cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - t0)
        rss, peak = memory_mib(proc.pid)
        series = scrape(url)[1].count("\n") - scrape(url)[1].count("\n#")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return {"clusters": n, "cpu_percent": round(cpu * 100, 1), "cpu_percent_per_cluster": round(cpu * 100 / n, 2),
            "rss_mib": round(rss), "peak_rss_mib": round(peak),
            "scrape_median_ms": round(statistics.median(latencies) * 1000, 1),
            "scrape_max_ms": round(max(latencies) * 1000, 1), "series": series}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1,5,20", help="cluster counts, comma-separated (each 1-40)")
    ap.add_argument("--window", type=float, default=30.0, help="seconds measured per size (10-300)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    if not all(1 <= s <= 40 for s in sizes) or not 10 <= args.window <= 300:
        ap.error("sizes must be 1-40 and the window 10-300 s")
    lab_topology = cluster.up(3, 3, log=lambda _m: None)
    deploy(lab_topology)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [one_size(n, lab_topology, Path(tmp), args.window) for n in sizes]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'clusters':>8} {'CPU (one core)':>15} {'per cluster':>12} {'RSS':>8} {'peak RSS':>9} "
          f"{'scrape median':>14} {'scrape max':>11} {'series':>7}")
    for r in rows:
        print(f"{r['clusters']:>8} {r['cpu_percent']:>14.1f}% {r['cpu_percent_per_cluster']:>11.2f}% "
              f"{r['rss_mib']:>5} MiB {r['peak_rss_mib']:>5} MiB {r['scrape_median_ms']:>11.1f} ms "
              f"{r['scrape_max_ms']:>8.1f} ms {r['series']:>7}")
    print(f"(interval 5 s, {args.window:g} s per size, {time.monotonic() - started:.0f} s in all, 3 masters per cluster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
