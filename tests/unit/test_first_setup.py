"""A first-time setup: keepalived and HAProxy before `kubeadm init`. Not installed is not down —
from a node's answer, in the snapshot every front end reads, in deploy's verification, and in
what deploy prints next."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from test_tui import TOPO, bootstrapping, master, snap

from k8s_ha_tui.configs import kubeadm_steps, render
from k8s_ha_tui.remote import apiserver
from k8s_ha_tui.rollouts import deploy_steps, deploy_verify
from k8s_ha_tui.status.events import EventTracker
from k8s_ha_tui.status.model import BackendServer, Health

# --- the node's answer ---------------------------------------------------------------------------


def test_presence_from_the_evidence_kubeadm_leaves():
    assert apiserver.presence("READYZ 200\n") == apiserver.UP  # answering: up, whatever installed it
    assert apiserver.presence("MANIFEST\nREADYZ 000\n") == apiserver.DOWN  # kubeadm's manifest, no answer
    assert apiserver.presence("PROCESS\nREADYZ 000\n") == apiserver.DOWN  # an install without kubeadm
    assert apiserver.presence("LISTEN\nREADYZ 500 0\n") == apiserver.NOT_READY  # answers, but not 200
    assert apiserver.presence("LISTEN\nREADYZ 403 0\n") == apiserver.UP  # anonymous requests refused: it runs
    assert apiserver.presence("LISTEN\nREADYZ 127\n") == apiserver.DOWN  # no curl on the node: no verdict
    assert apiserver.presence("MANIFEST\nREADYZ 000 7\n") == apiserver.NOT_RUNNING  # its port refuses
    assert apiserver.presence("LISTEN\nREADYZ 000 28\n") == apiserver.HUNG  # takes the connection, silent
    assert apiserver.presence("MANIFEST\nREADYZ 000 35\n") == apiserver.DOWN  # TLS refused: another reason
    assert apiserver.presence("READYZ 000 7\n") == apiserver.NOT_INSTALLED  # refused, and nothing installed
    assert apiserver.presence("READYZ 000\n") == apiserver.NOT_INSTALLED
    assert apiserver.presence("READYZ\n") == apiserver.NOT_INSTALLED  # curl said nothing at all
    assert apiserver.presence("") == apiserver.UNKNOWN  # no answer is not evidence of absence
    assert apiserver.presence("MANIFEST\n") == apiserver.UNKNOWN  # cut short before the probe ended


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_presence_never_fails_on_garbage(text):
    assert apiserver.presence(text) in (apiserver.UP, *apiserver.FAILING, apiserver.NOT_INSTALLED, apiserver.UNKNOWN)


def test_the_probe_runs_in_a_shell_and_finds_nothing_here():
    """The real shell lines, on this machine (no apiserver on a closed port): not installed."""
    out = subprocess.run(["sh", "-c", apiserver.probe("127.0.0.1", 1)], capture_output=True, text=True).stdout
    assert apiserver.presence(out) == apiserver.NOT_INSTALLED, out


def test_deploys_probe_reads_the_apiserver_and_kubeadm():
    out = "UID 0\nMANIFEST\nREADYZ 000\nKUBEADM v1.31.2\n"
    state = deploy_steps.parse_probe(out, "198.18.0.10")
    assert (state.apiserver, state.kubeadm_version) == (apiserver.DOWN, "v1.31.2")
    bare = deploy_steps.parse_probe("UID 0\nREADYZ 000\nKUBEADM\n", "198.18.0.10")
    assert (bare.apiserver, bare.kubeadm_version) == (apiserver.NOT_INSTALLED, None)
    assert deploy_steps.parse_probe("UID 0\nKUBEADM ; rm -rf /\n", "x").kubeadm_version is None


# --- the snapshot ---------------------------------------------------------------------------------

def test_a_first_time_setup_is_degraded_not_critical_and_says_what_is_next():
    s = bootstrapping()
    assert s.bootstrap and s.health == Health.DEGRADED  # `status` exits 1
    assert s.alarms == []  # no API DOWN, no backends down: nothing is broken
    assert "kubeadm init on k8s-master-01" in s.notices[0]
    doc = s.as_dict()
    assert doc["bootstrap"] is True and [n["apiserver"] for n in doc["nodes"]] == ["not installed"] * 3


def test_while_masters_join_the_missing_ones_are_named_not_alarmed():
    s = bootstrapping("k8s-master-01")
    assert not s.bootstrap and s.health == Health.DEGRADED
    assert s.backends_down == [] and s.not_installed == ["k8s-master-02", "k8s-master-03"]
    assert "1 of 3 apiservers up" in s.notices[0] and "kubeadm join" in s.notices[0]
    assert bootstrapping(*(m.name for m in TOPO.masters)).health == Health.HEALTHY


def test_installed_but_all_down_is_an_outage_not_a_first_time_setup():
    down = tuple(BackendServer("apiserver", x.name, "DOWN", "L4CON", 0, 5, master=x.name) for x in TOPO.masters)
    masters = snap(*(master(i, vrrp_state="MASTER" if i == 0 else "BACKUP", holds_vip=i == 0, apiserver="down",
                            backends=down, api_via_vip=False) for i in range(3)))
    s = replace(masters, workers=tuple(replace(w, api_via_vip=False) for w in masters.workers))
    assert not s.bootstrap and s.health == Health.CRITICAL
    assert any("API DOWN" in a for a in s.alarms) and s.notices == []


def test_unknown_answers_do_not_make_a_first_time_setup():
    s = snap(*(master(i, apiserver="unknown") for i in range(3)))
    assert not s.bootstrap


def test_events_follow_kubeadm_init_and_the_joins():
    t = EventTracker()
    first = [e.text for e in t.update(bootstrapping())]
    assert any("first-time setup" in e for e in first)
    after_init = [e.text for e in t.update(bootstrapping("k8s-master-01", t=1001))]
    assert after_init == ["apiserver on k8s-master-01 is up", "1 of 3 apiservers up",
                          "every HAProxy sends to the apiserver on k8s-master-01", "API answers through the VIP"]
    joined = [e.text for e in t.update(bootstrapping("k8s-master-01", "k8s-master-02", t=1002))]
    assert joined == ["apiserver on k8s-master-02 is up", "2 of 3 apiservers up",
                      "every HAProxy sends to the apiserver on k8s-master-02"]
    assert [e.text for e in t.update(bootstrapping("k8s-master-01", "k8s-master-02", t=1003))] == []


# --- deploy's verification ----------------------------------------------------------------------

BOOT_OK = "FRONTEND listening\nVIPCONN 35\nACTIVE active active\nLOCAL 000\nVRRP BACKUP\nVIP 000\n"


def test_first_time_verification_checks_the_load_balancer_not_the_api():
    assert "/readyz" not in deploy_verify.verify_script(TOPO, bootstrap=True)  # no curl that cannot answer
    assert "/readyz" in deploy_verify.verify_script(TOPO) and "VIPCONN" not in deploy_verify.verify_script(TOPO)
    assert deploy_verify.verify_failure(BOOT_OK, TOPO, False, bootstrap=True) is None
    # the same answer from a cluster that has apiservers is a failure, as before
    assert "does not serve /readyz" in deploy_verify.verify_failure(BOOT_OK, TOPO, False)
    no_listen = BOOT_OK.replace("FRONTEND listening\n", "")
    assert "does not listen on the frontend port 8443" in deploy_verify.verify_failure(no_listen, TOPO, False,
                                                                                         bootstrap=True)
    refused = BOOT_OK.replace("VIPCONN 35", "VIPCONN 7")
    assert "does not accept connections (curl exit 7)" in deploy_verify.verify_failure(refused, TOPO, False,
                                                                                       bootstrap=True)
    assert "VRRP state is FAULT" in deploy_verify.verify_failure(BOOT_OK.replace("BACKUP", "FAULT"), TOPO, False,
                                                                 bootstrap=True)


def test_a_dual_stack_master_is_verified_through_each_vip_with_both_instances_alike():
    """Both VIPs answer, both instances in one state, no IPv6 VIP tentative or dadfailed; each
    failing alone is the reason (the facts are read from the answer; VRRP6 from keepalived's dump)."""
    from k8s_ha_tui.model import topology as tp

    dual = tp.topology_from_dict({**tp.topology_to_dict(TOPO), "vip6": "fd00::10", "vrrp": {"version": 3},
                                  "masters": [{**m.model_dump(exclude_none=True), "address6": f"fd00::{11 + i}"}
                                              for i, m in enumerate(TOPO.masters)]})
    script = deploy_verify.verify_script(dual)
    assert "'https://[fd00::10]:8443/readyz'" in script and "echo VIP6 " in script and "dadfailed" in script
    dump = ("------< VRRP Topology >------\n VRRP Instance = VI_51\n   State = MASTER\n   Virtual IP (1):\n"
            "     10.0.3.10/24 dev ens3 scope global\n VRRP Instance = VI6_51\n   State = {six}\n"
            "   Virtual IP (1):\n     fd00::10/64 dev ens3 scope global\n")
    ok = "ACTIVE active active\nLOCAL 200\nVIP 200\nVIP6 200\nVIPFLAGS \n@@data\n" + dump.format(six="MASTER")
    assert deploy_verify.verify_failure(ok, dual, False) is None
    assert "IPv6 instance is BACKUP and its IPv4 one MASTER" in deploy_verify.verify_failure(
        ok.replace("State = MASTER\n   Virtual IP (1):\n     fd00", "State = BACKUP\n   Virtual IP (1):\n     fd00"),
        dual, False)
    assert "an IPv6 VIP here is dadfailed" in deploy_verify.verify_failure(
        ok.replace("VIPFLAGS ", "VIPFLAGS dadfailed"), dual, False)
    assert "through the VIP [fd00::10]:8443 (HTTP 000)" in deploy_verify.verify_failure(
        ok.replace("VIP6 200", "VIP6 000"), dual, False)


def test_the_election_must_end_with_exactly_the_top_priority_master():
    names = [m.name for m in TOPO.masters]
    ok = {names[0]: "MASTER", names[1]: "BACKUP", names[2]: "BACKUP"}
    assert deploy_verify.election_failure(ok, TOPO, set()) is None
    two = {**ok, names[1]: "MASTER"}
    assert "2 masters in VRRP state MASTER" in deploy_verify.election_failure(two, TOPO, set())
    none = dict.fromkeys(names, "BACKUP")
    assert "0 masters" in deploy_verify.election_failure(none, TOPO, set())
    wrong = {names[0]: "BACKUP", names[1]: "MASTER", names[2]: "BACKUP"}
    assert f"expected {names[0]}" in deploy_verify.election_failure(wrong, TOPO, set())
    # the top master in maintenance: the next one is right
    assert deploy_verify.election_failure({**wrong, names[0]: "FAULT"}, TOPO, {names[0]}) is None


# --- what comes next: kubeadm ------------------------------------------------------------------

def test_the_config_api_follows_kubeadms_version():
    assert kubeadm_steps.api_for("v1.30.4") == "v1beta3"
    assert kubeadm_steps.api_for("v1.31.0") == "v1beta4"
    assert kubeadm_steps.api_for("v2.0.0") == "v1beta4"
    assert kubeadm_steps.api_for(None) is None and kubeadm_steps.api_for("garbage") is None


def test_the_kubeadm_config_puts_the_vip_in_front_and_in_the_certificate():
    for api in kubeadm_steps.APIS:
        init, cluster = yaml.safe_load_all(render.render_kubeadm_config(TOPO, api))
        assert init["apiVersion"] == cluster["apiVersion"] == f"kubeadm.k8s.io/{api}"
        assert init["kind"] == "InitConfiguration" and cluster["kind"] == "ClusterConfiguration"
        assert init["localAPIEndpoint"] == {"advertiseAddress": TOPO.masters[0].address,
                                            "bindPort": TOPO.apiserver_port}
        assert cluster["controlPlaneEndpoint"] == TOPO.control_plane_endpoint
        assert TOPO.vip in cluster["apiServer"]["certSANs"]


def test_next_steps_name_every_master_and_hold_no_secret():
    config = render.render_kubeadm_config(TOPO, "v1beta4")
    text = kubeadm_steps.next_steps(TOPO, config, "v1beta4", None, "topology.yaml")
    assert "sudo kubeadm init --config kubeadm-config.yaml --upload-certs" in text
    assert config.rstrip() in text and "kubeadm is not installed on k8s-master-01" in text
    assert "kubeadm.k8s.io/v1beta3" in text  # the other API is offered
    for m in TOPO.masters[1:]:
        assert f"{m.name}:  {kubeadm_steps.join_command(TOPO, m.name)}" in text
        assert f"--control-plane --certificate-key <key> --apiserver-advertise-address {m.address}" in text
    assert f"kubeadm join {TOPO.control_plane_endpoint} --token <token>" in text
    found = kubeadm_steps.next_steps(TOPO, config, "v1beta3", "v1.29.1")
    assert "kubeadm v1.29.1 found on k8s-master-01: config API v1beta3" in found


def rising(name: str, t: float):
    """Right after kubeadm init: the apiserver answers on its master, every HAProxy is still
    admitting it (one passing check of two), so nothing answers through the VIP yet."""
    base = bootstrapping(name, t=t)
    masters = tuple(replace(m, api_via_vip=False, backends=tuple(
        replace(b, status="DOWN 1/2") if b.master == name else b for b in m.backends)) for m in base.masters)
    return replace(base, masters=masters, workers=tuple(replace(w, api_via_vip=False) for w in base.workers))


def test_an_apiserver_being_admitted_is_no_outage_and_one_line_when_it_is_in():
    s = rising("k8s-master-01", 1001)
    assert s.api_down and s.api_starting and s.health == Health.DEGRADED
    assert not any("API DOWN" in a for a in s.alarms)
    assert "the API is starting" in s.notices[0]
    t = EventTracker()
    t.update(bootstrapping())
    assert [e.text for e in t.update(s)] == ["apiserver on k8s-master-01 is up", "1 of 3 apiservers up"]
    assert [e.text for e in t.update(rising("k8s-master-01", 1003))] == []  # no API DOWN, however long
    assert [e.text for e in t.update(bootstrapping("k8s-master-01", t=1004))] == [
        "every HAProxy sends to the apiserver on k8s-master-01", "API answers through the VIP"]
    # a real outage later is one: critical, after it has lasted
    down = replace(rising("k8s-master-01", 1010), masters=tuple(
        replace(m, backends=tuple(replace(b, status="DOWN", check_status="L4CON") for b in m.backends))
        for m in rising("k8s-master-01", 1010).masters))
    assert down.health == Health.CRITICAL
    t.update(down)
    assert [e.text for e in t.update(replace(down, taken_at=1012))] == ["API DOWN through the VIP 10.0.3.10:8443"]


def test_the_collectors_probe_runs_in_a_real_shell_and_leaves_no_temporary_file(tmp_path):
    """The whole master probe in sh on this machine, every address on loopback (a port nothing
    listens on): it parses, finds no apiserver, and removes the file its background probe used."""
    from k8s_ha_tui.status import poll

    local = TOPO.model_copy(update={"vip": "127.0.0.10", "apiserver_port": 1, "masters": [
        TOPO.masters[0].model_copy(update={"address": "127.0.0.11"})]})
    out = subprocess.run(["sh", "-c", poll.master_probe(local, local.masters[0])], capture_output=True, text=True,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TMPDIR": str(tmp_path)}, timeout=30)
    assert poll.master_status(local, local.masters[0], out.stdout, ()).apiserver == apiserver.NOT_INSTALLED
    assert list(tmp_path.iterdir()) == []
