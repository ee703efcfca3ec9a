"""The model: every bad input is refused with one line naming the field and the value."""

from __future__ import annotations

import copy

import pytest
import yaml

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.wizard import SEED_DEFAULTS


def base() -> dict:
    return copy.deepcopy(SEED_DEFAULTS)


def refuse(data: dict) -> str:
    with pytest.raises(UserError) as exc:
        tp.topology_from_dict(data)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_example_file_is_the_seed_cluster(example_path):
    t = tp.load_topology(example_path)
    assert t.vip == "10.0.3.10" and t.interface == "ens3" and t.vrrp.router_id == 51
    assert [m.address for m in t.masters] == ["10.0.3.11", "10.0.3.12", "10.0.3.13"]
    assert [w.address for w in t.workers] == ["10.0.3.21", "10.0.3.22", "10.0.3.23"]
    assert t.vrrp.auth_pass == "k8s-test"


def test_default_priorities_are_distinct_and_descending():
    t = tp.topology_from_dict(base())
    prios = [t.priority_of(m) for m in t.masters]
    assert prios == sorted(prios, reverse=True) and len(set(prios)) == len(prios)


def dual(d: dict, version: int = 3, **top) -> None:
    """`d` made dual stack: vip6 fd00::10/64 and each master's address6 fd00::1N, then `top`."""
    d.update({"vip6": "fd00::10", **top})
    d["vrrp"].update(version=version, advert_int=1)
    d["vrrp"].pop("auth_pass", None)
    for i, m in enumerate(d["masters"]):
        m["address6"] = f"fd00::{11 + i}"


def six(d: dict, **top) -> None:
    """`d` made IPv6-only: every 10.0.3.N becomes fd00::N, then `top`."""
    d.update({"vip": "fd00::10", "prefix": 64, **top})
    d["vrrp"].update(version=3, advert_int=1)
    d["vrrp"].pop("auth_pass", None)
    for n in (*d["masters"], *d["workers"]):
        n["address"] = n["address"].replace("10.0.3.", "fd00::")


