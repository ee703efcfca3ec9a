"""status, failover, maintenance and backend against the lab's real daemons."""

from __future__ import annotations

import pytest
from labtools import MASTERS, status, tool, wait_for

from k8s_ha_tui.lab import cluster


@pytest.fixture
def settled(deployed):
    """No maintenance, no boost, no fault, the VIP on master-01 — before and after each test."""
    def reset():
        deployed.heal_all()
        for m in MASTERS:
            deployed.ssh(m, "echo 0 > /etc/keepalived/maintenance; echo 0 > /etc/keepalived/priority_boost")
        tool("backend", "-t", str(deployed.topology_path), "k8s-master-02", "ready", "--yes")
        wait_for(lambda: status(deployed)[0] == 0, 30, "a healthy cluster")
    reset()
    yield deployed
    reset()


def test_status_after_deploy_names_the_holder(settled):
    rc, st = status(settled)
    assert rc == 0 and st["holders"] == ["k8s-master-01"] and st["split_brain"] is False
    nodes = {n["name"]: n for n in st["nodes"]}
    assert nodes["k8s-master-01"]["vrrp_state"] == "MASTER" and nodes["k8s-master-02"]["vrrp_state"] == "BACKUP"
    assert nodes["k8s-master-01"]["effective_priority"] == 150
    assert [b["status"] for b in nodes["k8s-master-03"]["backends"]] == ["UP", "UP", "UP"]
    assert all(w["api_via_vip"] for w in st["workers"])


def test_split_brain_is_critical_and_maintenance_on_the_cut_off_claimant_ends_it(settled):
    cluster.fault("k8s-master-01", "vrrp-drop")
    rc, st = wait_for(lambda: (lambda r: r if len(r[1]["holders"]) == 2 else None)(status(settled)), 20,
                      "both holding")
    assert rc == 2 and "SPLIT BRAIN" in st["alarms"][0]
    cut = [d for d in st["diagnosis"] if d["code"] == "cut-off"]
    assert [d["node"] for d in cut] == ["k8s-master-01"] and "maintenance k8s-master-01 on" in cut[0]["next"]
    refused = tool("failover", "-t", str(settled.topology_path), "--yes")
    assert refused.returncode == 3 and "split brain" in refused.stderr  # moving it on purpose: still refused
    res = tool("maintenance", "-t", str(settled.topology_path), "k8s-master-01", "on", "--yes")
    assert res.returncode == 0, res.stderr
    assert "ends the split brain" in res.stdout and "the split brain is over" in res.stdout
    assert settled.holders() == ["k8s-master-02"]
    rc, st = status(settled)
    assert not st["split_brain"] and [d["code"] for d in st["diagnosis"]] == ["maintenance"]


def test_restart_checks_the_config_first_and_brings_the_service_back(settled):
    cluster.fault("k8s-master-03", "haproxy-down")
    res = tool("restart", "-t", str(settled.topology_path), "k8s-master-03", "haproxy", "--yes")
    assert res.returncode == 0 and "haproxy restarted on k8s-master-03 and active" in res.stdout, res.stderr
    wait_for(lambda: status(settled)[0] == 0, 20, "a healthy cluster after the restart")
    settled.ssh("k8s-master-03", "cp -p /etc/haproxy/haproxy.cfg /root/haproxy.cfg.saved && "
                                 "echo 'frontend broken' >> /etc/haproxy/haproxy.cfg && echo '  bind :notaport' "
                                 ">> /etc/haproxy/haproxy.cfg")
    try:
        res = tool("restart", "-t", str(settled.topology_path), "k8s-master-03", "haproxy", "--yes")
        assert res.returncode == 3 and "refuses the config on disk" in res.stderr and "nothing was restarted" \
            in res.stderr, res.stderr
        assert settled.ssh("k8s-master-03", "systemctl is-active haproxy", check=False).stdout.strip() == "active"
    finally:
        settled.ssh("k8s-master-03", "mv -f /root/haproxy.cfg.saved /etc/haproxy/haproxy.cfg")
    for m in ("k8s-master-02", "k8s-master-03"):
        settled.ssh(m, "echo 1 > /etc/keepalived/maintenance")
    wait_for(lambda: [n["vrrp_state"] for n in status(settled)[1]["nodes"]] == ["MASTER", "FAULT", "FAULT"], 20,
             "only master-01 left in the election")
    res = tool("restart", "-t", str(settled.topology_path), "k8s-master-01", "keepalived", "--yes")
    assert res.returncode == 3 and "would leave no holder" in res.stderr, res.stderr


