"""The lab against itself: real sshd, real keepalived and HAProxy, every fault and its heal."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from labtools import MASTERS, wait_for

from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.lab.nodes import WATCH_USER
from k8s_ha_tui.lab.proc import alive
from k8s_ha_tui.remote.apiserver import readyz_from_here

NODES = MASTERS + ["k8s-node-01", "k8s-node-02", "k8s-node-03"]


def tcp_open(address: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def readyz(address: str, port: int = 6443) -> bool:
    return cluster.apiserver_ready(address, port)


# --- the bare lab ------------------------------------------------------------------------------

def test_ssh_reaches_every_node_with_strict_host_key_checking(lab):
    for name in NODES:
        assert lab.ssh(name, "hostname").stdout.strip() == name


def test_a_wrong_host_key_is_refused(lab, tmp_path):
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    assert other.returncode == 0
    fake = tmp_path / "known_hosts"
    fake.write_text(f"{lab.address('k8s-master-01')} {(tmp_path / 'k.pub').read_text().split()[0]} "
                    f"{(tmp_path / 'k.pub').read_text().split()[1]}\n")
    argv = [a if not a.startswith("UserKnownHostsFile=") else f"UserKnownHostsFile={fake}"
            for a in lab.ssh_argv(lab.address("k8s-master-01"))]
    res = subprocess.run([*argv, "true"], capture_output=True, text=True, timeout=20)
    assert res.returncode == 255 and "Host key verification failed" in res.stderr


def test_lab_topology_is_complete_and_usable(lab):
    t = lab.topo
    assert t.vip == "198.18.0.10" and [m.address for m in t.masters] == ["198.18.0.11", "198.18.0.12", "198.18.0.13"]
    assert [w.address for w in t.workers] == ["198.18.0.21", "198.18.0.22", "198.18.0.23"]
    assert Path(t.ssh.identity_file) == lab.paths.client_key and Path(t.ssh.known_hosts) == lab.paths.known_hosts
    assert len(Path(t.ssh.known_hosts).read_text().splitlines()) == 6
    assert lab.topology_path.stat().st_mode & 0o777 == 0o600


def test_each_node_has_its_own_files_run_and_processes(lab):
    lab.ssh("k8s-master-01", "echo one > /etc/keepalived/isolation-probe && echo one > /run/isolation-probe")
    try:
        for other in ("k8s-master-02", "k8s-node-01"):
            res = lab.ssh(other, "cat /etc/keepalived/isolation-probe /run/isolation-probe", check=False)
            assert res.returncode != 0
        assert not Path("/etc/keepalived/isolation-probe").exists()
        assert lab.ssh("k8s-master-01", "cat /etc/keepalived/isolation-probe").stdout == "one\n"
    finally:
        lab.ssh("k8s-master-01", "rm -f /etc/keepalived/isolation-probe /run/isolation-probe")
    # Its own PID namespace: a node sees one kube-apiserver, its own.
    procs = lab.ssh("k8s-master-02", "ps -eo args").stdout
    assert procs.count("apiserver.py") == 1 and "--name k8s-master-02" in procs


def test_fake_apiserver_answers_on_every_master(lab):
    for m in MASTERS:
        assert readyz(lab.address(m))
    out = subprocess.run(["curl", "-sk", "--max-time", "3", "https://198.18.0.12:6443/version"],
                         capture_output=True, text=True)
    assert json.loads(out.stdout)["node"] == "k8s-master-02"
    assert not tcp_open(lab.address("k8s-node-01"), 6443)


def test_systemctl_stand_in_behaves_like_systemd(lab):
    res = lab.ssh("k8s-master-01", "command -v systemctl; systemctl is-active kube-apiserver; "
                                   "systemctl disable kube-apiserver; systemctl is-enabled kube-apiserver; "
                                   "systemctl enable kube-apiserver; systemctl is-enabled kube-apiserver",
                  check=False)
    assert res.stdout.split() == ["/usr/local/sbin/systemctl", "active", "disabled", "enabled"]
    assert lab.ssh("k8s-master-01", "systemctl status nosuch", check=False).returncode != 0


def test_lab_up_again_keeps_the_same_healthy_lab(lab):
    before = json.loads(lab.paths.state_file.read_text())["pids"]
    assert cluster.up(3, 3, log=lambda _m: None) == lab.topology_path
    assert json.loads(lab.paths.state_file.read_text())["pids"] == before


def test_status_json_lists_nodes_and_daemons(lab):
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lab", "status", "--json"],
                         capture_output=True, text=True)
    st = json.loads(res.stdout)
    assert res.returncode == 0 and st["up"] is True
    by_name = {n["name"]: n for n in st["nodes"]}
    assert by_name["k8s-master-01"]["daemons"]["kube-apiserver"] is True
    assert by_name["k8s-node-01"]["daemons"] == {"sshd": True}
    assert "198.18.0.21/24" in by_name["k8s-node-01"]["addresses"]


# --- with keepalived and HAProxy running: faults ---------------------------------------------

@pytest.fixture(scope="module")
def deployed(lab):
    lab.deploy()
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "master-01 (highest priority) to hold the VIP")
    yield lab
    lab.heal_all()


@pytest.fixture
def healthy(deployed):
    """Every test starts from a settled cluster and leaves no fault behind."""
    wait_for(lambda: deployed.holders() == ["k8s-master-01"], 20, "the VIP back on master-01")
    yield deployed
    deployed.heal_all()
    wait_for(lambda: deployed.holders() == ["k8s-master-01"], 20, "the VIP back on master-01 after healing")


def test_the_api_answers_through_the_vip(healthy):
    assert readyz("198.18.0.10", 8443)


def test_apiserver_down_and_heal(healthy):
    cluster.fault("k8s-master-02", "apiserver-down")
    assert not tcp_open("198.18.0.12", 6443)
    assert healthy.ssh("k8s-master-02", "systemctl is-active kube-apiserver", check=False).stdout.strip() == "inactive"
    cluster.heal("k8s-master-02", "apiserver-down")
    wait_for(lambda: readyz("198.18.0.12"), 10, "the apiserver back")


def test_apiserver_hang_keeps_the_socket_but_answers_nothing(healthy):
    cluster.fault("k8s-master-02", "apiserver-hang")
    assert tcp_open("198.18.0.12", 6443)  # the kernel still accepts
    assert not cluster.apiserver_ready("198.18.0.12", timeout=1.0)  # nobody answers
    cluster.heal("k8s-master-02")
    wait_for(lambda: readyz("198.18.0.12"), 10, "the apiserver answering again")


def test_a_busy_apiserver_is_slow_to_accept_and_to_answer_then_heals(healthy):
    quick = readyz_from_here("198.18.0.12", 6443, timeout=5.0)
    assert quick is not None and quick < 0.3
    cluster.fault("k8s-master-02", "apiserver-busy", 300)
    try:
        slow = readyz_from_here("198.18.0.12", 6443, timeout=5.0)
        assert slow is not None and slow >= 0.6  # 300 ms to be accepted, 300 ms more to answer
    finally:
        cluster.heal("k8s-master-02", "apiserver-busy")
    wait_for(lambda: (t := readyz_from_here("198.18.0.12", 6443, timeout=5.0)) is not None and t < 0.3, 10,
             "the apiserver quick again")


def test_haproxy_down_on_the_holder_moves_the_vip(healthy):
    cluster.fault("k8s-master-01", "haproxy-down")
    wait_for(lambda: healthy.holders() == ["k8s-master-02"], 15, "the VIP to move to master-02")
    assert healthy.vrrp_state("k8s-master-01") == "FAULT"
    cluster.heal("k8s-master-01", "haproxy-down")
    assert healthy.ssh("k8s-master-01", "systemctl is-active haproxy").stdout.strip() == "active"


def test_keepalived_down_and_heal(healthy):
    cluster.fault("k8s-master-02", "keepalived-down")
    res = healthy.ssh("k8s-master-02", "systemctl is-active keepalived", check=False)
    assert res.stdout.strip() == "inactive"
    cluster.heal("k8s-master-02")
    wait_for(lambda: healthy.vrrp_state("k8s-master-02") == "BACKUP", 15, "master-02 back as BACKUP")


def test_vrrp_drop_makes_two_masters_split_brain(healthy):
    cluster.fault("k8s-master-01", "vrrp-drop")
    wait_for(lambda: healthy.vrrp_state("k8s-master-02") == "MASTER", 15, "master-02 to claim MASTER too")
    assert healthy.vrrp_state("k8s-master-01") == "MASTER"
    assert sorted(healthy.holders()) == ["k8s-master-01", "k8s-master-02"]
    assert healthy.ssh("k8s-master-01", "true").returncode == 0  # SSH still works
    cluster.heal("k8s-master-01", "vrrp-drop")
    wait_for(lambda: healthy.vrrp_state("k8s-master-02") == "BACKUP", 15, "master-02 to step back")


def test_vrrp_loss_drops_that_share_of_vrrp_only(healthy):
    cluster.fault("k8s-master-01", "vrrp-loss", 100)
    wait_for(lambda: healthy.vrrp_state("k8s-master-02") == "MASTER", 15, "master-02 to stop hearing master-01")
    assert healthy.ssh("k8s-master-01", "true").returncode == 0  # SSH still works
    # A new value replaces the old rule rather than adding a second one.
    cluster.fault("k8s-master-01", "vrrp-loss", 2.5)
    rules = healthy.ssh("k8s-master-01", "nft list ruleset").stdout
    assert rules.count("numgen random mod 10000 < 250 drop") == 2 and rules.count("vrrp drop") == 0
    cluster.heal("k8s-master-01", "vrrp-loss")
    assert "numgen" not in healthy.ssh("k8s-master-01", "nft list ruleset").stdout


def keepalived_frozen(lab, node: str) -> bool:
    """keepalived's main process is stopped (state T) on `node`."""
    stat = lab.ssh(node, 'cat "/proc/$(cat /run/keepalived.pid)/stat"').stdout
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def test_a_pause_longer_than_master_down_moves_the_vip_and_ends_by_itself(healthy):
    """0.3 s adverts: master-down ~1.0 s. A 3 s freeze of the holder hands the VIP over; when it
    thaws, its higher priority takes the VIP back."""
    done = threading.Event()
    pause = threading.Thread(target=lambda: (cluster.fault("k8s-master-01", "pause", 3000), done.set()))
    pause.start()
    wait_for(lambda: keepalived_frozen(healthy, "k8s-master-01"), 5, "master-01's keepalived frozen")
    wait_for(lambda: healthy.vrrp_state("k8s-master-02") == "MASTER", 5, "master-02 to take over during the pause")
    pause.join(timeout=15)
    assert done.is_set() and not keepalived_frozen(healthy, "k8s-master-01")
    assert "pause" not in cluster.status()["nodes"][0]["faults"]  # a one-off leaves nothing to heal


