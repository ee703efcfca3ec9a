"""Every rendered config passes the real `keepalived -t` and `haproxy -c`; invalid topologies never render."""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import MUTATIONS, valid_topologies

from k8s_ha_tui.clusters import adopt
from k8s_ha_tui.configs import render
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model import topology as tp


def on_valid_topologies(examples: int):
    """A test run on `examples` generated valid topologies (each one renders and runs the checkers)."""
    def wrap(test):
        return settings(max_examples=examples, deadline=None, suppress_health_check=[
            HealthCheck.function_scoped_fixture, HealthCheck.too_slow])(given(data=valid_topologies())(test))
    return wrap


def assert_clean(results):
    for node, (ka, hp) in results.items():
        assert ka.ok and ka.output == "", f"keepalived -t on {node}: exit {ka.returncode}: {ka.output}"
        assert hp.ok and "[WARNING]" not in hp.output and "[ALERT]" not in hp.output, \
            f"haproxy -c on {node}: exit {hp.returncode}: {hp.output}"


def test_example_renders_configs_both_checkers_accept(checkers, example_path, tmp_path):
    t = tp.load_topology(example_path)
    out = render.write_tree(render.render_all(t), tmp_path / "out")
    assert_clean(checkers.check_rendered(out, t))


def test_checkers_do_catch_a_broken_config(checkers, example_path, tmp_path):
    """The harness is not a rubber stamp: a wrong keyword and a missing interface both fail."""
    t = tp.load_topology(example_path)
    out = render.write_tree(render.render_all(t), tmp_path / "out")
    conf = out / "k8s-master-01/etc/keepalived/keepalived.conf"
    conf.write_text(conf.read_text().replace("advert_int 1", "advert_int 1\n    no_such_keyword 1"))
    assert not checkers.keepalived(out / "k8s-master-01", ["ens3"]).ok
    cfg = out / "k8s-master-02/etc/haproxy/haproxy.cfg"
    cfg.write_text(cfg.read_text().replace("balance roundrobin", "balance no-such-algorithm"))
    assert not checkers.haproxy(out / "k8s-master-02").ok
    conf3 = out / "k8s-master-03/etc/keepalived/keepalived.conf"
    conf3.write_text(conf3.read_text().replace("interface ens3", "interface nosuchif0"))
    assert not checkers.keepalived(out / "k8s-master-03", ["ens3"]).ok


@on_valid_topologies(15)
def test_the_cut_over_owner_variant_passes_keepalived_t(checkers, tmp_path_factory, data):
    """The holder's first load in a router id change (adopt.owner_variant) is a config keepalived takes."""
    t = tp.topology_from_dict(data)
    out = render.write_tree(render.render_all(t), tmp_path_factory.mktemp("r") / "out")
    for m in t.masters:
        conf = out / m.name / "etc/keepalived/keepalived.conf"
        conf.write_text(adopt.owner_variant(conf.read_text()))
    assert_clean(checkers.check_rendered(out, t))


def test_haproxy_2_0_syntax_is_valid_too(checkers, example_path, tmp_path):
    t = tp.load_topology(example_path)
    out = render.write_tree(render.render_all(t, haproxy_version="2.0"), tmp_path / "out")
    assert_clean({"k8s-master-01": (checkers.keepalived(out / "k8s-master-01", ["ens3"]),
                                    checkers.haproxy(out / "k8s-master-01"))})


@on_valid_topologies(50)
def test_any_valid_topology_renders_configs_both_checkers_accept(checkers, tmp_path_factory, data):
    t = tp.topology_from_dict(data)
    out = render.write_tree(render.render_all(t), tmp_path_factory.mktemp("r") / "out")
    assert_clean(checkers.check_rendered(out, t))


@settings(max_examples=150, deadline=None)
@given(data=valid_topologies(), mutation=st.sampled_from(sorted(MUTATIONS)).flatmap(
    lambda name: MUTATIONS[name].map(lambda m: (name, m))))
def test_any_invalid_topology_is_refused(data, mutation):
    name, mutate = mutation
    bad = copy.deepcopy(data)
    if name == "priority out of range" or name == "duplicate name":
        bad["masters"][0].setdefault("priority", 100)
    mutate(bad)
    if name == "duplicate name":
        bad["masters"][-1].pop("priority", None)
    with pytest.raises(UserError) as exc:
        tp.topology_from_dict(bad)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["safe", "default", "fast"])
def test_every_speed_profile_renders_configs_keepalived_accepts(checkers, example_path, tmp_path, name):
    from k8s_ha_tui.model import profiles

    t = tp.topology_from_dict(profiles.apply(tp.topology_to_dict(tp.load_topology(example_path)), name))
    out = render.write_tree(render.render_all(t), tmp_path / "out")
    assert_clean(checkers.check_rendered(out, t))
