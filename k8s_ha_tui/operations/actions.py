"""Operator actions on a live cluster: each under the cluster lock, behind interlocks judged on
a snapshot taken under that lock, and in the audit trail whatever its result (see guard.py).

- failover: move the VIP off its holder and keep it off. Method "boost" (make-before-break):
  the target's priority is raised (priority_boost track file) so it takes the VIP while the old
  holder still serves; then the old holder goes into maintenance (FAULT, it holds nothing by
  then) and the boost is removed. Method "stop": keepalived stops on the holder, whose last
  advert has priority 0, so the best backup takes over after its skew time; for clusters whose
  running keepalived follows neither track file (hand-made ones). Both measured: see docs/monitor.md.
- maintenance on/off: the vrrp_track_file switch (non-zero: FAULT), or with method "stop"
  keepalived stopped / started. On the VIP holder, "on" is a failover.
  During a split brain, "on" for a claimant while another claimant keeps the VIP is the remedy:
  the claimant goes to FAULT and drops the VIP, which ends the split brain (no failover: the
  other one holds the VIP already).
- backend drain/ready/maint: `set server` on every reachable master's HAProxy.
- restart keepalived|haproxy on one master: the node's own checker passes the config on disk
  first (a restart that cannot come back is refused), and keepalived is not restarted on the
  only master that can hold the VIP.

What a node can do is read from its RUNNING keepalived (MasterStatus.tracks_*): an action that
cannot work there is refused at once, with the way out, before anything is written.
"""

from __future__ import annotations

import asyncio
import ipaddress
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from k8s_ha_tui.errors import Refused, UserError
from k8s_ha_tui.model.topology import host_port
from k8s_ha_tui.operations import guard
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import auditlog, node_ops, roles
from k8s_ha_tui.remote.ssh import NodeConnection, SshError
from k8s_ha_tui.status.diagnosis import split_brain
from k8s_ha_tui.status.model import ClusterStatus, MasterStatus

MAX_PRIORITY = 254
MOVE_TIMEOUT = 20.0
METHODS = ("boost", "stop")  # failover; maintenance takes "file" (what boost means there) or "stop"
BACKEND_STATES = ("ready", "drain", "maint")
# The node's own checker for the config a restart will load (keepalived -t: 2.0+).
SERVICES, CONFIG_CHECK = node_ops.SERVICES, node_ops.CONFIG_CHECK
RESTART_TIMEOUT = 15.0

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
        claim = ", ".join(sorted({*snap.holders, *snap.holders6}))
        raise Refused(f"split brain ({claim}): fix it before moving the VIP on purpose", reason=f"split brain ({claim})")
    if not snap.holders:
        raise Refused("no master holds the VIP: there is nothing to move")
    if snap.vips_apart:
        raise Refused(f"the VIPs are apart ({snap.holders[0]} holds {snap.vip}, {snap.holders6[0]} holds {snap.vip6}): "
                      "a failover would move half; `status` says how to bring them together first",
                      reason="the VIPs are apart")
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
    best = max(candidates, key=lambda m: (m.base_priority or 0, ipaddress.ip_address(m.address)))
    return holder, best.name


def _cannot(node: str, what: str, path: str, method_hint: str) -> Refused:
    return Refused(f"{node}'s running keepalived does not follow {path}, so {what} cannot work there; "
                   f"`deploy` this tool's configs to make it possible, or {method_hint}",
                   reason=f"{node} does not follow {PurePosixPath(path).name}",
                   way_out="deploy this tool's configs, or the CLI's --method stop")


def require_tracks(m: MasterStatus, maintenance: bool = False, boost: bool = False, what: str = "") -> None:
    """Refuse at once where the node's running keepalived lacks the track file the action writes."""
    unknown = (maintenance and m.tracks_maintenance is None) or (boost and m.tracks_boost is None)
    if unknown and m.keepalived == "active":
        raise Refused(f"{m.name}: what its keepalived follows is unknown (its dump needs root or the operate role), "
                      f"so {what} cannot be judged there")
    if unknown:
        raise Refused(f"{m.name}: keepalived is not running there, so {what} cannot work; "
                      f"`maintenance {m.name} off --method stop` starts it")
    if maintenance and not m.tracks_maintenance:
        raise _cannot(m.name, what, PATHS.maintenance_file, "use --method stop (keepalived is stopped instead)")
    if boost and not m.tracks_boost:
        raise _cannot(m.name, what, PATHS.boost_file,
                      "use --method stop (keepalived stops on the holder: the VIP moves break-before-make)")


