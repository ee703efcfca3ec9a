"""Operator actions on a live cluster: each under the cluster lock, behind interlocks judged on
a snapshot taken under that lock, and in the audit trail whatever its result (see guard.py).

- failover: move the VIP off its holder and keep it off. Make-before-break: the target's
  priority is raised (priority_boost track file) so it takes the VIP while the old holder still
  serves; then the old holder goes into maintenance (FAULT, it holds nothing by then) and the
  boost is removed. Measured in the lab: see README.
- maintenance on/off: the vrrp_track_file switch (non-zero: FAULT). On the VIP holder, "on" is
  a failover, so the VIP moves make-before-break.
- backend drain/ready/maint: `set server` on every reachable master's HAProxy.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

from . import auditlog, guard
from .collector.model import ClusterStatus
from .collector.ssh import NodeConnection
from .errors import Refused, UserError
from .paths import PATHS

MAX_PRIORITY = 254
MOVE_TIMEOUT = 20.0
BACKEND_STATES = ("ready", "drain", "maint")

ConnFor = Callable[[str], Awaitable[NodeConnection]]


@dataclass(frozen=True)
class Outcome:
    action: str
    target: str
    result: str
    seconds: float | None = None

    def text(self) -> str:
        took = f" in {self.seconds:.2f} s" if self.seconds is not None else ""
        return f"{self.action} {self.target}: {self.result}{took}"


# --- interlocks (pure: tested without a cluster) ----------------------------------------------------

def failover_target(snap: ClusterStatus, target: str | None = None) -> tuple[str, str]:
    """(holder, target) for a failover, or Refused saying why not."""
    if snap.split_brain:
        raise Refused(f"split brain ({', '.join(snap.holders)}): fix it before moving the VIP on purpose")
    if not snap.holders:
        raise Refused("no master holds the VIP: there is nothing to move")
    holder = snap.holders[0]
    candidates = [m for m in snap.masters if m.name != holder and m.eligible]
    if target is not None:
        chosen = next((m for m in candidates if m.name == target), None)
        if chosen is None:
            raise Refused(f"{target} cannot take the VIP: it must be another master, reachable, healthy and "
                          "out of maintenance")
        return holder, chosen.name
    if not candidates:
        raise Refused(f"no other master is reachable, healthy and out of maintenance: {holder} keeps the VIP")
    best = max(candidates, key=lambda m: (m.base_priority or 0, m.address))
    return holder, best.name


def check_maintenance(snap: ClusterStatus, node: str, on: bool) -> None:
    m = snap.master(node)
    if m is None:
        raise Refused(f"no master named {node!r}")
    if not m.reachable:
        raise Refused(f"{node} is unreachable: its maintenance switch cannot be set")
    if on and not any(o.eligible for o in snap.masters if o.name != node):
        raise Refused(f"{node} is the last master that can hold the VIP: maintenance would drop the API")


def check_backend(snap: ClusterStatus, master: str, state: str) -> None:
    """`master` names the apiserver by its master; HAProxy's servers are found by address."""
    if state not in BACKEND_STATES:
        raise Refused(f"unknown backend state {state!r}; choose {', '.join(BACKEND_STATES)}")
    if snap.master(master) is None:
        raise Refused(f"no master named {master!r}; the masters are {', '.join(m.name for m in snap.masters)}")
    reachable = [m for m in snap.masters if m.reachable]
    if reachable and not any(m.backends_of(master) for m in reachable):
        raise Refused(f"no HAProxy server sends to {master}'s apiserver (its address and the apiserver port); "
                      "`doctor` shows what the HAProxy configs point at")
    if state != "ready":
        others_up = {b.master for m in reachable for b in m.backends
                     if b.master not in (None, master) and b.status.startswith("UP")}
        if not others_up:
            raise Refused(f"{master} is the last healthy apiserver: {state} would leave HAProxy nothing to send to")


# --- the actions ----------------------------------------------------------------------------------

async def _write_flag(conn: NodeConnection, path: str, value: int) -> None:
    """Atomically: keepalived watches the file with inotify and sees one whole value."""
    await conn.run(f"printf '%s\\n' {int(value)} > {path}.k8s-ha-tui-new && mv -f {path}.k8s-ha-tui-new {path}")


async def _wait_holder(conn: NodeConnection, vip: str, port: int, timeout: float) -> float:
    """Seconds until `conn`'s node holds the VIP and the API answers through it from there."""
    started = time.monotonic()
    probe = (f"ip -o -4 addr show | grep -q ' inet {vip}/' && "
             f"curl -sk --max-time 1 -o /dev/null -w '%{{http_code}}' https://{vip}:{port}/readyz")
    while time.monotonic() - started < timeout:
        res = await conn.run(probe, check=False, timeout=5)
        if str(res.stdout or "").strip() == "200":
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise UserError(f"{conn.name} did not take the VIP within {timeout:g} s", code=1)


