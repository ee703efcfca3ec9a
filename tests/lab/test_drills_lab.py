"""Drills on the lab's real daemons: every scenario scored by its clients (and checked against a
client loop of this test's own in the same run), the deadman, Ctrl-C mid-drill, refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from labtools import MASTERS, status, tool, wait_for

from k8s_ha_tui.lab import cluster, layout

VIP, FRONTEND = layout.VIP, 8443
WORKERS = ["k8s-node-01", "k8s-node-02", "k8s-node-03"]


class HostClient(threading.Thread):
    """This test's own client: fresh TLS to the VIP 20 times a second, each request in a thread of
    its own (one slow request does not hold up the next), bounded to 120 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.results: list[tuple[float, bool]] = []
        self.stop = threading.Event()
        self.pool = ThreadPoolExecutor(max_workers=30)

    def ask(self) -> None:
        ok = cluster.apiserver_ready(VIP, FRONTEND, timeout=1.0, connect_timeout=0.25)
        self.results.append((time.time(), ok))

    def run(self) -> None:
        start = time.monotonic()
        for n in range(20 * 120):
            if self.stop.wait(max(0.0, start + n / 20 - time.monotonic())):
                return
            self.pool.submit(self.ask)

    def longest_gap(self) -> float:
        self.stop.set()
        self.join()
        self.pool.shutdown(wait=True)
        results = sorted(self.results)
        edges = [results[0][0], *(t for t, ok in results if ok), results[-1][0]]
        return max(b - a for a, b in zip(edges, edges[1:]))


@pytest.fixture
def settled(deployed, tmp_path):
    """A healthy cluster with the VIP on master-01, before and after each test; reports in tmp_path."""
    def reset():
        deployed.heal_all()
        for m in MASTERS:
            deployed.ssh(m, "echo 0 > /etc/keepalived/maintenance; echo 0 > /etc/keepalived/priority_boost; "
                            "rm -f /run/k8s-ha-tui/lock; systemctl start keepalived haproxy")
        wait_for(lambda: status(deployed)[0] == 0 and deployed.holders() == ["k8s-master-01"], 30,
                 "a healthy cluster, the VIP on master-01")
    reset()
    yield deployed
    reset()


def env_for(tmp_path) -> dict:
    return {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}


def drill(lab, tmp_path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "drill", "-t", str(lab.topology_path), *args,
                             "--json", "--yes"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env=env_for(tmp_path))


def no_client_loop_left(lab) -> bool:
    return all(not lab.ssh(w, "pgrep -f '[c]onnect-timeout 0.25' || true").stdout.strip() for w in WORKERS)