def test_ipv6_only_and_dual_stack_topologies_validate():
    d6 = base()
    six(d6)
    del d6["prefix"]
    t = tp.topology_from_dict(d6)
    assert (t.family, t.prefix, str(t.network), t.control_plane_endpoint.endswith(":8443")) == (6, 64, "fd00::/64", True)
    assert tp.topology_from_dict({**d6, "api_endpoint": None}).control_plane_endpoint == "[fd00::10]:8443"
    dd = base()
    dual(dd)
    t = tp.topology_from_dict(dd)
    assert (t.family, t.vip6, str(t.network6), t.masters[2].address6) == (4, "fd00::10", "fd00::/64", "fd00::13")
    assert tp.topology_from_dict(tp.topology_to_dict(t)) == t  # saved and loaded back, the same


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["masters"][1].update(address="10.0.3.300"), "masters[1].address: '10.0.3.300' is not an IP address"),
    (lambda d: d.update(vip="fe80::1"), "vip: 'fe80::1' is link-local"),
    (lambda d: d.update(vip="fd00::10"), "masters[0].address: 10.0.3.11 is IPv4 but the vip is IPv6"),
    (lambda d: d.update(prefix=33), "prefix: 33 is longer than an IPv4 address"),
    (lambda d: d.update(vip6="fd00::10"), "masters[0].address6: is required with vip6"),
    (lambda d: d.update(vip6="10.0.3.9"), "vip6: '10.0.3.9' is IPv4"),
    (lambda d: d["masters"][0].update(address6="fd00::11"), "masters[0].address6: only in a dual-stack cluster"),
    (lambda d: dual(d, vip6="fd00::"), "vip6: fd00:: is the subnet-router anycast address of fd00::/64"),
    (lambda d: dual(d, vip6="fd01::10"), "masters[0].address6: fd00::11 is not in vip6's subnet fd01::/64"),
    (lambda d: dual(d, vip6="fd00::11"), "masters[0].address6: fd00::11 is a VIP"),
    (lambda d: dual(d, version=2), "vrrp.version: VRRP over IPv6 is version 3 only"),
    (lambda d: six(d, vip6="fd00::9"), "vip6: only beside an IPv4 vip"),
    (lambda d: six(d, prefix=129), "prefix: 129 is not a prefix length"),
    (lambda d: d["masters"][2].update(name="k8s-master-01"), "masters[2].name: 'k8s-master-01' is already used"),
    (lambda d: d["workers"][0].update(address="10.0.3.12"), "workers[0].address: 10.0.3.12 is already"),
    (lambda d: d["vrrp"].update(router_id=300), "vrrp.router_id: 300 is not a VRRP router id"),
    (lambda d: d["vrrp"].update(router_id=0), "vrrp.router_id: 0"),
    (lambda d: d["masters"][0].update(address="10.0.4.11"), "masters[0].address: 10.0.4.11 is not in the VIP's subnet"),
    (lambda d: d["masters"][0].update(address="10.0.3.10"), "masters[0].address: 10.0.3.10 is a VIP"),
    (lambda d: d.update(vip="10.0.3.255"), "vip: 10.0.3.255 is the network or broadcast"),
    (lambda d: d["vrrp"].update(auth_pass="much-too-long"), "vrrp.auth_pass: is longer than 8"),
    (lambda d: d["vrrp"].update(auth_pass="a b"), "vrrp.auth_pass: must be printable"),
    (lambda d: d["vrrp"].update(version=3, auth_pass="secret"), "auth_pass: VRRPv3 has no authentication"),
    (lambda d: d["vrrp"].update(version=2, advert_int=0.5), "advert_int: 0.5 must be whole seconds"),
    (lambda d: d["vrrp"].update(version=3, advert_int=0.005), "advert_int: 0.005 must be 0.01-40.95"),
    (lambda d: d.update(interface="eth0/1"), "interface: 'eth0/1' is not a valid Linux interface name"),
    (lambda d: d.update(interface="a-very-long-interface"), "interface: 'a-very-long-interface'"),
    (lambda d: d.update(interface="all"), "interface: 'all' is reserved"),
    (lambda d: d.update(frontend_port=6443), "is also frontend_port"),
    (lambda d: d.update(apiserver_port=70000), "apiserver_port: 70000 is not a TCP port"),
    (lambda d: d["masters"][0].update(priority=255), "masters[0].priority: 255 is not a VRRP priority"),
    (lambda d: d["masters"][1].update(priority=150), "masters[1].priority: 150 is also k8s-master-01's"),
    (lambda d: d.update(masters=[]), "masters: list should have at least 1 item"),
    (lambda d: d.update(auth_pass="k8s-test"), "auth_pass: unknown key (did you mean vrrp.auth_pass?)"),
    (lambda d: d["masters"][0].update(name="bad name"), "masters[0].name: 'bad name' is not a valid name"),
    (lambda d: d["masters"][0].update(name="$(reboot)"), "masters[0].name: '$(reboot)' is not a valid name"),
    (lambda d: d["vrrp"].update(router_id="fifty"), "vrrp.router_id: input should be a valid integer"),
    (lambda d: d.pop("vip"), "vip: is required"),
    (lambda d: d["ssh"].update(become="su"), "ssh.become:"),
    (lambda d: d.update(api_endpoint="bad_name!"), "api_endpoint: 'bad_name!' is not a valid DNS name"),
])
def test_bad_input_is_refused_naming_field_and_value(mutate, expected):
    data = base()
    mutate(data)
    assert expected in refuse(data)


def test_secret_is_never_echoed_in_errors():
    data = base()
    data["vrrp"]["auth_pass"] = "s3cr3t-too-long"
    assert "s3cr3t" not in refuse(data)


def test_more_than_nine_masters_is_refused():
    data = base()
    data["masters"] = [{"name": f"m{i}", "address": f"10.0.3.{100 + i}"} for i in range(10)]
    data["workers"] = []
    assert "masters: list should have at most 9 items" in refuse(data)


def test_load_reports_missing_corrupt_and_non_mapping_files(tmp_path):
    with pytest.raises(UserError, match="no such topology file"):
        tp.load_topology(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(UserError, match=r"not valid YAML at line \d"):
        tp.load_topology(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(UserError, match="expected a mapping"):
        tp.load_topology(bad)
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UserError, match="cannot read"):
        tp.load_topology(bad)


def test_save_is_private_and_round_trips(tmp_path):
    t = tp.topology_from_dict({**base(), "vrrp": {"router_id": 51, "version": 2, "auth_pass": "pw"}})
    path = tmp_path / "t.yaml"
    tp.save_topology(t, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert tp.load_topology(path) == t
    assert yaml.safe_load(path.read_text())["vrrp"]["auth_pass"] == "pw"


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "t.yaml"
    path.write_text("old\n")

    def boom(*_a):
        raise KeyboardInterrupt

    monkeypatch.setattr(tp.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        tp.atomic_write(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.yaml"]


def test_advert_default_follows_the_vrrp_version():
    assert tp.topology_from_dict(base()).vrrp.advert_int == 0.3 and tp.topology_from_dict(base()).vrrp.version == 3
    v2 = tp.topology_from_dict({**base(), "vrrp": {"version": 2}})
    assert v2.vrrp.advert_int == 1
    with pytest.raises(UserError, match="0.5 must be whole seconds"):
        tp.topology_from_dict({**base(), "vrrp": {"version": 2, "advert_int": 0.5}})
