"""A DataTable updated in place by row and column key: a snapshot changes only the cells whose
text or colour changed, so the cursor, hover and scroll stay where the operator left them (and
500 workers cost little when nothing about them changed: a cell is built only to be written)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

Shown = tuple[str, str]  # a cell as (text, rich style)


class KeyedTable(DataTable):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._shown: dict[str, list[Shown]] = {}  # row key → what each cell shows

    def set_rows(self, rows: list[tuple[str, list[Shown]]]) -> None:
        """rows: (row key, cells in column order). New keys are added, vanished ones removed,
        and of the rest only changed cells are written."""
        columns = list(self.columns)
        wanted = {key for key, _ in rows}
        for gone in [key for key in self._shown if key not in wanted]:
            self.remove_row(gone)
            del self._shown[gone]
        for key, cells in rows:
            old = self._shown.get(key)
            if old is None:
                self.add_row(*(Text(text, style) for text, style in cells), key=key)
            elif old != cells:
                for column, was, now in zip(columns, old, cells):
                    if was != now:
                        self.update_cell(key, column, Text(*now), update_width=True)  # "lost 12:01:03" is wider
            self._shown[key] = cells
