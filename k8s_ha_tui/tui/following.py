"""What the monitor's modal screens share: they read the app through a Protocol (no import of
the app: no cycle) and follow its status as it changes (a watch, not a poll)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar, cast

from textual.screen import ModalScreen

from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.status.model import ClusterStatus

Result = TypeVar("Result")


class Monitor(Protocol):
    """What a screen reads of the app that shows it."""

    status: ClusterStatus | None
    topo: Topology
    history: dict[str, Sequence[str]]

    def refusal_for(self, name: str, action: str, param: str | None) -> str | None: ...


class FollowingScreen(ModalScreen[Result | None]):
    """A modal screen that shows the monitor's latest status, redrawn by `follow` as it changes;
    dismissed with None when closed."""

    @property
    def monitor(self) -> Monitor:
        return cast(Monitor, self.app)

    def on_mount(self) -> None:
        self.watch(self.app, "status", lambda _snap: self.follow())  # also calls it now

    def follow(self) -> None:
        """Show what the monitor's latest status says."""

    def action_close(self) -> None:
        self.dismiss(None)
