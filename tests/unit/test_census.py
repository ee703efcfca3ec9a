"""The segment census: tcpdump's VRRP lines (recorded from the lab's two clusters) into routers
per router id; a foreign router on this cluster's router id is a critical alarm with a diagnosis
and a free router id; the exporter's metrics; a password tcpdump prints is never kept."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from k8s_ha_tui.exporter import Watch, families
from k8s_ha_tui.model.topology import load_topology
from k8s_ha_tui.remote.vrrp_census import NO_TCPDUMP, STALE_ADVERTS, STALE_MIN_S, Census, free_router_id, parse_line
from k8s_ha_tui.status.diagnosis import diagnose
from k8s_ha_tui.status.model import ClusterStatus, Health, MasterStatus

RECORDED = Path(__file__).parent.parent / "fixtures" / "nodes" / "tcpdump-vrrp.txt"
LAB = {"vip": "198.18.0.10", "masters": ("198.18.0.11", "198.18.0.12", "198.18.0.13")}


def census_of(text: str, when: float = 1000.0) -> Census:
    c = Census()
    c.feed("k8s-master-01", text, when)
    return c


def snap(segment, router_id: int = 51) -> ClusterStatus:
    masters = tuple(MasterStatus(f"k8s-master-0{i + 1}", a, True, holds_vip=i == 0, vrrp_state="MASTER" if i == 0
                                 else "BACKUP", api_via_vip=True, keepalived="active", haproxy="active")
                    for i, a in enumerate(LAB["masters"]))
    return ClusterStatus("lab", LAB["vip"], 8443, 1001.0, masters, router_id=router_id, segment=segment)


def test_the_recorded_lines_of_two_clusters_become_one_router_per_address_and_router_id():
    routers = census_of(RECORDED.read_text()).advertisers(1000.0)
    by_id = {vrid: sorted(a.address for a in routers if a.vrid == vrid) for vrid in {a.vrid for a in routers}}
    assert set(by_id) == {51, 52}
    assert set(by_id[51]) <= set(LAB["masters"]) and set(by_id[52]) <= {"198.18.0.71", "198.18.0.72", "198.18.0.73"}
    holder = next(a for a in routers if a.vrid == 51)
    assert holder.vips == ("198.18.0.10",) and holder.version == 3 and holder.interval == 0.5


def test_a_password_tcpdump_prints_is_not_kept():
    line = ('    198.18.0.11 > 224.0.0.18: VRRPv2, Advertisement, vrid 77, prio 120, authtype simple, intvl 1s, '
            'length 20, addrs: 198.18.0.10 auth "s3cret!"')
    heard = parse_line(line)
    assert heard is not None and heard.vrid == 77 and heard.interval == 1.0
    assert "s3cret" not in repr(heard) and "s3cret" not in repr(asdict(census_of(line).advertisers(1000.0)[0]))


def test_neighbours_on_other_router_ids_are_information_not_alarms():
    status = snap(census_of(RECORDED.read_text()).advertisers(1000.0))
    assert not status.foreign_routers and status.health is Health.HEALTHY
    assert not any(d.code == "vrid-collision" for d in diagnose(status))


def test_a_foreign_router_on_our_router_id_is_critical_names_it_and_a_free_router_id():
    line = ("    198.18.0.73 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 150, intvl 50cs, length 12, "
            "addrs: 198.18.0.70")
    status = snap(census_of(RECORDED.read_text() + line + "\n").advertisers(1000.0))
    assert [a.address for a in status.foreign_routers] == ["198.18.0.73"]
    assert status.health is Health.CRITICAL
    assert any(x.startswith("ROUTER ID COLLISION: 198.18.0.73") for x in status.alarms)
    d = next(d for d in diagnose(status) if d.code == "vrid-collision")
    assert d.node == "198.18.0.73" and "198.18.0.70" in d.cause and "router id 53 is free" in d.next
    assert status.as_dict()["segment"] and any(not r["ours"] and r["vrid"] == 51 for r in status.as_dict()["segment"])
    metrics = {m.name: m for m in families([Watch(load_topology_for_lab(), status)])}
    assert [s.value for s in metrics["k8s_ha_vrrp_foreign_advertisers"].samples] == [1]


def test_one_of_our_masters_advertising_other_vips_on_our_router_id_is_a_collision_too():
    line = "    198.18.0.12 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 100, intvl 50cs, addrs: 198.18.0.99"
    assert [a.address for a in snap(census_of(line).advertisers(1000.0)).foreign_routers] == ["198.18.0.12"]


def test_a_router_leaves_the_census_when_it_says_so_or_falls_silent():
    """Priority 0 is a router leaving (stopping, FAULT); silence for three of its intervals (5 s at
    least: a colliding router flaps) too: a collision's alarm clears seconds after it ends."""
    c = census_of(RECORDED.read_text(), when=1000.0)
    window = max(STALE_ADVERTS * 0.5, STALE_MIN_S)  # the lab advertises every 0.5 s
    assert c.advertisers(1000.0 + window - 0.1) and not c.advertisers(1000.0 + window + 0.1)
    c = census_of(RECORDED.read_text(), when=1000.0)
    c.feed("k8s-master-01", "    198.18.0.11 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 0, intvl 50cs, "
           "length 12, addrs: 198.18.0.10", when=1000.1)
    assert ("198.18.0.11", 51) not in {(a.address, a.vrid) for a in c.advertisers(1000.2)}