def stop_failover_target(snap: ClusterStatus, target: str | None) -> tuple[str, str]:
    """With keepalived stopped on the holder, VRRP elects the backup with the highest effective
    priority (ties: the higher address): `--to` must name that one."""
    holder, _ = failover_target(snap, target)
    candidates = [m for m in snap.masters if m.name != holder and m.eligible]
    elected = max(candidates, key=lambda m: (m.effective_priority or m.base_priority or 0,
                                             ipaddress.ip_address(m.address)))
    if target is not None and target != elected.name:
        raise Refused(f"with --method stop VRRP elects {elected.name} (the highest priority), not {target}")
    return holder, elected.name


def ends_split_brain(snap: ClusterStatus, node: str) -> str | None:
    """During a split brain: the claimant that keeps the VIP if `node` steps out — the one the
    other masters follow (diagnosis.split_brain: the same rule that names the cut-off one) —, or
    None when taking `node` out would not end it."""
    sb = split_brain(snap)
    return sb.keeper if sb is not None and node in sb.cut_off else None


def check_maintenance(snap: ClusterStatus, node: str, on: bool, method: str = "file") -> None:
    m = snap.master(node)
    if m is None:
        raise Refused(f"no master named {node!r}")
    if not m.reachable:
        raise Refused(f"{node} is unreachable: its maintenance switch cannot be set")
    sb = split_brain(snap) if on else None
    if sb is not None and node == sb.keeper:
        raise Refused(f"split brain: the other masters follow {node}; taking it out would leave "
                      f"{', '.join(sb.cut_off)} with the VIP. `maintenance {sb.cut_off[0]} on` ends the split brain",
                      reason=f"split brain: the others follow {node}", way_out=f"maintenance {sb.cut_off[0]} on")
    if on and not any(o.eligible for o in snap.masters if o.name != node):
        raise Refused(f"{node} is the last master that can hold the VIP: maintenance would drop the API")
    if on and snap.vips_apart:
        raise Refused(f"the VIPs are apart ({snap.holders[0]} holds {snap.vip}, {snap.holders6[0]} holds {snap.vip6}): "
                      "maintenance would move half; `status` says how to bring them together first",
                      reason="the VIPs are apart")
    if method == "stop":
        if not on and m.keepalived == "active" and not m.maintenance:
            raise Refused(f"{node}: keepalived is running and not in maintenance; nothing to start")
        return
    if on or m.keepalived == "active":
        require_tracks(m, maintenance=True, what="the maintenance switch")
    else:
        raise Refused(f"{node}: keepalived is not running; `maintenance {node} off --method stop` starts it")


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


def check_restart(snap: ClusterStatus, node: str, service: str) -> None:
    if service not in SERVICES:
        raise Refused(f"unknown service {service!r}; choose {', '.join(SERVICES)}")
    m = snap.master(node)
    if m is None:
        raise Refused(f"no master named {node!r}")
    if not m.reachable:
        raise Refused(f"{node} is unreachable: nothing can be restarted there")
    if service == "keepalived" and node in {*snap.holders, *snap.holders6} and len(snap.holders) == 1 \
            and not any(o.eligible for o in snap.masters if o.name != node):
        raise Refused(f"{node} holds the VIP and no other master can take it: restarting keepalived there would "
                      "leave no holder", reason="it would leave no holder", way_out="make another master eligible first")


# --- the actions ----------------------------------------------------------------------------------

async def write_flag(conn: NodeConnection, path: str, value: int) -> None:
    """Atomically: keepalived watches the file with inotify and sees one whole value."""
    flag = {PATHS.maintenance_file: "maintenance", PATHS.boost_file: "boost"}[path]
    await node_ops.run(conn, flag, input=f"{int(value)}\n")


def holder_probe(vips: list[str], port: int) -> str:
    """Prints 200 once per VIP when the node carries every one (a dual stack's two) and the API
    answers through each from there."""
    held = " && ".join(f"ip -o addr show | grep -q {shlex.quote(f' {vip}/')}" for vip in vips)
    asks = "; ".join(f"curl -gsk --max-time 1 -o /dev/null -w '%{{http_code}}' "
                     f"{shlex.quote(f'https://{host_port(vip, port)}/readyz')}; echo" for vip in vips)
    return f"{held} && {{ {asks}; }}"


