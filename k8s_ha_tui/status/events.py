"""What changed between two snapshots, as the lines an on-call engineer wants in the event log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from k8s_ha_tui.remote.apiserver import FAILING, NOT_INSTALLED, UNKNOWN, UP
from k8s_ha_tui.status import cells
from k8s_ha_tui.status.model import ClusterStatus, MasterStatus

Level = Literal["info", "warning", "critical"]


@dataclass(frozen=True)
class Event:
    """One line of the event log and how loud it is (the monitor colours by level, never by text)."""

    text: str
    level: Level = "info"
    node: str | None = None  # the master or worker it is about, if one (the monitor's per-master history)



SETTLE = 1.5  # seconds a no-holder or split-brain state must last before it is an event


@dataclass
class Lasting:
    """A state that is an event once it has lasted SETTLE seconds, and again when it ends."""

    since: float | None = None
    told: bool = False

    def step(self, active: bool, now: float) -> str | None:
        """'began' (it has lasted SETTLE), 'ended' (after it was told), else None."""
        if not active:
            told, self.since, self.told = self.told, None, False
            return "ended" if told else None
        self.since = self.since if self.since is not None else now
        if not self.told and now - self.since >= SETTLE:
            self.told = True
            return "began"
        return None


@dataclass
class EventTracker:
    """Feed it every snapshot; it returns the events since the previous one. It remembers when the
    VIP left its holder, so a move is reported with how long the VIP was in transit; states that
    every move passes through for a moment (no holder, two holders) are events only once they
    last SETTLE seconds."""

    previous: ClusterStatus | None = None
    lost_at: float | None = None
    lost_from: list[str] = field(default_factory=list)
    no_holder_told: bool = False
    split: Lasting = field(default_factory=Lasting)
    apart: Lasting = field(default_factory=Lasting)  # a dual stack's VIPs on different masters
    unheld6: Lasting = field(default_factory=Lasting)  # a dual stack's vip6 with no holder (the VIP held)
    api_down_since: float | None = None  # an outage (not a first-time setup) seen since then
    api_down_told: set = field(default_factory=set)  # the endpoints ('VIP:port') told down
    api_answered: bool = False  # once: later recoveries say "again"
    appearing: set = field(default_factory=set)  # new apiservers until every HAProxy sends to them
    audit_seen: set = field(default_factory=set)

    AUDIT_AT_START = 5  # the newest entries shown when the monitor opens

    def update(self, snap: ClusterStatus) -> list[Event]:
        prev, self.previous = self.previous, snap
        if prev is None:
            self.api_answered = not (snap.api_down or snap.api6_down)  # a later recovery is "again"
            return [Event(f"watching {snap.name}: VIP {cells.vips(snap)} on {cells.holders(snap, 'nobody')}"),
                    *self._audit(snap)[-self.AUDIT_AT_START:], *(Event(n) for n in snap.notices)]
        events: list[Event] = []
        events += self._audit(snap)
        if snap.lock and (prev.lock is None or prev.lock.id != snap.lock.id):
            events.append(Event(f"cluster locked: {snap.lock.describe()}"))
        elif prev.lock and snap.lock is None and all(m.reachable for m in snap.masters if m.lock is None):
            events.append(Event(f"cluster lock released ({prev.lock.what} by {prev.lock.who})"))
        events += self._vip(prev, snap)
        events += self._split(snap)
        self.appearing |= {n for n in prev.not_installed if n not in snap.not_installed}
        for old, new in zip(prev.masters, snap.masters):
            events += self._node(old, new)
            if old.vrrp_state != new.vrrp_state and new.reachable and old.reachable:
                level: Level = "warning" if new.vrrp_state == "FAULT" and not new.maintenance else "info"
                events.append(Event(f"{new.name} VRRP {old.vrrp_state} → {new.vrrp_state}", level, new.name))
            if old.maintenance != new.maintenance and new.reachable:
                events.append(Event(f"{new.name} maintenance {'on' if new.maintenance else 'off'}", node=new.name))
            before = {(b.backend, b.server): b for b in old.backends}
            for b in new.backends:
                was = before.get((b.backend, b.server))
                if b.master in self.appearing:  # a new apiserver: one line when all HAProxies have it
                    continue
                if was and was.status != b.status:
                    check = f" ({b.check_status})" if b.check_status and not b.up else ""
                    named = b.master if b.master in (None, b.server) else f"{b.master} ({b.server})"
                    events.append(Event(f"{new.name} backend {named or b.server} {was.status} → {b.status}{check}",
                                        "info" if b.up else "warning", new.name))
        events += self._apiservers(prev, snap)
        events += self._admitted(snap)
        for old_worker, new_worker in zip(prev.workers, snap.workers):
            events += self._node(old_worker, new_worker)
        events += self._api(prev, snap)
        return events

    @staticmethod
    def _apiservers(prev: ClusterStatus, snap: ClusterStatus) -> list[Event]:
        """Each master's own apiserver as it appears (kubeadm init, the joins), fails or goes;
        with the count whenever the number that is up changes."""
        events: list[Event] = []
        for old, new in zip(prev.masters, snap.masters):
            was, now = old.apiserver, new.apiserver
            if was == now or UNKNOWN in (was, now) or not (old.reachable and new.reachable):
                continue
            if now == UP:
                events.append(Event(f"apiserver on {new.name} is up", node=new.name))
            elif now in FAILING:
                events.append(Event(f"apiserver on {new.name} is {now}" if was != NOT_INSTALLED else
                                    f"apiserver on {new.name} installed, not answering yet ({now})",
                                    "info" if was == NOT_INSTALLED else "warning", new.name))
            elif now == NOT_INSTALLED:
                events.append(Event(f"apiserver on {new.name} is gone (no manifest, no process, nothing on its port)",
                                    "warning", new.name))
        before, after = _up(prev.masters), _up(snap.masters)
        if before != after and events:
            events.append(Event(f"{after} of {len(snap.masters)} apiservers up"
                                + (": the control plane is complete" if after == len(snap.masters) else "")))
        return events

    def _admitted(self, snap: ClusterStatus) -> list[Event]:
        """A new apiserver (kubeadm init or join) once every reachable HAProxy sends to it."""
        events = []
        for name in sorted(self.appearing):
            views = [b for m in snap.masters if m.reachable for b in m.backends_of(name)]
            if views and all(b.up for b in views):
                self.appearing.discard(name)
                events.append(Event(f"every HAProxy sends to the apiserver on {name}", node=name))
        return events

    def _audit(self, snap: ClusterStatus) -> list[Event]:
        """Audit entries from the masters not shown yet: what another operator did."""
        new = [e for e in snap.recent_audit if e not in self.audit_seen]
        self.audit_seen.update(new)
        return [Event(f"audit {e.when[11:19]} {e.text()}", "warning" if e.result.startswith("failed") else "info")
                for e in new]

    def _vip(self, prev: ClusterStatus, snap: ClusterStatus) -> list[Event]:
        """A move is from the last single holder to the next one; its time runs from the first
        snapshot in which the old holder was no longer alone (or gone)."""
        was, now = prev.holders, snap.holders
        if was != now and self.lost_at is None:
            self.lost_at, self.lost_from = snap.taken_at, was
        if self.lost_at is None:
            return []
        if not now:
            if not self.no_holder_told and snap.taken_at - self.lost_at >= SETTLE:
                self.no_holder_told = True
                return [Event(f"VIP left {', '.join(self.lost_from) or 'nobody'}: NO HOLDER", "critical")]
            return []
        if len(now) != 1:
            return []
        src, took = self.lost_from, snap.taken_at - self.lost_at
        self.lost_at, self.lost_from, self.no_holder_told = None, [], False
        if src == now:
            return [Event(f"VIP back on {now[0]} after {took:.2f} s")] if took >= SETTLE else []
        return [Event(f"VIP moved {', '.join(src) or 'nobody'} → {now[0]} in {took:.2f} s", "warning")]

    def _api(self, prev: ClusterStatus, snap: ClusterStatus) -> list[Event]:
        """API DOWN once it has lasted SETTLE seconds (an apiserver that HAProxy is admitting
        right after kubeadm init is no outage); the first answer ever is not 'again'."""
        if snap.outage:  # per endpoint: a dual stack's two VIPs may fail and recover apart
            self.api_down_since = self.api_down_since or snap.taken_at
            out = [Event(f"API answers through the VIP {endpoint} again") for endpoint in
                   sorted(self.api_down_told - set(snap.outage))]
            self.api_down_told &= set(snap.outage)
            if snap.taken_at - self.api_down_since >= SETTLE:
                new = [endpoint for endpoint in snap.outage if endpoint not in self.api_down_told]
                self.api_down_told |= set(new)
                out += [Event(f"API DOWN through the VIP {endpoint}", "critical") for endpoint in new]
            return out
        self.api_down_since = None
        if snap.api_down or snap.api6_down:
            return []
        told, self.api_down_told = bool(self.api_down_told), set()
        first, self.api_answered = not self.api_answered, True
        if (prev.api_down or prev.api6_down) and (told or first):
            return [Event("API answers through the VIP" + ("" if first else " again"))]
        return []

    def _split(self, snap: ClusterStatus) -> list[Event]:
        out = []
        split = self.split.step(snap.split_brain, snap.taken_at)
        if split == "began":
            claim = {*snap.holders, *snap.claimants, *snap.holders6, *snap.claimants6}
            out.append(Event(f"SPLIT BRAIN: {', '.join(sorted(claim))}", "critical"))
        elif split == "ended":
            out.append(Event("split brain over"))
        apart = self.apart.step(snap.vips_apart, snap.taken_at)
        if apart == "began":
            out.append(Event(f"VIPS APART: {cells.holders(snap)}", "warning"))
        elif apart == "ended":
            out.append(Event(f"the VIPs are together again on {cells.holders(snap, 'nobody')}"))
        unheld = self.unheld6.step(snap.vip6 is not None and bool(snap.holders) and not snap.holders6, snap.taken_at)
        if unheld == "began":
            out.append(Event(f"NO HOLDER of VIP6 {snap.vip6}", "critical"))
        elif unheld == "ended" and snap.holders6:
            out.append(Event(f"VIP6 {snap.vip6} held again by {', '.join(snap.holders6)}"))
        return out

    @staticmethod
    def _node(old, new) -> list[Event]:
        if old.reachable and not new.reachable:
            return [Event(f"lost SSH to {new.name}: {new.error or 'no answer'}", "warning", new.name)]
        if new.reachable and not old.reachable and old.error:
            return [Event(f"{new.name} reachable again", node=new.name)]
        return []


def _up(masters: tuple[MasterStatus, ...]) -> int:
    return sum(m.apiserver == UP for m in masters)
