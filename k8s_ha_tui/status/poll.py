"""The collector: one kept-open SSH connection per node, a probe per node per interval, the VIP
watched as it moves (`ip -o monitor address`), and an immutable ClusterStatus after each round.

A node that cannot be reached, falls silent or answers garbage becomes a state in the snapshot
("unreachable since ..."): one lost to the network is tried again every interval, one that
refuses us with a growing backoff, a dropped connection replaced at once; nothing here raises
to the caller.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from k8s_ha_tui.configs import render
from k8s_ha_tui.model.topology import Master, Node, Topology, host_port
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import answers, apiserver, node_ops, roles
from k8s_ha_tui.remote.auditlog import parse_lines
from k8s_ha_tui.remote.haproxy import HAPROXY_LOADED
from k8s_ha_tui.remote.keepalived import RunningInstance, keepalived_data, keepalived_stats, running_keepalived
from k8s_ha_tui.remote.lockfile import lock_probe, parse_probe
from k8s_ha_tui.remote.ssh import (
    HostKeyPolicy,
    NodeConnection,
    SshError,
    SshLost,
    SshUnreachable,
    connect,
    while_channel_open,
)
from k8s_ha_tui.remote.vrrp_census import NO_TCPDUMP, Census, listen, listen_command, parse_line
from k8s_ha_tui.status import parse
from k8s_ha_tui.status.model import ClusterStatus, MasterStatus, NodeStatus, WorkerStatus

PROBE_TIMEOUT = 5.0
SETTLE_S = 0.15  # a VIP move is shown this long after its first address event (see _vip_moved)
SILENCE_S = 2.5  # seconds (at least 2 intervals) a probe may go without printing: then the node is unreachable
AUDIT_SHOWN = 20  # the newest entries of each master's audit log, for the monitor
STATS_TIMEOUT = 3.0
BACKOFF_MAX = 10.0

# what the collector keeps of each VIP's word: holds it, when heard, since when (model.current_claims)
VIP_FIELDS = {False: ("holds_vip", "vip_seen_at", "vip_since"), True: ("holds_vip6", "vip6_seen_at", "vip6_since")}
STATE_FIELDS = {False: ("vrrp_state", "master_since"), True: ("vrrp_state6", "master6_since")}


def _changed(status: MasterStatus, **changes: Any) -> MasterStatus:
    """dataclasses.replace with fields named at run time (VIP_FIELDS, STATE_FIELDS)."""
    return replace(status, **changes)


def _api_probe(topo: Topology) -> str:
    """The API through each VIP (sections api, api6), asked side by side."""
    def ask(section: str, vip: str) -> str:
        url = shlex.quote(f"https://{host_port(vip, topo.frontend_port)}/readyz")
        return f"c=$(curl -gsk --max-time 1 -o /dev/null -w '%{{http_code}}' {url}); echo @@{section}; echo \"$c\""
    if topo.vip6 is None:
        return ask("api", topo.vip)
    return f"{{ {ask('api6', topo.vip6)}; }} >\"$t.6\" & {ask('api', topo.vip)}; wait $!; cat \"$t.6\"; rm -f \"$t.6\""


def master_probe(topo: Topology, node: Master, stats: bool = False) -> str:
    """One round trip per master per interval (`stats`: keepalived's counters too, for metrics).
    The apiserver's own probe runs beside the rest (a hung apiserver costs its curl a second),
    into a private temporary file that is printed at the end."""
    return "; ".join([
        # the temporary file goes also when the probe is cut short (a timeout closes the channel)
        f"t=$(mktemp) && trap 'rm -f \"$t\" \"$t.6\"' EXIT HUP PIPE TERM && "
        f"{{ ( {apiserver.probe(node.address, topo.apiserver_port)} ) >\"$t\" 2>/dev/null & ap=$!; }}",
        *([f"echo @@stats; {node_ops.in_probe('dump stats')}"] if stats else []),
        "echo @@services; echo $(systemctl is-active keepalived) $(systemctl is-active haproxy)",
        "echo @@addr; ip -o addr show",
        f"echo @@notify; cat {PATHS.state_file} 2>/dev/null",
        f"echo @@maintenance; cat {PATHS.maintenance_file} 2>/dev/null",
        f"echo @@boost; cat {PATHS.boost_file} 2>/dev/null",
        f"echo @@data; {node_ops.in_probe('dump data')}",
        f"echo @@lock; {lock_probe(PATHS.lock_file)}",
        "echo @@login; id -u; id -Gn",
        f"echo @@audit; tail -n {AUDIT_SHOWN} {PATHS.audit_log} 2>/dev/null | tr -c '[:print:]\\n' '?'",
        # what is on disk, to tell a reload pending (a line of the file never starts a section)
        f"echo @@kconf; sed 's/^@@/ @@/' {PATHS.keepalived_conf} 2>/dev/null",
        f"echo @@hloaded; ( {HAPROXY_LOADED} ); echo; stat -c %Y {PATHS.haproxy_cfg} 2>/dev/null",
        _api_probe(topo),
        'if [ -n "${ap:-}" ]; then wait "$ap"; echo @@apiserver; cat "$t"; fi',
    ])


def master_status(topo: Topology, node: Master, output: str, backends, proxies=()) -> MasterStatus:
    """Everything one master said, as a MasterStatus (pure: tested with garbage too)."""
    s = answers.sections(output)
    services = (s.get("services") or "").split()
    running = running_keepalived(s.get("data", ""))
    counters = keepalived_stats(s.get("stats", ""))
    data = keepalived_data(s.get("data", ""), topo.vip)
    inst = running.instance_for(topo.vip)
    notify = parse.notify_state(s.get("notify", ""), render.instance_name(topo))
    state = data.get("state") or notify.get("state") or "UNKNOWN"
    keepalived = services[0] if len(services) > 0 else "unknown"
    haproxy = services[1] if len(services) > 1 else "unknown"
    if keepalived != "active" and state != "UNKNOWN":
        state = "STOP"  # its last record is stale: keepalived is not running
    api, api6 = (s.get("api") or "").strip(), (s.get("api6") or "").strip()
    return MasterStatus(
        name=node.name, address=node.address, reachable=True,
        keepalived=keepalived, haproxy=haproxy,
        vrrp_state=state,
        base_priority=data.get("base_priority") or topo.priority_of(node),
        effective_priority=data.get("effective_priority") or notify.get("effective_priority"),
        check=data.get("check", "unknown"),
        holds_vip=answers.holds_address(s.get("addr", ""), topo.vip),
        maintenance=answers.flag_file(s.get("maintenance", "")) != 0,
        boost=answers.flag_file(s.get("boost", "")),
        apiserver=apiserver.presence(s.get("apiserver", "")),
        backends=backends,
        proxies=tuple(proxies),
        api_via_vip=(api == "200") if api else None,
        api_via_vip6=(api6 == "200") if api6 else None,
        holds_vip6=topo.vip6 is not None and answers.holds_address(s.get("addr", ""), topo.vip6),
        vrrp_state6=_state6(topo, running.instances, state, s.get("notify", "")),
        last_transition=data.get("last_transition") or notify.get("last_transition"),
        lock=parse_probe(s.get("lock", "")),
        hears=inst.master_router if inst else None,
        # a stopped HAProxy's pid file is stale: when it "loaded" means nothing then
        reload_pending=parse.reload_pending(inst, s.get("kconf", ""), s.get("hloaded", "") if haproxy == "active" else ""),
        topology_priority=topo.priority_of(node),
        tracks_maintenance=None if inst is None else running.tracks_file(inst, PATHS.maintenance_file, False),
        tracks_boost=None if inst is None else running.tracks_file(inst, PATHS.boost_file, True),
        instances=running.instances,
        vrrp_stats=tuple((name, tuple(sorted(values.items()))) for name, values in counters.items()),
        audit=tuple(parse_lines(s.get("audit", ""))),
        login_role=roles.probe_role(s.get("login", "")) if "login" in s else None,
    )


def _state6(topo: Topology, instances: tuple[RunningInstance, ...], state: str, notify: str) -> str | None:
    """The state of vip6's instance (None: no vip6). Without keepalived's dump (a watch login),
    its line of the notify record, else the VIP's state (the sync group's instances share it);
    with keepalived stopped, STOP."""
    if topo.vip6 is None:
        return None
    if state == "STOP":
        return state
    if not instances:
        # without vip6's own line, the record's last: the IPv4 instance's or the group's, whose state is `state`
        return parse.notify_state(notify, render.instance6_name(topo)).get("state") or state
    inst = next((i for i in instances if i.has_vip(topo.vip6)), None)
    return (inst.state if inst is not None else None) or "UNKNOWN"


def answered(topo: Topology, node: Master, probe_output: str, show_stat: str) -> MasterStatus:
    """A master's status from what it said: its probe's output and its HAProxy's `show stat`
    (pure: also how recorded answers are replayed in the tests)."""
    apiservers = {host_port(m.address, topo.apiserver_port): m.name for m in topo.masters}  # [fd00::11]:6443
    servers = parse.attach_masters(parse.show_stat(show_stat), apiservers, {m.name for m in topo.masters})
    return master_status(topo, node, probe_output, servers, parse.active_servers(show_stat))


def _worker_probe(topo: Topology) -> str:
    """A worker's probe: the API through each VIP (a private temporary file where there are two)."""
    if topo.vip6 is None:
        return _api_probe(topo)
    return f"t=$(mktemp) && trap 'rm -f \"$t\" \"$t.6\"' EXIT HUP PIPE TERM && {{ {_api_probe(topo)}; }}"


