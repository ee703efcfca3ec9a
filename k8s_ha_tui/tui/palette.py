"""The theme's colours for the tones cells carry (status/cells.py: good, warn, bad), looked up
once per theme — not once per cell — so both themes stay legible and a redraw is cheap."""

from __future__ import annotations

from rich.text import Text

from k8s_ha_tui.status.cells import Cell

TONES = {"good": "success", "warn": "warning", "bad": "error"}


class Palette:
    def __init__(self, variables: dict[str, str]):
        self.styles = {tone: variables.get(name, "") for tone, name in TONES.items()}
        self.critical = f"bold {self.styles['bad']}"
        self.warning = self.styles["warn"]

    def shown(self, cell: Cell, bold: bool = False) -> tuple[str, str]:
        """(text, rich style) of a cell: what a table shows."""
        text, tone = cell
        style = self.styles.get(tone, "") if tone else ""
        return text, f"bold {style}".strip() if bold else style

    def text(self, cell: Cell, bold: bool = False) -> Text:
        return Text(*self.shown(cell, bold))
