"""The workers: reached over SSH or not, and the API through the VIP as each of them sees it."""

from __future__ import annotations

from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.tui.palette import Palette
from k8s_ha_tui.tui.widgets.keyed_table import KeyedTable


class WorkersTable(KeyedTable):
    DEFAULT_CSS = "WorkersTable { height: auto; width: 30; border: round $primary; overflow-x: hidden; }"

    def __init__(self, **kw) -> None:
        super().__init__(cursor_type="none", **kw)

    def on_mount(self) -> None:
        for name in ("worker", "ssh", "API"):
            self.add_column(name, key=name)
        self.border_title = "workers"

    def show(self, snap: ClusterStatus, palette: Palette) -> None:
        bootstrap = snap.bootstrap  # a property over every master: once, not once per worker
        self.set_rows([(w.name, [(w.name, ""), palette.shown(("ok", "") if w.reachable else ("lost", "bad")),
                                 palette.shown(cells.api(w, bootstrap))]) for w in snap.workers])
