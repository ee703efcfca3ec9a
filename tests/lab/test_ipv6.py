"""IPv6 and dual stack on real daemons (`lab up --family dual|ipv6`): every node has addresses of
its families, the apiserver stand-in answers on each, `deploy` puts one VIP of each family on the
same master (a sync group of two VRRPv3 instances), a holder off the network takes both to the
same successor, and `vrrp-drop` cuts VRRP of both families (a split brain in each). `status`, the
monitor and the exporter follow each VIP."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from labtools import tool, until, wait_for
from test_access_lab import as_user
from test_prometheus import free_port, get
from textual.widgets import Static

from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.lab.nodes import WATCH_USER
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote.apiserver import readyz_from_here
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.tui.app import MonitorApp

M1, M2, M3 = "k8s-master-01", "k8s-master-02", "k8s-master-03"


def addresses(node: str) -> str:
    return subprocess.run(["ip", "-n", layout.netns_of(node), "-o", "addr", "show", "dev", layout.NODE_LINK],
                          capture_output=True, text=True, check=True).stdout


def holders(topo: topology.Topology, vip: str, among=(M1, M2, M3)) -> list[str]:
    """Masters whose eth0 carries `vip` (the kernel's word)."""
    return [m.name for m in topo.masters if m.name in among and f" {vip}/" in addresses(m.name)]


def status(lab) -> tuple[int, dict]:
    res = tool("status", "-t", str(lab.topology_path), "--json")
    return res.returncode, json.loads(res.stdout)


def up_and_deploy(lab, family: str) -> topology.Topology:
    lab.stop()
    path = cluster.up(3, 1, log=lambda _m: None, family=family)
    res = tool("deploy", "-t", str(path), "--yes")
    assert res.returncode == 0, res.stderr
    return topology.load_topology(path)


@pytest.fixture(scope="module")
def dual(lab):
    """A dual-stack lab, deployed; the folder's fixture brings the plain lab back afterwards."""
    yield up_and_deploy(lab, "dual")
    cluster.heal(M1)
    cluster.heal(M2)


def test_a_dual_lab_gives_every_node_both_families_and_the_apiserver_answers_on_each(dual):
    assert dual.vip == "198.18.0.10" and dual.vip6 == "fd01:98:18::10" and dual.vrrp.version == 3
    for node in (*dual.masters, *dual.workers):
        assert f" {node.address}/24 " in addresses(node.name) and f" {layout.six(node.address)}/64 " in addresses(node.name)
    for m in dual.masters:
        assert readyz_from_here(m.address, dual.apiserver_port) is not None
        assert readyz_from_here(str(m.address6), dual.apiserver_port) is not None


def test_deploy_puts_both_vips_on_the_top_master_and_the_api_answers_through_each(dual):
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 20,
             "both VIPs on master-01")
    for vip in dual.vips:
        assert wait_for(lambda vip=vip: readyz_from_here(vip, dual.frontend_port), 10, f"the API through {vip}")
    line = next(ln for ln in addresses(M1).splitlines() if f" {dual.vip6}/" in ln)
    assert "tentative" not in line and "dadfailed" not in line


def test_status_the_exporter_and_the_monitor_follow_both_vips(lab, dual):
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 20, "master-01")
    code, doc = wait_for(lambda: (s := status(lab))[1]["health"] == "healthy" and s, 20, "a healthy dual stack")
    assert code == 0 and doc["vip6"] == dual.vip6 and doc["holders"] == doc["holders6"] == [M1]
    assert [(n["vrrp_state"], n["vrrp_state6"], n["holds_vip6"]) for n in doc["nodes"]] == [
        ("MASTER", "MASTER", True), ("BACKUP", "BACKUP", False), ("BACKUP", "BACKUP", False)]
    assert all(n["api_via_vip6"] is True for n in (*doc["nodes"], *doc["workers"]))

    port = free_port()
    exp = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "exporter", "-t", str(lab.topology_path),
                            "--listen", f"127.0.0.1:{port}", "--interval", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        page = wait_for(lambda: (body := get(f"http://127.0.0.1:{port}/metrics")) and
                        'k8s_ha_vip_holders{cluster="lab",family="ipv6"} 1.0' in body and body, 20, "the exporter")
        assert 'k8s_ha_vip_holders{cluster="lab",family="ipv4"} 1.0' in page
        assert f'k8s_ha_vip_holder{{cluster="lab",family="ipv6",node="{M1}"}} 1.0' in page
        assert 'k8s_ha_api_up{cluster="lab",family="ipv6",node="k8s-node-01",role="worker"} 1.0' in page
    finally:
        exp.terminate()
        exp.wait(10)

    async def monitor() -> str:
        app = MonitorApp(dual, policy_for(dual), interval=0.5)
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: app.status is not None and app.status.holders6 == [M1], 30, "the monitor")
            return str(app.query_one("#banner", Static).render())
    assert f"VIP {dual.vip} + {dual.vip6}  →  {M1}" in __import__("asyncio").run(monitor())


