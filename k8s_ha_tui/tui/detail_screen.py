"""One master's detail on a terminal too narrow for the pane beside the tables: the same widget
in a modal screen, following the monitor's status as it changes (a watch, not a poll)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Button

from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.tui.widgets.detail import MasterDetail


class Monitor(Protocol):
    """What the screen reads of the app that shows it (no import of the app: no cycle)."""

    status: ClusterStatus | None
    topo: Topology
    history: dict[str, Sequence[str]]

    def refusal_for(self, name: str, action: str, param: str | None) -> str | None: ...


class DetailScreen(ModalScreen[str | None]):
    """Dismissed with the button pressed (the monitor then runs that action), or None."""

    BINDINGS = [Binding("escape,q", "dismiss_none", "Close")]
    DEFAULT_CSS = """
    DetailScreen { align: center middle; }
    DetailScreen #detail { width: 100; max-width: 96%; height: auto; max-height: 96%; padding: 0 1;
                           border: thick $primary; background: $surface; }
    """

    def __init__(self, name: str) -> None:
        super().__init__()
        self.master_name = name

    @property
    def monitor(self) -> Monitor:
        return cast(Monitor, self.app)

    def compose(self) -> ComposeResult:
        with Vertical(id="detail"):
            yield MasterDetail()
            yield Button("Close", id="close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda _snap: self.refresh_detail())  # also calls it now

    def refresh_detail(self) -> None:
        """What the interlocks allow now, for the monitor's latest snapshot."""
        m = self.monitor
        self.query_one(MasterDetail).show(m.status, self.master_name, m.topo.check.weight,
                                          m.history.get(self.master_name, ()), m.refusal_for)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        pressed = event.button.id or ""
        self.dismiss(pressed.removeprefix("do-") if pressed.startswith("do-") else None)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
