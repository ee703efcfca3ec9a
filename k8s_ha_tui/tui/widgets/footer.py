"""Textual's Footer without its leak, for a monitor that stays open for days.

Each time the keys change, Footer recomposes: every new key binds its `compact` to the footer,
which adds a watcher on the footer, and Textual drops the watchers of removed keys only when
`compact` itself changes, which it never does here. So every recompose kept a footer's worth of
dead keys (about 10 kB each): the monitor's RSS grew 1.2 MB a second when its keys were
refreshed on every snapshot (textual 8.2.8, measured with tracemalloc and bench/soak.py)."""

from __future__ import annotations

from textual.widgets import Footer


class KeysFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        watchers = getattr(self, "__watchers", {}).get("compact")  # Textual's own store (reactive._watch)
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