def test_a_repeating_pause_runs_until_healed(healthy):
    cluster.fault("k8s-master-02", "pause", 400, every=0.5)
    loop = cluster.LabState.load(cluster.lab_paths()).loops["k8s-master-02"]
    wait_for(lambda: keepalived_frozen(healthy, "k8s-master-02"), 5, "the first pause")
    cluster.heal("k8s-master-02")
    assert not alive(loop) and not keepalived_frozen(healthy, "k8s-master-02")
    assert "k8s-master-02" not in cluster.LabState.load(cluster.lab_paths()).loops


def test_offline_node_is_unreachable_until_healed(healthy):
    cluster.fault("k8s-master-03", "offline")
    assert not tcp_open("198.18.0.13", 22)
    assert healthy.ssh("k8s-master-03", "true", check=False, timeout=15).returncode == 255
    # Cut off, master-03 hears no adverts and claims the VIP where nobody can see it;
    # the rest of the cluster keeps it on master-01 and the API answers through it.
    wait_for(lambda: healthy.vrrp_state("k8s-master-02") == "BACKUP" and "k8s-master-01" in healthy.holders(),
             5, "master-01 still holding the VIP")
    assert readyz("198.18.0.10", 8443)
    cluster.heal("k8s-master-03")
    wait_for(lambda: tcp_open("198.18.0.13", 22), 10, "master-03 back on the network")


