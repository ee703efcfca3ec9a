"""The monitor as people see it, compared with committed SVG snapshots (pytest-textual-snapshot):
from synthetic snapshots, with a fixed clock, so every run draws the same screen. After a change
that is meant to alter the screen: `pytest tests/unit/test_tui_snapshots.py --snapshot-update`,
then look at the SVGs in __snapshots__ before committing them."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
from test_tui import HEALTHY, TOPO, master, snap

from k8s_ha_tui.remote.ssh import HostKeyPolicy
from k8s_ha_tui.status.model import BackendServer, MasterStatus
from k8s_ha_tui.tui.app import MonitorApp
from k8s_ha_tui.tui.messages import StatusPolled

MOVED = snap(master(0, vrrp_state="FAULT", maintenance=True), master(1, vrrp_state="MASTER", holds_vip=True),
             master(2), t=1003.0)
SPLIT = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, vrrp_state="MASTER", holds_vip=True),
             master(2, hears=TOPO.masters[0].address), t=1005.0)  # master-03 hears master-01: 02 is cut off
HUNG = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, apiserver="hung"), master(2), t=1004.0)
HUNG = replace(HUNG, masters=tuple(replace(m, backends=tuple(
    replace(b, status="DOWN", check_status="L6TOUT") if b.master == TOPO.masters[1].name else b for b in m.backends))
    for m in HUNG.masters))
LOST = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1),
            MasterStatus(TOPO.masters[2].name, TOPO.masters[2].address, False, unreachable_since=1000.0,
                         error="no answer"), t=1010.0)
DRAINED = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1), master(2, backends=tuple(
    BackendServer("apiserver", x.name, "DRAIN" if x.name == TOPO.masters[1].name else "UP", "L7OK", 2, 30,
                  master=x.name) for x in TOPO.masters)))


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def monitor() -> MonitorApp:
    return MonitorApp(TOPO, HostKeyPolicy(known_hosts=Path("/nonexistent")), collect=False, clock=lambda: "12:00:00")


def showing(*snaps, keys: tuple[str, ...] = ()):
    async def run_before(pilot) -> None:
        for s in snaps:
            pilot.app.post_message(StatusPolled(s))
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (100, 30), (120, 40), (200, 60)])
def test_healthy_at_every_size(snap_compare, size):
    assert snap_compare(monitor(), terminal_size=size, run_before=showing(HEALTHY))


def test_vip_moved(snap_compare):
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, MOVED))


def test_split_brain(snap_compare):
    later = replace(SPLIT, taken_at=1007.0)
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, SPLIT, later))


def test_the_diagnosis_screen_with_its_remedy(snap_compare):
    later = replace(SPLIT, taken_at=1007.0)
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, SPLIT, later, keys=("e",)))


def test_a_hung_apiserver_is_red_in_its_row(snap_compare):
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, HUNG))


def test_a_lost_node_and_a_drained_backend(snap_compare):
    assert snap_compare(monitor(), terminal_size=(100, 30), run_before=showing(HEALTHY, DRAINED, LOST))


def test_the_confirm_dialog(snap_compare):
    assert snap_compare(monitor(), terminal_size=(100, 30), run_before=showing(HEALTHY, keys=("down", "f")))


def test_the_detail_pane(snap_compare):
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, keys=("down", "enter")))


def test_the_detail_pane_at_80x24(snap_compare):
    assert snap_compare(monitor(), terminal_size=(80, 24), run_before=showing(HEALTHY, keys=("enter",)))


def test_the_light_theme(snap_compare):
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, MOVED, keys=("t",)))


@pytest.mark.parametrize("size", [(80, 24), (120, 34)])
def test_a_first_time_setup(snap_compare, size):
    """Before kubeadm init: calm, the next step named, no red API cells (they are not expected yet)."""
    from test_tui import bootstrapping

    assert snap_compare(monitor(), terminal_size=size, run_before=showing(bootstrapping()))


def test_narrow_layout_stacks_the_panels(snap_compare):
    """Below 76 columns the backends and workers panels stack."""
    assert snap_compare(monitor(), terminal_size=(72, 36), run_before=showing(HEALTHY))


def test_the_log_view(snap_compare):
    from k8s_ha_tui.tui.log_modal import LogModal

    journal = "\n".join(f"Nov 30 12:00:{i:02d} k8s-master-01 Keepalived_vrrp[42]: (VI_51) Entering MASTER STATE"
                        if i % 5 == 0 else f"Nov 30 12:00:{i:02d} k8s-master-01 haproxy[7]: Server apiserver/k8s-master-0"
                        f"{i % 3 + 1} is UP" for i in range(30))

    async def run_before(pilot) -> None:
        pilot.app.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        pilot.app.push_screen(LogModal("k8s-master-01", journal))
        await pilot.pause()
    assert snap_compare(monitor(), terminal_size=(100, 30), run_before=run_before)


def test_the_segment_census_with_a_neighbour_and_a_collision(snap_compare):
    """`v`: every VRRP router the masters hear; a foreign router on this cluster's router id is
    red (and the critical diagnosis is in the alarms)."""
    from k8s_ha_tui.remote.vrrp_census import Advertiser

    rid = TOPO.vrrp.router_id
    ours = tuple(Advertiser(rid, m.address, 150 - i, 1.0, (TOPO.vip,), 2, 1000.0, (TOPO.masters[0].name,))
                 for i, m in enumerate(TOPO.masters[:1]))
    neighbour = tuple(Advertiser(rid + 1, f"10.0.3.{31 + i}", 100 - i, 1.0, ("10.0.3.30",), 2, 999.0,
                                 tuple(m.name for m in TOPO.masters)) for i in range(2))
    foreign = (Advertiser(rid, "10.0.3.99", 200, 1.0, ("10.0.3.98",), 2, 1000.0, (TOPO.masters[1].name,)),)
    colliding = replace(HEALTHY, taken_at=1002.0, router_id=rid, segment=ours + neighbour + foreign)
    assert snap_compare(monitor(), terminal_size=(120, 40), run_before=showing(HEALTHY, colliding, keys=("v",)))


def dual(*masters: MasterStatus, t: float) -> object:
    """A dual-stack snapshot: each master's IPv6 instance in the state of its IPv4 one, unless given."""
    six = tuple(replace(m, vrrp_state6=m.vrrp_state6 or m.vrrp_state, api_via_vip6=True) for m in masters)
    return replace(snap(*six, t=t), vip6="fd00:0:0:3::10")


def test_a_dual_stack_whose_vips_drift_apart(snap_compare):
    """Both VIPs on one master, then each on another (no sync group): the banner names who holds
    which, the rows say which VIP each has and that their instances disagree."""
    together = dual(master(0, vrrp_state="MASTER", holds_vip=True, holds_vip6=True), master(1), master(2), t=1000.0)
    apart = dual(master(0, vrrp_state="MASTER", vrrp_state6="BACKUP", holds_vip=True),
                 master(1, vrrp_state6="MASTER", holds_vip6=True), master(2), t=1001.0)
    assert snap_compare(monitor(), terminal_size=(120, 40),
                        run_before=showing(together, apart, replace(apart, taken_at=1003.0)))
