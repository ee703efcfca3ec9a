"""One master in detail, with buttons for what can be done to it: its VRRP state and where its
effective priority comes from, what it runs and follows, its HAProxy's view of every apiserver,
its last events. A button an interlock would refuse is disabled, and the reason is shown. The
same widget is the pane beside the tables on wide terminals and the detail screen on narrow ones."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus, MasterStatus

# button id → (label, the monitor's action, its parameter)
BUTTONS = {
    "failover": ("Failover to it", "failover", None),
    "maintenance": ("Maintenance", "maintenance", None),
    "drain": ("Drain apiserver", "backend", "drain"),
    "ready": ("Ready apiserver", "backend", "ready"),
    "maint": ("Maint apiserver", "backend", "maint"),
    "restart-keepalived": ("Restart keepalived", "restart", "keepalived"),
    "restart-haproxy": ("Restart HAProxy", "restart", "haproxy"),
    "logs": ("Logs", "logs", None),
}


def priority_story(m: MasterStatus, weight: int) -> str:
    """Where the effective priority comes from: base, check, boost; maintenance is FAULT."""
    if m.maintenance:
        return f"in maintenance: FAULT, it claims nothing (base priority {m.base_priority or '?'})"
    parts = [f"base {m.base_priority or '?'}"]
    if m.check == "BAD" and weight:
        parts.append(f"check {weight:+d}")
    elif m.check == "BAD":
        parts.append("check failing: FAULT")
    if m.boost:
        parts.append(f"boost +{m.boost}")
    return f"effective {m.effective_priority or '?'} = " + " ".join(parts)


def held(m: MasterStatus) -> str:
    """', holds the VIP' (a dual stack's: both, or which of its two)."""
    if m.vrrp_state6 is not None and m.holds_vip != m.holds_vip6:
        return f", holds the {'IPv4' if m.holds_vip else 'IPv6'} VIP only"
    return ", holds the VIP" + ("s" if m.vrrp_state6 is not None else "") if m.holds_vip else ""


def describe(m: MasterStatus, snap: ClusterStatus, weight: int, history: list[str]) -> str:
    if not m.reachable:
        return f"{m.name} ({m.address}): unreachable since {cells.clock(m.unreachable_since)}: {m.error or '?'}"
    follows = {True: "yes", False: "no", None: "unknown"}
    lines = [
        f"{m.name} ({m.address})   VRRP {cells.vrrp(m)[0]}{held(m)}"
        f"   last transition {cells.clock(m.last_transition)}",
        f"priority: {priority_story(m, weight)}",
        f"keepalived {m.keepalived}, haproxy {m.haproxy}, check {m.check}, its apiserver {m.apiserver}, "
        f"API through the VIP{'s' if m.vrrp_state6 is not None else ''} {cells.api(m)[0]}",
        f"follows the maintenance switch: {follows[m.tracks_maintenance]}; the priority boost: "
        f"{follows[m.tracks_boost]}",
        "its HAProxy sees:" + "".join(f"\n  {a.name:<16} {cells.backend(next(iter(m.backends_of(a.name)), None))[0]}"
                                      for a in snap.masters),
        "last events:" + ("".join(f"\n  {line}" for line in history) if history else " none yet"),
    ]
    return "\n".join(lines)


Refusal = Callable[[str, str, str | None], str | None]  # (master, action, parameter) → why not, or None


class MasterDetail(Vertical):
    DEFAULT_CSS = """
    MasterDetail { height: auto; }
    MasterDetail #detail-buttons { layout: grid; grid-size: 4; grid-gutter: 1 1; height: auto; margin-top: 1; }
    MasterDetail #detail-buttons Button { width: 1fr; }
    MasterDetail #detail-refused { color: $warning; height: auto; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-text")
        with Horizontal(id="detail-buttons"):
            for key, (label, _action, _param) in BUTTONS.items():
                yield Button(label, id=f"do-{key}", variant="warning" if key == "failover" else "default", compact=True)
        yield Static("", id="detail-refused")

    def show(self, snap: ClusterStatus | None, name: str | None, weight: int, history: Sequence[str],
             refusal: Refusal) -> None:
        m = snap.master(name) if snap is not None and name else None
        if snap is None or m is None:
            return
        self.query_one("#detail-text", Static).update(describe(m, snap, weight, list(history)))
        refused = []
        for key, (label, action, param) in BUTTONS.items():
            why = refusal(m.name, action, param)
            self.query_one(f"#do-{key}", Button).disabled = why is not None
            if why:
                refused.append(f"{label}: {why}")
        self.query_one("#detail-refused", Static).update("\n".join(refused))