def worker_status(node: Node, probe_output: str) -> WorkerStatus:
    """A worker's status from its answer: the API through the VIP, asked from there."""
    s = answers.sections(probe_output)
    api, api6 = s.get("api", "").strip(), s.get("api6", "").strip()
    return WorkerStatus(node.name, node.address, True, api_via_vip=(api == "200") if api else None,
                        api_via_vip6=(api6 == "200") if api6 else None)


@dataclass
class Session:
    """One node's connection, its own poll loop, and what we last knew of it."""

    node: Node
    is_master: bool
    conn: NodeConnection | None = None
    unreachable_since: float | None = None
    error: str | None = None
    next_try: float = 0.0
    backoff: float = 1.0
    last: NodeStatus | None = None
    watcher: asyncio.Task | None = None
    listener: asyncio.Task | None = None  # the segment census (tcpdump), on masters
    wake: asyncio.Event | None = None
    polled: asyncio.Event | None = None  # set after each of its loop's polls
    refused: bool = False  # its last connect was refused (not lost to the network): it backs off
    last_duration: float | None = None  # seconds the last poll took (None: it did not finish)
    answer: tuple[str, str] = ("", "")  # what the node last said: probe output, `show stat` (for the record)
    heard_at: float | None = None  # monotonic: its last word (connected, or a probe answered); silence counts from it

    def drop(self) -> None:
        """Close the connection and its streams."""
        if self.conn:
            self.conn.close()
        self.conn = None
        for task in (self.watcher, self.listener):
            if task:
                task.cancel()
        self.watcher = self.listener = None
        self.heard_at = None

    def lost(self, error: str, soon: float | None = None) -> None:
        """`soon`: try again after that many seconds (the network's doing: a node back on the
        network is seen again at once), else after a backoff that doubles up to BACKOFF_MAX."""
        self.drop()
        self.error = error
        self.unreachable_since = self.unreachable_since or time.time()
        self.next_try = time.monotonic() + (self.backoff if soon is None else soon)
        if soon is None:
            self.backoff = min(BACKOFF_MAX, self.backoff * 2)

    @property
    def awaited(self) -> bool:
        """Not heard since it was lost (or never), and not refusing us: it may answer soon."""
        return not self.refused and (self.last is None or not self.last.reachable)

    def down_status(self) -> NodeStatus:
        cls = MasterStatus if self.is_master else WorkerStatus
        return cls(name=self.node.name, address=self.node.address, reachable=False,
                   unreachable_since=self.unreachable_since, error=self.error)