async def _wait_holder(conn: NodeConnection, vips: list[str], port: int, timeout: float) -> float:
    """Seconds until `conn`'s node holds every VIP and the API answers through each from there."""
    started = time.monotonic()
    probe = holder_probe(vips, port)
    while time.monotonic() - started < timeout:
        res = await conn.run(probe, check=False, timeout=5)
        if str(res.stdout or "").split() == ["200"] * len(vips):
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise UserError(f"{conn.name} did not take the VIP within {timeout:g} s", code=1)


def plan_failover(snap: ClusterStatus, target: str | None, method: str = "boost") -> tuple[str, str]:
    """(holder, target), every interlock judged, or Refused before anything is written."""
    if method not in METHODS:
        raise Refused(f"unknown failover method {method!r}; choose {', '.join(METHODS)}")
    if method == "stop":
        return stop_failover_target(snap, target)
    holder, chosen = failover_target(snap, target)
    require_tracks(_known(snap, chosen), boost=True, what="a make-before-break failover")
    require_tracks(_known(snap, holder), maintenance=True, what="keeping the old holder off the VIP")
    return holder, chosen


def _known(snap: ClusterStatus, name: str) -> MasterStatus:
    m = snap.master(name)
    assert m is not None  # the name came from snap.masters
    return m


async def _service(conn: NodeConnection, verb: str) -> None:
    await node_ops.run(conn, f"service {verb} keepalived")


async def failover(snap: ClusterStatus, conn_for: ConnFor, target: str | None = None,
                   timeout: float = MOVE_TIMEOUT, method: str = "boost") -> Outcome:
    holder, chosen = plan_failover(snap, target, method)
    old, new = await conn_for(holder), await conn_for(chosen)
    started = time.monotonic()
    if method == "stop":
        await _service(old, "stop")
        try:
            await _wait_holder(new, snap.vips, snap.frontend_port, timeout)
            seconds = time.monotonic() - started
        except BaseException:
            await _service(old, "start")  # nobody took over: the old holder takes the VIP back
            raise
        return Outcome("failover", f"{holder} → {chosen}",
                       f"VIP answers on {chosen}; keepalived stays stopped on {holder} until "
                       f"'maintenance {holder} off --method stop'", seconds)
    boost = max(0, MAX_PRIORITY - (_known(snap, chosen).base_priority or 0))
    try:
        await write_flag(new, PATHS.boost_file, boost)
        await _wait_holder(new, snap.vips, snap.frontend_port, timeout)
        seconds = time.monotonic() - started
        await write_flag(old, PATHS.maintenance_file, 1)
    finally:
        await write_flag(new, PATHS.boost_file, 0)
    return Outcome("failover", f"{holder} → {chosen}", f"VIP answers on {chosen}; {holder} stays in maintenance",
                   seconds)


async def _wait_released(conn: NodeConnection, vips: list[str], timeout: float) -> float:
    """Seconds until `conn`'s node carries none of the VIPs."""
    started = time.monotonic()
    pattern = " ".join(f"-e {shlex.quote(f' {vip}/')}" for vip in vips)
    while time.monotonic() - started < timeout:
        res = await conn.run(f"ip -o addr show | grep -c {pattern} || true", check=False, timeout=5)
        if str(res.stdout or "").strip() == "0":
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    raise UserError(f"{conn.name} still holds the VIP after {timeout:g} s", code=1)


async def _announce(snap: ClusterStatus, keeper: str, conn_for: ConnFor) -> str:
    """After a split brain, clients whose ARP entry still has the other claimant's address fail
    until the keeper's next gratuitous ARP (up to vrrp_garp_master_refresh, 10 s; measured: 3 s
    without an answer). A keepalived reload sends them at once (measured in the lab: the entry
    right within 0.3 s) and changes nothing else — so it is done only where the files are what
    runs (no reload pending) and the node's own `keepalived -t` passes them."""
    later = "clients follow at its next gratuitous ARP"
    m = snap.master(keeper)
    if m is None or m.reload_pending:
        return f"{keeper}'s config files differ from what runs, so it was not reloaded to re-announce the VIP: {later}"
    try:  # the split brain is over already: nothing here may turn the remedy into a failure
        conn = await conn_for(keeper)
        if (await node_ops.run(conn, "check keepalived", check=False)).exit_status:
            return f"{keeper}'s keepalived.conf does not pass keepalived -t, so it was not reloaded: {later}"
        if (await node_ops.run(conn, "service reload keepalived", check=False)).exit_status:
            return f"{keeper}'s keepalived reload (to re-announce the VIP) failed: {later}"
    except SshError as exc:
        return f"{keeper} could not be asked to re-announce the VIP ({exc}): {later}"
    return f"{keeper} re-announced the VIP (gratuitous ARP, by a keepalived reload)"


