"""The fleet: one row per cluster the monitor watches (`monitor -t A -t B ...`), worst first:
health, who holds the VIP, when it last moved, its alarms, and a change under way (the cluster
lock). Enter opens that cluster's monitor; escape there comes back here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Static

from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus, Health
from k8s_ha_tui.tui.widgets.footer import KeysFooter

COLUMNS = ("cluster", "health", "VIP holder", "last VIP move", "alarms", "change under way")
HEALTH_STYLE = {Health.HEALTHY: "green", Health.DEGRADED: "yellow", Health.CRITICAL: "bold red"}


@dataclass
class Watched:
    """One cluster of the fleet: its latest snapshot and when its VIP last moved."""

    topo: Topology
    snap: ClusterStatus | None = None
    holder: str | None = None
    last_move: float | None = None

    def seen(self, snap: ClusterStatus) -> None:
        holder = snap.holders[0] if len(snap.holders) == 1 else None
        if holder is not None and self.holder is not None and holder != self.holder:
            self.last_move = snap.taken_at
        self.holder = holder or self.holder
        self.snap = snap


def worst_first(fleet: Sequence[Watched]) -> list[Watched]:
    """Not yet heard from and unreachable first, then critical, degraded, healthy; by name within."""
    def rank(w: Watched) -> tuple[int, str]:
        if w.snap is None:
            return (-1, w.topo.name)
        reached = any(m.reachable for m in w.snap.masters)
        return (-int(w.snap.health) if reached else -3, w.topo.name)
    return sorted(fleet, key=rank)


def row(w: Watched, now: float) -> tuple[Text | str, ...]:
    snap = w.snap
    if snap is None:
        return (w.topo.name, Text("connecting…", "dim"), "-", "-", "-", "-")
    if not any(m.reachable for m in snap.masters):
        why = next((m.error for m in snap.masters if m.error), "no answer over SSH")
        return (w.topo.name, Text("UNREACHABLE", "bold red"), "-", "-", f"no master reachable: {why}", "-")
    holders = cells.holders(snap, "none")
    moved = "-" if w.last_move is None else f"{time.strftime('%H:%M:%S', time.localtime(w.last_move))} " \
        f"({max(0.0, now - w.last_move):.0f} s ago)"
    alarms = snap.alarms
    lock = snap.lock
    return (w.topo.name, Text(snap.health.name, HEALTH_STYLE[snap.health]), holders, moved,
            (f"{len(alarms)}: {alarms[0]}" if alarms else "none"),
            f"{lock.what} by {lock.who}" if lock else "-")


class Fleet(Protocol):
    fleet: dict[str, Watched]

    def open_cluster(self, name: str) -> None: ...


class FleetScreen(Screen[None]):
    BINDINGS = [Binding("enter", "open", "Open cluster"), Binding("q", "app.quit", "Quit")]
    DEFAULT_CSS = """
    FleetScreen #fleet-title { height: 1; padding: 0 1; background: $primary; color: $text; text-style: bold; }
    FleetScreen DataTable { height: 1fr; }
    """

    @property
    def owner(self) -> Fleet:
        return cast(Fleet, self.app)

    def compose(self) -> ComposeResult:
        yield Static("", id="fleet-title")
        yield DataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
        yield KeysFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        table.focus()
        self.follow()

    def follow(self) -> None:
        """Redraw every row from the latest snapshots (worst first), keeping the cursor's cluster."""
        try:
            table = self.query_one(DataTable)
        except NoMatches:  # a snapshot before the screen is composed: on_mount draws it
            return
        chosen = self.selected()
        ordered = worst_first(list(self.owner.fleet.values()))
        table.clear()
        for w in ordered:
            table.add_row(*row(w, time.time()), key=w.topo.name)
        names = [w.topo.name for w in ordered]
        if chosen in names:
            table.move_cursor(row=names.index(chosen))
        bad = sum(1 for w in ordered if w.snap is None or w.snap.health is not Health.HEALTHY)
        self.query_one("#fleet-title", Static).update(
            f"k8s-ha-tui fleet: {len(ordered)} clusters, {bad} not healthy (enter: open a cluster, q: quit)")

    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return str(key.value) if key.value is not None else None

    def action_open(self) -> None:
        name = self.selected()
        if name is not None:
            self.owner.open_cluster(name)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()