def test_offline_node_is_a_state_and_recovers(settled):
    cluster.fault("k8s-master-03", "offline")
    rc, st = status(settled)
    node = next(n for n in st["nodes"] if n["name"] == "k8s-master-03")
    assert rc == 1 and node["reachable"] is False and "198.18.0.13" in node["error"]
    cluster.heal("k8s-master-03")
    wait_for(lambda: status(settled)[0] == 0, 20, "master-03 back")


def test_failover_moves_the_vip_and_keeps_it_off(settled):
    res = tool("failover", "-t", str(settled.topology_path), "--yes")
    assert res.returncode == 0, res.stderr
    assert "failover k8s-master-01 → k8s-master-02: VIP answers on k8s-master-02" in res.stdout
    assert settled.holders() == ["k8s-master-02"]
    rc, st = status(settled)
    assert rc == 1 and next(n for n in st["nodes"] if n["name"] == "k8s-master-01")["maintenance"] is True
    res = tool("maintenance", "-t", str(settled.topology_path), "k8s-master-01", "off", "--yes")
    assert res.returncode == 0
    wait_for(lambda: settled.holders() == ["k8s-master-01"], 15, "master-01 back (highest priority)")


def test_interlocks_refuse(settled):
    t = str(settled.topology_path)
    assert tool("maintenance", "-t", t, "k8s-master-02", "on", "--yes").returncode == 0
    assert tool("maintenance", "-t", t, "k8s-master-03", "on", "--yes").returncode == 0
    res = tool("failover", "-t", t, "--yes")
    assert res.returncode == 3 and "no other master is reachable, healthy and out of maintenance" in res.stderr
    res = tool("maintenance", "-t", t, "k8s-master-01", "on", "--yes")
    assert res.returncode == 3 and "last master that can hold the VIP" in res.stderr
    assert settled.holders() == ["k8s-master-01"]


def test_drain_and_ready_a_backend_everywhere(settled):
    t = str(settled.topology_path)
    res = tool("backend", "-t", t, "k8s-master-02", "drain", "--yes")
    assert res.returncode == 0 and "drain on k8s-master-01, k8s-master-02, k8s-master-03" in res.stdout
    _, st = status(settled)
    for n in st["nodes"]:
        assert {b["server"]: b["status"] for b in n["backends"]}["k8s-master-02"] == "DRAIN"
    assert tool("backend", "-t", t, "k8s-master-02", "ready", "--yes").returncode == 0
    _, st = status(settled)
    assert all(b["status"] == "UP" for n in st["nodes"] for b in n["backends"])


def test_draining_the_last_healthy_backend_is_refused(settled):
    t = str(settled.topology_path)
    cluster.fault("k8s-master-02", "apiserver-down")
    cluster.fault("k8s-master-03", "apiserver-down")
    wait_for(lambda: all(sum(b["status"] == "UP" for b in n["backends"]) == 1 for n in status(settled)[1]["nodes"]),
             20, "every HAProxy to mark two backends down")
    res = tool("backend", "-t", t, "k8s-master-01", "drain", "--yes")
    assert res.returncode == 3 and "k8s-master-01 is the last healthy apiserver" in res.stderr


def test_actions_ask_first_without_yes(settled):
    res = tool("failover", "-t", str(settled.topology_path))
    assert res.returncode == 2 and "run with --yes" in res.stderr
    assert settled.holders() == ["k8s-master-01"]
