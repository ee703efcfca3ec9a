"""Messages the monitor passes around (past tense: they report what happened)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from k8s_ha_tui.status.model import ClusterStatus


@dataclass
class StatusPolled(Message):
    """A new snapshot; a newer one makes an older one still in the queue pointless."""

    status: ClusterStatus

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, StatusPolled) and message.status.name == self.status.name  # one per cluster


@dataclass
class ActionFinished(Message):
    """An operator action is done: `text` for the event log, `ok` for its colour."""

    text: str
    ok: bool
