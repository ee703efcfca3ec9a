"""Parsers and snapshot logic: real node output in, the right facts out; garbage never raises."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.operations import actions
from k8s_ha_tui.remote import answers, keepalived
from k8s_ha_tui.status import cells, parse
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, Health, MasterStatus, WorkerStatus, current_claims
from k8s_ha_tui.status.poll import master_status
from k8s_ha_tui.wizard import defaults_topology

FIX = Path(__file__).parent.parent / "fixtures" / "nodes"


def test_keepalived_data_dump():
    d = keepalived.keepalived_data((FIX / "keepalived.data").read_text())
    assert d["state"] == "BACKUP" and d["base_priority"] == 140 and d["effective_priority"] == 140
    assert d["check"] == "GOOD" and d["instance"] == "VI_51" and d["last_transition"] > 1.7e9


def test_show_stat_by_header_name():
    servers = parse.show_stat((FIX / "show_stat.csv").read_text())
    assert [s.server for s in servers] == ["k8s-master-01", "k8s-master-02", "k8s-master-03"]
    assert all(s.backend == "apiserver" and s.status == "UP" and s.check_status == "L7OK" for s in servers)
    assert all(isinstance(s.check_duration_ms, int) for s in servers)


def test_servers_map_to_masters_by_address_not_name():
    rows = ("# pxname,svname,status,check_status,addr\n"
            "kube_api,FRONTEND,OPEN,,\n"
            "kube_api_be,cp-a,UP,L7OK,10.0.3.11:6443\n"
            "kube_api_be,cp-b,DOWN,L4CON,10.0.3.12:6443\n"
            "kube_api_be,cp-x,UP,L7OK,10.0.3.99:6443\n"
            "kube_api_be,m3,UP,L7OK,10.0.3.13:7443\n"
            "old,m2,UP,L7OK,\n")
    masters = {"10.0.3.11:6443": "m1", "10.0.3.12:6443": "m2", "10.0.3.13:6443": "m3"}
    found = parse.attach_masters(parse.show_stat(rows), masters, {"m1", "m2", "m3"})
    assert [(b.server, b.master) for b in found] == [
        ("cp-a", "m1"), ("cp-b", "m2"), ("cp-x", None), ("m3", None), ("m2", "m2")]
    snap = cluster(master("n1", backends=found))
    assert snap.backends_down == ["n1→m2"]  # cp-x (none of ours) raises no alarm
    assert [b.server for b in snap.masters[0].backends_of("m1")] == ["cp-a"]


def test_master_status_from_a_whole_probe():
    topo = defaults_topology()
    out = "\n".join(["@@services", "active active", "@@addr",
                     "2: ens3    inet 10.0.3.11/24 brd 10.0.3.255 scope global ens3",
                     "2: ens3    inet 10.0.3.10/24 scope global secondary ens3",
                     "@@notify", "1795691731.5 INSTANCE VI_51 MASTER 150", "@@maintenance", "0", "@@boost", "",
                     "@@data", "", "@@api", "200"])
    m = master_status(topo, topo.masters[0], out, ())
    assert m.holds_vip and m.vrrp_state == "MASTER" and m.api_via_vip is True and not m.maintenance
    assert m.effective_priority == 150 and m.base_priority == 150


def test_stale_state_is_not_trusted_when_keepalived_is_stopped():
    topo = defaults_topology()
    out = "@@services\ninactive active\n@@notify\n1795691731.5 INSTANCE VI_51 MASTER 150\n"
    assert master_status(topo, topo.masters[0], out, ()).vrrp_state == "STOP"


@settings(max_examples=200, deadline=None)
@given(garbage=st.text(max_size=400))
def test_garbage_from_a_node_never_raises(garbage):
    topo = defaults_topology()
    m = master_status(topo, topo.masters[0], garbage, parse.show_stat(garbage))
    assert m.vrrp_state in ("MASTER", "BACKUP", "FAULT", "STOP", "INIT", "UNKNOWN")
    keepalived.keepalived_data(garbage)
    answers.flag_file(garbage)


def master(name, **kw) -> MasterStatus:
    base = dict(address=f"10.0.3.{11 + int(name[-1])}", reachable=True, keepalived="active", haproxy="active",
                vrrp_state="BACKUP", base_priority=150 - 10 * int(name[-1]), check="GOOD",
                backends=(BackendServer("apiserver", "a", "UP", "L7OK", 1, 5),),
                tracks_maintenance=True, tracks_boost=True)
    base.update(kw)
    return MasterStatus(name=name, **base)


def cluster(*masters, workers=()) -> ClusterStatus:
    return ClusterStatus("c", "10.0.3.10", 8443, 0.0, tuple(masters), tuple(workers))


def test_health_and_alarms():
    ok = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), master("m1"))
    assert ok.health is Health.HEALTHY and ok.holders == ["m0"] and not ok.alarms
    split = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), master("m1", vrrp_state="MASTER", holds_vip=True))
    assert split.split_brain and split.health is Health.CRITICAL and "SPLIT BRAIN" in split.alarms[0]
    claim = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), master("m1", vrrp_state="MASTER"))
    assert claim.split_brain
    none = cluster(master("m0"), master("m1"))
    assert none.no_holder and none.health is Health.CRITICAL
    lost = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), MasterStatus("m1", "10.0.3.12", False),
                   workers=(WorkerStatus("w", "10.0.3.21", True, api_via_vip=True),))
    assert lost.health is Health.DEGRADED and lost.unreachable == ["m1"]
    down = cluster(master("m0", vrrp_state="MASTER", holds_vip=True, api_via_vip=False),
                   workers=(WorkerStatus("w", "10.0.3.21", True, api_via_vip=False),))
    assert down.api_down and down.health is Health.CRITICAL
    dead_lb = cluster(master("m0", vrrp_state="FAULT", haproxy="inactive", check="BAD"),
                      master("m1", vrrp_state="MASTER", holds_vip=True))
    assert dead_lb.health is Health.DEGRADED and "m0: haproxy inactive, VRRP FAULT" in dead_lb.alarms
    planned = cluster(master("m0", vrrp_state="FAULT", maintenance=True), master("m1", vrrp_state="MASTER", holds_vip=True))
    assert planned.impaired == [] and planned.alarms == ["m0 in maintenance"]
    d = lost.as_dict()
    assert {"vip", "holders", "split_brain", "nodes", "workers"} <= set(d)
    assert {"name", "role", "reachable", "vrrp_state", "effective_priority", "holds_vip", "maintenance",
            "backends"} <= set(d["nodes"][0])


def test_a_claim_older_than_anothers_beginning_waits_for_its_next_answer():
    """The holder that dropped off the network (last heard at 10) beside its successor (holds
    since 12): only the successor counts, and the old one is shown as unconfirmed; once the old
    one is heard again (at 12.2) it is a split brain."""
    gone = master("m0", vrrp_state="MASTER", holds_vip=True, seen_at=10.0, vip_seen_at=10.0)
    new = master("m1", vrrp_state="MASTER", holds_vip=True, seen_at=12.1, vip_seen_at=12.0, vip_since=12.0,
                 master_since=12.1)
    snap = cluster(gone, new)
    assert snap.holders == ["m1"] and snap.claimants == ["m1"] and not snap.split_brain
    assert snap.unconfirmed == ["m0"] and snap.health is Health.HEALTHY
    assert cells.master_row(gone, unconfirmed=True)[4] == ("VIP?", "warn")  # the monitor's row says so
    heard = cluster(replace(gone, seen_at=12.2, vip_seen_at=12.2), new)
    assert heard.holders == ["m0", "m1"] and heard.split_brain and heard.unconfirmed == []
    # a one-shot status knows no beginnings: both count, as before
    assert cluster(master("m0", vrrp_state="MASTER"), master("m1", vrrp_state="MASTER")).split_brain


def test_no_holder_with_a_master_lost_says_it_may_be_that_one():
    snap = cluster(master("m0"), MasterStatus("m1", "10.0.3.12", False))
    assert snap.no_holder and "NO HOLDER: no reachable master holds the VIP (m1 unreachable)" in snap.alarms


claim_times = st.tuples(st.floats(0, 100), st.floats(0, 10))  # (since, how long after it last heard)


@given(st.lists(st.one_of(st.none(), claim_times), min_size=1, max_size=5))
def test_current_claims_never_hide_every_claim_nor_a_claim_heard_after_every_beginning(raw):
    claims = []
    for i, times in enumerate(raw):
        since, after = times if times is not None else (None, 0.0)
        claims.append((f"m{i}", since, (since or 50.0) + after))  # heard at or after its beginning
    counted = current_claims(claims)
    assert counted  # someone's word is always the newest
    newest = max((since for _, since, _ in claims if since is not None), default=None)
    for name, _since, seen in claims:
        if newest is None or seen >= newest:
            assert name in counted  # heard since every other claim began: it counts



def test_interlocks():
    snap = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), master("m1"), master("m2"))
    assert actions.failover_target(snap) == ("m0", "m1")
    assert actions.failover_target(snap, "m2") == ("m0", "m2")
    only = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), master("m1", maintenance=True),
                   MasterStatus("m2", "10.0.3.14", False))
    with pytest.raises(actions.Refused, match="no other master is reachable, healthy and out of maintenance"):
        actions.failover_target(only)
    with pytest.raises(actions.Refused, match="last master that can hold the VIP"):
        actions.check_maintenance(only, "m0", True)
    actions.check_maintenance(only, "m1", False)
    # Servers called anything: what counts is the master they send to.
    one_up = cluster(master("m0", vrrp_state="MASTER", holds_vip=True, backends=(
        BackendServer("kube", "cp-a", "UP", "L7OK", 1, 5, master="m0"),
        BackendServer("kube", "cp-b", "DOWN", "L4CON", 1, 5, master="m1"))), master("m1"))
    with pytest.raises(actions.Refused, match="m0 is the last healthy apiserver"):
        actions.check_backend(one_up, "m0", "drain")
    actions.check_backend(one_up, "m1", "maint")
    actions.check_backend(one_up, "m0", "ready")
    with pytest.raises(actions.Refused, match="no master named 'cp-a'"):
        actions.check_backend(one_up, "cp-a", "drain")
    lonely = cluster(master("m0", backends=(BackendServer("kube", "x", "UP", "L7OK", 1, 5, master=None),)))
    with pytest.raises(actions.Refused, match="no HAProxy server sends to m0's apiserver"):
        actions.check_backend(lonely, "m0", "ready")
    assert issubclass(actions.Refused, UserError)


def test_actions_know_what_a_hand_made_node_cannot_do():
    hand = dict(tracks_maintenance=False, tracks_boost=False)
    snap = cluster(master("m0", vrrp_state="MASTER", holds_vip=True, **hand),
                   master("m1", effective_priority=110, **hand), master("m2", effective_priority=100, **hand))
    with pytest.raises(actions.Refused, match="m1's running keepalived does not follow /etc/keepalived/priority_boost"
                                              ".*`deploy`.*--method stop"):
        actions.plan_failover(snap, None)
    with pytest.raises(actions.Refused, match="does not follow /etc/keepalived/maintenance"):
        actions.check_maintenance(snap, "m2", True)
    assert actions.plan_failover(snap, None, "stop") == ("m0", "m1")  # VRRP's choice: the highest priority
    with pytest.raises(actions.Refused, match="VRRP elects m1"):
        actions.plan_failover(snap, "m2", "stop")
    actions.check_maintenance(snap, "m2", True, "stop")
    stopped = cluster(master("m0", vrrp_state="MASTER", holds_vip=True, **hand),
                      master("m1", keepalived="inactive", vrrp_state="STOP", tracks_maintenance=None))
    with pytest.raises(actions.Refused, match="--method stop` starts it"):
        actions.check_maintenance(stopped, "m1", False)
    actions.check_maintenance(stopped, "m1", False, "stop")
    with pytest.raises(actions.Refused, match="nothing to start"):
        actions.check_maintenance(snap, "m1", False, "stop")
    text = actions.Request("failover", method="stop").describe(snap)
    assert "stop keepalived on m0" in text and "m1 takes the VIP" in text


def test_running_keepalived_says_what_it_tracks():
    ours = keepalived.running_keepalived((FIX / "keepalived.data").read_text())
    inst = ours.instance_for("198.18.0.10")
    assert inst.router_id == 51 and inst.vips == ("198.18.0.10/24",)
    assert ours.tracks_file(inst, "/etc/keepalived/maintenance", False)
    assert ours.tracks_file(inst, "/etc/keepalived/priority_boost", True)
    hand = keepalived.running_keepalived((FIX / "keepalived-handmade.data").read_text())
    inst = hand.instance_for("198.18.0.10")
    assert (inst.name, inst.version, inst.router_id, inst.advert_int, inst.base_priority) == ("KUBE_API", 2, 77, 1.0, 120)
    assert inst.unicast_peers == ("198.18.0.12", "198.18.0.13") and inst.auth_type == "SIMPLE_PASSWORD"
    assert inst.auth_digest and "lab-77ok" not in repr(hand)  # the password itself is never kept
    assert not hand.tracks_file(inst, "/etc/keepalived/maintenance", False)
    assert inst.tracked_scripts == (("check_api", -20),)


def test_audit_log_is_private_json_lines(tmp_path, monkeypatch):
    from k8s_ha_tui.operations import guard
    from k8s_ha_tui.remote import auditlog

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    guard.append_local(auditlog.entry("c", "failover", "a->b", auditlog.ok("done"), 1.234))
    path = tmp_path / "k8s-ha-tui" / "audit.log"
    assert path.stat().st_mode & 0o777 == 0o600
    import json
    entry = json.loads(path.read_text())
    assert entry["action"] == "failover" and entry["seconds"] == 1.234 and "@" in entry["who"]
    assert entry["result"] == "ok: done"


def test_events_carry_their_level():
    from k8s_ha_tui.status.events import SETTLE, EventTracker

    tracker = EventTracker()
    one = cluster(master("m0", vrrp_state="MASTER", holds_vip=True), master("m1"))
    assert [e.level for e in tracker.update(one)] == ["info"]
    split = ClusterStatus("c", "10.0.3.10", 8443, 1.0, (master("m0", vrrp_state="MASTER", holds_vip=True),
                                                          master("m1", vrrp_state="MASTER", holds_vip=True)))
    tracker.update(split)
    later = ClusterStatus("c", "10.0.3.10", 8443, 1.0 + SETTLE, split.masters)
    assert ("SPLIT BRAIN: m0, m1", "critical") in [(e.text, e.level) for e in tracker.update(later)]
    fault = ClusterStatus("c", "10.0.3.10", 8443, 5.0, (master("m0", vrrp_state="FAULT"),
                                                          master("m1", vrrp_state="MASTER", holds_vip=True)))
    events = {e.text: e.level for e in tracker.update(fault)}
    assert events["m0 VRRP MASTER → FAULT"] == "warning" and events["split brain over"] == "info"


def test_audit_entries_of_one_second_keep_the_order_they_were_written_in():
    """Two commands a second apart, read by two processes (root's status, a watch login's),
    showed their audit in two orders: a set's order depends on the process's string hashes."""
    from k8s_ha_tui.remote.auditlog import AuditEntry

    written = [AuditEntry("2026-12-03T21:38:44+0000", "root@vm", "c", f"action {i}", "all masters", "ok")
               for i in range(8)]
    early = AuditEntry("2026-12-03T21:38:43+0000", "root@vm", "c", "deploy", "all masters", "ok")
    snap = cluster(master("m0", audit=(early, *written)), master("m1", audit=tuple(written[3:])))
    assert snap.recent_audit == [early, *written]


def test_a_refusal_says_its_reason_and_way_out_as_data():
    """The monitor shows refusals in pieces without parsing their sentences."""
    from k8s_ha_tui.errors import Refused

    hand = master("m2", tracks_maintenance=False, tracks_boost=False)
    try:
        actions.require_tracks(hand, boost=True, what="a make-before-break failover")
    except Refused as exc:
        assert exc.reason == f"{hand.name} does not follow priority_boost"
        assert exc.way_out and "--method stop" in exc.way_out
        assert "does not follow /etc/keepalived/priority_boost" in str(exc)  # the CLI's one line, whole
    else:
        raise AssertionError("not refused")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("keepalived") is None,
                    reason="asks as root, with keepalived's signal numbers")
def test_a_keepalived_that_is_gone_is_not_waited_for_but_a_live_one_is(tmp_path):
    """A killed keepalived leaves its pid file: the dump script asked it anyway and waited a
    second for a dump that never comes (printing a blank line every 0.2 s as it waits)."""
    pid_file = tmp_path / "keepalived.pid"

    def dump() -> str:
        script = keepalived.keepalived_dump("DATA", str(tmp_path / "data"), str(pid_file))
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30).stdout

    gone = subprocess.Popen(["true"])
    gone.wait()
    pid_file.write_text(f"{gone.pid}\n")
    assert dump() == ""
    # alive, but it never writes the dump (it ignores the signal): waited for, as before
    signum = subprocess.run(["keepalived", "--signum=DATA"], capture_output=True, text=True).stdout.strip()
    alive = subprocess.Popen(["sh", "-c", f"trap '' {signum}; exec sleep 30"])  # ignored across exec
    try:
        pid_file.write_text(f"{alive.pid}\n")
        assert dump() == "\n" * 5
    finally:
        alive.kill()
        alive.wait()


SLOW_KEEPALIVED = """
import signal, sys, time
path, signum, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3]
asked = []
signal.signal(signum, lambda *_: asked.append(1))
open(ready, "w").close()
while True:
    if not asked:
        signal.pause()
    while asked:  # like keepalived: one dump for the signals that came while it wrote
        asked.clear()
        with open(path, "w") as f:
            for i in range(4):
                f.write(f"part {i}\\n" + "x" * 1000 + "\\n")
                f.flush()
                time.sleep(0.005)  # a busy node: the dump is written in pieces
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("keepalived") is None,
                    reason="asks as root, with keepalived's signal numbers")
def test_askers_at_once_each_get_a_whole_dump(tmp_path):
    """keepalived writes every dump to one file: a monitor, an exporter and a command asking at
    once removed or read each other's dump half-written (58 of 100 here before they took turns)."""
    from concurrent.futures import ThreadPoolExecutor

    from labtools import wait_for

    signum = subprocess.run(["keepalived", "--signum=DATA"], capture_output=True, text=True).stdout.strip()
    ready = tmp_path / "ready"
    stand_in = subprocess.Popen([sys.executable, "-c", SLOW_KEEPALIVED, str(tmp_path / "data"), signum, str(ready)])
    try:
        wait_for(ready.exists, 10, "the stand-in to listen for the signal")
        (tmp_path / "keepalived.pid").write_text(f"{stand_in.pid}\n")
        script = keepalived.keepalived_dump("DATA", str(tmp_path / "data"), str(tmp_path / "keepalived.pid"),
                                            str(tmp_path / "lock"))

        def dump(_: int) -> int:
            out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30).stdout
            return out.count("part ")

        with ThreadPoolExecutor(4) as pool:
            parts = list(pool.map(dump, range(40)))
    finally:
        stand_in.kill()
        stand_in.wait()
    assert parts == [4] * 40
