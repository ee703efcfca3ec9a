"""Deploy's pure planning: what it tells the operator before anything changes."""

from __future__ import annotations

import copy

from k8s_ha_tui import deploy, render, topology as tp
from k8s_ha_tui.wizard import SEED_DEFAULTS


def keepalived_conf(**vrrp) -> str:
    data = copy.deepcopy(SEED_DEFAULTS)
    data["vrrp"].update(vrrp)
    t = tp.topology_from_dict(data)
    return next(f.text for f in render.render_node(t, t.masters[0]) if f.path == render.PATHS.keepalived_conf)


def plan(old: str | None, new: str) -> deploy.NodePlan:
    change = deploy.FileChange(render.PATHS.keepalived_conf, old, new, 0o640)
    return deploy.NodePlan(conn=None, state=None, changes=[change])  # type: ignore[arg-type]


def test_a_vrrp_version_change_is_announced_before_the_rollout():
    v2, v3 = keepalived_conf(version=2, advert_int=1), keepalived_conf(version=3, advert_int=0.5)
    assert deploy.vrrp_version_of(v2) == 2 and deploy.vrrp_version_of(v3) == 3
    warning = deploy.version_change_warning([plan(v2, v3)])
    assert warning and "VRRP version 2 → 3" in warning and "two may hold the VIP" in warning
    assert deploy.version_change_warning([plan(v3, v3.replace("0.5", "0.6"))]) is None
    assert deploy.version_change_warning([plan(None, v3)]) is None  # a first deploy: nobody to mismatch
