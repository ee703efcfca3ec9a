"""The monitor's screen with synthetic snapshots (no cluster): layout, alarms, confirmations, interlocks."""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path

import pytest
from labtools import until
from textual.widgets import Button, DataTable, Footer, RichLog, Static

from k8s_ha_tui.remote.ssh import HostKeyPolicy
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, MasterStatus, WorkerStatus
from k8s_ha_tui.tui.app import MonitorApp
from k8s_ha_tui.tui.confirm_modal import ConfirmModal
from k8s_ha_tui.tui.messages import StatusPolled
from k8s_ha_tui.tui.widgets.footer import KeysFooter
from k8s_ha_tui.wizard import defaults_topology

TOPO = defaults_topology()


def master(i: int, **kw) -> MasterStatus:
    m = TOPO.masters[i]
    base = dict(reachable=True, keepalived="active", haproxy="active", vrrp_state="BACKUP",
                base_priority=TOPO.priority_of(m), effective_priority=TOPO.priority_of(m), check="GOOD",
                api_via_vip=True, tracks_maintenance=True, tracks_boost=True, apiserver="up",
                backends=tuple(BackendServer("apiserver", x.name, "UP", "L7OK", 2, 30, master=x.name)
                               for x in TOPO.masters))
    base.update(kw)
    return MasterStatus(name=m.name, address=m.address, **base)


def snap(*masters, t: float = 1000.0) -> ClusterStatus:
    workers = tuple(WorkerStatus(w.name, w.address, True, api_via_vip=True) for w in TOPO.workers)
    return ClusterStatus(TOPO.name, TOPO.vip, TOPO.frontend_port, t, tuple(masters), workers)


HEALTHY = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1), master(2))


def text_of(widget) -> str:
    return str(widget.render())


def log_text(app) -> str:
    return "\n".join(line.text for line in app.query_one("#events", RichLog).lines)


def app() -> MonitorApp:
    return MonitorApp(TOPO, HostKeyPolicy(known_hosts=__import__("pathlib").Path("/nonexistent")), collect=False)


@pytest.mark.parametrize("size", [(80, 24), (160, 50)])
async def test_healthy_cluster_fits_the_screen(size):
    a = app()
    async with a.run_test(size=size) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        assert "k8s-master-01" in text_of(a.query_one("#banner", Static))
        assert a.query_one("#banner").has_class("healthy")
        assert "no alarms" in text_of(a.query_one("#alarms", Static))
        assert a.query_one("#nodes", DataTable).row_count == 3
        assert a.query_one("#backends", DataTable).row_count == 3  # the HAProxy on each master
        assert a.query_one("#workers", DataTable).row_count == 3
        for wid in ("#banner", "#alarms", "#nodes", "#events"):
            region = a.query_one(wid).region
            assert region.height > 0 and region.right <= size[0] and region.bottom <= size[1]


async def test_split_brain_and_lost_node_raise_alarms():
    a = app()
    async with a.run_test(size=(120, 36)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        split = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, vrrp_state="MASTER", holds_vip=True),
                     MasterStatus(TOPO.masters[2].name, TOPO.masters[2].address, False, 999.0, "timed out"), t=1001)
        a.post_message(StatusPolled(split))
        await pilot.pause()
        a.post_message(StatusPolled(snap(*split.masters, t=1003)))  # still split 2 s later
        await pilot.pause()
        assert a.query_one("#banner").has_class("critical")
        alarms = text_of(a.query_one("#alarms", Static))
        assert "split brain: k8s-master-01, k8s-master-02 claim the VIP" in alarms
        assert "k8s-master-03: unreachable: timed out" in alarms
        assert "SPLIT BRAIN: k8s-master-01, k8s-master-02" in log_text(a)
        assert "lost SSH to k8s-master-03: timed out" in log_text(a)


