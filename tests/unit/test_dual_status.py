"""A dual-stack cluster's status: each VIP's holders and instance from what real masters said
(recorded on `lab up --family dual`), a split brain or no holder per family, the VIPs apart, the
API through each VIP, and the collector following each VIP's address events."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from k8s_ha_tui.model.topology import topology_from_dict
from k8s_ha_tui.remote import answers
from k8s_ha_tui.remote.ssh import HostKeyPolicy
from k8s_ha_tui.status import cells, poll
from k8s_ha_tui.status.diagnosis import diagnose
from k8s_ha_tui.status.events import EventTracker
from k8s_ha_tui.status.model import ClusterStatus, Health, MasterStatus, WorkerStatus
from k8s_ha_tui.status.poll import master_status

FIX = Path(__file__).parent.parent / "fixtures" / "nodes"
DUAL = topology_from_dict({
    "name": "lab", "vip": "198.18.0.10", "vip6": "fd01:98:18::10", "interface": "eth0",
    "masters": [{"name": f"m{i}", "address": f"198.18.0.1{i}", "address6": f"fd01:98:18::1{i}"} for i in (1, 2, 3)],
    "workers": [{"name": "w1", "address": "198.18.0.21", "address6": "fd01:98:18::21"}],
    "vrrp": {"version": 3}}, "dual")
V4, V6 = DUAL.vip, str(DUAL.vip6)


def recorded(i: int) -> MasterStatus:
    return master_status(DUAL, DUAL.masters[i - 1], (FIX / f"dual-master-0{i}.probe").read_text(), ())


def test_each_vip_and_its_instance_from_a_real_dual_stack_master():
    holder, backup = recorded(1), recorded(2)
    assert (holder.holds_vip, holder.holds_vip6, holder.vrrp_state, holder.vrrp_state6) == (True, True, "MASTER", "MASTER")
    assert (backup.holds_vip, backup.holds_vip6, backup.vrrp_state, backup.vrrp_state6) == (False, False, "BACKUP", "BACKUP")
    assert holder.api_via_vip is True and holder.api_via_vip6 is True
    assert {i.name for i in holder.instances} == {"VI_51", "VI6_51"}


def test_an_ipv6_address_is_held_unless_its_duplicate_address_detection_failed():
    line = "2: eth0    inet6 {}/64 scope global {} \\       valid_lft forever preferred_lft forever"
    assert answers.holds_address(line.format(V6, "nodad"), V6)
    assert not answers.holds_address(line.format(V6, "dadfailed tentative"), V6)
    assert not answers.holds_address(line.format("fd01:98:18::100", "nodad"), V6)  # a longer address


def node(name: str, holds: bool = False, holds6: bool | None = None, **kw) -> MasterStatus:
    m = next(m for m in DUAL.masters if m.name == name)
    state = "MASTER" if holds else "BACKUP"
    return MasterStatus(name, m.address, True, keepalived="active", haproxy="active", check="GOOD",
                        vrrp_state=state, vrrp_state6=kw.pop("state6", state), holds_vip=holds,
                        holds_vip6=holds if holds6 is None else holds6, **{"api_via_vip": True, "api_via_vip6": True, **kw})


def cluster(*masters: MasterStatus, workers: tuple[WorkerStatus, ...] = ()) -> ClusterStatus:
    return ClusterStatus("lab", V4, 8443, 1000.0, masters, workers, vip6=V6)


def test_both_vips_on_one_master_is_healthy():
    snap = cluster(node("m1", True), node("m2"), node("m3"))
    assert snap.holders == snap.holders6 == ["m1"] and snap.health == Health.HEALTHY and snap.alarms == []
    assert cells.holders(snap) == "m1" and cells.vips(snap) == f"{V4} + {V6}"
    assert snap.as_dict()["holders6"] == ["m1"] and snap.as_dict()["vip6"] == V6


def test_a_split_brain_in_one_family_is_named_and_critical():
    snap = cluster(node("m1", True), node("m2", False, holds6=True, state6="MASTER"), node("m3"))
    assert snap.holders == ["m1"] and snap.holders6 == ["m1", "m2"] and snap.split_brain
    assert snap.alarms == [f"SPLIT BRAIN: m1, m2 hold or claim VIP6 {V6}"] and snap.health == Health.CRITICAL
    assert [d.code for d in diagnose(snap)][:1] == ["split-brain"]


def test_the_vips_apart_is_an_alarm_and_says_who_holds_which():
    snap = cluster(node("m1", True, holds6=False, state6="BACKUP"), node("m2", False, holds6=True, state6="MASTER"),
                   node("m3"))
    assert snap.vips_apart and not snap.split_brain and snap.health == Health.DEGRADED
    assert snap.alarms == [f"VIPS APART: m1 holds {V4}, m2 holds {V6} (the sync group should keep them on one master)"]
    assert cells.holders(snap) == "m1 (IPv4), m2 (IPv6)"
    assert cells.holds_vip(snap.masters[0]) == ("● IPv4 only", "warn")
    assert cells.vrrp(snap.masters[0]) == ("MASTER/BACKUP", "warn")
    codes = [d.code for d in diagnose(snap)]
    assert "vips-apart" in codes and "cut-off" not in codes and "split-brain" not in codes  # one master per VIP
    tracker = EventTracker()
    together = cluster(node("m1", True), node("m2"), node("m3"))
    told = [[e.text for e in tracker.update(replace(s, taken_at=t))]
            for t, s in ((0.0, together), (1.0, snap), (2.0, snap), (3.0, snap), (4.0, together))]
    assert told[1:] == [[], [], ["VIPS APART: m1 (IPv4), m2 (IPv6)"], ["the VIPs are together again on m1"]]


def test_no_holder_of_vip6_is_critical_and_points_at_duplicate_address_detection():
    snap = cluster(node("m1", True, holds6=False), node("m2"), node("m3"))
    assert snap.no_holder and snap.health == Health.CRITICAL
    assert snap.alarms == [f"NO HOLDER: no master holds VIP6 {V6}"]
    [d] = [d for d in diagnose(snap) if d.code == "no-holder"]
    assert V6 in d.cause and "dadfailed" in d.next


def test_the_api_down_through_one_vip_is_named_by_its_endpoint():
    worker = WorkerStatus("w1", "198.18.0.21", True, api_via_vip=True, api_via_vip6=False)
    snap = cluster(node("m1", True, api_via_vip6=False), node("m2", api_via_vip6=False), workers=(worker,))
    assert snap.alarms == [f"API DOWN through the VIP [{V6}]:8443"] and snap.health == Health.CRITICAL
    assert cells.api(worker) == ("IPv6 FAIL", "bad")


def test_an_ipv4_cluster_knows_nothing_of_a_second_family():
    m1 = replace(node("m1", True), vrrp_state6=None, holds_vip6=False, api_via_vip6=None)
    snap = ClusterStatus("lab", V4, 8443, 1000.0, (m1,))
    assert not snap.no_holder and snap.holders6 == [] and snap.alarms == [] and cells.holds_vip(m1) == ("● VIP", "good")


def test_the_collector_follows_each_vips_address_events():
    async def run() -> list[tuple[list[str], list[str]]]:
        shown: list[ClusterStatus] = []
        c = poll.Collector(DUAL, HostKeyPolicy(known_hosts=Path("/nonexistent")), census=False, on_snapshot=shown.append)
        for s, m in zip(c.sessions, (node("m1", True), node("m2"), node("m3"), WorkerStatus("w1", "", True)),
                        strict=True):
            s.last = m
        c._vip_event(c.sessions[0], False, six=True)  # the IPv6 VIP leaves m1 ...
        c._vip_event(c.sessions[1], True, six=True)  # ... for m2; the IPv4 one stays
        assert c.settler is not None
        await c.settler
        return [(snap.holders, snap.holders6) for snap in shown]
    assert asyncio.run(run()) == [(["m1"], ["m2"])]


def test_a_failover_waits_for_both_vips_and_is_refused_while_they_are_apart():
    from k8s_ha_tui.errors import Refused
    from k8s_ha_tui.operations import actions
    together = cluster(node("m1", True), node("m2", base_priority=140), node("m3", base_priority=130))
    assert actions.failover_target(together) == ("m1", "m2")
    probe = actions.holder_probe(together.vips, 8443)
    assert f"grep -q ' {V4}/'" in probe and f"grep -q ' {V6}/'" in probe and f"'https://[{V6}]:8443/readyz'" in probe
    apart = cluster(node("m1", True, holds6=False, state6="BACKUP"), node("m2", False, holds6=True, state6="MASTER"))
    try:
        actions.failover_target(apart)
    except Refused as exc:
        assert "the VIPs are apart (m1 holds 198.18.0.10, m2 holds fd01:98:18::10)" in str(exc)
    else:
        raise AssertionError("a failover of half the VIPs was not refused")


def test_with_keepalived_stopped_the_election_is_judged_on_ipv6_addresses_too():
    from k8s_ha_tui.operations import actions
    six = [replace(node(f"m{i}", i == 1), address=f"fd01::{i}", vrrp_state6=None, holds_vip6=False,
                   base_priority=100, effective_priority=100) for i in (1, 2, 3)]
    snap = ClusterStatus("six", "fd01::10", 8443, 1000.0, tuple(six))
    assert actions.stop_failover_target(snap, None) == ("m1", "m3")  # a tie: the higher address


def test_events_follow_each_vips_api_and_vip6_alone_unheld():
    tracker = EventTracker()
    ok = cluster(node("m1", True), node("m2"), node("m3"))
    v4_down = cluster(node("m1", True, api_via_vip=False), node("m2", api_via_vip=False), node("m3", api_via_vip=False))
    both_down = cluster(*(replace(m, api_via_vip6=False) for m in v4_down.masters))
    v6_down = cluster(*(replace(m, api_via_vip=True) for m in both_down.masters))
    unheld = cluster(node("m1", True, holds6=False), node("m2"), node("m3"))
    told = [[e.text for e in tracker.update(replace(s, taken_at=t))] for t, s in (
        (0.0, ok), (1.0, v4_down), (3.0, v4_down), (4.0, both_down), (6.0, v6_down), (7.0, v6_down), (8.0, ok),
        (9.0, unheld), (11.0, unheld), (12.0, ok))]
    assert told[1:] == [[], ["API DOWN through the VIP 198.18.0.10:8443"],
                        [f"API DOWN through the VIP [{V6}]:8443"], ["API answers through the VIP 198.18.0.10:8443 again"],
                        [], ["API answers through the VIP again"], [], [f"NO HOLDER of VIP6 {V6}"],
                        [f"VIP6 {V6} held again by m1"]]


def test_an_ipv6_masters_backends_are_matched_by_address_in_brackets():
    six = topology_from_dict({"name": "six", "vip": "fd00::10", "masters": [
        {"name": "a", "address": "fd00::11"}, {"name": "b", "address": "fd00::12"}], "vrrp": {"version": 3}}, "six")
    stat = ("# pxname,svname,status,check_status,addr\n"
            "apiserver,a,UP,L7OK,[fd00::11]:6443\napiserver,b,DOWN,L4CON,[fd00::12]:6443\n")
    m = poll.answered(six, six.masters[0], "@@services\nactive active\n", stat)
    assert [(b.server, b.master) for b in m.backends] == [("a", "a"), ("b", "b")]


def test_maintenance_on_either_holder_is_refused_while_the_vips_are_apart():
    from k8s_ha_tui.errors import Refused
    from k8s_ha_tui.operations import actions
    apart = cluster(node("m1", True, holds6=False, state6="BACKUP"), node("m2", False, holds6=True, state6="MASTER"),
                    node("m3"))
    for name in ("m1", "m2"):
        try:
            actions.check_maintenance(apart, name, True)
        except Refused as exc:
            assert "the VIPs are apart" in str(exc)
        else:
            raise AssertionError(f"maintenance on {name} was not refused while the VIPs are apart")


def as_watch(probe: str, notify: str) -> str:
    """A root probe's answer as the watch login gets it: no keepalived dump, this notify record."""
    head, _, rest = probe.partition("@@notify\n")
    _, _, rest = rest.partition("@@maintenance\n")
    before_data, _, after = rest.partition("@@data\n")
    return f"{head}@@notify\n{notify}@@maintenance\n{before_data}@@data\n@@lock\n{after.partition('@@lock')[2]}"


def test_the_watch_login_reads_each_instance_s_line_of_a_dual_stack_record():
    probe = (FIX / "dual-master-01.probe").read_text()
    record = ("1796293379.28 INSTANCE VI_51 MASTER 151\n1796293379.29 GROUP VG_51 MASTER 0\n"
              "1796293379.30 INSTANCE VI6_51 BACKUP 150\n")
    m = master_status(DUAL, DUAL.masters[0], as_watch(probe, record), ())
    assert not m.instances  # no dump: everything below comes from the record
    assert (m.vrrp_state, m.effective_priority, m.vrrp_state6, m.last_transition) == ("MASTER", 151, "BACKUP", 1796293379.28)
    # a record written before the script kept a line per name: the group's state, no priority
    old = master_status(DUAL, DUAL.masters[0], as_watch(probe, "1796293379.28 GROUP VG_51 MASTER 0\n"), ())
    assert (old.vrrp_state, old.effective_priority, old.vrrp_state6) == ("MASTER", None, "MASTER")