async def maintenance(snap: ClusterStatus, conn_for: ConnFor, node: str, on: bool, method: str = "file") -> Outcome:
    check_maintenance(snap, node, on, method)
    stop = method == "stop"
    keeper = ends_split_brain(snap, node) if on else None
    if keeper is not None:
        conn = await conn_for(node)
        started = time.monotonic()
        if stop:
            await _service(conn, "stop")
        else:
            await write_flag(conn, PATHS.maintenance_file, 1)
        await _wait_released(conn, snap.vips, MOVE_TIMEOUT)
        seconds = time.monotonic() - started
        announced = await _announce(snap, keeper, conn_for)
        return Outcome("maintenance", node, f"on: {node} dropped the VIP, {keeper} keeps it: the split brain is over; "
                       + announced, seconds)
    if on and node in {*snap.holders, *snap.holders6}:
        return await failover(snap, conn_for, method="stop" if stop else "boost")
    conn = await conn_for(node)
    if stop:
        await _service(conn, "stop" if on else "start")
        return Outcome("maintenance", node, "on: keepalived stopped" if on else
                       "off: keepalived started (may take the VIP back by priority)")
    await write_flag(conn, PATHS.maintenance_file, 1 if on else 0)
    return Outcome("maintenance", node, "on" if on else "off (may take the VIP back by priority)")


async def backend(snap: ClusterStatus, conn_for: ConnFor, master: str, state: str) -> Outcome:
    """`set server` for every server, in every reachable HAProxy, that sends to `master`."""
    check_backend(snap, master, state)
    done: list[str] = []
    failed: list[str] = []
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


async def restart(snap: ClusterStatus, conn_for: ConnFor, node: str, service: str) -> Outcome:
    """The config on disk passes the node's own checker, then the restart, then active again."""
    check_restart(snap, node, service)
    conn = await conn_for(node)
    res = await node_ops.run(conn, f"check {service}", check=False)
    if res.exit_status != 0:
        lines = [ln for ln in str(res.stdout or "").splitlines() if ln.strip()] or ["no output"]
        raise Refused(f"{node}: `{CONFIG_CHECK[service]}` refuses the config on disk ({lines[-1]}): a restart "
                      "would not come back; nothing was restarted")
    started = time.monotonic()
    await node_ops.run(conn, f"service restart {service}")
    while (state := str((await conn.run(f"systemctl is-active {service}", check=False, timeout=5)).stdout or "")
           .strip()) != "active":
        if time.monotonic() - started > RESTART_TIMEOUT:
            raise UserError(f"{node}: {service} is {state or 'unknown'} {RESTART_TIMEOUT:g} s after the restart; "
                            f"`journalctl -u {service} -n 50` there says why", code=1)
        await asyncio.sleep(0.1)
    return Outcome(f"restart {service}", node, f"{service} restarted on {node} and active", time.monotonic() - started)


# --- one wording for every front end, and the way every action runs ------------------------------