@pytest.mark.parametrize("user", ["root", WATCH_USER])  # OpenSSH splits a non-root login in two processes
def test_ssh_drop_ends_every_connection_and_the_next_one_works(lab, user):
    ssh = subprocess.Popen([*lab.ssh_argv("198.18.0.22", user), "echo connected; sleep 60"], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert ssh.stdout is not None and ssh.stdout.readline() == "connected\n"  # ConnectTimeout=3 bounds it
        said = cluster.fault("k8s-node-02", "ssh-drop")
        assert " 0 SSH" not in said, said
        assert ssh.wait(timeout=10) == 255  # the client saw its connection end
    finally:
        ssh.kill()
    assert lab.ssh_as(user, "k8s-node-02", "true").returncode == 0  # the listener stays


def backend_status(lab, node: str, server: str) -> str:
    """What `node`'s HAProxy says of `server`, as `k8s-ha-tui status --json` reports it."""
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "status", "-t", str(lab.topology_path), "--json"],
                         capture_output=True, text=True, timeout=30)
    nodes = {n["name"]: n for n in json.loads(res.stdout)["nodes"]}
    return next((b["status"] for b in nodes[node]["backends"] if b["server"] == server), "?")


def test_a_dead_apiserver_costs_clients_no_request(healthy):
    """Round robin still sends every third new connection to it until the check marks it down;
    each one is refused and retried on another apiserver (option redispatch 1)."""
    cluster.fault("k8s-master-02", "apiserver-down")
    answers = [readyz("198.18.0.10", 8443) for _ in range(30)]  # back to back, right after the kill
    assert answers.count(False) == 0
    wait_for(lambda: backend_status(healthy, "k8s-master-01", "k8s-master-02") == "DOWN", 10,
             "the holder's HAProxy to mark the dead apiserver DOWN")


