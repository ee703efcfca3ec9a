"""The segment census: every VRRP router the masters hear, by router id: this cluster's masters,
the neighbours on other router ids (information), and anything on this cluster's router id that
is not one of its masters (a collision: red). It follows the monitor's status while open."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.tui.following import FollowingScreen

COLUMNS = ("router id", "address", "who", "priority", "every", "VIPs", "heard")


def rows(snap: ClusterStatus, now: float) -> list[tuple[Text | str, ...]]:
    foreign = snap.foreign_routers
    names = {m.address: m.name for m in snap.masters}
    out: list[tuple[Text | str, ...]] = []
    for a in snap.segment:
        if a in foreign:
            who = Text("COLLISION", "bold red")
        elif a.vrid == snap.router_id:
            who = Text(names.get(a.address, "this cluster"), "green")
        else:
            who = Text("neighbour", "dim")
        out.append((str(a.vrid), a.address, who, str(a.priority), f"{a.interval:g} s", ", ".join(a.vips) or "-",
                    f"{max(0.0, now - a.last_heard):.0f} s ago"))
    return out


def summary(snap: ClusterStatus) -> Text:
    ids = sorted({a.vrid for a in snap.segment})
    text = Text(f"This cluster: router id {snap.router_id}, VIP {snap.vip}. Heard on the segment: "
                f"{len(snap.segment)} router(s) on {len(ids)} router id(s).")
    if snap.foreign_routers:
        text.append(f"  Collision: router id {snap.free_router_id} is free.", "bold red")
    if snap.census_missing:
        text.append(f"  Not listening on {', '.join(snap.census_missing)} (no tcpdump, no right to capture: "
                    "root or CAP_NET_RAW, or it stopped).", "yellow")
    return text


class SegmentScreen(FollowingScreen[None]):
    BINDINGS = [Binding("escape,q,v", "close", "Close")]
    DEFAULT_CSS = """
    SegmentScreen { align: center middle; }
    SegmentScreen #segment { width: 110; max-width: 96%; height: auto; max-height: 96%; padding: 0 1;
                             border: thick $primary; background: $surface; }
    SegmentScreen DataTable { height: auto; max-height: 20; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(id="segment"):
            yield Static(id="segment-summary")
            yield DataTable(id="segment-table", cursor_type="row", zebra_stripes=True)

    def follow(self) -> None:
        snap = self.monitor.status
        table = self.query_one("#segment-table", DataTable)
        if not table.columns:
            table.add_columns(*COLUMNS)
        table.clear()
        if snap is None:
            return
        self.query_one("#segment-summary", Static).update(summary(snap))
        for row in rows(snap, snap.taken_at):
            table.add_row(*row)
