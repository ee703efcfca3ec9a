"""The live monitor: who holds the VIP, every keepalived, every HAProxy backend, the workers'
view of the API, an event log — and actions behind confirmations and interlocks.

The app holds the state (the latest snapshot and whether an action runs) as reactives; its
widgets (tui/widgets/) only show a snapshot they are given; actions go to operations/actions.py.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.reactive import reactive
from textual.widgets import Button, DataTable

from k8s_ha_tui.errors import Refused, UserError
from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.operations import actions
from k8s_ha_tui.operations.guard import LockOptions
from k8s_ha_tui.remote.ssh import HostKeyPolicy, NodeConnection, SshError, connect
from k8s_ha_tui.status.diagnosis import diagnose
from k8s_ha_tui.status.events import EventTracker, Level
from k8s_ha_tui.status.model import ClusterStatus, MasterStatus
from k8s_ha_tui.status.poll import Collector
from k8s_ha_tui.tui.confirm_modal import ConfirmModal
from k8s_ha_tui.tui.detail_screen import DetailScreen
from k8s_ha_tui.tui.diagnosis_screen import DiagnosisScreen, Remedy
from k8s_ha_tui.tui.fleet_screen import FleetScreen, Watched
from k8s_ha_tui.tui.log_modal import LogModal
from k8s_ha_tui.tui.messages import ActionFinished, StatusPolled
from k8s_ha_tui.tui.palette import Palette
from k8s_ha_tui.tui.segment_screen import SegmentScreen
from k8s_ha_tui.tui.widgets.backends import BackendsMatrix
from k8s_ha_tui.tui.widgets.banner import Alarms, Banner, Unavailable
from k8s_ha_tui.tui.widgets.detail import BUTTONS, MasterDetail
from k8s_ha_tui.tui.widgets.events import EventLog
from k8s_ha_tui.tui.widgets.footer import KeysFooter
from k8s_ha_tui.tui.widgets.masters import MastersTable
from k8s_ha_tui.tui.widgets.workers import WorkersTable

NARROW = 110  # columns: below this, backend cells drop their age (seconds since the last change)
COMPACT = 96  # columns: below this, the masters table has short names, headers and words
STACK = 76  # columns: below this, the backends and workers panels stack
PANE = 140  # columns: from here on, the selected master's detail is a pane beside the tables


class MonitorApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "k8s-ha-tui"
    BINDINGS = [
        Binding("f", "failover", "Failover", tooltip="Move the VIP off its holder (to the selected master)"),
        Binding("m", "maintenance", "Maint on/off", tooltip="Toggle maintenance for the selected master"),
        Binding("d", "backend('drain')", "Drain", tooltip="Drain the selected master's apiserver on every HAProxy"),
        Binding("r", "backend('ready')", "Ready", tooltip="Put the selected apiserver back in service"),
        Binding("x", "backend('maint')", "Maint backend", tooltip="Take the selected apiserver out (maint)"),
        Binding("l", "logs", "Logs", tooltip="keepalived and haproxy journal of the selected master"),
        Binding("e", "diagnosis", "Diagnosis", tooltip="Every diagnosis: evidence, next step, remedies"),
        Binding("v", "segment", "Segment", tooltip="Every VRRP router heard on the segment, by router id"),
        Binding("escape", "fleet", "Fleet", tooltip="Back to every cluster watched (monitor -t A -t B ...)"),
        Binding("t", "toggle_theme", "Theme", tooltip="Dark / light"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit(130)", "Quit", show=False, priority=True),
    ]
    ACTIONS = ("failover", "maintenance", "backend", "restart")

    # The state; keys are enabled or greyed from it (check_action), so they follow it (the
    # footer redraws only when what it shows changed: KeysFooter).
    status: reactive[ClusterStatus | None] = reactive(None, bindings=True, always_update=True, init=False)
    busy: reactive[bool] = reactive(False, bindings=True)

    def __init__(self, topo: Topology, policy: HostKeyPolicy, interval: float = 1.0, collect: bool = True,
                 clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
                 fleet: Sequence[tuple[Topology, HostKeyPolicy]] = ()):
        """`fleet`: several clusters (the first is `topo`); a fleet screen comes first and every
        cluster is collected all the time, so opening one shows it at once."""
        super().__init__()
        self.topo = topo
        self.policy = policy
        self.interval = interval
        self.collect = collect
        self.tracker = EventTracker()
        self.collector: Collector | None = None
        self.quit_code: int | None = None  # asked to quit while an action ran: quit when it ends
        self.changes: list[str] = []  # what the actions run from here did, said when the monitor closes
        self.clock = clock  # the event log's time stamps (fixed in snapshot tests)
        self.history: dict[str, deque[str]] = {m.name: deque(maxlen=6) for m in topo.masters}  # per master
        self.palette = Palette({})
        self.fleet: dict[str, Watched] = {t.name: Watched(t) for t, _ in fleet} if len(fleet) > 1 else {}
        self.policies: dict[str, HostKeyPolicy] = {t.name: pol for t, pol in fleet}
        self.collectors: dict[str, Collector] = {}
        self.opening = False  # while the widgets are rebuilt for another cluster of the fleet

    # --- layout ---

    def compose(self) -> ComposeResult:
        yield Banner("connecting…", id="banner")
        yield Alarms("", id="alarms")
        yield Unavailable("", id="unavailable")
        with Horizontal(id="body"):
            with Vertical(id="main"):
                yield MastersTable(id="nodes", cursor_type="row", zebra_stripes=True)
                with Horizontal(id="lower"):
                    yield BackendsMatrix([m.name for m in self.topo.masters], id="backends")
                    yield WorkersTable(id="workers")
            with VerticalScroll(id="pane"):
                yield MasterDetail(id="pane-detail")
        yield EventLog(id="events")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.title = f"k8s-ha-tui — {self.topo.name}"
        self.palette = Palette(self.get_css_variables())
        self.theme_changed_signal.subscribe(self, self._new_theme)
        self._layout_for(self.size.width)
        self.query_one(MastersTable).focus()  # the keys act on its selected master
        if self.collect:
            if self.fleet:
                for w in self.fleet.values():
                    self.run_worker(self._collect(w.topo, self.policies[w.topo.name]), group=f"collect-{w.topo.name}")
            else:
                self.run_collector()
        if self.fleet:
            self.push_screen(FleetScreen())

    def _new_theme(self, _theme) -> None:
        """Colours are looked up once per theme; everything on screen is redrawn in the new ones."""
        self.palette = Palette(self.get_css_variables())
        if self.status is not None:
            self._show(self.status)

    def on_resize(self) -> None:
        self._layout_for(self.size.width)
        if self.status is not None:
            self._show(self.status)

    def _layout_for(self, width: int) -> None:
        self.screen.set_class(width < STACK, "narrow")
        self.screen.set_class(width >= PANE, "wide")

    async def _collect(self, topo: Topology, policy: HostKeyPolicy) -> None:
        """One cluster of the fleet, collected for as long as the monitor runs."""
        def polled(snap: ClusterStatus) -> None:
            self.post_message(StatusPolled(snap))
        self.collectors[topo.name] = Collector(topo, policy, self.interval, on_snapshot=polled)
        if topo.name == self.topo.name:
            self.collector = self.collectors[topo.name]
        await self.collectors[topo.name].run()

    def action_fleet(self) -> None:
        """Back to the fleet; not while an action runs (it belongs to the cluster shown)."""
        if self.busy:
            self.notify("an action is running on this cluster: the fleet when it is done", severity="warning")
            return
        if self.fleet and self.screen_stack and not isinstance(self.screen_stack[-1], FleetScreen):
            self.push_screen(FleetScreen())

    def open_cluster(self, name: str) -> None:
        """Show one cluster of the fleet in the monitor, as `monitor -t` alone would (once: a
        second enter while it opens does nothing)."""
        if self.opening:
            return
        self.opening = True
        self.run_worker(self._open(name), group="open-cluster")

    async def _open(self, name: str) -> None:
        w = self.fleet[name]
        try:
            await self.pop_screen()
            if name != self.topo.name:
                self.status = None  # the keys and the pane judge nothing of the other cluster meanwhile
                self.topo, self.policy = w.topo, self.policies[name]
                self.collector = self.collectors.get(name)
                self.tracker = EventTracker()
                self.history = {m.name: deque(maxlen=6) for m in w.topo.masters}
                await self.recompose()  # the masters and the backends matrix are this cluster's
                self.title = f"k8s-ha-tui — {w.topo.name}"
                self._layout_for(self.size.width)
                self.query_one(MastersTable).focus()
        finally:
            self.opening = False
        if w.snap is not None:
            self.post_message(StatusPolled(w.snap))

    @work(exclusive=True, group="collector")
    async def run_collector(self) -> None:
        def polled(snap: ClusterStatus) -> None:
            self.post_message(StatusPolled(snap))
        self.collector = Collector(self.topo, self.policy, self.interval, on_snapshot=polled)
        await self.collector.run()

    # --- showing a snapshot ---

    @on(StatusPolled)
    def _polled(self, message: StatusPolled) -> None:
        if self.fleet:
            watched = self.fleet.get(message.status.name)
            if watched is not None and watched.snap is not message.status:
                watched.seen(message.status)
            top = self.screen_stack[-1] if self.screen_stack else None  # empty while the app starts or stops
            if isinstance(top, FleetScreen):
                top.follow()
            if message.status.name != self.topo.name or self.opening:
                return
        try:
            self.query_one(Banner)
        except NoMatches:  # a snapshot still queued while the app shuts down
            return
        for event in self.tracker.update(message.status):
            self.log_event(event.text, event.level, event.node)
        self.status = message.status

    def watch_status(self, snap: ClusterStatus | None) -> None:
        if snap is not None:
            self._show(snap)

    def _show(self, snap: ClusterStatus) -> None:
        """Every widget shows the snapshot; only cells that changed are written."""
        if self.opening:
            return  # the widgets are being rebuilt for another cluster of the fleet: it shows them when done
        self.query_one(Banner).show(snap)
        self.query_one(Alarms).show(snap, diagnose(snap))
        self.query_one(MastersTable).show(snap, self.palette, short=self.size.width < COMPACT)
        self.query_one(BackendsMatrix).show(snap, self.palette, self.size.width >= NARROW)
        self.query_one(WorkersTable).show(snap, self.palette)
        self._show_selection()

    def _show_selection(self) -> None:
        """What depends on the selected master: the greyed keys' reasons and the side pane."""
        self._show_unavailable()
        if self.size.width >= PANE:
            selected = self.query_one(MastersTable).selected
            self.query_one("#pane").border_title = selected or ""
            self.query_one("#pane-detail", MasterDetail).show(self.status, selected, self.topo.check.weight,
                                                              self.history.get(selected or "", ()), self.refusal_for)

    def log_event(self, text: str, level: Level = "info", node: str | None = None) -> None:
        """One line of the event log, and of the node's own history (the detail's last events)."""
        self.query_one(EventLog).add(self.clock(), text, level, self.palette)
        if node in self.history:
            self.history[node].append(f"{self.clock()} {text}")

    # --- what the keys would do, and whether they may ---

    def selected_master(self) -> MasterStatus | None:
        key = self.query_one(MastersTable).selected
        return self.status.master(key) if self.status and key else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greys out (None) the action keys while a change runs — ours, or another operator's
        (the cluster lock) — and where the interlocks already refuse it for the selected master
        (a hand-made node that does not follow our track files, say), so the footer says so
        before anyone presses them; `#unavailable` says why."""
        if action == "fleet":
            return (None if self.busy else True) if self.fleet else False
        if action not in self.ACTIONS:
            return True
        if self.busy or (self.status is not None and self.status.lock is not None):
            return None
        return None if self.refused(action, parameters) else True

    def request_for(self, action: str, parameters: tuple[object, ...] = (),
                    master: MasterStatus | None = None) -> actions.Request | None:
        """The request a key would make for the selected master (or `master`)."""
        sel = master or self.selected_master()
        if action == "failover":
            target = sel.name if sel and self.status and sel.name not in self.status.holders and sel.eligible else None
            return actions.Request("failover", target)
        if sel is None:
            return None
        if action == "maintenance":
            return actions.Request("maintenance", sel.name, "off" if sel.maintenance else "on")
        if action == "restart":
            return actions.Request("restart", sel.name, str(parameters[0]) if parameters else "haproxy")
        return actions.Request("backend", sel.name, str(parameters[0]) if parameters else "drain")

    def refused(self, action: str, parameters: tuple[object, ...] = (),
                master: MasterStatus | None = None) -> Refused | None:
        """The interlocks' refusal of this key now (reason, way out), or None."""
        request = self.request_for(action, parameters, master)
        if self.status is None or request is None:
            return None
        try:
            request.describe(self.status)
        except Refused as exc:
            return exc
        except UserError as exc:
            return Refused(str(exc))
        return None

    def refusal_for(self, name: str, action: str, param: str | None) -> str | None:
        """Why the detail's button for master `name` would be refused now, or None."""
        m = self.status.master(name) if self.status else None
        if m is None:
            return "no such master"
        if action == "logs":
            return None if m.reachable else "unreachable"
        if self.busy or (self.status is not None and self.status.lock is not None):
            return "a change is running (the cluster is locked)"
        if action == "failover" and self.status and name in self.status.holders:
            return "it holds the VIP already"
        why = self.refused(action, (param,) if param else (), m)
        return str(why) if why else None

    def _show_unavailable(self) -> None:
        refusals = [(key, r.reason, r.way_out) for key, action in (("f", "failover"), ("m", "maintenance"))
                    if (r := self.refused(action)) is not None]
        self.query_one(Unavailable).show(refusals)

    @on(DataTable.RowHighlighted, "#nodes")
    def _selection_moved(self) -> None:
        if not self.screen_stack:  # a highlight still queued while the app shuts down
            return
        self.refresh_bindings()  # the keys depend on the selected master
        if self.status is not None:
            self._show_selection()

    @on(DataTable.RowSelected, "#nodes")
    def _open_detail(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on a master: beside the tables (wide) the pane follows already; on a
        narrower terminal its detail screen opens. A button runs the same action as the key."""
        if self.size.width >= PANE:
            return
        self.push_screen(DetailScreen(str(event.row_key.value)), self._button)

    @on(Button.Pressed, "#pane-detail Button")
    def _pane_button(self, event: Button.Pressed) -> None:
        self._button((event.button.id or "").removeprefix("do-"))

    def _button(self, button: str | None) -> None:
        if button not in BUTTONS:
            return
        _label, action, param = BUTTONS[button]
        if action in ("backend", "restart"):
            getattr(self, f"action_{action}")(str(param))
        else:
            getattr(self, f"action_{action}")()

    # --- actions ---

    async def conn_for(self, name: str, fresh: list[NodeConnection]) -> NodeConnection:
        """The collector's kept-open connection to that node, or a new one added to `fresh` (which
        its caller — one action, or one log view — closes when it is done)."""
        if self.collector:
            for s in self.collector.sessions:
                if s.node.name == name and s.conn is not None:
                    return s.conn
        conn = await connect(self.topo, self.topo.master(name), self.policy)
        fresh.append(conn)
        return conn

    def _ask_then(self, title: str, request: actions.Request) -> None:
        """Interlocks first (a refusal is shown, nothing asked), then the question, then the action."""
        if self.status is None or self.busy:
            self.notify("wait for the first status" if self.status is None else "an action is running",
                        severity="warning")
            return
        try:
            question = request.describe(self.status)
        except UserError as exc:
            self.log_event(f"refused: {exc}", "warning")
            self.notify(str(exc), title="refused", severity="error")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.perform_action(title, request)
        self.push_screen(ConfirmModal(title, question), answered)

    async def _fresh_status(self) -> ClusterStatus:
        """Taken after the lock is ours, so the interlocks judge what is true now."""
        if self.collector is not None:
            return await self.collector.poll_once()
        assert self.status is not None
        return self.status

    @work(exclusive=True, group="action")
    async def perform_action(self, title: str, request: actions.Request) -> None:
        self.busy = True
        self.log_event(f"{title}: started")
        conns = [s.conn for s in self.collector.sessions if s.is_master and s.conn is not None] \
            if self.collector else []
        fresh: list[NodeConnection] = []

        async def conn_for(name: str) -> NodeConnection:
            return await self.conn_for(name, fresh)

        async def yes(_question: str) -> bool:
            return True  # the operator answered the dialog already
        try:
            outcome = await actions.perform(request, self.topo.name, conns, len(self.topo.masters),
                                            self._fresh_status, conn_for, yes, LockOptions(), self.log_event)
            self.post_message(ActionFinished(outcome.text(), True))
        except (UserError, SshError) as exc:
            self.post_message(ActionFinished(f"{title} failed: {exc}", False))
        finally:
            for conn in fresh:
                conn.close()
            self.busy = False
            if self.quit_code is not None:
                self.exit(return_code=self.quit_code)

    async def action_quit(self, code: int = 0) -> None:
        """q (0) or Ctrl-C (130). A running action is never cut short: the monitor closes when
        it has put the cluster in a consistent state."""
        if self.busy:
            self.quit_code = code
            self.notify("an action is running: the monitor closes when it has finished", severity="warning")
            return
        self.exit(return_code=code)

    @on(ActionFinished)
    def _action_finished(self, message: ActionFinished) -> None:
        self.changes.append(message.text)
        self.log_event(message.text, "info" if message.ok else "warning")
        self.notify(message.text, severity="information" if message.ok else "error")

    def action_failover(self) -> None:
        """To the selected master if it can take the VIP, else to the best eligible one."""
        request = self.request_for("failover")
        if request is not None:
            self._ask_then("Failover", request)

    def action_maintenance(self) -> None:
        request = self.request_for("maintenance")
        if request is not None:
            self._ask_then(f"Maintenance {request.state}: {request.node}", request)

    def action_backend(self, state: str) -> None:
        request = self.request_for("backend", (state,))
        if request is not None:
            self._ask_then(f"Backend {state}: {request.node}", request)

    def action_restart(self, service: str) -> None:
        request = self.request_for("restart", (service,))
        if request is not None:
            self._ask_then(f"Restart {service}: {request.node}", request)

    def action_diagnosis(self) -> None:
        """Every diagnosis in full; a remedy chosen there is asked and run like a key."""
        def chosen(remedy: Remedy | None) -> None:
            if remedy is not None:
                action, node, arg = remedy
                self._ask_then(f"{action.capitalize()} {arg}: {node}", actions.Request(action, node, arg))
        self.push_screen(DiagnosisScreen(), chosen)

    def action_segment(self) -> None:
        """The census of the segment: every VRRP router the masters hear."""
        self.push_screen(SegmentScreen())

    @work(exclusive=True, group="logs")
    async def action_logs(self) -> None:
        m = self.selected_master()
        if m is None or not m.reachable:
            self.notify("select a reachable master", severity="warning")
            return
        fresh: list[NodeConnection] = []  # this view's own: an action running meanwhile keeps its own
        try:
            conn = await self.conn_for(m.name, fresh)
            res = await conn.run("journalctl -u keepalived -n 40 --no-pager; echo; "
                                 "journalctl -u haproxy -n 40 --no-pager", check=False, timeout=10)
            text = str(res.stdout or "") or "(no output)"
        except SshError as exc:
            text = str(exc)
        finally:
            for c in fresh:
                c.close()
        self.push_screen(LogModal(m.name, text))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"


def run_monitor(topo: Topology, policy: HostKeyPolicy, interval: float,
                fleet: Sequence[tuple[Topology, HostKeyPolicy]] = ()) -> tuple[int, list[str]]:
    """The exit code (130 after Ctrl-C) and what the actions run from the monitor did."""
    app = MonitorApp(topo, policy, interval, fleet=fleet)
    app.run()
    return app.return_code or 0, app.changes