async def failover(snap: ClusterStatus, conn_for: ConnFor, target: str | None = None,
                   timeout: float = MOVE_TIMEOUT) -> Outcome:
    holder, chosen = failover_target(snap, target)
    t = snap.master(chosen)
    assert t is not None  # failover_target chose it from snap.masters
    old, new = await conn_for(holder), await conn_for(chosen)
    boost = max(0, MAX_PRIORITY - (t.base_priority or 0))
    started = time.monotonic()
    try:
        await _write_flag(new, PATHS.boost_file, boost)
        await _wait_holder(new, snap.vip, snap.frontend_port, timeout)
        seconds = time.monotonic() - started
        await _write_flag(old, PATHS.maintenance_file, 1)
    finally:
        await _write_flag(new, PATHS.boost_file, 0)
    outcome = Outcome("failover", f"{holder} → {chosen}", f"VIP answers on {chosen}; {holder} stays in maintenance",
                      seconds)
    return outcome


async def maintenance(snap: ClusterStatus, conn_for: ConnFor, node: str, on: bool) -> Outcome:
    check_maintenance(snap, node, on)
    if on and node in snap.holders:
        return await failover(snap, conn_for)
    await _write_flag(await conn_for(node), PATHS.maintenance_file, 1 if on else 0)
    outcome = Outcome("maintenance", node, "on" if on else "off (may take the VIP back by priority)")
    return outcome


async def backend(snap: ClusterStatus, conn_for: ConnFor, master: str, state: str) -> Outcome:
    """`set server` for every server, in every reachable HAProxy, that sends to `master`."""
    check_backend(snap, master, state)
    done, failed = [], []
    for m in snap.masters:
        if not m.reachable:
            failed.append(f"{m.name} (unreachable)")
            continue
        servers = m.backends_of(master)
        if not servers:
            failed.append(f"{m.name} (no server sends to {master})")
            continue
        conn = await conn_for(m.name)
        answers = []
        for b in servers:
            try:
                answer = await conn.haproxy(PATHS.stats_socket, f"set server {b.backend}/{b.server} state {state}", 5)
            except Exception as exc:  # noqa: BLE001 - reported per node
                answer = str(exc) or type(exc).__name__
            if answer.strip():
                answers.append(answer.strip())
        (failed if answers else done).append(f"{m.name} ({'; '.join(answers)})" if answers else m.name)
    result = f"{state} on {', '.join(done) or 'no node'}" + (f"; failed on {', '.join(failed)}" if failed else "")
    if failed and not done:
        raise UserError(f"backend {master}: {result}", code=1)
    return Outcome(f"backend {state}", master, result)


# --- one wording for every front end, and the way every action runs ------------------------------

@dataclass(frozen=True)
class Request:
    """What the operator asked for. `describe` runs the interlocks and says, in the words both the
    CLI and the monitor show, what will happen; `act` does it."""

    kind: str  # failover | maintenance | backend
    node: str | None = None  # failover: the target (None: the best); maintenance / backend: the master
    state: str | None = None  # maintenance: on | off; backend: ready | drain | maint

    @property
    def action(self) -> str:
        return f"backend {self.state}" if self.kind == "backend" else (
            f"maintenance {self.state}" if self.kind == "maintenance" else "failover")

    def target(self, snap: ClusterStatus | None = None) -> str:
        if self.kind == "failover" and snap is not None:
            holder, chosen = failover_target(snap, self.node)
            return f"{holder}->{chosen}"
        return self.node or "best eligible master"

    def describe(self, snap: ClusterStatus) -> str:
        if self.kind == "failover":
            holder, target = failover_target(snap, self.node)
            return (f"Failover: move the VIP from {holder} to {target}: {target}'s priority is raised so it "
                    f"takes over while {holder} still serves (no dropped requests), then {holder} stays in "
                    f"maintenance until 'maintenance {holder} off'.")
        if self.kind == "maintenance":
            on = self.state == "on"
            node = self.node or "?"
            check_maintenance(snap, node, on)
            if on and node in snap.holders:
                return f"{node} holds the VIP: it moves first (make-before-break), then {node} enters maintenance."
            return (f"Maintenance {self.state} for {node}: " +
                    ("keepalived there goes to FAULT and will not take the VIP." if on else
                     "it may take the VIP back if its priority is the highest."))
        check_backend(snap, self.node or "?", self.state or "?")
        return (f"Backend {self.node}: set state {self.state} on every reachable master's HAProxy, for each "
                f"server that sends to {self.node}'s apiserver.")

    async def act(self, snap: ClusterStatus, conn_for: ConnFor) -> Outcome:
        if self.kind == "failover":
            return await failover(snap, conn_for, self.node)
        if self.kind == "maintenance":
            return await maintenance(snap, conn_for, self.node or "?", self.state == "on")
        return await backend(snap, conn_for, self.node or "?", self.state or "?")


class NotConfirmed(Refused):
    def __init__(self) -> None:
        super().__init__("not confirmed; nothing was changed")


async def perform(request: Request, cluster: str, conns: list[NodeConnection], total_masters: int,
                  snapshot: Callable[[], Awaitable[ClusterStatus]], conn_for: ConnFor,
                  confirm: Callable[[str], Awaitable[bool]], lock: guard.LockOptions,
                  log: Callable[[str], None]) -> Outcome:
    """Lock, look (a fresh snapshot), judge (interlocks), ask, act — and audit, whatever happens."""
    async with guard.change(conns, total_masters, cluster, request.action, request.target(), lock, log) as op:
        snap = await snapshot()
        question = request.describe(snap)  # Refused here is audited as refused
        op.target = request.target(snap)
        if not await confirm(question):
            raise NotConfirmed()
        outcome = await request.act(snap, conn_for)
        op.result, op.seconds = auditlog.ok(outcome.result), outcome.seconds
        return outcome
