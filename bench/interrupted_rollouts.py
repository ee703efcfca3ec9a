"""Rollouts interrupted at random points while a client hammers the API through the VIP.

Each run starts `k8s-ha-tui deploy` with a change of check.rise (it touches keepalived.conf and
haproxy.cfg, so both daemons reload), and sends it SIGINT or SIGTERM after a random delay (seeded:
the same --seed gives the same points) — while validating, backing up, swapping, verifying, or
not at all if the rollout is quicker. After each run every master must be consistent: the rise
in both files on disk equal to the one keepalived and HAProxy run with; the lock released.
The 20 req/s client runs through every run. Targets: 0 failed requests, 100 % consistent.

usage: sudo .venv/bin/python bench/interrupted_rollouts.py [--runs 30] [--seed 1] [--json]
Needs the lab (it brings it up and leaves it deployed with its own topology). About 10 s a run.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from benchlib import Client, deploy

from k8s_ha_tui.lab import cluster, nodestate

MASTERS = ["k8s-master-01", "k8s-master-02", "k8s-master-03"]
MAX_RUNS = 200


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=30, help=f"rollouts (1–{MAX_RUNS}, default 30)")
    ap.add_argument("--seed", type=int, default=1, help="for the interruption points (default 1)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.runs <= MAX_RUNS:
        ap.error(f"--runs must be 1–{MAX_RUNS}")
    rng = random.Random(args.seed)

    base = cluster.up(3, 3, log=lambda _m: None)
    deploy(base)
    data = yaml.safe_load(base.read_text())
    variants = []
    for rise in (3, 4):
        data["check"]["rise"] = rise
        path = Path(f"/var/lib/k8s-ha-tui/lab/bench-rise{rise}.yaml")
        path.write_text(yaml.safe_dump(data))
        path.chmod(0o600)
        variants.append(path)

    runs, loads = [], []
    started = time.monotonic()
    try:
        for i in range(args.runs):
            client = Client()  # one per run: a client stops by itself after MAX_SECONDS
            client.start()
            delay = rng.uniform(0.3, 9.0)
            sig = rng.choice([signal.SIGINT, signal.SIGTERM])
            proc = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "deploy", "-t", str(variants[i % 2]),
                                     "--yes"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    stdin=subprocess.DEVNULL)
            try:
                proc.wait(timeout=delay)
                interrupted = False
            except subprocess.TimeoutExpired:
                proc.send_signal(sig)
                interrupted = True
            out, _ = proc.communicate(timeout=180)
            rises = {m: nodestate.consistent_rise(m) for m in MASTERS}
            locked = any(cluster_has_lock(m) for m in MASTERS)
            results = [line.split(None, 1)[1].split("  ")[0] for line in out.splitlines()
                       if line.split(None, 1)[:1] and line.split()[0] in MASTERS and len(line.split(None, 1)) == 2
                       and not line.split(None, 1)[1].startswith(("connected", "new files"))]
            runs.append({"run": i + 1, "signal": sig.name if interrupted else "-", "after_s": round(delay, 2),
                         "exit": proc.returncode, "results": results, "rises": rises,
                         "consistent": all(rises.values()) and not locked})
            if not args.json:
                r = runs[-1]
                print(f"run {r['run']:>2}: {r['signal']:<7} after {r['after_s']:>5.2f} s → exit {r['exit']:>3}  "
                      f"{'consistent' if r['consistent'] else 'INCONSISTENT'}  rise {list(rises.values())}  "
                      f"{', '.join(results)}", flush=True)
            time.sleep(1.0)  # the client sees the last node settle before the next run
            client.finish()
            loads.append(client.report())
    finally:
        for v in variants:
            v.unlink(missing_ok=True)
    deploy(base)
    load = {"sent": sum(x["sent"] for x in loads), "failed": sum(x["failed"] for x in loads),
            "longest_gap_ms": max((x["longest_gap_ms"] for x in loads), default=0)}
    summary = {"runs": len(runs), "interrupted": sum(r["signal"] != "-" for r in runs),
               "consistent": sum(r["consistent"] for r in runs), "requests": load["sent"],
               "failed": load["failed"], "longest_gap_ms": load["longest_gap_ms"],
               "seconds": round(time.monotonic() - started)}
    if args.json:
        print(json.dumps({"summary": summary, "runs": runs}, indent=2))
    else:
        print(f"\n{summary['runs']} rollouts, {summary['interrupted']} interrupted; {summary['consistent']}/"
              f"{summary['runs']} left every master consistent; {summary['requests']} requests, "
              f"{summary['failed']} failed, longest gap {summary['longest_gap_ms']} ms; {summary['seconds']} s")
    return 0 if summary["consistent"] == summary["runs"] and summary["failed"] == 0 else 1


def cluster_has_lock(master: str) -> bool:
    from k8s_ha_tui.lab.cluster import _require_state
    from k8s_ha_tui.lab.nodes import node_exec
    from k8s_ha_tui.paths import PATHS

    state, _ = _require_state()
    return node_exec(state.init(master), ["test", "-e", PATHS.lock_file], check=False).returncode == 0


if __name__ == "__main__":
    sys.exit(main())
