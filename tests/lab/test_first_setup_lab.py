"""A first-time setup on the lab, as a new user meets it: bare masters (no kube-apiserver at all),
deploy, then `kubeadm init` and the joins while the monitor watches — and a cluster whose
apiservers exist but are all down, which is an outage, not a first-time setup."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pexpect
import pytest
import yaml
from labtools import MASTERS, status, tool, until
from test_monitor import events
from textual.widgets import Static

from k8s_ha_tui import wizard
from k8s_ha_tui.lab import cluster
from k8s_ha_tui.lab.proc import LabError
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.tui.app import MonitorApp

VIP, FRONTEND = "198.18.0.10", 8443




def accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def rebuilt(lab, bare: bool):
    cluster.down(log=lambda _m: None)
    cluster.up(3, 3, log=lambda _m: None, bare=bare)
    return lab


@pytest.fixture
def bare(lab):
    """Fresh machines: the lab rebuilt with no apiserver, nothing deployed."""
    return rebuilt(lab, bare=True)


@pytest.fixture
def installed(lab):
    """A cluster as kubeadm leaves it (a manifest and an apiserver on every master), deployed."""
    rebuilt(lab, bare=False).deploy()
    return lab


async def test_bare_masters_to_a_healthy_control_plane(bare):
    for m in MASTERS:  # nothing of kubeadm's, nothing on the apiserver port
        out = bare.ssh(m, "ls /etc/kubernetes/manifests 2>&1; ss -Hltn 'sport = :6443'", check=False).stdout
        assert "kube-apiserver.yaml" not in out and ":6443" not in out
    dry = await asyncio.to_thread(tool, "deploy", "-t", str(bare.topology_path), "--dry-run")
    assert dry.returncode == 0 and "No kube-apiserver on any master yet (a first-time setup)" in dry.stdout
    deployed = await asyncio.to_thread(tool, "deploy", "-t", str(bare.topology_path), "--yes")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    out = deployed.stdout
    assert "no kube-apiserver exists yet on any master (a first-time setup)" in out
    assert "k8s-master-01 is the one VRRP MASTER (the top priority): ready for kubeadm init" in out
    assert 'controlPlaneEndpoint: "198.18.0.10:8443"' in out
    assert "sudo kubeadm init --config kubeadm-config.yaml --upload-certs" in out
    for m, addr in (("k8s-master-02", ".12"), ("k8s-master-03", ".13")):
        assert f"{m}:  sudo kubeadm join 198.18.0.10:8443 --token <token>" in out
        assert f"--control-plane --certificate-key <key> --apiserver-advertise-address 198.18.0{addr}" in out
    assert bare.holders() == ["k8s-master-01"] and accepts(VIP, FRONTEND)

    code, doc = status(bare)
    assert code == 1 and doc["bootstrap"] is True and doc["alarms"] == []
    assert [n["apiserver"] for n in doc["nodes"]] == ["not installed"] * 3
    assert "kubeadm init on k8s-master-01" in doc["notices"][0]

    app = MonitorApp(bare.topo, policy_for(bare.topo), interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.status is not None and app.status.bootstrap, 30, "the first-time setup")
        banner = app.query_one("#banner")
        assert banner.has_class("bootstrap") and "FIRST-TIME SETUP" in str(banner.render()), (
            app.status.alarms, [(m.name, m.vrrp_state, m.holds_vip) for m in app.status.masters],
            app.status.foreign_routers)
        assert "kubeadm init on k8s-master-01" in str(app.query_one("#alarms", Static).render())

        with pytest.raises(LabError, match="no master runs a control plane yet"):
            await asyncio.to_thread(cluster.run_kubeadm, "k8s-master-02", "join")
        await asyncio.to_thread(cluster.run_kubeadm, "k8s-master-01", "init")
        # through the VIP once HAProxy's checks have seen it rise (check.rise x check.interval)
        await until(pilot, lambda: cluster.apiserver_ready(VIP, FRONTEND), 15, "the API through the VIP")
        await until(pilot, lambda: "apiserver on k8s-master-01 is up" in events(app)
                    and "1 of 3 apiservers up" in events(app), 20, "the first apiserver in the monitor")
        # degraded (not critical) while masters are missing: the API answers, the cluster is not complete
        await until(pilot, lambda: banner.has_class("degraded") and not app.status.bootstrap, 10, "degraded")
        second = await asyncio.to_thread(tool, "lab", "kubeadm", "k8s-master-02", "init")  # as a user types it
        assert second.returncode == 2 and second.stderr.strip() == (
            "error: k8s-master-01 already runs the control plane: `lab kubeadm k8s-master-02 join` adds this "
            "master to it")

        for m in MASTERS[1:]:
            await asyncio.to_thread(cluster.run_kubeadm, m, "join")
        await until(pilot, lambda: "3 of 3 apiservers up: the control plane is complete" in events(app)
                    and app.status.health.name == "HEALTHY", 30, "a healthy control plane")
        assert banner.has_class("healthy") and "apiserver on k8s-master-03 is up" in events(app)
        assert "API DOWN" not in events(app)  # never an outage on the way
        assert not app.status.alarms and not app.status.notices

    code, doc = status(bare)
    assert code == 0 and doc["bootstrap"] is False
    assert [n["apiserver"] for n in doc["nodes"]] == ["up"] * 3
    with pytest.raises(LabError, match="run 'k8s-ha-tui lab down' first"):
        cluster.up(3, 3, log=lambda _m: None, bare=True)  # not bare any more: refused, not pretended


def test_installed_but_down_everywhere_is_an_outage_and_deploy_restores(installed, tmp_path):
    bare = installed
    for m in MASTERS:
        cluster.fault(m, "apiserver-down")
    try:
        code, doc = status(bare)
        assert code == 2 and doc["bootstrap"] is False
        assert [n["apiserver"] for n in doc["nodes"]] == ["not running"] * 3  # installed, the port refuses
        assert any(a.startswith("API DOWN") for a in doc["alarms"])
        data = yaml.safe_load(bare.topology_path.read_text())
        data.setdefault("check", {})["rise"] = 3
        changed = tmp_path / "t.yaml"
        changed.write_text(yaml.safe_dump(data))
        res = tool("deploy", "-t", str(changed), "--yes", "--verify-timeout", "4")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "first-time setup" not in res.stdout
        assert "restored from backup" in res.stdout and "does not serve /readyz" in res.stderr
    finally:
        for m in MASTERS:
            cluster.heal(m)


def test_the_wizard_offers_deploy_and_deploy_prints_kubeadms_commands(bare, tmp_path):
    """A new user's path: wizard (from the lab's topology, every default taken), yes to the offer,
    yes to deploy's own question; the first-time setup ends with the kubeadm commands."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "unit"))  # the scripted prompter lives there
    from test_wizard import ScriptedPrompter
    from test_wizard_terminal import EXE

    asked = ScriptedPrompter()
    wizard.ask_topology(asked, wizard.start_from(str(bare.topology_path)))
    out = tmp_path / "cluster.yaml"
    child = pexpect.spawn(EXE, ["wizard", "--from", str(bare.topology_path), "-o", str(out)],
                          env={"TERM": "xterm", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(tmp_path),
                               "PROMPT_TOOLKIT_NO_CPR": "1"}, dimensions=(40, 160), timeout=60, encoding="utf-8")
    try:
        for q in asked.asked:
            child.expect_exact(q)
            child.send("\r")
        child.expect(r"Write .*\(Y/n\)")
        child.send("y")
        child.expect_exact(f"next: k8s-ha-tui deploy -t {out} --dry-run")
        child.expect(r"now\? .*\(y/N\)")
        child.send("y")
        child.expect_exact("kube-apiserver not installed")
        child.expect_exact("Go ahead? [y/N]")
        child.sendline("y")
        child.expect_exact("ready for kubeadm init")
        child.expect_exact("sudo kubeadm init --config kubeadm-config.yaml --upload-certs")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert bare.holders() == ["k8s-master-01"] and accepts(VIP, FRONTEND)


def test_a_first_time_setup_rolls_back_to_bare_masters(bare):
    assert tool("deploy", "-t", str(bare.topology_path), "--yes").returncode == 0
    res = tool("rollback", "-t", str(bare.topology_path), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert bare.holders() == [] and not accepts(VIP, FRONTEND)
    for m in MASTERS:
        assert bare.ssh(m, "ls /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg 2>&1", check=False).returncode