async def test_failover_asks_first_and_no_changes_nothing():
    a = app()
    async with a.run_test(size=(120, 36)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(a.screen, ConfirmModal)
        assert "from k8s-master-01 to k8s-master-02" in text_of(a.screen.query_one("#confirm-text", Static))
        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(a.screen, ConfirmModal)
        assert "Failover: started" not in log_text(a)


async def test_interlock_refuses_without_asking():
    a = app()
    async with a.run_test(size=(120, 36)) as pilot:
        lonely = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, maintenance=True, vrrp_state="FAULT"),
                      MasterStatus(TOPO.masters[2].name, TOPO.masters[2].address, False))
        a.post_message(StatusPolled(lonely))
        await pilot.pause()
        await pilot.press("f")
        await pilot.pause()
        assert not isinstance(a.screen, ConfirmModal)  # the key is greyed out, and the reason shown
        assert not a.active_bindings["f"].enabled and not a.active_bindings["m"].enabled
        why = text_of(a.query_one("#unavailable", Static))
        assert "f unavailable: no other master is reachable, healthy and out of maintenance" in why
        # selected row: k8s-master-01, the last eligible one
        assert "m unavailable: k8s-master-01 is the last master that can hold the VIP" in why


async def test_keys_a_hand_made_node_cannot_serve_are_greyed_with_the_reason():
    a = app()
    async with a.run_test(size=(120, 36)) as pilot:
        hand = dict(tracks_maintenance=False, tracks_boost=False)
        a.post_message(StatusPolled(snap(master(0, vrrp_state="MASTER", holds_vip=True, **hand),
                                         master(1, **hand), master(2, **hand))))
        await pilot.pause()
        assert not a.active_bindings["f"].enabled and not a.active_bindings["m"].enabled
        assert a.active_bindings["d"].enabled  # the HAProxy side works whatever keepalived follows
        why = text_of(a.query_one("#unavailable", Static))
        assert "k8s-master-02 does not follow priority_boost" in why and "--method stop" in why


async def test_theme_toggles_and_the_screen_follows_it():
    """t switches dark ↔ light, and the screen is drawn in the new theme, and back."""
    a = app()
    async with a.run_test() as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        dark, background = a.theme, a.screen.styles.background
        await pilot.press("t")
        await pilot.pause()
        assert (dark, a.theme) == ("textual-dark", "textual-light")
        assert a.screen.styles.background != background  # the screen is redrawn in the light theme
        await pilot.press("t")
        await pilot.pause()
        assert a.theme == dark and a.screen.styles.background == background


