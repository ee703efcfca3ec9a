"""A cluster this tool did not build (lab/handmade.py, installed on the lab's masters): discover,
doctor, the backend mapping, what each action does there, and the adoption deploy under load."""

from __future__ import annotations

import json
import stat
import subprocess
import threading
import time

import pytest
import yaml
from labtools import MASTERS, tool, wait_for

from k8s_ha_tui.lab import cluster, handmade, layout

OUR_FILES = "/etc/keepalived/priority_boost /etc/keepalived/maintenance"



def healthy(path) -> bool:
    return tool("status", "-t", str(path), timeout=60).returncode == 0


@pytest.fixture(scope="module")
def hand(lab, tmp_path_factory):
    """The hand-made cluster, and the topology `discover` wrote for it."""
    cluster.install_handmade()
    out = tmp_path_factory.mktemp("hand") / "discovered.yaml"
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "the hand-made MASTER holding the VIP")
    ssh = lab.topo.ssh
    res = tool("discover", "--masters", ",".join(m.address for m in lab.topo.masters),
               "--workers", lab.topo.workers[0].address,
               "--identity-file", str(ssh.identity_file), "--known-hosts", str(ssh.known_hosts), "-o", str(out))
    assert res.returncode == 0, res.stderr
    wait_for(lambda: healthy(out), 30, "the discovered topology to report a healthy cluster")
    return lab, out, res.stdout


@pytest.fixture
def settled(hand):
    lab, path, _ = hand

    def reset():
        for m in MASTERS:
            lab.ssh(m, "systemctl start keepalived")
        tool("backend", "-t", str(path), "k8s-master-02", "ready", "--yes")
        wait_for(lambda: lab.holders() == ["k8s-master-01"] and healthy(path), 30, "master-01 holding the VIP")
    reset()
    yield lab, path
    reset()


def test_discover_describes_the_cluster_as_it_runs(hand):
    _, path, printed = hand
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the PASS password
    data = yaml.safe_load(path.read_text())
    assert data["vrrp"] == {"router_id": handmade.ROUTER_ID, "auth_pass": handmade.AUTH_PASS, "version": 2,
                            "advert_int": 1, "down_adverts": 3, "unicast": True}  # no down_timer_adverts: the RFC's 3
    assert [(m["name"], m["priority"]) for m in data["masters"]] == list(zip(MASTERS, handmade.PRIORITIES))
    assert (data["frontend_port"], data["apiserver_port"], data["interface"]) == (8443, 6443, "eth0")
    assert data["workers"] == [{"name": "k8s-node-01", "address": "198.18.0.21"}]
    assert "note: vrrp_script check_api runs '/etc/keepalived/check_api.sh'" in printed


def test_status_maps_hand_named_servers_to_masters(hand):
    _, path, _ = hand
    st = json.loads(tool("status", "-t", str(path), "--json").stdout)
    for node in st["nodes"]:
        assert [(b["server"], b["master"]) for b in node["backends"]] == list(zip(handmade.SERVER_NAMES, MASTERS))
    assert st["holders"] == ["k8s-master-01"] and st["health"] == "healthy"


def test_doctor_lints_every_master_and_sees_a_reload_pending(hand):
    lab, path, _ = hand
    res = tool("doctor", "-t", str(path), "--json")
    assert res.returncode == 0, res.stdout + res.stderr  # warnings only
    found = json.loads(res.stdout)
    assert {f["where"].split(":")[0] for f in found if f["code"] == "K102"} == set(MASTERS)
    assert any(f["where"].startswith("k8s-master-02:/etc/keepalived/conf.d/kube-api.conf:") for f in found)
    conf = "/etc/keepalived/conf.d/kube-api.conf"
    lab.ssh("k8s-master-02", f"cp {conf} /root/kube-api.conf.keep && sed -i 's/priority 110/priority 115/' {conf}")
    try:
        res = tool("doctor", "-t", str(path))
        assert res.returncode == 1
        assert "k8s-master-02:/etc/keepalived/keepalived.conf: error D305: vrrp_instance KUBE_API: the running " \
               "keepalived's priority is 110, the file says 115" in res.stdout
    finally:
        lab.ssh("k8s-master-02", f"mv /root/kube-api.conf.keep {conf}")


def test_backend_works_whatever_the_servers_are_called(settled):
    lab, path = settled
    res = tool("backend", "-t", str(path), "k8s-master-02", "drain", "--yes")
    assert res.returncode == 0, res.stderr
    st = json.loads(tool("status", "-t", str(path), "--json").stdout)
    assert all({b["master"]: b["status"] for b in n["backends"]}["k8s-master-02"] == "DRAIN" for n in st["nodes"])