def test_odd_packets_are_read_too_and_a_node_without_tcpdump_is_known():
    """tcpdump puts a TTL or checksum remark between the fields of odd packets."""
    ttl = parse_line("    198.18.0.73 > 224.0.0.18: VRRPv2, Advertisement, (ttl 64), vrid 51, prio 130, authtype none, "
                     "intvl 1s, length 20, addrs: 198.18.0.70")
    cksum = parse_line("    198.18.0.73 > 224.0.0.18: VRRPv3, Advertisement, vrid 51, prio 130, intvl 100cs, length 12, "
                       "(bad vrrp cksum 1234), addrs: 198.18.0.70")
    assert ttl is not None and (ttl.vrid, ttl.priority, ttl.vips) == (51, 130, ("198.18.0.70",))
    assert cksum is not None and (cksum.interval, cksum.vips) == (1.0, ("198.18.0.70",))
    c = Census()
    c.feed("k8s-master-02", NO_TCPDUMP + "\n")
    assert c.missing == {"k8s-master-02"} and not c.advertisers()


@given(st.sets(st.integers(1, 255), max_size=254), st.integers(1, 255))
def test_the_free_router_id_is_never_one_in_use(used, prefer):
    routers = census_of("".join(f"    198.18.0.{i % 250 + 1} > 224.0.0.18: VRRPv2, Advertisement, vrid {v}, prio 100, "
                                f"authtype none, intvl 1s, length 20, addrs: 198.18.0.10\n"
                                for i, v in enumerate(sorted(used)))).advertisers(1000.0)
    free = free_router_id(routers, prefer)
    assert free not in used and 1 <= free <= 255
    assert free == prefer or prefer in used


@given(st.text(max_size=300))
def test_any_line_parses_or_is_skipped_without_a_traceback(junk):
    parse_line(junk)
    Census().feed("m", junk)


def load_topology_for_lab():
    topo = load_topology(Path(__file__).parent.parent.parent / "examples" / "sungup.yaml")
    return topo.model_copy(update={"name": "lab"})


def test_the_wizard_keeps_a_router_id_only_its_own_masters_use_and_moves_off_a_taken_one():
    from k8s_ha_tui.wizard import free_router_id_default

    start = {"name": "lab", "vip": "198.18.0.10", "prefix": 24, "interface": "eth0",
             "masters": [{"name": f"m{i}", "address": a} for i, a in enumerate(LAB["masters"])],
             "vrrp": {"router_id": 51}}
    heard = census_of(RECORDED.read_text(), when=time.time())  # the wizard asks for what is heard now
    assert free_router_id_default(start, heard)[0] == 51
    other = {**start, "vip": "198.18.0.70", "masters": [{"name": f"c{i}", "address": f"198.18.0.7{i + 1}"}
                                                        for i in range(3)]}
    offer, said = free_router_id_default(other, heard)
    assert offer == 53 and "51 is taken by 198.18.0.1" in said


async def test_a_router_heard_during_the_first_round_publishes_nothing_until_every_node_answered():
    """The census hears the holder's advert while only a backup has answered: no snapshot may
    judge the unasked holder unreachable (a false NO HOLDER on the monitor's first screen)."""
    from k8s_ha_tui.remote.ssh import HostKeyPolicy
    from k8s_ha_tui.status.poll import Collector

    topo = load_topology_for_lab()
    shown: list[ClusterStatus] = []
    c = Collector(topo, HostKeyPolicy(known_hosts=Path("/nonexistent")), on_snapshot=shown.append)
    backup = c.sessions[1]
    backup.last = MasterStatus(backup.node.name, backup.node.address, True, vrrp_state="BACKUP",
                               keepalived="active", haproxy="active", apiserver="not installed")
    await c._publish()
    assert shown == []
    for s in c.sessions:
        s.last = s.last or s.down_status()
    await c._publish()
    assert len(shown) == 1 and shown[0].masters[1].vrrp_state == "BACKUP"
