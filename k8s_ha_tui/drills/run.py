"""A drill from start to end: lock, look, judge, ask; clients on; baseline; the scenario under a
deadman; restore, whatever happened; report and audit.

The restore runs in a `finally`, protected from a first Ctrl-C or SIGTERM (a second one
abandons it, and says so): a failed act, a tripped deadman, an interruption and a normal end
all put the cluster back the same way, then wait until a fresh snapshot shows it as it was found.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from k8s_ha_tui.drills import clients, scenarios
from k8s_ha_tui.drills.report import Drill, figures, save
from k8s_ha_tui.errors import Refused, UserError
from k8s_ha_tui.model.topology import Topology, host_port
from k8s_ha_tui.operations import guard
from k8s_ha_tui.operations.actions import MOVE_TIMEOUT, NotConfirmed
from k8s_ha_tui.operations.interrupts import Interrupts
from k8s_ha_tui.remote import auditlog
from k8s_ha_tui.remote.ssh import HostKeyPolicy, NodeConnection, connect_reachable
from k8s_ha_tui.status.events import EventTracker
from k8s_ha_tui.status.model import ClusterStatus
from k8s_ha_tui.status.poll import Collector, snapshot

BASELINE_S = 2.0  # clients run this long before the scenario starts: each must have had answers
EFFECT_TIMEOUT = 30.0  # the cluster must show the scenario's effect within this
RESTORE_TIMEOUT = 30.0  # ...and be as it was found within this after the undo
REDO_AFTER = 5.0  # the undo is done again if the cluster is still not as found this long after it
PREEMPT_WAIT = 10.0  # how long the restore waits for the VIP to go back to where it was
SETTLE_S = 3.0  # the clients keep asking this long after the restore: they see its move too
DEADMAN_EVERY = 0.2


@dataclass
class Options:
    rate: float = 20.0
    max_gap: float = 2.0
    abort_after: float = 10.0
    hold: float = 5.0
    node: str | None = None  # apiserver-drain: whose apiserver (default: the holder's)

    @property
    def loop_limit(self) -> float:
        """A client loop ends by itself after this, whatever becomes of the drill."""
        acts = MOVE_TIMEOUT + 2 * 30  # a failover's wait; a systemctl to act and one to undo
        return BASELINE_S + acts + EFFECT_TIMEOUT + self.hold + RESTORE_TIMEOUT + PREEMPT_WAIT + SETTLE_S + 30


class _Recorder:
    """What the collector sees during the drill: the VIP's holders and the events."""

    def __init__(self, drill: Drill):
        self.drill = drill
        self.latest: ClusterStatus | None = None
        self.tracker = EventTracker()

    def seen(self, snap: ClusterStatus) -> None:
        first = self.latest is None
        self.latest = snap
        t = round(snap.taken_at - self.drill.started_at, 3)
        holders = sorted(snap.holders)
        if not self.drill.holders or self.drill.holders[-1][1] != holders:
            self.drill.holders.append((t, holders))
        events = self.tracker.update(snap)
        if not first:  # the first update says "watching" and replays the audit trail
            self.drill.events += [(t, e.text) for e in events if not e.text.startswith(("cluster locked", "audit"))]