def test_the_watch_login_sees_each_vips_state_and_every_priority_as_root_does(lab, dual, tmp_path):
    """Without keepalived's dump a watch login reads the notify record: a dual stack's has a line
    per instance and one for the sync group (which carries no priority)."""
    res = tool("access", "grant", "watch", WATCH_USER, "-t", str(lab.topology_path), "--yes")
    assert res.returncode == 0, res.stderr

    def seen(topology: str) -> dict:
        doc = json.loads(tool("status", "-t", topology, "--json").stdout)
        return {n["name"]: (n["vrrp_state"], n["vrrp_state6"], n["effective_priority"], n["holds_vip"], n["holds_vip6"])
                for n in doc["nodes"] if n.get("role") == "master"}

    watch = as_user(lab, tmp_path, WATCH_USER)
    expected = {M1: ("MASTER", "MASTER", 150, True, True), M2: ("BACKUP", "BACKUP", 140, False, False),
                M3: ("BACKUP", "BACKUP", 130, False, False)}
    assert wait_for(lambda: seen(watch) == expected == seen(str(lab.topology_path)), 15,
                    "the watch login's view of both instances to be root's")


def test_failover_moves_both_vips_make_before_break_and_maintenance_off_brings_them_back(lab, dual):
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 20, "master-01")
    path = str(lab.topology_path)
    res = tool("failover", "-t", path, "--to", M2, "--yes")
    assert res.returncode == 0, res.stderr
    # it returned once master-02 held both and the API answered through each: no waiting here
    assert holders(dual, dual.vip) == [M2] and holders(dual, str(dual.vip6)) == [M2]
    assert all(readyz_from_here(vip, dual.frontend_port) for vip in dual.vips)
    res = tool("maintenance", "-t", path, M1, "off", "--yes")
    assert res.returncode == 0, res.stderr
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 15,
             "both VIPs back on master-01 (its priority, out of maintenance)")


def test_a_failover_drill_scores_clients_of_each_vip(lab, dual):
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 20, "master-01")
    res = tool("drill", "failover", "-t", str(lab.topology_path), "--yes", "--json", "--hold", "1")
    assert res.returncode == 0, res.stderr
    drill = json.loads(res.stdout)
    names = {c["name"]: c for c in drill["clients"]}
    assert {"k8s-node-01 (IPv4)", "k8s-node-01 (IPv6)", "this machine (IPv6)"} <= set(names)
    assert all(c["requests"] > 20 and c["scored"] for c in names.values())
    assert drill["final_holders"] == [M1]
    wait_for(lambda: holders(dual, str(dual.vip6)) == [M1], 10, "the IPv6 VIP back on master-01 too")


def test_discover_and_doctor_read_a_dual_stack_from_its_masters(lab, dual, tmp_path):
    out = tmp_path / "found.yaml"
    res = tool("discover", "--masters", ",".join(m.address for m in dual.masters), "--identity-file",
               str(dual.ssh.identity_file), "--known-hosts", str(dual.ssh.known_hosts), "-o", str(out))
    assert res.returncode == 0, res.stderr
    found = topology.load_topology(out)
    assert (found.vip, found.vip6, found.prefix6) == (dual.vip, dual.vip6, dual.prefix6)
    assert [m.address6 for m in found.masters] == [m.address6 for m in dual.masters]
    assert tool("doctor", "-t", str(out)).returncode == 0
    cut = "sed -i '/^vrrp_sync_group/,/^}/d' /etc/keepalived/keepalived.conf"  # a hand edit on master-03
    lab.ssh(M3, f"cp -p /etc/keepalived/keepalived.conf /root/saved.conf && {cut}")
    try:
        res = tool("doctor", "-t", str(out))
        assert res.returncode == 1 and "k8s-master-03: error D318:" in res.stdout, res.stdout
    finally:
        lab.ssh(M3, "mv -f /root/saved.conf /etc/keepalived/keepalived.conf")


