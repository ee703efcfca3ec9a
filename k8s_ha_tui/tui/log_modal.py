"""The selected node's keepalived and HAProxy journal, as its systemd would show it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import RichLog, Static


class LogModal(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,l", "dismiss", "Close")]

    def __init__(self, node: str, text: str) -> None:
        super().__init__()
        self.node = node
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical(id="logs"):
            yield Static(f"{self.node}: journalctl -u keepalived -u haproxy (esc to close)", id="logs-title")
            log = RichLog(id="logs-body", wrap=False, highlight=False, markup=False)
            yield log

    def on_mount(self) -> None:
        self.query_one(RichLog).write(self.text)