@pytest.mark.parametrize("action", [("failover",), ("maintenance", "k8s-master-02", "on")])
def test_an_action_the_nodes_cannot_do_is_refused_at_once_leaving_nothing(settled, action):
    lab, path = settled
    res = tool(*action, "-t", str(path), "--yes")
    assert res.returncode == 3 and "running keepalived does not follow" in res.stderr and "--method stop" in res.stderr
    for m in MASTERS:
        assert lab.ssh(m, f"ls {OUR_FILES} 2>/dev/null; true").stdout == ""
        last = json.loads(lab.ssh(m, "tail -n 1 /var/log/k8s-ha-tui/audit.log").stdout)
        assert last["action"].startswith(action[0]) and last["result"].startswith("refused:")
        assert last["seconds"] < 1.0


def test_failover_by_stopping_keepalived_and_back(settled):
    lab, path = settled
    res = tool("failover", "-t", str(path), "--method", "stop", "--yes")
    assert res.returncode == 0, res.stderr
    assert lab.holders() == ["k8s-master-02"]  # the highest priority left, as the command said
    assert lab.ssh("k8s-master-01", "systemctl is-active keepalived", check=False).stdout.strip() != "active"
    res = tool("maintenance", "-t", str(path), "k8s-master-01", "off", "--method", "stop", "--yes")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "master-01 taking the VIP back by priority")


class Holders:
    """Every VIP add and delete on every master, to see whether two ever held it at once."""

    def __init__(self, lab):
        self.held = set(lab.holders())
        self.most = len(self.held)
        self.procs = [subprocess.Popen(["ip", "-n", layout.netns_of(m), "-o", "monitor", "address"],
                                       stdout=subprocess.PIPE, text=True) for m in MASTERS]
        self.lock = threading.Lock()
        for m, p in zip(MASTERS, self.procs):
            threading.Thread(target=self._read, args=(m, p), daemon=True).start()

    def _read(self, node, proc):
        for line in proc.stdout:
            if f" {layout.VIP}/" in line:
                with self.lock:
                    (self.held.discard if line.startswith("Deleted") else self.held.add)(node)
                    self.most = max(self.most, len(self.held))

    def close(self):
        for p in self.procs:
            p.terminate()
            p.wait(timeout=5)


def test_adoption_deploy_never_makes_two_holders_and_keeps_the_api(hand):
    lab, _, _ = hand
    answered, failed, stop = [0], [0], threading.Event()

    def client():
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            ok = cluster.apiserver_ready(layout.VIP, 8443, timeout=1.0, connect_timeout=0.25)
            (answered if ok else failed)[0] += 1
            stop.wait(0.05)
    watch = Holders(lab)
    loop = threading.Thread(target=client, daemon=True)
    loop.start()
    try:
        res = tool("deploy", "-t", str(lab.topology_path), "--yes")
    finally:
        stop.set()
        loop.join()
        watch.close()
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    assert "router id 77 → 51" in res.stdout and "cut-over" in res.stdout
    assert watch.most == 1, "two masters held the VIP at once"
    assert answered[0] > 100 and failed[0] <= 1, f"{failed[0]} requests failed"
    wait_for(lambda: healthy(lab.topology_path), 30, "the adopted cluster to be healthy")
    data = lab.ssh("k8s-master-03", "cat /etc/keepalived/maintenance").stdout.strip()
    assert data == "0"  # released at the end of the cut-over


def test_discover_on_our_own_configs_round_trips(hand, tmp_path):
    """After the adoption: discover writes what deploy would render again, change for change nothing."""
    lab, _, _ = hand
    out = tmp_path / "again.yaml"
    ssh = lab.topo.ssh
    res = tool("discover", "--masters", ",".join(m.address for m in lab.topo.masters), "--identity-file",
               str(ssh.identity_file), "--known-hosts", str(ssh.known_hosts), "-o", str(out))
    assert res.returncode == 0 and "note:" not in res.stdout, res.stdout + res.stderr
    res = tool("deploy", "-t", str(out), "--dry-run")
    assert res.returncode == 0 and all(f"{m}  unchanged" in res.stdout for m in MASTERS), res.stdout[-1500:]


def test_rolling_back_the_adoption_returns_to_the_hand_made_setup_without_two_holders(hand):
    lab, discovered, _ = hand
    watch = Holders(lab)
    try:
        res = tool("rollback", "-t", str(lab.topology_path), "--yes")
    finally:
        watch.close()
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr
    # The hand-made configs have no maintenance switch: keepalived is stopped instead, and the
    # holder's instance is in an included file, so it costs one master-down interval (said first).
    assert "with keepalived stopped" in res.stdout and "without the VIP" in res.stdout
    assert watch.most == 1, "two masters held the VIP at once"
    wait_for(lambda: healthy(discovered), 30, "the hand-made cluster to be healthy again")
    lab.deploy()  # leave the lab as the other modules expect it: our configs
