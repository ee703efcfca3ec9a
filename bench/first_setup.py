"""A first-time setup on the lab, timed: fresh masters (no kube-apiserver at all) to a load
balancer ready for `kubeadm init`, and `kubeadm init` to the API answering through the VIP.

Per run: `lab down`, `lab up --bare`, then
  deploy               `k8s-ha-tui deploy --yes` on the bare masters (install is skipped: the
                       lab's nodes have the packages), until it exits 0 with "ready for kubeadm init";
  init → VIP           `lab kubeadm k8s-master-01 init` (the manifest and the apiserver, which
                       answers locally when the command returns), then a fresh TLS GET /readyz
                       through the VIP every 20 ms until one answers 200: HAProxy admits the new
                       apiserver after check.rise passing checks, check.interval apart;
  join → HAProxy       each `lab kubeadm NODE join`, until every HAProxy sees that apiserver UP;
  monitor → healthy    until `status` exits 0.
The stand-in apiserver answers within a second of starting; a real kube-apiserver takes 20-60 s
to become ready after kubeadm writes its manifest, which adds to "init" but not to "→ VIP".

usage: sudo .venv/bin/python bench/first_setup.py [--runs N] [--json]    (N: 1-5, default 3; ~25 s a run)
Leaves the lab up as `lab up` makes it (apiservers on every master) and deployed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from benchlib import cli, tool

from k8s_ha_tui.lab import cluster, layout

MASTERS = ["k8s-master-01", "k8s-master-02", "k8s-master-03"]
LIMIT_S = 60  # every wait below gives up after this


def until(condition, what: str, interval: float = 0.02) -> float:
    """Seconds until `condition()` holds (bounded by LIMIT_S)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > LIMIT_S:
            raise SystemExit(f"gave up after {LIMIT_S} s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - started


def all_haproxies_see(topology: str, name: str) -> bool:
    snap = json.loads(cli("status", "-t", topology, "--json").stdout or "{}")
    views = [b["status"] for n in snap.get("nodes", []) for b in n.get("backends", []) if b.get("master") == name]
    return len(views) == len(MASTERS) and all(v.startswith("UP") for v in views)


def one_run() -> dict:
    cluster.down(log=lambda _m: None)
    topology = str(cluster.up(3, 3, log=lambda _m: None, bare=True))
    started = time.monotonic()
    res = cli("deploy", "-t", topology, "--yes", timeout=300)
    deploy_s = time.monotonic() - started
    if res.returncode != 0 or "ready for kubeadm init" not in res.stdout:
        raise SystemExit(f"deploy on bare masters failed: {res.stderr.strip() or res.stdout[-500:]}")
    started = time.monotonic()
    cluster.run_kubeadm("k8s-master-01", "init")
    init_s = time.monotonic() - started
    to_vip_s = until(lambda: cluster.apiserver_ready(layout.VIP, 8443, timeout=0.5, connect_timeout=0.25),
                     "the API through the VIP")
    joins = []
    for m in MASTERS[1:]:
        started = time.monotonic()
        cluster.run_kubeadm(m, "join")
        until(lambda m=m: all_haproxies_see(topology, m), f"every HAProxy to see {m}", interval=0.1)
        joins.append(time.monotonic() - started)
    healthy_s = until(lambda: cli("status", "-t", topology).returncode == 0, "status healthy", interval=0.2)
    return {"deploy_s": round(deploy_s, 2), "init_s": round(init_s, 2), "init_to_vip_s": round(init_s + to_vip_s, 2),
            "join_to_all_haproxies_s": [round(j, 2) for j in joins], "then_healthy_s": round(healthy_s, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, choices=range(1, 6), default=3, metavar="N")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    runs = []
    try:
        for _ in range(args.runs):
            runs.append(one_run())
    finally:
        cluster.down(log=lambda _m: None)
        tool("lab", "up")
        tool("deploy", "-t", str(cluster.lab_paths().topology), "--yes")
    if args.json:
        print(json.dumps(runs, indent=2))
        return 0
    print(f"{'run':<4} {'deploy → ready for init':>24} {'lab kubeadm init':>17} {'init → API via VIP':>19} "
          f"{'join → all HAProxies':>21}")
    for i, r in enumerate(runs, 1):
        joins = " / ".join(f"{j:.2f}" for j in r["join_to_all_haproxies_s"])
        print(f"{i:<4} {r['deploy_s']:>22.2f} s {r['init_s']:>15.2f} s {r['init_to_vip_s']:>17.2f} s {joins:>19} s")
    for key, label in (("deploy_s", "deploy"), ("init_to_vip_s", "init → API via VIP")):
        values = [r[key] for r in runs]
        print(f"{label}: median {statistics.median(values):.2f} s (range {min(values):.2f}-{max(values):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