@pytest.mark.parametrize("scenario, extra, moves", [
    ("failover", (), True),
    ("holder-keepalived", (), True),
    ("holder-haproxy", ("--max-gap", "3"), True),
    ("apiserver-drain", ("--node", "k8s-master-02"), False),
])
def test_a_drill_is_scored_by_its_clients_and_leaves_the_cluster_as_found(settled, tmp_path, scenario, extra, moves):
    ours = HostClient()
    ours.start()
    proc = drill(settled, tmp_path, scenario, "--hold", "2", "--rate", "10", *extra)
    out, err = proc.communicate(timeout=150)
    independent = ours.longest_gap()
    assert proc.returncode == 0, err + out
    doc = json.loads(out)
    assert doc["passed"] and doc["verdict"].startswith("PASS") and doc["restored"] == [] and not doc["aborted"]
    figures = {c["name"]: c for c in doc["clients"]}
    assert sorted(figures) == sorted([*WORKERS, "this machine"])
    # every client asked all along: at least half the rate over the whole drill (a worker's shell loop
    # reaches ~11 of 20 a second on this busy machine; a drain drill lasts ~8 s)
    lasted = doc["ended_at"] - doc["started_at"]
    assert all(c["requests"] >= 0.5 * 10 * lasted and c["p50_ms"] is not None for c in figures.values()), figures
    # the drill's figures agree with a client it knows nothing of (same host, same VIP, same run)
    assert abs(figures["this machine"]["longest_gap_s"] - independent) < 0.5, (figures, independent)
    assert all(abs(c["longest_gap_s"] - independent) < 0.6 for c in figures.values()), (figures, independent)
    seen = [h for _, h in doc["holders"]]
    if moves:  # away from master-01 and back (it has the top priority)
        assert seen[0] == ["k8s-master-01"] and any(h and "k8s-master-01" not in h for h in seen)
        assert seen[-1] == ["k8s-master-01"] and doc["final_holders"] == ["k8s-master-01"]
    else:
        assert seen == [["k8s-master-01"]]
        assert any("DRAIN" in text for _, text in doc["events"]), doc["events"]
    steps = [text for _, text in doc["steps"]]
    assert steps[0] == "clients started" and steps[-1].startswith("restored: as found")
    # kept, listed, audited here and on the masters; nothing left running on the workers
    folder = tmp_path / "state" / "k8s-ha-tui" / "drills" / doc["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["drill.json", "report.md", "timeline.svg"]
    listed = tool("drill", "--list", env=env_for(tmp_path))
    assert doc["id"] in listed.stdout and "PASS" in listed.stdout
    local_audit = (tmp_path / "state" / "k8s-ha-tui" / "audit.log").read_text()
    assert f"drill {scenario}" in local_audit and "ok: PASS" in local_audit
    assert "ok: PASS" in settled.ssh("k8s-master-02", "grep 'drill' /var/log/k8s-ha-tui/audit.log | tail -n 1").stdout
    wait_for(lambda: no_client_loop_left(settled), 5, "no client loop left on the workers")
    rc, st = status(settled)
    assert rc == 0 and st["holders"] == ["k8s-master-01"]


def test_the_deadman_undoes_the_fault_when_most_clients_lose_the_api(settled, tmp_path):
    """holder-keepalived, and then the other masters drop off the network: nobody can hold the
    VIP. The deadman starts keepalived on master-01 again, and the API comes back."""
    proc = drill(settled, tmp_path, "holder-keepalived", "--hold", "60", "--abort-after", "3", "--rate", "10")
    try:
        wait_for(lambda: settled.holders() == ["k8s-master-02"], 30, "the VIP on master-02")
        for m in ("k8s-master-02", "k8s-master-03"):
            cluster.fault(m, "offline")
        wait_for(lambda: not cluster.apiserver_ready(VIP, FRONTEND, connect_timeout=0.25), 10, "the API gone")
        lost = time.monotonic()
        wait_for(lambda: cluster.apiserver_ready(VIP, FRONTEND, connect_timeout=0.25), 30, "the API back")
        back_after = time.monotonic() - lost
    finally:
        settled.heal_all()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err + out
    doc = json.loads(out)
    assert doc["aborted"].startswith("deadman: ") and "no answer for 3 s" in doc["aborted"]
    assert doc["verdict"].startswith("FAIL: aborted (deadman")
    assert 3 <= back_after < 15  # the deadman's 3 s, then master-01's keepalived takes the VIP again
    assert any(text.startswith("ABORTED by the deadman") for _, text in doc["steps"])
    assert settled.ssh("k8s-master-01", "systemctl is-active keepalived").stdout.strip() == "active"
    wait_for(lambda: no_client_loop_left(settled), 5, "no client loop left on the workers")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_mid_drill_restores_the_cluster_and_keeps_the_report(settled, tmp_path, sig):
    proc = drill(settled, tmp_path, "holder-keepalived", "--hold", "60", "--rate", "10")
    wait_for(lambda: settled.holders() == ["k8s-master-02"], 30, "the VIP on master-02")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "interrupted: the drill stopped; the cluster is restored as found; report in" in err
    assert settled.ssh("k8s-master-01", "systemctl is-active keepalived").stdout.strip() == "active"
    assert settled.holders() == ["k8s-master-01"]
    wait_for(lambda: no_client_loop_left(settled), 5, "no client loop left on the workers")
    kept = json.loads(next((tmp_path / "state" / "k8s-ha-tui" / "drills").glob("*/drill.json")).read_text())
    assert kept["aborted"] == "interrupted (Ctrl-C or SIGTERM)" and kept["restored"] == [] and not kept["passed"]


def test_refusals_change_nothing(settled, tmp_path):
    topo = str(settled.topology_path)
    settled.ssh("k8s-master-03", "echo 1 > /etc/keepalived/maintenance")
    wait_for(lambda: status(settled)[0] == 1, 20, "master-03 in maintenance (degraded)")
    sick = tool("drill", "-t", topo, "failover", "--yes", env=env_for(tmp_path))
    assert sick.returncode == 3 and "a drill starts from a healthy cluster" in sick.stderr
    settled.ssh("k8s-master-03", "echo 0 > /etc/keepalived/maintenance")
    wait_for(lambda: status(settled)[0] == 0, 20, "healthy again")
    asked = tool("drill", "-t", topo, "holder-keepalived", env=env_for(tmp_path))  # no terminal, no --yes
    assert asked.returncode == 2 and "not confirmed: run with --yes" in asked.stderr
    assert "keepalived is STOPPED on k8s-master-01" in asked.stdout  # it said what it would do first
    lock = settled.ssh("k8s-master-01", "ls /run/k8s-ha-tui/lock 2>/dev/null || true").stdout
    assert not lock.strip()
    assert not (tmp_path / "state" / "k8s-ha-tui" / "drills").exists()  # nothing ran, nothing kept
    assert settled.holders() == ["k8s-master-01"]
    assert all(settled.ssh(m, "systemctl is-active keepalived haproxy").stdout.split() == ["active", "active"]
               for m in MASTERS)