@dataclass(frozen=True)
class Request:
    """What the operator asked for. `describe` runs the interlocks and says, in the words both the
    CLI and the monitor show, what will happen; `act` does it."""

    kind: str  # failover | maintenance | backend | restart
    node: str | None = None  # failover: the target (None: the best); otherwise: the master
    state: str | None = None  # maintenance: on | off; backend: ready | drain | maint; restart: the service
    method: str | None = None  # failover: boost | stop; maintenance: file | stop (None: the default)

    @property
    def action(self) -> str:
        return "failover" if self.kind == "failover" else f"{self.kind} {self.state}"

    @property
    def stop(self) -> bool:
        return self.method == "stop"

    def target(self, snap: ClusterStatus | None = None) -> str:
        if self.kind == "failover" and snap is not None:
            holder, chosen = plan_failover(snap, self.node, self.method or "boost")
            return f"{holder}->{chosen}"
        return self.node or "best eligible master"

    def describe(self, snap: ClusterStatus) -> str:
        role = snap.viewer_role
        if role is not None and not roles.ranks(role, "operate"):
            raise Refused(f"{self.action} needs the operate role; this login has "
                          f"{'no role' if role == 'none' else f'the {role} role'} on the masters",
                          reason=f"needs the operate role (this login: {role})",
                          way_out="`access grant operate USER`, run by root")
        if self.kind == "failover":
            holder, target = plan_failover(snap, self.node, self.method or "boost")
            if self.stop:
                return (f"Failover (method stop): stop keepalived on {holder}; its last advert has priority 0, "
                        f"so {target} takes the VIP after its skew time (break-before-make: a short gap). "
                        f"keepalived stays stopped on {holder} until 'maintenance {holder} off --method stop'.")
            return (f"Failover: move the VIP from {holder} to {target}: {target}'s priority is raised so it "
                    f"takes over while {holder} still serves (no dropped requests), then {holder} stays in "
                    f"maintenance until 'maintenance {holder} off'.")
        if self.kind == "maintenance":
            on = self.state == "on"
            node = self.node or "?"
            check_maintenance(snap, node, on, self.method or "file")
            keeper = ends_split_brain(snap, node) if on else None
            if keeper is not None:
                how = "keepalived stops there" if self.stop else "keepalived there goes to FAULT"
                return (f"Split brain: {', '.join(sorted(set(snap.holders) | set(snap.claimants)))} claim the VIP. "
                        f"Maintenance on for {node}: {how} and drops the VIP; {keeper} keeps it — this ends the "
                        f"split brain — and re-announces it (a keepalived reload: gratuitous ARPs, so clients "
                        f"that still reach {node} move at once). {node} stays out of the election until "
                        f"'maintenance {node} off'.")
            if on and node in snap.holders:
                how = "keepalived stops there, break-before-make" if self.stop else "make-before-break"
                plan_failover(snap, None, "stop" if self.stop else "boost")
                return f"{node} holds the VIP: it moves first ({how}), then {node} stays out of the election."
            if self.stop:
                return (f"Maintenance {self.state} for {node}: keepalived there is " +
                        ("stopped, so it will not take the VIP." if on else
                         "started; it may take the VIP back if its priority is the highest."))
            return (f"Maintenance {self.state} for {node}: " +
                    ("keepalived there goes to FAULT and will not take the VIP." if on else
                     "it may take the VIP back if its priority is the highest."))
        if self.kind == "restart":
            node, service = self.node or "?", self.state or "?"
            check_restart(snap, node, service)
            if service == "haproxy":
                effect = ("connections through the VIP are cut once (clients reconnect; if HAProxy is not back "
                          "before keepalived's check gives up, the VIP moves)" if node in snap.holders
                          else "HAProxy's frontend there is down for a moment")
            else:
                effect = ("the VIP moves to the best backup while it restarts and may come back by priority"
                          if node in snap.holders else "it rejoins the election")
            m = snap.master(node)
            path = PATHS.keepalived_conf if service == "keepalived" else PATHS.haproxy_cfg
            pending = [p for p in (m.reload_pending if m else ()) if p.startswith(path)]
            return (f"Restart {service} on {node}: `{CONFIG_CHECK[service]}` checks the config on disk first "
                    f"(a config that fails is not restarted); then `systemctl restart {service}`: {effect}."
                    + (f" It also applies what was edited on disk: {'; '.join(pending)}." if pending else ""))
        check_backend(snap, self.node or "?", self.state or "?")
        return (f"Backend {self.node}: set state {self.state} on every reachable master's HAProxy, for each "
                f"server that sends to {self.node}'s apiserver.")

    async def act(self, snap: ClusterStatus, conn_for: ConnFor) -> Outcome:
        if self.kind == "failover":
            return await failover(snap, conn_for, self.node, method=self.method or "boost")
        if self.kind == "maintenance":
            return await maintenance(snap, conn_for, self.node or "?", self.state == "on", self.method or "file")
        if self.kind == "restart":
            return await restart(snap, conn_for, self.node or "?", self.state or "?")
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
        await op.ensure_held(f"any change (the {request.action})")  # a long question: still ours?
        outcome = await request.act(snap, conn_for)
        op.result, op.seconds = auditlog.ok(outcome.result), outcome.seconds
        return outcome
