"""Deploy's pure planning: what it tells the operator before anything changes."""

from __future__ import annotations

import copy

from k8s_ha_tui.clusters import adopt
from k8s_ha_tui.configs import render
from k8s_ha_tui.configs.confparse import parse_keepalived
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.wizard import SEED_DEFAULTS


def keepalived_conf(**vrrp) -> str:
    data = copy.deepcopy(SEED_DEFAULTS)
    data["vrrp"].update(vrrp)
    t = tp.topology_from_dict(data)
    return next(f.text for f in render.render_node(t, t.masters[0]) if f.path == render.PATHS.keepalived_conf)


def view(**vrrp):
    return adopt.view_of_text(keepalived_conf(**vrrp), "10.0.3.10")


def test_a_change_masters_would_not_hear_each_other_across_is_a_cut_over():
    v2, v3 = view(version=2, advert_int=1), view(version=3, advert_int=0.5)
    order = ["m2", "m3", "m1"]
    cut = adopt.plan({"m1": v2, "m2": v2, "m3": v2}, {"m1": v3, "m2": v3, "m3": v3}, order, ["m1"])
    assert cut is not None and cut.changes == ["VRRPv2 → v3"] and not cut.router_id_changes
    assert (cut.first, cut.holder) == (["m2", "m3"], "m1")
    text = "\n".join(cut.plan_lines())
    assert "two VIP holders" in text and "keeps its MASTER state" in text
    moved = adopt.plan({"m1": v3}, {"m1": view(router_id=77)}, ["m1"], ["m1"])
    assert moved is not None and moved.router_id_changes and "router id 51 → 77" in moved.changes
    assert adopt.plan({"m1": v3}, {"m1": view(version=3, advert_int=0.6)}, ["m1"], ["m1"]) is None  # v3 adapts
    assert adopt.plan({"m1": v2}, {"m1": view(version=2, advert_int=2)}, ["m1"], ["m1"]) is not None  # v2 does not
    assert adopt.plan({"m1": None}, {"m1": v3}, ["m1"], []) is None  # nothing runs yet: nobody to mismatch
    auth = adopt.plan({"m1": view(version=2, advert_int=1, auth_pass="abc")},
                      {"m1": view(version=2, advert_int=1, auth_pass="xyz")}, ["m1"], ["m1"])
    assert auth is not None and "another password" in auth.changes[0] and "xyz" not in repr(auth)


def test_owner_variant_is_master_at_once_and_weightless():
    text = keepalived_conf()
    owner = adopt.owner_variant(text)
    inst = parse_keepalived(owner).first("vrrp_instance")
    assert inst.value("priority") == "255" and inst.value("state") == "MASTER"
    assert "k8s_ha_boost" not in inst.first("track_file").words()
    assert adopt.follows_maintenance(owner, "10.0.3.10") and adopt.follows_maintenance(text, "10.0.3.10")
    assert not adopt.follows_maintenance("vrrp_instance X {\n virtual_ipaddress {\n 10.0.3.10\n }\n}\n", "10.0.3.10")


def test_owner_variant_drops_a_check_weight():
    data = copy.deepcopy(SEED_DEFAULTS)
    data["check"] = {"weight": -20}
    t = tp.topology_from_dict(data)
    text = next(f.text for f in render.render_node(t, t.masters[0]) if f.path == render.PATHS.keepalived_conf)
    script = parse_keepalived(adopt.owner_variant(text)).first("vrrp_script")
    assert script.value("weight") == "0"