class DrillRun:
    """One drill; `drill` and `folder` are there for the caller also after an interruption."""

    def __init__(self, topo: Topology, policy: HostKeyPolicy, scenario: str, options: Options,
                 confirm: Callable[[str], Awaitable[bool]], lock: guard.LockOptions,
                 log: Callable[[str], None], interrupts: Interrupts | None = None):
        self.topo, self.policy, self.scenario, self.options = topo, policy, scenario, options
        self.confirm, self.lock, self.log, self.interrupts = confirm, lock, log, interrupts
        self.drill: Drill | None = None
        self.folder: Path | None = None
        self._by_name: dict[str, NodeConnection] = {}

    async def _conn_for(self, name: str) -> NodeConnection:
        if name not in self._by_name:
            raise UserError(f"{name} is unreachable", code=1)
        return self._by_name[name]

    async def execute(self) -> Drill:
        conns, _errors = await connect_reachable(self.topo, self.topo.masters, self.policy)
        self._by_name = {c.name: c for c in conns}
        workers: list[NodeConnection] = []
        try:
            async with guard.change(conns, len(self.topo.masters), self.topo.name, f"drill {self.scenario}", "",
                                    self.lock, self.log) as op:
                before = await snapshot(self.topo, self.policy, census=False)
                plan = scenarios.plan(before, self.scenario, self.options.node)
                op.target = plan.target
                workers, lost = await connect_reachable(self.topo, self.topo.workers, self.policy)
                here = [vip for vip in self.topo.vips
                        if await asyncio.to_thread(clients.reaches_from_here, vip, self.topo.frontend_port)]
                if not workers and not here:
                    raise Refused("no client could measure the drill: no worker is reachable and this machine does "
                                  f"not reach the VIP {self._endpoints()}; nothing was changed")
                if not await self.confirm(self._question(plan, workers, lost, here)):
                    raise NotConfirmed()
                await op.ensure_held("any change (the drill)")
                drill_id = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{self.topo.name}-{self.scenario}-" \
                           f"{secrets.token_hex(2)}"
                self.drill = Drill(drill_id, self.topo.name,
                                   self.scenario, plan.target, plan.says, time.time(), self.options.rate,
                                   self.options.max_gap, self.options.abort_after, self.options.hold)
                try:
                    await self._drive(plan, before, workers, here)
                finally:
                    try:
                        self.folder = save(self.drill)
                        kept = f"report {self.folder}"
                    except OSError as exc:  # a full disk must not hide what the drill did
                        kept = f"report NOT written ({exc.strerror or exc})"
                        self.log(f"the drill's {kept}")
                    op.result = (auditlog.ok if self.drill.passed else auditlog.failed)(f"{self.drill.verdict}; {kept}")
                return self.drill
        finally:
            for c in (*conns, *workers):
                c.close()

    def _endpoints(self) -> str:
        return " and ".join(host_port(vip, self.topo.frontend_port) for vip in self.topo.vips)

    def _label(self, name: str, vip: str) -> str:
        """A client's name; a dual stack has one per VIP: 'k8s-node-01 (IPv6)'."""
        return f"{name} ({'IPv6' if ':' in vip else 'IPv4'})" if self.topo.vip6 else name

    def _question(self, plan: scenarios.Plan, workers, lost: dict[str, str], here: list[str]) -> str:
        names = [w.name for w in workers] + (["this machine"] if here else [])
        left_out = [f"{n} (unreachable)" for n in lost] + ([] if here else ["this machine (does not reach the VIP)"])
        o = self.options
        return (f"Drill {plan.scenario} on {self.topo.name}: {plan.says}\n"
                f"Clients: {', '.join(names)} ask "
                f"{' and '.join(f'https://{host_port(v, self.topo.frontend_port)}/readyz' for v in self.topo.vips)} "
                f"{o.rate:g} times a second each (a fresh TLS connection each time)"
                + (f"; left out: {', '.join(left_out)}" if left_out else "") + ".\n"
                f"The fault is held {o.hold:g} s once the cluster shows it, then undone. If most clients get no "
                f"answer for {o.abort_after:g} s, the drill undoes it at once. Passes if no client waits more than "
                f"{o.max_gap:g} s for an answer.")

    def _step(self, text: str) -> None:
        assert self.drill is not None
        self.drill.step(text)
        self.log(f"  {self.drill.steps[-1][0]:7.2f} s  {text}")

    async def _drive(self, plan: scenarios.Plan, before: ClusterStatus, workers: list[NodeConnection],
                     here: list[str]) -> None:
        """Clients, baseline, the scenario under the deadman, the restore. A failure of the act is
        the drill's finding (aborted, exit 1), not a crash: the report is written either way."""
        drill, o = self.drill, self.options
        assert drill is not None
        drill.holders.append((0.0, sorted(before.holders)))  # as the snapshot under the lock saw it
        recorder = _Recorder(drill)
        collector = Collector(self.topo, self.policy, interval=0.5, census=False, on_snapshot=recorder.seen)
        watching = asyncio.ensure_future(collector.run())
        port = self.topo.frontend_port
        loops: list = [clients.RemoteLoop(w, vip, port, o.rate, o.loop_limit, self._label(w.name, vip))
                       for vip in self.topo.vips for w in workers]
        loops += [clients.LocalLoop(vip, port, o.rate, o.loop_limit, self._label("this machine", vip)) for vip in here]
        window_start, window_end = time.time(), 0.0
        live: list[clients.Client] = []
        try:
            try:
                await asyncio.gather(*(loop.start() for loop in loops))
                self._step("clients started")
                window_start = time.time()
                await asyncio.sleep(BASELINE_S)  # the baseline: what the clients see before anything is done
                live = [loop.client for loop in loops if any(s.ok for s in loop.client.samples)]
                if not live:
                    drill.aborted = "no client got an answer through the VIP before the drill; nothing was done"
                    self._step(drill.aborted)
                    return
                await self._under_deadman(plan, recorder, live)
            except BaseException as exc:
                cancelled = isinstance(exc, asyncio.CancelledError)
                drill.aborted = drill.aborted or ("interrupted (Ctrl-C or SIGTERM)" if cancelled
                                                  else str(exc) or type(exc).__name__)
                self._step(f"stopped: {drill.aborted}")
                raise
            finally:
                with self.interrupts.protected() if self.interrupts else nullcontext():
                    await self._restore(plan, before)
                    await asyncio.sleep(SETTLE_S)  # the clients see the restore's own move, if any
            if self.interrupts is not None and self.interrupts.requested:  # a signal during the restore
                drill.aborted = drill.aborted or "interrupted (Ctrl-C or SIGTERM) during the restore"
                raise asyncio.CancelledError()
        finally:
            window_end = time.time()
            await asyncio.gather(*(loop.stop() for loop in loops), return_exceptions=True)
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
            drill.ended_at = window_end
            for loop in loops:
                c = loop.client
                scored = c in live or not live  # without a baseline every client is shown as it was
                if not scored and not c.note:
                    c.note = "no answer before the drill began: not scored"
                drill.clients.append(figures(c, window_start, window_end, scored))
                drill.samples[c.name] = [(round(s.at - drill.started_at, 3), s.ok) for s in c.samples
                                         if window_start <= s.at <= window_end]
            drill.final_holders = sorted(recorder.latest.holders) if recorder.latest else []

    async def _under_deadman(self, plan: scenarios.Plan, recorder: _Recorder, live: list[clients.Client]) -> None:
        drill = self.drill
        assert drill is not None
        act = asyncio.ensure_future(self._scenario(plan, recorder))
        dead = asyncio.ensure_future(self._deadman(live, time.time()))
        try:
            done, _ = await asyncio.wait([act, dead], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (act, dead):
                task.cancel()
            await asyncio.gather(act, dead, return_exceptions=True)
        if dead in done and not dead.cancelled() and dead.exception() is None:
            drill.aborted = f"deadman: {dead.result()}"
            self._step(f"ABORTED by the deadman: {dead.result()}; undoing at once")
        elif act in done and not act.cancelled() and act.exception() is not None:
            error = act.exception()
            drill.aborted = f"the drill's own step failed: {error}"
            self._step(drill.aborted)

    async def _scenario(self, plan: scenarios.Plan, recorder: _Recorder) -> None:
        self._step(f"{plan.scenario}: {plan.target}")
        acted = time.time()
        await plan.act(self._conn_for)
        deadline = time.monotonic() + EFFECT_TIMEOUT
        while not (recorder.latest is not None and recorder.latest.taken_at > acted and plan.effect(recorder.latest)):
            if time.monotonic() > deadline:
                raise UserError(f"the cluster did not show the drill's effect within {EFFECT_TIMEOUT:g} s", code=1)
            await asyncio.sleep(0.1)
        holders = ", ".join(recorder.latest.holders) or "nobody"
        self._step(f"in effect: VIP on {holders}; held {self.options.hold:g} s")
        await asyncio.sleep(self.options.hold)

    async def _deadman(self, live: list[clients.Client], since: float) -> str:
        """Returns (the drill then aborts) once most clients had no answer for --abort-after. A
        client whose own loop ended (its link dropped) says nothing of the API and is not counted."""
        limit = self.options.abort_after
        while True:
            await asyncio.sleep(DEADMAN_EVERY)
            now = time.time()
            asking = [c for c in live if not c.ended]
            down = [c.name for c in asking if now - max(c.last_ok, since) > limit]
            if asking and len(down) * 2 > len(asking):
                return f"{len(down)} of {len(asking)} clients had no answer for {limit:g} s ({', '.join(down)})"

    async def _restore(self, plan: scenarios.Plan, before: ClusterStatus) -> None:
        """Undo (again, until it works or the time is up), then wait for a fresh snapshot to show
        the cluster as it was found. Until that is seen, the drill says it is not restored."""
        drill = self.drill
        assert drill is not None
        drill.restored = ["the restore did not finish"]
        self._step("restoring")
        started, undone_at = time.monotonic(), None
        problems: list[str] = []
        while time.monotonic() - started < RESTORE_TIMEOUT:
            # the undo again while the cluster is still not as found (it is safe to repeat)
            if undone_at is None or time.monotonic() - undone_at > REDO_AFTER:
                try:
                    await plan.undo(self._conn_for)
                    undone_at = time.monotonic()
                except Exception as exc:  # noqa: BLE001 - said, and tried again
                    problems = [f"the undo failed: {exc or type(exc).__name__}"]
                    await asyncio.sleep(1.0)
                    continue
            try:
                now = await snapshot(self.topo, self.policy, census=False)
            except Exception as exc:  # noqa: BLE001 - said, and looked at again
                problems = [f"no status: {exc or type(exc).__name__}"]
                await asyncio.sleep(0.5)
                continue
            problems = scenarios.not_as_found(before, now)
            home = sorted(now.holders) == sorted(before.holders)
            if not problems and (home or time.monotonic() - started > PREEMPT_WAIT):
                drill.restored = []
                self._step(f"restored: as found; VIP on {', '.join(now.holders)}")
                return
            await asyncio.sleep(0.5)
        drill.restored = problems or drill.restored
        self._step(f"NOT restored after {RESTORE_TIMEOUT:g} s: {'; '.join(drill.restored)}")
