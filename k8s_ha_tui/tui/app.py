"""The live monitor: who holds the VIP, every keepalived, every HAProxy backend, the workers'
view of the API, an event log — and actions behind confirmations and interlocks.

It only displays ClusterStatus snapshots from the collector and hands actions to actions.py.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rich.table import Table as RichTable
from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, RichLog, Static

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.operations import actions
from k8s_ha_tui.operations.guard import LockOptions
from k8s_ha_tui.remote.ssh import HostKeyPolicy, NodeConnection, SshError, connect
from k8s_ha_tui.status import cells
from k8s_ha_tui.status.events import EventTracker, Level
from k8s_ha_tui.status.model import ClusterStatus, Health, MasterStatus
from k8s_ha_tui.status.poll import Collector
from k8s_ha_tui.tui.confirm_modal import ConfirmModal
from k8s_ha_tui.tui.detail_screen import BUTTONS, DetailScreen
from k8s_ha_tui.tui.log_modal import LogModal
from k8s_ha_tui.tui.messages import ActionFinished, StatusPolled

TRACKS_LONG = "'s running keepalived does not follow /etc/keepalived/"  # shortened in #unavailable
HEALTH_CLASS = {Health.HEALTHY: "healthy", Health.DEGRADED: "degraded", Health.CRITICAL: "critical"}


NARROW = 110  # columns: below this, backend cells drop their age (seconds since the last change)
STACK = 76  # columns: below this, the backends and workers panels stack
TONES = {"good": "success", "warn": "warning", "bad": "error"}


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
        Binding("t", "toggle_theme", "Theme", tooltip="Dark / light"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit(130)", "Quit", show=False, priority=True),
    ]

    def __init__(self, topo: Topology, policy: HostKeyPolicy, interval: float = 1.0, collect: bool = True,
                 clock: Callable[[], str] = lambda: time.strftime("%H:%M:%S")):
        super().__init__()
        self.topo = topo
        self.policy = policy
        self.interval = interval
        self.collect = collect
        self.status: ClusterStatus | None = None
        self.tracker = EventTracker()
        self.collector: Collector | None = None
        self.busy = False
        self.quit_code: int | None = None  # asked to quit while an action ran: quit when it ends
        self.changes: list[str] = []  # what the actions run from here did, said when the monitor closes
        self._fresh: list[NodeConnection] = []  # connections made for one action or log view
        self.clock = clock  # the event log's time stamps (fixed in snapshot tests)
        self.history: dict[str, deque[str]] = {m.name: deque(maxlen=6) for m in topo.masters}  # per master

    # --- layout ---

    def compose(self) -> ComposeResult:
        yield Static("connecting…", id="banner")
        yield Static("", id="alarms")
        yield Static("", id="unavailable")
        yield DataTable(id="nodes", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="lower"):
            yield DataTable(id="backends", cursor_type="none")
            yield DataTable(id="workers", cursor_type="none")
        yield RichLog(id="events", wrap=True, markup=False, highlight=False, max_lines=500)
        yield Footer()

    def on_resize(self) -> None:
        self.screen.set_class(self.size.width < STACK, "narrow")
        if self.status is not None:
            self._fill_backends(self.status)

    def on_mount(self) -> None:
        self.title = f"k8s-ha-tui — {self.topo.name}"
        nodes = self.query_one("#nodes", DataTable)
        nodes.add_columns(*cells.MASTER_COLUMNS)
        backends = self.query_one("#backends", DataTable)
        backends.add_columns("HAProxy on", *cells.short_names([m.name for m in self.topo.masters]))
        self.query_one("#workers", DataTable).add_columns("worker", "ssh", "API")
        nodes.border_title = "masters (enter: details and buttons)"
        backends.border_title = "backends: HAProxy on \\ apiserver"
        self.query_one("#workers", DataTable).border_title = "workers"
        self.query_one("#events", RichLog).border_title = "events"
        if self.collect:
            self.run_collector()

    @work(exclusive=True, group="collector")
    async def run_collector(self) -> None:
        def polled(snap: ClusterStatus) -> None:
            self.post_message(StatusPolled(snap))
        self.collector = Collector(self.topo, self.policy, self.interval, on_snapshot=polled)
        await self.collector.run()

    # --- showing a snapshot ---

    @on(StatusPolled)
    def show_status(self, message: StatusPolled) -> None:
        snap = message.status
        try:
            banner = self.query_one("#banner", Static)
        except NoMatches:  # a snapshot still queued while the app shuts down
            return
        self.status = snap
        for line in self.tracker.update(snap):
            self.log_event(line.text, line.level)
        holders = ", ".join(snap.holders) or "NOBODY"
        lock = f"\n {snap.lock.describe()} — actions wait for it" if snap.lock else ""
        state = "FIRST-TIME SETUP" if snap.bootstrap and snap.health == Health.DEGRADED else snap.health.name
        banner.update(Text.assemble((f" {snap.name} ", "bold"), "  VIP ", (snap.vip, "bold"), "  →  ",
                                    (holders, "bold"), f"   [{state}]", lock))
        self.refresh_bindings()
        # A first-time setup is calm (nothing is broken: the API is not there yet), not a warning.
        shown = "bootstrap" if state == "FIRST-TIME SETUP" else HEALTH_CLASS[snap.health]
        for cls in (*HEALTH_CLASS.values(), "bootstrap"):
            banner.set_class(cls == shown, cls)
        alarms = self.query_one("#alarms", Static)
        lines = [f" ⚠ {'  ⚠ '.join(snap.alarms)}"] if snap.alarms else []
        lines += [f" ➜ {notice}" for notice in snap.notices]
        alarms.update("\n".join(lines) or " no alarms")
        alarms.set_class(bool(snap.alarms), "alarm")
        alarms.set_class(bool(snap.notices) and not snap.alarms, "notice")
        self._fill_nodes(snap)
        self._fill_backends(snap)
        self._fill_workers(snap)
        self._show_unavailable()

    def colour(self, what: str) -> str:
        """A style from the theme's variables (success, warning, error), so both themes stay legible."""
        return self.get_css_variables().get(what, "")

    def cell(self, value: cells.Cell, bold: bool = False) -> Text:
        text, tone = value
        style = self.colour(TONES[tone]) if tone else ""
        return Text(text, f"bold {style}" if bold else style)

    def _fill_nodes(self, snap: ClusterStatus) -> None:
        table = self.query_one("#nodes", DataTable)
        selected = self._selected_key()
        table.clear()
        for m in snap.masters:
            row = cells.master_row(m, snap.bootstrap)
            table.add_row(self.cell(row[0], bold=True), *(self.cell(c) for c in row[1:]), key=m.name)
        if table.row_count:
            index = next((i for i, m in enumerate(snap.masters) if m.name == selected), 0)
            table.move_cursor(row=index)

    def _selected_key(self) -> str | None:
        """The selected master by its row key (the node's name), not by a row index."""
        table = self.query_one("#nodes", DataTable)
        if not table.row_count:
            return None
        try:
            return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        except Exception:  # no such cell any more
            return None

    def _fill_backends(self, snap: ClusterStatus) -> None:
        table = self.query_one("#backends", DataTable)
        table.clear()
        wide = self.size.width >= NARROW
        absent = set(snap.not_installed)
        table.add_row(Text("its apiserver", "italic"),
                      *(self.cell(cells.apiserver(m, not wide)) for m in snap.masters))  # each column's own /readyz
        for m in snap.masters:
            row = [cells.backend(next(iter(m.backends_of(a.name)), None) if m.reachable else None, wide,
                                 a.name not in absent) for a in self.topo.masters]
            table.add_row(m.name, *(self.cell(c) for c in row))

    def _fill_workers(self, snap: ClusterStatus) -> None:
        table = self.query_one("#workers", DataTable)
        table.clear()
        for w in snap.workers:
            table.add_row(w.name, self.cell(("ok", "") if w.reachable else ("lost", "bad")),
                          self.cell(cells.api(w, snap.bootstrap)))

    def log_event(self, text: str, level: Level = "info") -> None:
        """One line of the event log; a line that wraps stays indented under its text."""
        style = {"critical": f"bold {self.colour('error')}", "warning": self.colour("warning")}.get(level, "")
        line = RichTable.grid(padding=(0, 1), expand=True)
        line.add_column(width=8, style="dim")
        line.add_column(ratio=1)
        line.add_row(self.clock(), Text(text, style))
        self.query_one("#events", RichLog).write(line)
        name = text.split(" ", 1)[0]
        if name in self.history:
            self.history[name].append(f"{self.clock()} {text}")

    # --- actions ---

    def selected_master(self) -> MasterStatus | None:
        if self.status is None:
            return None
        key = self._selected_key()
        return self.status.master(key) if key else None

    async def conn_for(self, name: str) -> NodeConnection:
        """The collector's kept-open connection to that node, or a fresh one (closed by
        `_close_fresh` when the action or the log view is done)."""
        if self.collector:
            for s in self.collector.sessions:
                if s.node.name == name and s.conn is not None:
                    return s.conn
        conn = await connect(self.topo, self.topo.master(name), self.policy)
        self._fresh.append(conn)
        return conn

    def _close_fresh(self) -> None:
        for conn in self._fresh:
            conn.close()
        self._fresh.clear()

    ACTIONS = ("failover", "maintenance", "backend")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Greys out (None) the action keys while a change runs — ours, or another operator's
        (the cluster lock) — and where the interlocks already refuse it for the selected master
        (a hand-made node that does not follow our track files, say), so the footer says so
        before anyone presses them; `#unavailable` says why."""
        if action not in self.ACTIONS:
            return True
        if self.busy or (self.status is not None and self.status.lock is not None):
            return None
        return None if self.refusal(action, parameters) else True

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
        return actions.Request("backend", sel.name, str(parameters[0]) if parameters else "drain")

    def refusal(self, action: str, parameters: tuple[object, ...] = (),
                master: MasterStatus | None = None) -> str | None:
        """Why the interlocks would refuse this key now, or None."""
        request = self.request_for(action, parameters, master)
        if self.status is None or request is None:
            return None
        try:
            request.describe(self.status)
        except UserError as exc:
            return str(exc)
        return None

    def refusal_for(self, name: str, action: str, param: str | None) -> str | None:
        """Why the detail screen's button for master `name` would be refused now, or None."""
        m = self.status.master(name) if self.status else None
        if m is None:
            return "no such master"
        if action == "logs":
            return None if m.reachable else "unreachable"
        if self.busy or (self.status is not None and self.status.lock is not None):
            return "a change is running (the cluster is locked)"
        if action == "failover" and self.status and name in self.status.holders:
            return "it holds the VIP already"
        return self.refusal(action, (param,) if param else (), m)

    @on(DataTable.RowSelected, "#nodes")
    def _open_detail(self, event: DataTable.RowSelected) -> None:
        """Enter or a click on a master: its detail screen; a button there runs the same action as the key."""
        name = str(event.row_key.value)

        def chosen(button: str | None) -> None:
            if button is None:
                return
            _label, action, param = BUTTONS[button]
            if action == "backend":
                self.action_backend(str(param))
            else:
                getattr(self, f"action_{action}")()
        self.push_screen(DetailScreen(name), chosen)

    def _show_unavailable(self) -> None:
        reasons, way_out = [], ""
        for key, action in (("f", "failover"), ("m", "maintenance")):
            why = self.refusal(action)
            if why:
                short = why.split(", so ")[0].split("; ")[0]
                reasons.append(f" {key} unavailable: {short.replace(TRACKS_LONG, ' does not follow ')}")
                if "does not follow" in why:
                    way_out = " (deploy this tool's configs, or the CLI's --method stop)"
        hint = self.query_one("#unavailable", Static)
        hint.update("\n".join(reasons) + way_out)
        hint.display = bool(reasons)

    @on(DataTable.RowHighlighted, "#nodes")
    def _selection_moved(self) -> None:
        if not self.screen_stack:  # a highlight still queued while the app shuts down
            return
        self.refresh_bindings()
        if self.status is not None:
            self._show_unavailable()

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
        self.refresh_bindings()
        self.log_event(f"{title}: started")
        conns = [s.conn for s in self.collector.sessions if s.is_master and s.conn is not None] \
            if self.collector else []

        async def yes(_question: str) -> bool:
            return True  # the operator answered the dialog already
        try:
            outcome = await actions.perform(request, self.topo.name, conns, len(self.topo.masters),
                                            self._fresh_status, self.conn_for, yes, LockOptions(),
                                            self.log_event)
            self.post_message(ActionFinished(outcome.text(), True))
        except (UserError, SshError) as exc:
            self.post_message(ActionFinished(f"{title} failed: {exc}", False))
        finally:
            self._close_fresh()
            self.busy = False
            self.refresh_bindings()
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
    def action_done(self, message: ActionFinished) -> None:
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

    @work(exclusive=True, group="logs")
    async def action_logs(self) -> None:
        m = self.selected_master()
        if m is None or not m.reachable:
            self.notify("select a reachable master", severity="warning")
            return
        try:
            conn = await self.conn_for(m.name)
            res = await conn.run("journalctl -u keepalived -n 40 --no-pager; echo; "
                                 "journalctl -u haproxy -n 40 --no-pager", check=False, timeout=10)
            text = str(res.stdout or "") or "(no output)"
        except SshError as exc:
            text = str(exc)
        finally:
            self._close_fresh()
        self.push_screen(LogModal(m.name, text))

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"


def run_monitor(topo: Topology, policy: HostKeyPolicy, interval: float) -> tuple[int, list[str]]:
    """The exit code (130 after Ctrl-C) and what the actions run from the monitor did."""
    app = MonitorApp(topo, policy, interval)
    app.run()
    return app.return_code or 0, app.changes

