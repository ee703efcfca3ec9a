"""Every diagnosis in full: the node, the cause, the evidence it rests on and the next step,
with a button for each remedy this tool can run (behind the same interlocks and question as the
keys). It follows the monitor's status while open, as the detail screen does."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from k8s_ha_tui.status.diagnosis import Diagnosis, diagnose
from k8s_ha_tui.tui.following import FollowingScreen

Remedy = tuple[str, str, str]


def remedy_label(remedy: Remedy) -> str:
    action, node, arg = remedy
    return f"{action} {node} {arg}"


def as_text(diagnoses: list[Diagnosis]) -> Text:
    if not diagnoses:
        return Text("Nothing is wrong: no diagnosis.")
    out = Text()
    for d in diagnoses:
        style = "bold red" if d.severity == "critical" else "bold yellow"
        out.append(f"{d.severity.upper()} ", style)
        out.append(f"{d.node}: {d.cause}\n", "bold")
        for fact in d.evidence:
            out.append(f"  · {fact}\n")
        out.append("  next: ", "italic")
        out.append(f"{d.next}\n\n")
    return out


class DiagnosisScreen(FollowingScreen[Remedy]):
    """Dismissed with the remedy to run (the monitor asks first), or None."""

    BINDINGS = [Binding("escape,q,e", "close", "Close")]
    DEFAULT_CSS = """
    DiagnosisScreen { align: center middle; }
    DiagnosisScreen #diagnosis { width: 110; max-width: 96%; height: auto; max-height: 96%; padding: 0 1;
                                 border: thick $error; background: $surface; }
    DiagnosisScreen #diagnosis-body { height: auto; max-height: 1fr; }
    DiagnosisScreen #remedies { height: auto; }
    DiagnosisScreen #remedies Button { margin-right: 1; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.remedies: list[Remedy] = []

    def _diagnoses(self) -> tuple[list[Diagnosis], list[Remedy]]:
        snap = self.monitor.status
        diagnoses = diagnose(snap) if snap is not None else []
        return diagnoses, list(dict.fromkeys(d.remedy for d in diagnoses if d.remedy is not None))

    def compose(self) -> ComposeResult:
        diagnoses, self.remedies = self._diagnoses()
        with Vertical(id="diagnosis"):
            with VerticalScroll(id="diagnosis-body"):
                yield Static(as_text(diagnoses), id="diagnosis-text")
            with Horizontal(id="remedies"):
                for i, remedy in enumerate(self.remedies):
                    yield Button(remedy_label(remedy), id=f"remedy-{i}", variant="warning", compact=True)
                yield Button("Close", id="close", variant="primary", compact=True)

    def follow(self) -> None:
        """The text and the remedies follow the status (a remedy whose diagnosis is gone goes, a
        new one appears); a remedy the interlocks refuse now is disabled."""
        diagnoses, remedies = self._diagnoses()
        if remedies != self.remedies:
            self.refresh(recompose=True)  # compose sets self.remedies; then the buttons are judged
            self.call_after_refresh(self.follow)
            return
        self.query_one("#diagnosis-text", Static).update(as_text(diagnoses))
        for i, (action, node, arg) in enumerate(self.remedies):
            button = self.query_one(f"#remedy-{i}", Button)
            why = self.monitor.refusal_for(node, action, arg)
            button.disabled = why is not None
            button.tooltip = why

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        pressed = event.button.id or ""
        self.dismiss(self.remedies[int(pressed.removeprefix("remedy-"))] if pressed.startswith("remedy-") else None)
