"""The masters, one row each, keyed by name: VRRP, priority, check, VIP, maintenance, daemons,
its own apiserver, the API through the VIP from there (status/cells.py writes each cell)."""

from __future__ import annotations

from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.tui.palette import Palette
from k8s_ha_tui.tui.widgets.keyed_table import KeyedTable


class MastersTable(KeyedTable):
    DEFAULT_CSS = "MastersTable { height: auto; border: round $primary; overflow-x: hidden; }"
    short: bool | None = None  # the headers and words in use (None: no columns yet)

    def on_mount(self) -> None:
        self.border_title = "masters (enter: details and buttons)"

    def _columns(self, short: bool) -> None:
        """Build the columns for the width, and again only when the terminal is resized across
        COMPACT (never for a snapshot); the selected master stays selected."""
        if short == self.short:
            return
        selected = self.selected
        if self.short is not None:
            self.clear(columns=True)
            self._shown.clear()
        for key, label in zip(cells.MASTER_COLUMNS, cells.SHORT_COLUMNS if short else cells.MASTER_COLUMNS):
            self.add_column(label, key=key)
        self.short = short
        self.call_after_refresh(self._select, selected)

    def _select(self, name: str | None) -> None:
        if name is not None and name in self._shown:
            self.move_cursor(row=self.get_row_index(name))

    def show(self, snap: ClusterStatus, palette: Palette, short: bool = False) -> None:
        self._columns(short)
        rows, bootstrap, holders, holders6 = [], snap.bootstrap, snap.holders, snap.holders6
        labels = cells.short_names([m.name for m in snap.masters]) if short else [m.name for m in snap.masters]
        for m, label in zip(snap.masters, labels):
            doubt = (m.holds_vip and m.name not in holders) or (m.holds_vip6 and m.name not in holders6)
            row = cells.master_row(m, bootstrap, short=short, label=label, unconfirmed=doubt)
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
