"""The diagnosis rules on recorded node answers: what the lab's real daemons said at the moment
each fault was diagnosed (tests/lab/test_diagnosis.py records them with K8S_HA_RECORD), replayed
without a lab; and the rules' own edges on snapshots built by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.errors import Refused
from k8s_ha_tui.model.topology import load_topology
from k8s_ha_tui.operations import actions
from k8s_ha_tui.status.diagnosis import CLUSTER, diagnose, document
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, MasterStatus, WorkerStatus
from k8s_ha_tui.status.poll import answered, worker_status

RECORDED = Path(__file__).parent / "recorded"
TOPO = load_topology(RECORDED / "topology.yaml")
CASES = sorted(p for p in RECORDED.glob("*.json"))


def replay(case: dict) -> ClusterStatus:
    masters, workers = [], []
    for node in (*TOPO.masters, *TOPO.workers):
        said, error = case["answers"][node.name]
        is_master = node in TOPO.masters
        if said is None:
            cls = MasterStatus if is_master else WorkerStatus
            status = cls(node.name, node.address, False, 1000.0, error)
        else:
            status = answered(TOPO, node, *said) if is_master else worker_status(node, said[0])
        (masters if is_master else workers).append(status)
    return ClusterStatus(TOPO.name, TOPO.vip, TOPO.frontend_port, 1001.0, tuple(masters), tuple(workers))


def test_every_fault_kind_is_recorded_on_the_holder_and_a_backup():
    assert len(CASES) == 18, [p.name for p in CASES]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_recorded_answers_give_the_diagnosis_the_lab_saw(path):
    case = json.loads(path.read_text())
    found = diagnose(replay(case))
    mine = [d for d in found if d.node == case["node"] and d.code == case["code"]]
    assert mine, [d.line() for d in found]
    assert all(d.evidence and d.next for d in found)
    assert not [d for d in found if d.code == case["code"] and d.node not in (case["node"], CLUSTER)]


def test_split_brain_names_the_claimant_nobody_hears_and_the_remedy_is_allowed():
    case = json.loads((RECORDED / "vrrp-drop-holder.json").read_text())
    snap = replay(case)
    cut = next(d for d in diagnose(snap) if d.code == "cut-off")
    assert cut.node == "k8s-master-01" and cut.remedy == ("maintenance", "k8s-master-01", "on")
    assert any("k8s-master-03: BACKUP, keepalived hears adverts from k8s-master-02" in e for e in cut.evidence)
    question = actions.Request("maintenance", "k8s-master-01", "on").describe(snap)
    assert "ends the split brain" in question and "k8s-master-02 keeps it" in question
    with pytest.raises(Refused, match="split brain"):  # moving the VIP on purpose is still refused
        actions.Request("failover").describe(snap)


def test_the_hung_apiserver_is_told_from_one_that_is_not_running():
    hung = replay(json.loads((RECORDED / "apiserver-hang-backup.json").read_text()))
    dead = replay(json.loads((RECORDED / "apiserver-down-backup.json").read_text()))
    assert hung.master("k8s-master-03").apiserver == "hung" and dead.master("k8s-master-03").apiserver == "not running"
    hung_d = next(d for d in diagnose(hung) if d.node == "k8s-master-03")
    assert "its own /readyz: hung" in hung_d.evidence  # HAProxy says L6TOUT only once its check times out
    assert any("L4CON" in e for e in next(d for d in diagnose(dead) if d.node == "k8s-master-03").evidence)


def master(i: int, **kw) -> MasterStatus:
    m = TOPO.masters[i]
    base = dict(keepalived="active", haproxy="active", vrrp_state="BACKUP", base_priority=150 - 10 * i,
                effective_priority=150 - 10 * i, topology_priority=150 - 10 * i, check="GOOD", apiserver="up",
                hears=TOPO.masters[0].address)
    base.update(kw)
    return MasterStatus(m.name, m.address, True, **base)


def cluster(*masters: MasterStatus) -> ClusterStatus:
    return ClusterStatus(TOPO.name, TOPO.vip, TOPO.frontend_port, 1000.0, masters)


def test_a_split_brain_without_a_backup_to_tell_names_both_and_offers_the_lower_one():
    snap = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None),
                   master(1, vrrp_state="MASTER", holds_vip=True, hears=None))
    (d,) = diagnose(snap)
    assert d.code == "split-brain" and d.node == CLUSTER and d.remedy == ("maintenance", "k8s-master-02", "on")


def test_a_drained_apiserver_is_out_on_purpose_with_the_way_back():
    drained = BackendServer("b", "k8s-master-02", "DRAIN", "L7OK", 3, 10, "198.18.0.12:6443", "k8s-master-02")
    snap = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None, backends=(drained,)), master(1))
    (d,) = diagnose(snap)
    assert (d.node, d.code, d.severity) == ("k8s-master-02", "backend-out", "warning") and "backend" in d.next


def test_the_json_document_has_the_diagnosis_list():
    snap = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None), master(1, apiserver="hung"))
    doc = document(snap)
    (d,) = doc["diagnosis"]
    assert set(d) >= {"node", "cause", "evidence", "next"} and d["node"] == "k8s-master-02"
    json.dumps(doc)


STATES = st.sampled_from(["MASTER", "BACKUP", "FAULT", "STOP", "UNKNOWN"])
SERVICES = st.sampled_from(["active", "inactive", "failed", "unknown"])
APISERVERS = st.sampled_from(["up", "not running", "hung", "not ready", "down", "not installed", "unknown"])


@st.composite
def snapshots(draw):
    masters = []
    for i in range(3):
        if draw(st.booleans()) and draw(st.booleans()):
            m = TOPO.masters[i]
            masters.append(MasterStatus(m.name, m.address, False, 1.0, draw(st.sampled_from([None, "timed out"]))))
            continue
        masters.append(master(i, vrrp_state=draw(STATES), keepalived=draw(SERVICES), haproxy=draw(SERVICES),
                              apiserver=draw(APISERVERS), holds_vip=draw(st.booleans()),
                              maintenance=draw(st.booleans()), base_priority=draw(st.sampled_from([130, 140, 150])),
                              hears=draw(st.sampled_from([None, *[m.address for m in TOPO.masters], "garbage"])),
                              api_via_vip=draw(st.sampled_from([None, True, False]))))
    return cluster(*masters)


@settings(max_examples=300, deadline=None)
@given(snapshots())
def test_every_alarm_has_a_diagnosis_and_the_rules_never_fail(snap):
    found = diagnose(snap)
    if snap.alarms:
        assert found, snap.alarms
    for d in found:
        assert d.node and d.cause and d.next and d.severity in ("critical", "warning")
        assert d.node == CLUSTER or snap.master(d.node) is not None


def test_restart_is_refused_where_it_would_leave_no_holder_or_makes_no_sense():
    alone = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None),
                    master(1, vrrp_state="FAULT", maintenance=True), master(2, vrrp_state="FAULT", maintenance=True))
    with pytest.raises(Refused, match="would leave no holder"):
        actions.Request("restart", "k8s-master-01", "keepalived").describe(alone)
    assert "connections through the VIP are cut once" in \
        actions.Request("restart", "k8s-master-01", "haproxy").describe(alone)  # the VIP stays: allowed
    with pytest.raises(Refused, match="unknown service"):
        actions.Request("restart", "k8s-master-01", "nginx").describe(alone)
    lost = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None), master(1),
                   MasterStatus(TOPO.masters[2].name, TOPO.masters[2].address, False))
    with pytest.raises(Refused, match="unreachable"):
        actions.Request("restart", "k8s-master-03", "haproxy").describe(lost)
    assert "may come back by priority" in actions.Request("restart", "k8s-master-01", "keepalived").describe(lost)


def test_a_crashed_keepalived_leaves_its_vip_which_is_no_cut_off():
    """SIGKILL leaves the VIP on the interface; once the next master takes over, two hold it."""
    snap = cluster(master(0, keepalived="inactive", vrrp_state="STOP", holds_vip=True, hears=None),
                   master(1, vrrp_state="MASTER", holds_vip=True, hears=None), master(2, hears=TOPO.masters[1].address))
    codes = {(d.node, d.code) for d in diagnose(snap)}
    assert ("k8s-master-01", "leftover-vip") in codes and ("k8s-master-01", "keepalived-down") in codes
    assert not any(code in ("cut-off", "split-brain") for _, code in codes)
    leftover = next(d for d in diagnose(snap) if d.code == "leftover-vip")
    assert leftover.remedy == ("restart", "k8s-master-01", "keepalived")


def test_maintenance_on_the_claimant_the_others_follow_is_refused_with_the_way_out():
    snap = replay(json.loads((RECORDED / "vrrp-drop-holder.json").read_text()))
    with pytest.raises(Refused, match="the other masters follow k8s-master-02") as refused:
        actions.Request("maintenance", "k8s-master-02", "on").describe(snap)
    assert refused.value.way_out == "maintenance k8s-master-01 on"


def test_an_unreachable_master_the_backups_still_hear_most_likely_holds_the_vip():
    snap = cluster(MasterStatus(TOPO.masters[0].name, TOPO.masters[0].address, False, 1.0, "timed out"),
                   master(1), master(2))
    found = {d.code: d for d in diagnose(snap)}
    assert found["no-holder"].severity == "warning" and "most likely holds it" in found["no-holder"].cause
    assert any("adverts still arrive" in e for e in found["unreachable"].evidence)


def test_an_apiserver_haproxy_is_admitting_again_is_rising_not_refused():
    rising = BackendServer("b", "k8s-master-02", "DOWN 1/2", "L7OK", 3, 1, "198.18.0.12:6443", "k8s-master-02")
    snap = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None, backends=(rising,)), master(1))
    (d,) = diagnose(snap)
    assert (d.node, d.code) == ("k8s-master-02", "backend-rising")


def test_keepalived_stopped_for_maintenance_on_purpose_is_maintenance_not_a_crash():
    from k8s_ha_tui.remote.auditlog import AuditEntry
    done = AuditEntry("2026-11-30T10:00:00+0000", "op@host", "lab", "maintenance on", "k8s-master-03",
                      "ok: on: keepalived stopped")
    snap = cluster(master(0, vrrp_state="MASTER", holds_vip=True, hears=None, audit=(done,)), master(1),
                   master(2, keepalived="inactive", vrrp_state="STOP", audit=(done,)))
    (d,) = diagnose(snap)
    assert (d.node, d.code) == ("k8s-master-03", "maintenance") and "--method stop" in d.next


def test_a_latin1_comment_in_keepalived_conf_is_read_as_the_daemons_read_it(tmp_path):
    """keepalived -t accepts it; lint used to call the file unreadable (the collector's side of it
    is tests/lab/test_diagnosis.py's: a node's answer with such a byte in it)."""
    import subprocess
    import sys

    conf = tmp_path / "keepalived.conf"
    conf.write_bytes(b"# r\xe9seau du caf\xe9\nvrrp_instance VI_1 {\n  priority 100\n  virtual_router_id 51\n}\n")
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lint", "--keepalived", str(conf)], capture_output=True,
                         text=True)
    assert res.returncode != 2 and "not UTF-8" not in res.stderr, res.stderr
