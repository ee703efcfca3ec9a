"""The masters, one row each, keyed by name: VRRP, priority, check, VIP, maintenance, daemons,
its own apiserver, the API through the VIP from there (status/cells.py writes each cell)."""

from __future__ import annotations

from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.tui.palette import Palette
from k8s_ha_tui.tui.widgets.keyed_table import KeyedTable


class MastersTable(KeyedTable):
    DEFAULT_CSS = "MastersTable { height: auto; border: round $primary; overflow-x: hidden; }"

    def on_mount(self) -> None:
        for name in cells.MASTER_COLUMNS:
            self.add_column(name, key=name)
        self.border_title = "masters (enter: details and buttons)"

    def show(self, snap: ClusterStatus, palette: Palette, wide: bool = True) -> None:
        rows, bootstrap = [], snap.bootstrap
        for m in snap.masters:
            row = cells.master_row(m, bootstrap, short=not wide)
            rows.append((m.name, [palette.shown(row[0], bold=True), *(palette.shown(c) for c in row[1:])]))
        self.set_rows(rows)

    @property
    def selected(self) -> str | None:
        """The selected master, by its row key (never by a row index)."""
        if not self.row_count:
            return None
        try:
            return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)
        except Exception:  # no such cell any more
            return None