async def test_another_operators_change_greys_out_the_actions_and_is_shown():
    from k8s_ha_tui.remote import auditlog
    from k8s_ha_tui.remote.lockfile import LockInfo

    held = LockInfo("id1", "alice@laptop", "laptop", 1, "deploy all masters", TOPO.name, 990.0, 995.0, "t")
    seen = auditlog.AuditEntry("2026-11-29T06:40:00+0000", "bob@box", TOPO.name, "failover",
                               "k8s-master-01->k8s-master-02", "ok: VIP answers on k8s-master-02", 2.5)
    locked = snap(master(0, vrrp_state="MASTER", holds_vip=True, lock=held, audit=(seen,)), master(1), master(2))
    a = app()
    async with a.run_test(size=(120, 40)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        assert a.check_action("failover", ()) is True
        a.post_message(StatusPolled(locked))
        await pilot.pause()
        assert "deploy all masters by alice@laptop" in text_of(a.query_one("#banner", Static))
        assert a.check_action("failover", ()) is None and a.check_action("maintenance", ()) is None
        assert a.check_action("logs", ()) is True  # looking is always allowed
        assert "bob@box: failover k8s-master-01->k8s-master-02: ok" in log_text(a)
        await pilot.press("f")
        await pilot.pause()
        assert not isinstance(a.screen, ConfirmModal)


async def test_a_running_drill_is_named_in_the_banner_and_greys_out_the_actions():
    from k8s_ha_tui.remote.lockfile import LockInfo

    held = LockInfo("id2", "carol@ops", "ops", 1, "drill holder-keepalived", TOPO.name, 990.0, 995.0, "t")
    drilled = snap(master(0, keepalived="inactive", lock=held), master(1, vrrp_state="MASTER", holds_vip=True),
                   master(2))
    a = app()
    async with a.run_test(size=(120, 40)) as pilot:
        a.post_message(StatusPolled(drilled))
        await pilot.pause()
        banner = text_of(a.query_one("#banner", Static))
        assert "DRILL RUNNING: drill holder-keepalived by carol@ops" in banner and "undone by the drill" in banner
        assert a.check_action("failover", ()) is None and a.check_action("maintenance", ()) is None


async def test_ctrl_c_quits_with_130_and_q_with_0():
    for key, code in (("ctrl+c", 130), ("q", 0)):
        a = app()
        async with a.run_test(size=(120, 36)) as pilot:
            a.post_message(StatusPolled(HEALTHY))
            await pilot.pause()
            await pilot.press(key)
            await pilot.pause()
        assert a.return_code == code and a.changes == []


async def test_quitting_during_an_action_waits_for_it_to_finish(monkeypatch):
    """Ctrl-C while a failover runs: the monitor stays until the action has ended, then closes
    with 130 and knows what the action did."""
    import asyncio

    from k8s_ha_tui.operations import actions

    release = asyncio.Event()

    class Done:
        def text(self) -> str:
            return "failover: VIP on k8s-master-02"

    async def slow_failover(*_args, **_kw):
        await release.wait()
        return Done()
    monkeypatch.setattr(actions, "perform", slow_failover)
    a = app()
    async with a.run_test(size=(120, 36)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        await pilot.press("f", "y")  # failover, confirmed
        await pilot.pause()
        assert a.busy
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert a.is_running and a.quit_code == 130  # not cut short
        release.set()
        deadline = asyncio.get_running_loop().time() + 5
        while a.is_running and asyncio.get_running_loop().time() < deadline:
            await pilot.pause()
    assert a.return_code == 130 and a.changes == ["failover: VIP on k8s-master-02"]


def bootstrapping(*installed: str, t: float = 1000.0) -> ClusterStatus:
    """A cluster whose load balancer is deployed and whose apiservers are up only on `installed`."""
    masters = []
    for i, m in enumerate(TOPO.masters):
        backends = tuple(BackendServer("apiserver", x.name, "UP" if x.name in installed else "DOWN",
                                       "L7OK" if x.name in installed else "L4CON", 2, 30, master=x.name)
                         for x in TOPO.masters)
        masters.append(master(i, vrrp_state="MASTER" if i == 0 else "BACKUP", holds_vip=i == 0, backends=backends,
                              apiserver="up" if m.name in installed else "not installed",
                              api_via_vip=bool(installed)))
    workers = tuple(WorkerStatus(w.name, w.address, True, api_via_vip=bool(installed)) for w in TOPO.workers)
    return ClusterStatus(TOPO.name, TOPO.vip, TOPO.frontend_port, t, tuple(masters), workers)


async def test_a_first_time_setup_is_calm_and_names_the_next_step_then_moves_on_by_itself():
    a = app()
    async with a.run_test(size=(120, 40)) as pilot:
        a.post_message(StatusPolled(bootstrapping()))
        await pilot.pause()
        banner = a.query_one("#banner")
        assert banner.has_class("bootstrap") and not banner.has_class("critical")
        assert "FIRST-TIME SETUP" in text_of(banner)
        notice = text_of(a.query_one("#alarms", Static))
        assert "kubeadm init on k8s-master-01" in notice and "API DOWN" not in notice
        assert not a.query_one("#alarms").has_class("alarm")
        nodes = a.query_one("#nodes", DataTable)
        assert [str(nodes.get_row_at(i)[8]) for i in range(3)] == ["not installed"] * 3
        assert "none yet" in str(a.query_one("#backends", DataTable).get_row_at(0)[2])
        a.post_message(StatusPolled(bootstrapping("k8s-master-01", t=1010)))
        await pilot.pause()
        assert "apiserver on k8s-master-01 is up" in log_text(a) and "1 of 3 apiservers up" in log_text(a)
        assert not banner.has_class("bootstrap") and banner.has_class("degraded")
        assert "kubeadm join" in text_of(a.query_one("#alarms", Static))
        a.post_message(StatusPolled(bootstrapping(*(m.name for m in TOPO.masters), t=1020)))
        await pilot.pause()
        assert banner.has_class("healthy")
        assert "3 of 3 apiservers up: the control plane is complete" in log_text(a)
        assert "no alarms" in text_of(a.query_one("#alarms", Static))


async def test_tables_are_updated_in_place_never_cleared(monkeypatch):
    """A snapshot writes only the cells that changed: no table is cleared and rebuilt (which
    reset the cursor, hover and scroll), and the selection stays on its master."""
    def no_clear(self, *args, **kw):
        raise AssertionError("a table was cleared")
    monkeypatch.setattr(DataTable, "clear", no_clear)
    a = app()
    async with a.run_test(size=(120, 40)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        await pilot.press("down")
        moved = snap(master(0, vrrp_state="FAULT", maintenance=True), master(1, vrrp_state="MASTER", holds_vip=True),
                     master(2), t=1003.0)
        a.post_message(StatusPolled(moved))
        await pilot.pause()
        nodes = a.query_one("#nodes", DataTable)
        assert nodes.get_row("k8s-master-02")[1].plain == "MASTER" and nodes.get_row("k8s-master-01")[1].plain == "FAULT"
        assert a.selected_master().name == "k8s-master-02"


async def test_a_wide_terminal_shows_the_selected_masters_detail_beside_the_tables():
    from k8s_ha_tui.tui.widgets.detail import MasterDetail

    a = app()
    async with a.run_test(size=(170, 45)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        pane = a.query_one("#pane-detail", MasterDetail)
        assert pane.region.width > 0 and pane.region.x > a.query_one("#nodes").region.right - 1
        assert "k8s-master-01 (" in text_of(pane.query_one("#detail-text", Static))
        assert pane.query_one("#do-failover").disabled  # it holds the VIP already
        await pilot.press("down")
        await pilot.pause()
        assert "k8s-master-02 (" in text_of(pane.query_one("#detail-text", Static))
        await pilot.click("#pane-detail #do-failover")
        await pilot.pause()
        assert isinstance(a.screen, ConfirmModal)
        assert "to k8s-master-02" in text_of(a.screen.query_one("#confirm-text", Static))


async def test_a_narrow_terminal_opens_the_detail_screen_which_follows_the_status():
    from k8s_ha_tui.tui.detail_screen import DetailScreen

    a = app()
    async with a.run_test(size=(100, 36)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await pilot.pause()
        assert not a.query_one("#pane").display or a.query_one("#pane").region.width == 0
        await pilot.press("down", "enter")
        await pilot.pause()
        assert isinstance(a.screen, DetailScreen)
        a.post_message(StatusPolled(snap(master(0, vrrp_state="MASTER", holds_vip=True),
                                         master(1, vrrp_state="FAULT", maintenance=True), master(2), t=1001)))
        await pilot.pause()  # no waiting for a poll: the screen watches the status
        assert "in maintenance: FAULT" in text_of(a.screen.query_one("#detail-text", Static))


async def test_the_diagnosis_screen_follows_the_status_and_its_remedies():
    from k8s_ha_tui.tui.diagnosis_screen import DiagnosisScreen

    a = app()
    split = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, vrrp_state="MASTER", holds_vip=True),
                 master(2, hears=TOPO.masters[0].address), t=1001)
    async with a.run_test(size=(120, 40)) as pilot:
        a.post_message(StatusPolled(split))
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(a.screen, DiagnosisScreen)
        assert str(a.screen.query_one("#remedy-0", Button).label) == "maintenance k8s-master-02 on"
        assert not a.screen.query_one("#remedy-0", Button).disabled
        a.post_message(StatusPolled(HEALTHY))  # the split brain ended by itself: its remedy goes
        await pilot.pause()
        await pilot.pause()
        assert not a.screen.query("#remedy-0") and "no diagnosis" in text_of(a.screen.query_one("#diagnosis-text"))


async def test_a_fleet_screen_comes_first_worst_first_and_enter_opens_a_cluster_escape_comes_back():
    """`monitor -t A -t B`: one row per cluster (worst first; one that cannot be reached says so),
    enter opens that cluster's monitor as today, escape goes back to the fleet."""
    from textual.widgets import DataTable

    from k8s_ha_tui.tui.fleet_screen import FleetScreen

    other = TOPO.model_copy(update={"name": "staging", "masters": [
        m.model_copy(update={"name": f"stg-master-0{i + 1}"}) for i, m in enumerate(TOPO.masters)]})
    lost = other.model_copy(update={"name": "dr"})
    app = MonitorApp(TOPO, HostKeyPolicy(known_hosts=Path("/nonexistent")), collect=False,
                     fleet=[(TOPO, HostKeyPolicy(known_hosts=Path("/x"))), (other, HostKeyPolicy(known_hosts=Path("/x"))),
                            (lost, HostKeyPolicy(known_hosts=Path("/x")))])
    split = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, vrrp_state="MASTER", holds_vip=True),
                 master(2))
    critical = replace(split, name="staging", masters=tuple(replace(m, name=o.name) for m, o in
                                                            zip(split.masters, other.masters)))
    unreachable = replace(HEALTHY, name="dr", masters=tuple(
        MasterStatus(m.name, m.address, False, unreachable_since=1000.0, error="no route to host") for m in TOPO.masters))
    async with app.run_test(size=(120, 40)) as pilot:
        assert isinstance(app.screen, FleetScreen)
        for s in (HEALTHY, critical, unreachable):
            app.post_message(StatusPolled(s))
            await pilot.pause()
        table = app.screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        assert [r[0] for r in rows] == ["dr", "staging", TOPO.name]
        assert rows[0][1] == "UNREACHABLE" and "no route to host" in rows[0][4]
        assert rows[1][1] == "CRITICAL" and "SPLIT BRAIN" in rows[1][4]
        await pilot.press("down", "enter")
        await until(pilot, lambda: not isinstance(app.screen, FleetScreen) and app.topo.name == "staging", 5,
                    "staging's monitor")
        await until(pilot, lambda: app.status is not None and app.status.name == "staging", 5, "its snapshot shown")
        table = app.query_one("#nodes", DataTable)  # rebuilt: staging's masters, not the first cluster's
        assert [str(table.get_row_at(i)[0]).strip() for i in range(table.row_count)] == \
            [m.name for m in other.masters]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen), 5, "the fleet again")


