"""VRRP timing arithmetic and the speed profiles built on it (bench/flap.py checks the model in the lab)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8s_ha_tui.configs import render
from k8s_ha_tui.configs.confparse import down_adverts, parse_keepalived
from k8s_ha_tui.model import profiles
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.model.vrrp_timing import (
    false_moves_per_day,
    master_down_seconds,
    pause_always_survived,
    pause_never_survived,
)
from k8s_ha_tui.wizard import SEED_DEFAULTS


def test_master_down_is_the_rfc_formula():
    assert master_down_seconds(1.0, 100) == pytest.approx(3 + 156 / 256)
    assert master_down_seconds(0.1, 140, adverts=5) == pytest.approx(0.5 + 0.1 * 116 / 256)


@given(st.floats(0.001, 0.5), st.sampled_from([0.05, 0.1, 0.5, 1.0]), st.integers(2, 10))
def test_false_moves_rise_with_loss_and_fall_with_more_missed_adverts(loss, advert, adverts):
    assert false_moves_per_day(loss, advert, adverts + 1) < false_moves_per_day(loss, advert, adverts)
    assert false_moves_per_day(loss * 1.5, advert, adverts) > false_moves_per_day(loss, advert, adverts)
    assert pause_never_survived(advert, 140, adverts) - pause_always_survived(advert, 140, adverts) == pytest.approx(advert)


def test_a_day_at_one_percent_loss():
    """0.5 s adverts, 3 missed: 172,800 adverts a day × 0.99 × 1e-6."""
    assert false_moves_per_day(0.01, 0.5) == pytest.approx(0.171, abs=0.001)


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_a_profile_is_plain_values_in_the_topology(name):
    start = copy.deepcopy(SEED_DEFAULTS)
    start["vrrp"].update(version=2, advert_int=1, auth_pass="secret")
    topo = tp.topology_from_dict(profiles.apply(start, name))
    p = profiles.get(name)
    assert (topo.vrrp.version, topo.vrrp.advert_int, topo.vrrp.down_adverts) == (3, p.advert_int, p.down_adverts)
    assert topo.vrrp.auth_pass is None and topo.vrrp.router_id == 51 and topo.check.weight == 0
    assert f"down_adverts: {p.down_adverts}" in tp.topology_yaml(topo)  # written out, not implied
    conf = next(f for f in render.render_node(topo, topo.masters[0]) if f.path.endswith("keepalived.conf"))
    assert ("down_timer_adverts" in conf.text) == p.needs_new_keepalived
    refusal = render.keepalived_refusal(topo, "2.0.19")
    assert (refusal is not None) == p.needs_new_keepalived and render.keepalived_refusal(topo, "2.2.7") is None
    assert render.keepalived_refusal(topo, None) is None  # unknown: the node's keepalived -t decides


def test_profiles_are_ordered_by_speed_and_each_says_its_numbers():
    safe, default, fast = (profiles.get(n) for n in ("safe", "default", "fast"))
    assert safe.takeover_s() > default.takeover_s() > fast.takeover_s()
    assert safe.pause_ok_s > default.pause_ok_s > fast.pause_ok_s >= 0.25
    for p in (safe, default, fast):
        text = p.describe()
        assert f"{p.offline_gap_s:.2f} s (measured)" in text and f"{p.pause_ok_s * 1000:.0f} ms" in text
    assert fast.false_moves_per_day(0.01) * 30 < 1  # the target: under one a month at 1 % loss
    with pytest.raises(Exception, match="no speed profile 'turbo'"):
        profiles.get("turbo")


@pytest.mark.parametrize(("text", "expected"), [
    ("vrrp_instance X { down_timer_adverts 5 }", 5),
    ("global_defs { vrrp_down_timer_adverts 7 }\nvrrp_instance X { }", 7),
    ("global_defs { vrrp_down_timer_adverts 7 }\nvrrp_instance X { down_timer_adverts 4 }", 4),
    ("vrrp_instance X { down_timer_adverts many }", 3),
    ("vrrp_instance X { down_timer_adverts 500 }", 3),
    ("vrrp_instance X { }", 3),
])
def test_missed_adverts_read_from_a_config(text, expected):
    root = parse_keepalived(text)
    assert down_adverts(root, root.first("vrrp_instance")) == expected
