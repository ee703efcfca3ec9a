"""One master's detail on a terminal too narrow for the pane beside the tables: the same widget
in a modal screen, following the monitor's status as it changes (a watch, not a poll)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button

from k8s_ha_tui.tui.following import FollowingScreen
from k8s_ha_tui.tui.widgets.detail import MasterDetail


class DetailScreen(FollowingScreen[str]):
    """Dismissed with the button pressed (the monitor then runs that action), or None."""

    BINDINGS = [Binding("escape,q", "close", "Close")]
    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen #detail { width: 100; max-width: 96%; height: auto; max-height: 96%; padding: 0 1;
                           border: thick $primary; background: $surface; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.master_name = name

    def compose(self) -> ComposeResult:
        with Vertical(id="detail"):
            yield MasterDetail()
            yield Button("Close", id="close", variant="primary", compact=True)

    def follow(self) -> None:
        """What the interlocks allow now, for the monitor's latest snapshot."""
        m = self.monitor
        self.query_one(MasterDetail).show(m.status, self.master_name, m.topo.check.weight,
                                          m.history.get(self.master_name, ()), m.refusal_for)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        pressed = event.button.id or ""
        self.dismiss(pressed.removeprefix("do-") if pressed.startswith("do-") else None)