class Collector:
    """Polls every node in a loop of its own (a slow or lost node delays nobody else) and hands
    `on_snapshot` a new ClusterStatus whenever a node's answer arrives or the VIP moves."""

    def __init__(self, topo: Topology, policy: HostKeyPolicy, interval: float = 1.0,
                 on_snapshot: Callable[[ClusterStatus], Awaitable[None] | None] | None = None,
                 watch_vip: bool = True, stats: bool = False, census: bool = True):
        self.topo = topo
        self.policy = policy
        self.interval = interval
        self.on_snapshot = on_snapshot
        self.watch_vip = watch_vip
        self.stats = stats
        self.sessions = [Session(m, True) for m in topo.masters] + [Session(w, False) for w in topo.workers]
        self.silence = max(SILENCE_S, 2 * interval)
        self.settle_until = 0.0
        self.settler: asyncio.Task | None = None
        self.latest: ClusterStatus | None = None
        self.census: Census | None = Census() if census else None

    # --- one node ---

    async def _ensure(self, s: Session) -> bool:
        if s.conn is not None:
            return True
        if time.monotonic() < s.next_try:
            return False
        try:
            s.conn = await connect(self.topo, s.node, self.policy)
        except SshError as exc:
            s.refused = not isinstance(exc, SshUnreachable)
            s.lost(str(exc).split(": ", 1)[-1], None if s.refused else self.interval)
            return False
        s.refused = False
        s.heard_at = time.monotonic()
        if s.is_master and self.watch_vip:
            s.watcher = asyncio.ensure_future(self._watch_vip(s, s.conn))
            if self.census is not None:
                s.listener = asyncio.ensure_future(self._listen(s, s.conn))
        return True

    async def _stats(self, conn: NodeConnection) -> str:
        """`show stat` through the node's HAProxy (asyncssh UNIX-socket forwarding): its
        level-user socket, which the watch role may use, else (a config deployed before it
        had one) its admin socket."""
        for socket in (PATHS.watch_socket, PATHS.stats_socket):
            try:
                return await conn.haproxy(socket, "show stat", STATS_TIMEOUT)
            except Exception:  # no HAProxy, no permission, or garbage: the backends are unknown
                continue
        return ""

    async def _poll(self, s: Session, again: bool = True) -> NodeStatus:
        """`again`: a connection lost under the probe is replaced and asked once more at once, so
        an sshd restart does not show the node unreachable (soak: it did, for 1-10 s)."""
        if not await self._ensure(s):
            s.last = s.down_status()
            return s.last
        asked_at, asked_wall = time.monotonic(), time.time()
        s.last_duration = None
        conn = s.conn
        assert conn is not None  # _ensure connected it
        status: NodeStatus
        try:
            if isinstance(s.node, Master):
                out, stat = await asyncio.gather(
                    conn.probe(master_probe(self.topo, s.node, self.stats), PROBE_TIMEOUT, self.silence,
                               "the status probe", s.heard_at),
                    self._stats(conn))
                s.answer = (out, stat)
                status = self._dated(s, answered(self.topo, s.node, *s.answer), asked_wall)
                if not status.instances and status.keepalived == "active" and isinstance(s.last, MasterStatus):
                    # keepalived runs but its dump came too late this round (a busy node): what it
                    # follows has not changed, so the actions it allows do not flicker off.
                    status = replace(status, instances=s.last.instances, tracks_maintenance=s.last.tracks_maintenance,
                                     tracks_boost=s.last.tracks_boost)
            else:
                s.answer = (await conn.probe(_worker_probe(self.topo), PROBE_TIMEOUT, self.silence, "the API probe",
                                              s.heard_at), "")
                status = worker_status(s.node, s.answer[0])
        except SshError as exc:
            if again and isinstance(exc, SshLost):
                s.drop()
                return await self._poll(s, again=False)
            s.lost(str(exc).split(": ", 1)[-1])
            status = s.down_status()
        else:  # it answered: no longer lost (not on connecting alone: a node whose probe always
            # goes silent would be reconnected at once, again and again)
            s.error, s.unreachable_since, s.backoff = None, None, 1.0
            s.heard_at = time.monotonic()
        s.last = status
        s.last_duration = time.monotonic() - asked_at
        return status

    def _dated(self, s: Session, status: MasterStatus, asked_wall: float) -> MasterStatus:
        """The answer with the times its claims are judged by (model.current_claims), and what the
        address stream said while it was under way (that is newer). A claim that begins (the VIP
        added, MASTER) makes every other master answer again at once: a word older than it does
        not count until then."""
        prev = s.last if isinstance(s.last, MasterStatus) and s.last.reachable else None
        began = False
        for six in self.families:
            holds, seen, since = VIP_FIELDS[six]
            if prev is not None and (getattr(prev, seen) or 0.0) > asked_wall:
                # the address stream or a VIP check said more recently whether it holds the VIP
                status = replace(status, **{name: getattr(prev, name) for name in (holds, seen, since)})
            else:  # when first seen (also again after being lost) it has held the VIP since we know not when
                start = (None if prev is None or not getattr(status, holds) else
                         getattr(prev, since) if getattr(prev, holds) else asked_wall)
                status = _changed(status, **{seen: asked_wall, since: start})
            state, master_since = STATE_FIELDS[six]
            master = getattr(status, state) == "MASTER"
            start = (None if prev is None or not master else
                     getattr(prev, master_since) if getattr(prev, state) == "MASTER" else asked_wall)
            status = _changed(status, **{master_since: start})
            began |= prev is not None and ((getattr(status, holds) and not getattr(prev, holds))
                                           or (master and getattr(prev, state) != "MASTER"))
        status = replace(status, seen_at=asked_wall)
        if began:
            self._wake(but=s)
            self._vip_moved()
        return status

    def _wake(self, but: Session | None = None) -> None:
        for other in self.sessions:
            if other.wake and other is not but:
                other.wake.set()

    @property
    def families(self) -> tuple[bool, ...]:
        """Whether each VIP the collector follows is vip6: (False,), or (False, True) for dual stack."""
        return (False, True) if self.topo.vip6 is not None else (False,)

    def _vip_event(self, s: Session, holds: bool, six: bool = False) -> None:
        """The address stream saw a VIP (`six`: vip6) added to or deleted from `s`'s interface."""
        held, seen, since = VIP_FIELDS[six]
        if isinstance(s.last, MasterStatus) and s.last.reachable and getattr(s.last, held) != holds:
            now = time.time()
            s.last = _changed(s.last, **{held: holds, seen: now, since: now if holds else None})
            self._vip_moved()
        self._wake()

    async def _watch_vip(self, s: Session, conn: NodeConnection) -> None:
        """Stream address changes; a change of the VIP updates the snapshot at once and makes
        every master poll again."""
        try:
            proc = await conn.conn.create_process(conn.wrap(while_channel_open("ip -o monitor address")), errors="replace")
            vips = {f" {vip}/": six for six, vip in zip(self.families, self.topo.vips, strict=True)}
            async for line in proc.stdout:
                for vip, six in vips.items():
                    if vip in line and " dadfailed " not in f"{line} ":
                        self._vip_event(s, not line.startswith("Deleted"), six)
        except Exception:  # the connection went away: the node's loop notices and reconnects
            return

    async def _listen(self, s: Session, conn: NodeConnection) -> None:
        """The segment census from this master: every VRRP advert its interface sees. A router
        appearing or leaving (a new neighbour, a collision, its end) updates the snapshot at
        once. A tcpdump that is missing or stops is a notice (`census_missing`), not silence."""
        assert self.census is not None and isinstance(s.node, Master)
        try:
            proc = await conn.conn.create_process(conn.wrap(listen_command(self.topo.interface_of(s.node))),
                                                  errors="replace")
            self.census.missing.discard(s.node.name)
            async for line in proc.stdout:
                if line.startswith(NO_TCPDUMP):
                    break
                heard = parse_line(line)
                if heard is None:
                    continue
                known = {(a.vrid, a.address) for a in self.census.advertisers()}
                self.census.hear(s.node.name, heard)
                if known != {(a.vrid, a.address) for a in self.census.advertisers()}:
                    await self._publish()
        except Exception:  # the connection went away: the node's loop notices and reconnects
            return
        if s.conn is conn:  # the stream ended while the connection lives: tcpdump is missing or stopped
            self.census.missing.add(s.node.name)

    async def listen_once(self) -> None:
        """A bounded census from every reachable master (for `status`)."""
        assert self.census is not None
        census = self.census
        await asyncio.gather(*(listen(census, s.conn, s.node.name, self.topo.interface_of(s.node))
                               for s in self.sessions if isinstance(s.node, Master) and s.conn is not None))

    async def _node_loop(self, s: Session) -> None:
        s.wake, s.polled = asyncio.Event(), asyncio.Event()
        me = asyncio.current_task()
        while True:
            started = time.monotonic()
            s.wake.clear()  # before the poll: a wake during it asks again (its answer may be older)
            await self._poll(s)
            if me is not None and me.cancelling():  # a cancel that an asyncio.wait_for under the poll swallowed
                raise asyncio.CancelledError
            s.polled.set()
            await self._publish()
            try:  # not asyncio.wait_for: on 3.11 it swallows a cancel that comes as the wake does,
                # and the loop ran on after its collector was closed (a soak hung on exit)
                async with asyncio.timeout(max(0.05, self.interval - (time.monotonic() - started))):
                    await s.wake.wait()
            except TimeoutError:
                pass

    # --- the cluster ---

    @property
    def poll_seconds(self) -> float | None:
        """How long the slowest node's last poll took: the cost of one status round."""
        done = [s.last_duration for s in self.sessions if s.last_duration is not None]
        return max(done) if done else None

    def current(self) -> ClusterStatus:
        statuses = [s.last or s.down_status() for s in self.sessions]
        masters = tuple(x for x in statuses if isinstance(x, MasterStatus))
        workers = tuple(x for x in statuses if isinstance(x, WorkerStatus))
        segment = self.census.advertisers() if self.census is not None else ()
        return ClusterStatus(self.topo.name, self.topo.vip, self.topo.frontend_port, time.time(), masters, workers,
                             router_id=self.topo.vrrp.router_id, segment=segment,
                             census_missing=tuple(sorted(self.census.missing)) if self.census else (),
                             vip6=self.topo.vip6)

    def _vip_moved(self) -> None:
        """A VIP move is shown SETTLE_S after its first address event, with whatever the other
        masters' streams said meanwhile: the two halves of a move (one master deletes, another
        adds) arrive on separate connections in either order, and a snapshot between them showed
        no holder, or two, that no kernel had (bench/soak.py)."""
        if self.settler is None or self.settler.done():
            self.settle_until = time.monotonic() + SETTLE_S
            self.settler = asyncio.ensure_future(self._settle())

    async def _settle(self) -> None:
        await asyncio.sleep(max(0.0, self.settle_until - time.monotonic()))
        try:
            if self._in_doubt():
                await self._hear_again()
            await self._publish(force=True)  # the loop's timer may fire a tick early
        finally:
            self.settle_until = 0.0

    def _in_doubt(self) -> list[Session]:
        """The masters about whom the snapshot would say something their next answer may undo:
        a claim older than another's (a live split brain until it answers again), or, while no
        master we reach holds the VIP, being lost (it may hold it: a holder back on the network
        wins its election again, and the others' deletes come before we reach it) — also when
        connected again but not yet answered (the replay of `offline`: its connection was up,
        its first probe under way, and NO HOLDER was shown), but not one that refuses us."""
        snap = self.current()
        return [s for s in self.sessions if s.is_master and s.polled is not None
                and (s.node.name in snap.unconfirmed or (snap.no_holder and s.awaited))]

    async def _hear_again(self) -> None:
        """Ask the masters in doubt at once (the lost ones to connect, the others also whether
        the VIP is on their interface: `ip addr` answers even while keepalived is paused and the
        whole probe waits for its dump) and show nothing until none is in doubt or one interval
        passed. bench/soak.py: without it a split brain showed the newer holder alone for a
        probe's time, and a returning holder showed as NO HOLDER for ~1 s. A lost master is
        waited for up to the silence limit: reconnecting and its first probe take ~1.5 s, and
        one interval showed NO HOLDER for 0.4 s (an hour's soak); a NO HOLDER that is true is
        shown that much later when a master is lost."""
        started = time.monotonic()
        deadline = self.settle_until = started + self.interval
        asked: set[str] = set()
        checks: list[asyncio.Future] = []
        try:
            while True:
                for s in self.sessions:
                    if s.polled is not None:
                        s.polled.clear()
                doubt = self._in_doubt()
                if any(s.awaited for s in doubt):
                    deadline = self.settle_until = max(deadline, started + self.silence)
                left = deadline - time.monotonic()
                if not doubt or left <= 0:
                    return
                for s in doubt:  # also a master that came into doubt meanwhile (a claim that began)
                    if s.node.name not in asked:
                        asked.add(s.node.name)
                        if s.awaited:  # to connect at once (or its first probe, under way, answers)
                            s.next_try = 0.0
                        elif s.conn is not None:
                            checks.append(asyncio.ensure_future(self._check_vip(s)))
                        assert s.wake is not None
                        s.wake.set()
                waits = [asyncio.ensure_future(s.polled.wait()) for s in doubt if s.polled is not None]
                try:
                    await asyncio.wait([*waits, *(c for c in checks if not c.done())], timeout=left,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
        finally:
            for c in checks:
                c.cancel()

    async def _check_vip(self, s: Session) -> None:
        """Whether the VIP is on `s`'s interface now: its word on the VIP, newer (a failure is
        left to the node's own loop)."""
        conn = s.conn
        assert conn is not None
        asked_wall = time.time()
        try:
            out = await conn.probe("ip -o addr show", self.silence, self.silence, "the VIP check", s.heard_at)
        except SshError:
            return
        s.heard_at = time.monotonic()
        last = s.last
        if (not isinstance(last, MasterStatus) or not last.reachable
                or (last.vip_seen_at or 0.0) > asked_wall):  # a newer word came meanwhile
            return
        for six, vip in zip(self.families, self.topo.vips, strict=True):
            held, seen, since = VIP_FIELDS[six]
            holds = answers.holds_address(out, vip)
            start = (getattr(last, since) if getattr(last, held) else asked_wall) if holds else None
            last = _changed(last, **{held: holds, seen: asked_wall, since: start})
        s.last = last

    async def _publish(self, force: bool = False) -> None:
        """Hand on a snapshot, but only once every node has answered or failed once: a census or
        address stream that speaks during the first round must not judge the nodes not yet
        asked as unreachable (a non-holder answering first would read as NO HOLDER). Not while
        a VIP move settles (unless `force`d): its own snapshot follows. Also not once its time
        is up but before its settler ran: a node's answer that came first showed the newer
        holder of a split brain alone (lab replay of vrrp-drop, 2 of 5; the hour's soak)."""
        if any(s.last is None for s in self.sessions):
            return
        settling = time.monotonic() < self.settle_until or (self.settler is not None and not self.settler.done())
        if not force and settling:
            return
        snap = self.current()
        self.latest = snap
        if self.on_snapshot:
            result = self.on_snapshot(snap)
            if asyncio.iscoroutine(result):
                await result

    async def poll_once(self) -> ClusterStatus:
        await asyncio.gather(*(self._poll(s) for s in self.sessions))
        await self._publish(force=True)
        assert self.latest is not None  # _publish just set it
        return self.latest

    async def run(self) -> None:
        """Poll until cancelled (the first round waits for every node, so it is complete)."""
        try:
            await self.poll_once()
            await asyncio.gather(*(self._node_loop(s) for s in self.sessions))
        finally:
            self.close()

    def close(self) -> None:
        if self.settler is not None:
            self.settler.cancel()
        for s in self.sessions:
            for task in (s.watcher, s.listener):
                if task:
                    task.cancel()
            if s.conn:
                s.conn.close()
                s.conn = None


async def snapshot(topo: Topology, policy: HostKeyPolicy, census: bool = True) -> ClusterStatus:
    """One status round for `status`: connect, ask (and listen to the segment for a moment), close."""
    c = Collector(topo, policy, watch_vip=False, census=census)
    try:
        if census:  # listen while the probes run: the round takes as long as the listen, not both
            await asyncio.gather(*(c._ensure(s) for s in c.sessions))
            await asyncio.gather(c.poll_once(), c.listen_once())
            await c._publish()
        else:
            await c.poll_once()
        assert c.latest is not None
        return c.latest
    finally:
        c.close()