def test_after_a_partition_heals_clients_follow_the_winner(healthy):
    """master-01 drops off; master-02 takes the VIP and announces it. When master-01 comes back
    it wins again, but the last ARP announcement clients saw was master-02's: the winner must
    announce again (vrrp_higher_prio_send_advert), or clients keep the loser's MAC for the
    neighbour table's whole timeout (seen in the lab: more than 10 s)."""
    cluster.fault("k8s-master-01", "offline")
    wait_for(lambda: "k8s-master-02" in healthy.holders(), 10, "master-02 to take the VIP")
    wait_for(lambda: readyz("198.18.0.10", 8443), 5, "the API through the VIP on master-02")
    cluster.heal("k8s-master-01")
    wait_for(lambda: healthy.holders() == ["k8s-master-01"], 10, "master-01 to win the VIP back")
    wait_for(lambda: readyz("198.18.0.10", 8443), 8, "the API through the VIP on master-01")


def test_worker_refuses_master_faults_and_unknown_nodes(lab):
    with pytest.raises(cluster.LabError, match="is a worker"):
        cluster.fault("k8s-node-01", "haproxy-down")
    with pytest.raises(cluster.LabError, match="no lab node named"):
        cluster.fault("k8s-master-09", "offline")


# --- last: down leaves nothing, also after SIGKILL; then up again ------------------------------

def _leftovers() -> list[str]:
    left = [f"namespace {ns}" for ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                       text=True).stdout.split() if ns.startswith("k8sha-")]
    if subprocess.run(["ip", "link", "show", layout.ROOT_LINK], capture_output=True).returncode == 0:
        left.append(f"link {layout.ROOT_LINK}")
    if layout.state_dir().exists():
        left.append(f"folder {layout.state_dir()}")
    mounts = Path("/proc/mounts").read_text()
    left += [f"mount {line.split()[1]}" for line in mounts.splitlines()
             if "k8sha-" in line or str(layout.state_dir()) in line]
    return left


def test_down_after_sigkill_leaves_nothing_and_up_refuses_a_routed_subnet(lab):
    state = json.loads(lab.paths.state_file.read_text())
    pids = [p for node in state["pids"].values() for p in node.values()]
    for pid in pids:
        subprocess.run(["kill", "-KILL", str(pid)])
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lab", "down"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert _leftovers() == []
    assert not any(cluster.alive(p) for p in pids)

    subprocess.run(["ip", "route", "add", "blackhole", "198.18.0.128/25"], check=True)
    try:
        res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lab", "up"], capture_output=True, text=True)
        assert res.returncode != 0 and "already in use here (route 198.18.0.128/25" in res.stderr
        assert _leftovers() == []
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", "198.18.0.128/25"], check=True)

    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lab", "up"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == str(lab.topology_path)
    assert lab.ssh("k8s-master-01", "hostname").stdout.strip() == "k8s-master-01"