def test_a_holder_off_the_network_takes_both_vips_to_the_same_successor_and_back(dual):
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 20, "master-01")
    cluster.fault(M1, "offline")
    try:
        wait_for(lambda: holders(dual, dual.vip, (M2, M3)) == [M2] and holders(dual, str(dual.vip6), (M2, M3)) == [M2],
                 10, "both VIPs on master-02")
        for vip in dual.vips:
            assert wait_for(lambda vip=vip: readyz_from_here(vip, dual.frontend_port), 15, f"the API through {vip}")
    finally:
        cluster.heal(M1, "offline")
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 15,
             "both VIPs back on master-01 (it has the top priority)")


def test_vrrp_drop_cuts_both_families_into_a_split_brain_status_names_each(lab, dual):
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 20, "master-01")
    cluster.fault(M2, "vrrp-drop")
    try:
        wait_for(lambda: holders(dual, dual.vip) == [M1, M2] and holders(dual, str(dual.vip6)) == [M1, M2], 10,
                 "master-02, deaf to VRRP of either family, claiming both VIPs too")
        code, doc = wait_for(lambda: (s := status(lab))[1]["split_brain"] and s, 10, "status to see it")
        assert code == 2 and doc["holders"] == doc["holders6"] == [M1, M2]
        assert [a for a in doc["alarms"] if a.startswith("SPLIT BRAIN")] == [
            f"SPLIT BRAIN: {M1}, {M2} hold or claim the VIP", f"SPLIT BRAIN: {M1}, {M2} hold or claim VIP6 {dual.vip6}"]
    finally:
        cluster.heal(M2, "vrrp-drop")
    wait_for(lambda: holders(dual, dual.vip) == [M1] and holders(dual, str(dual.vip6)) == [M1], 15,
             "master-02 stepping down in both families")


def test_an_ipv6_only_lab_deploys_its_vip_moves_fails_over_and_a_split_brain_shows(lab):
    six = up_and_deploy(lab, "ipv6")
    assert six.family == 6 and six.vip == "fd01:98:18::10" and six.vip6 is None
    assert all(":" in n.address for n in (*six.masters, *six.workers))
    wait_for(lambda: holders(six, six.vip) == [M1], 20, "the IPv6 VIP on master-01")
    assert wait_for(lambda: readyz_from_here(six.vip, six.frontend_port), 10, "the API through the IPv6 VIP")
    code, doc = wait_for(lambda: (s := status(lab))[1]["health"] == "healthy" and s, 20, "status: healthy")
    assert doc["vip"] == six.vip and doc["vip6"] is None and doc["holders"] == [M1] and doc["workers"][0]["api_via_vip"]
    cluster.fault(M1, "offline")
    try:
        wait_for(lambda: holders(six, six.vip, (M2, M3)) == [M2], 10, "the IPv6 VIP on master-02")
        assert wait_for(lambda: readyz_from_here(six.vip, six.frontend_port), 15, "the API through it again")
        assert wait_for(lambda: status(lab)[1]["holders"] == [M2], 15, "status: master-02 holds it")
    finally:
        cluster.heal(M1, "offline")
    wait_for(lambda: holders(six, six.vip) == [M1], 15, "the IPv6 VIP back on master-01")
    res = tool("failover", "-t", str(lab.topology_path), "--to", M3, "--yes")
    assert res.returncode == 0, res.stderr
    assert holders(six, six.vip) == [M3]  # it returned once master-03 held it and answered through it
    assert tool("maintenance", "-t", str(lab.topology_path), M1, "off", "--yes").returncode == 0
    wait_for(lambda: holders(six, six.vip) == [M1], 15, "the IPv6 VIP back on master-01 after maintenance")
    cluster.fault(M2, "vrrp-drop")
    try:
        code, doc = wait_for(lambda: (s := status(lab))[1]["split_brain"] and s, 15, "an IPv6 split brain in status")
        assert code == 2 and doc["holders"] == [M1, M2]
        assert f"SPLIT BRAIN: {M1}, {M2} hold or claim the VIP" in doc["alarms"]
    finally:
        cluster.heal(M2, "vrrp-drop")
    wait_for(lambda: holders(six, six.vip) == [M1], 15, "master-02 stepping down")
