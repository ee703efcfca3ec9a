"""The event log: one line per event, coloured by its level (never by its text); a line that
wraps stays indented under its text."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import RichLog

from k8s_ha_tui.status.events import Level
from k8s_ha_tui.tui.palette import Palette


class EventLog(RichLog):
    DEFAULT_CSS = "EventLog { overflow-x: hidden; height: 1fr; min-height: 4; border: round $secondary; }"

    def __init__(self, **kw) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, max_lines=500, **kw)

    def on_mount(self) -> None:
        self.border_title = "events"

    def add(self, when: str, text: str, level: Level, palette: Palette) -> None:
        style = {"critical": palette.critical, "warning": palette.warning}.get(level, "")
        line = Table.grid(padding=(0, 1), expand=True)
        line.add_column(width=8, style="dim")
        line.add_column(ratio=1)
        line.add_row(when, Text(text, style))
        self.write(line)
