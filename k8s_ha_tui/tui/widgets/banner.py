"""The top line: the cluster, its VIP, who holds it, the health (coloured by it), and the lock;
under it the diagnoses (one line each: node, cause, next step; `e` shows the evidence) or,
calmly, where a setup stands (notices)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from k8s_ha_tui.status import cells
from k8s_ha_tui.status.diagnosis import Diagnosis
from k8s_ha_tui.status.model import ClusterStatus, Health

CLASSES = {Health.HEALTHY: "healthy", Health.DEGRADED: "degraded", Health.CRITICAL: "critical"}
SETUP = "FIRST-TIME SETUP"


class Banner(Static):
    DEFAULT_CSS = """
    Banner { height: auto; content-align: left middle; text-style: bold; padding: 0 1; background: $panel;
             color: $text; }
    Banner.healthy { background: $success; }
    Banner.degraded { background: $warning; }
    Banner.critical { background: $error; }
    Banner.bootstrap { background: $primary; }
    """

    def show(self, snap: ClusterStatus) -> None:
        # A first-time setup is calm (nothing is broken: the API is not there yet), not a warning.
        state = SETUP if snap.bootstrap and snap.health == Health.DEGRADED else snap.health.name
        lock = ""
        if snap.lock and snap.lock.what.startswith("drill "):  # a drill moves the VIP and stops daemons on purpose
            lock = f"\n DRILL RUNNING: {snap.lock.describe()} — faults on purpose, undone by the drill; actions wait"
        elif snap.lock:
            lock = f"\n {snap.lock.describe()} — actions wait for it"
        self.update(Text.assemble((f" {snap.name} ", "bold"), "  VIP ", (cells.vips(snap), "bold"), "  →  ",
                                  (cells.holders(snap), "bold"), f"   [{state}]", lock))
        shown = "bootstrap" if state == SETUP else CLASSES[snap.health]
        for cls in (*CLASSES.values(), "bootstrap"):
            self.set_class(cls == shown, cls)


class Alarms(Static):
    DEFAULT_CSS = """
    Alarms { height: auto; max-height: 5; padding: 0 1; color: $text-muted; text-wrap: nowrap;
             text-overflow: ellipsis; }
    Alarms.alarm { color: $error; text-style: bold; }
    Alarms.notice { color: $text; }
    """
    SHOWN = 3  # diagnoses on screen; the rest are counted (all of them: key e)

    def show(self, snap: ClusterStatus, diagnoses: list[Diagnosis]) -> None:
        lines = [f"{'⚠' if d.severity == 'critical' else '•'} {d.line()}" for d in diagnoses[:self.SHOWN]]
        if diagnoses:
            more = len(diagnoses) - self.SHOWN
            lines.append(f"  {f'{more} more; ' if more > 0 else ''}e: evidence, next steps and remedies")
        lines += [f"➜ {notice}" for notice in snap.notices]
        self.update(Text("\n".join(lines) or "no alarms"))  # Text: no markup in what nodes say
        self.set_class(bool(diagnoses), "alarm")
        self.set_class(bool(snap.notices) and not diagnoses, "notice")


class Unavailable(Static):
    """Why the greyed keys are greyed: the interlock's reason, and the way out where there is one."""

    DEFAULT_CSS = "Unavailable { color: $warning; height: auto; max-height: 3; }"

    def show(self, refused: list[tuple[str, str, str | None]]) -> None:
        """(key, reason, way out)."""
        ways = {way for _, _, way in refused if way}
        self.update("\n".join(f" {key} unavailable: {reason}" for key, reason, _ in refused)
                    + "".join(f" ({way})" for way in sorted(ways)))
        self.display = bool(refused)