def footer_keys_alive() -> int:
    gc.collect()
    return sum(type(o).__name__ == "FooterKey" for o in gc.get_objects())


async def test_footer_keeps_no_dead_keys_over_hours_of_snapshots(monkeypatch):
    """A snapshot a second for days: the footer is redrawn only when a key changes, and a
    redrawn footer lets its old keys go (Textual's Footer kept them: 1.2 MB a second)."""
    redrawn = []
    real = Footer.recompose  # what KeysFooter calls when it really redraws

    async def counted(self):
        redrawn.append(1)
        await real(self)
    monkeypatch.setattr(Footer, "recompose", counted)
    a = app()
    lonely = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, maintenance=True, vrrp_state="FAULT"),
                  MasterStatus(TOPO.masters[2].name, TOPO.masters[2].address, False))
    async with a.run_test(size=(120, 36)) as pilot:
        a.post_message(StatusPolled(HEALTHY))
        await until(pilot, lambda: footer_key(a, "f") is False, 5, "the footer with f enabled")
        shown, before = footer_keys_alive(), len(redrawn)
        for t in range(30):  # nothing about the keys changes
            a.post_message(StatusPolled(snap(*HEALTHY.masters, t=1001 + t)))
            await pilot.pause()
        assert footer_keys_alive() == shown and len(redrawn) == before
        for t in range(10):  # f greyed, then enabled again, ten times: the footer follows
            for state, when, greyed in ((lonely, 2000 + 2 * t, True), (HEALTHY, 2001 + 2 * t, False)):
                a.post_message(StatusPolled(snap(*state.masters, t=when)))
                await until(pilot, lambda greyed=greyed: footer_key(a, "f") == greyed, 5,
                            f"the footer's f {'greyed' if greyed else 'enabled'}")
        assert footer_keys_alive() <= 2 * shown


def footer_key(a: MonitorApp, key: str) -> bool | None:
    """Whether the footer shows that key greyed (None while the footer is being rebuilt)."""
    shown = [k for k in a.query_one(KeysFooter).children if getattr(k, "key", None) == key]
    return shown[0].has_class("-disabled") if shown else None
