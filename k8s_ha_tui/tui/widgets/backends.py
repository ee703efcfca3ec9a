"""Every HAProxy's view of every apiserver (rows: the HAProxy on each master; columns: the
apiserver of each master; each apiserver's own answer is in the masters table). An apiserver not
installed yet reads `none yet`, not a red DOWN. Seconds since a change only when the matrix is
wide enough."""

from __future__ import annotations

from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.tui.palette import Palette
from k8s_ha_tui.tui.widgets.keyed_table import KeyedTable


class BackendsMatrix(KeyedTable):
    DEFAULT_CSS = "BackendsMatrix { height: auto; width: 1fr; border: round $primary; overflow-x: hidden; }"

    def __init__(self, masters: list[str], **kw) -> None:
        super().__init__(cursor_type="none", **kw)
        self.masters = masters

    def on_mount(self) -> None:
        self.add_column("HAProxy on", key="haproxy")
        for name, short in zip(self.masters, cells.short_names(self.masters)):
            self.add_column(short, key=name)
        self.border_title = "backends: HAProxy on \\ apiserver"

    def show(self, snap: ClusterStatus, palette: Palette, wide: bool) -> None:
        absent = set(snap.not_installed)
        rows = []
        for m in snap.masters:
            row = [cells.backend(next(iter(m.backends_of(a)), None) if m.reachable else None, wide, a not in absent)
                   for a in self.masters]
            rows.append((m.name, [(m.name, ""), *(palette.shown(c) for c in row)]))
        self.set_rows(rows)
