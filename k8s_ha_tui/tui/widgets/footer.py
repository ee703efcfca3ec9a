"""Textual's Footer, for a monitor that stays open for days: redrawn only when what it shows
changes, and without Textual's leak.

Each time the keys change, Footer recomposes: every new key binds its `compact` to the footer,
which adds a watcher on the footer, and Textual drops the watchers of removed keys only when
`compact` itself changes, which it never does here. So every recompose kept a footer's worth of
dead keys (about 10 kB each): the monitor's RSS grew 1.2 MB a second while its keys were
refreshed on every snapshot (textual 8.2.8, measured with tracemalloc and bench/soak.py)."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

Drawn = tuple[tuple[str, bool, str], ...]


def keys_of(screen: Screen) -> Drawn:
    """What the footer shows of a screen's keys: each key, enabled or greyed, its tooltip."""
    return tuple((key, b.enabled, b.tooltip) for key, b in screen.active_bindings.items())


class KeysFooter(Footer):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.drawn: Drawn | None = None  # the keys of the last recompose

    def bindings_changed(self, screen: Screen) -> None:
        """The state changes every second, the keys seldom: redraw only when they did."""
        if self.drawn is not None and self.is_attached and screen is self.screen and keys_of(screen) == self.drawn:
            return
        super().bindings_changed(screen)

    async def recompose(self) -> None:
        drawn = keys_of(self.screen)  # taken first: a change during the recompose redraws again, never less
        if drawn == self.drawn:  # queued before the last one drew these keys (the first second: 5 more)
            return
        self.drawn = drawn  # before it draws: the same keys asked meanwhile are not queued again
        await super().recompose()
        watchers = getattr(self, "__watchers", {}).get("compact")  # Textual's own store (reactive._watch)
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
