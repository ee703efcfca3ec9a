"""The collector's sense of time, with a fake node (no SSH): a probe that falls silent is a lost
node, a long one is not; a VIP move settles before it is shown; who is tried again how soon."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from k8s_ha_tui.remote.ssh import HostKeyPolicy, NodeConnection, SshError, SshLost, SshUnreachable
from k8s_ha_tui.status import poll
from k8s_ha_tui.status.model import MasterStatus, WorkerStatus
from k8s_ha_tui.wizard import defaults_topology

TOPO = defaults_topology()
POLICY = HostKeyPolicy(known_hosts=Path("/nonexistent"))


class Stream:
    """A probe's stdout: (seconds before it, chunk) in turn; a chunk None: the link drops."""

    def __init__(self, script: list[tuple[float, str | None]]):
        self.script = list(script)

    async def read(self, _n: int) -> str:
        if not self.script:
            return ""
        delay, chunk = self.script.pop(0)
        await asyncio.sleep(delay)  # the node taking its time (simulated, not synchronisation)
        if chunk is None:
            raise asyncssh.ConnectionLost("connection lost")
        return chunk


class Proc:
    def __init__(self, stdout: Stream):
        self.stdout, self.closed = stdout, False

    def close(self) -> None:
        self.closed = True


class Conn:
    def __init__(self, script):
        self.proc = Proc(Stream(script))

    async def create_process(self, _command, **_kw) -> Proc:
        return self.proc


def probe(script, timeout=1.0, silent_for=0.3, heard_ago: float | None = None) -> tuple[str, Conn]:
    conn = Conn(script)
    node = NodeConnection(TOPO.masters[0], conn, "")  # type: ignore[arg-type]
    heard_at = None if heard_ago is None else time.monotonic() - heard_ago
    return asyncio.run(node.probe("probe", timeout, silent_for, "the status probe", heard_at)), conn


def test_a_probe_that_prints_as_it_goes_may_take_longer_than_its_silence_limit():
    out, conn = probe([(0.0, "@@services\n"), (0.2, "active active\n"), (0.2, "@@data\n"), (0.2, "State = MASTER\n")])
    assert out == "@@services\nactive active\n@@data\nState = MASTER\n" and conn.proc.closed


def test_a_probe_that_falls_silent_is_a_lost_node_in_its_silence_limit_not_its_timeout():
    started = time.monotonic()
    with pytest.raises(SshError, match="nothing for 0.3 s from: the status probe") as err:
        probe([(0.0, "@@services\n"), (5.0, "late\n")], timeout=5.0)
    assert not isinstance(err.value, SshLost) and time.monotonic() - started < 2.0


def test_silence_counts_from_the_nodes_last_word_not_from_the_probes_start():
    """A node that dropped between two probes is lost `silent_for` after it last spoke (0.6 s
    before this probe here), so its first byte is due within 0.4 s, not 1 s."""
    assert probe([(0.7, "late\n")], timeout=5.0, silent_for=1.0)[0] == "late\n"  # counted from the start
    with pytest.raises(SshError, match="nothing for 1 s from: the status probe"):
        probe([(0.7, "late\n")], timeout=5.0, silent_for=1.0, heard_ago=0.6)


def test_a_node_long_unheard_still_gets_half_its_silence_for_the_first_byte():
    assert probe([(0.3, "@@services\n")], timeout=5.0, silent_for=1.0, heard_ago=30.0)[0] == "@@services\n"


def test_a_probe_that_never_ends_hits_its_timeout():
    with pytest.raises(SshError, match="no answer within 0.5 s to: the status probe"):
        probe([(0.1, "x\n")] * 20, timeout=0.5)


def test_a_link_that_drops_under_a_probe_is_lost_not_silent():
    with pytest.raises(SshLost, match="SSH failed"):
        probe([(0.0, "@@services\n"), (0.0, None)])


def masters_status() -> list[MasterStatus]:
    return [MasterStatus(m.name, m.address, True, holds_vip=(i == 0)) for i, m in enumerate(TOPO.masters)]


def test_a_vip_move_is_shown_once_settled_with_both_halves():
    async def run() -> list:
        shown: list = []
        c = poll.Collector(TOPO, POLICY, on_snapshot=shown.append, census=False)
        for s, st in zip(c.sessions, [*masters_status(), *(WorkerStatus(w.name, w.address, True) for w in TOPO.workers)]):
            s.last = st
        m1, m2 = c.sessions[0], c.sessions[1]
        assert isinstance(m1.last, MasterStatus) and isinstance(m2.last, MasterStatus)
        m1.last = MasterStatus(m1.node.name, m1.node.address, True, holds_vip=False)  # the delete comes first
        c._vip_moved()
        await c._publish()  # a node loop's snapshot meanwhile: held back
        m2.last = MasterStatus(m2.node.name, m2.node.address, True, holds_vip=True)  # then the add
        c._vip_moved()
        assert shown == []
        assert c.settler is not None
        await c.settler
        return shown
    shown = asyncio.run(run())
    assert [s.holders for s in shown] == [[TOPO.masters[1].name]]


@pytest.mark.parametrize("error, soon", [(SshUnreachable("n: cannot reach 10.0.3.11:22: timed out"), True),
                                         (SshError("n: root@10.0.3.11 refused our key"), False)])
def test_a_node_lost_to_the_network_is_tried_again_next_interval_a_refusal_later_and_later(monkeypatch, error, soon):
    async def refused(*_a, **_kw):
        raise error
    monkeypatch.setattr(poll, "connect", refused)
    c = poll.Collector(TOPO, POLICY, interval=1.0, census=False)
    s = c.sessions[0]
    waits = []
    for _ in range(5):
        s.next_try = 0.0
        assert asyncio.run(c._ensure(s)) is False
        waits.append(round(s.next_try - time.monotonic()))
    assert waits == ([1] * 5 if soon else [1, 2, 4, 8, 10])


class World:
    """What each fake master answers (its MasterStatus), and who is off the network."""

    def __init__(self, monkeypatch):
        self.said = {m.name: MasterStatus(m.name, m.address, True, vrrp_state="BACKUP", keepalived="active")
                     for m in TOPO.masters}
        self.off: set[str] = set()
        self.connects: list[str] = []
        self.probe_s = 0.0  # how long a probe takes (a node's work, simulated)
        self.slow: dict[str, float] = {}  # ... on these nodes
        self.asked: dict[str, int] = {}  # full probes asked, and answered, per node
        self.done: dict[str, int] = {}
        self.answers: dict[int, MasterStatus] = {}
        world = self

        class Node:
            def __init__(self, node):
                self.node = node

            async def probe(self, _command, _timeout, _silence, label, _heard_at=None) -> str:
                if label == "the VIP check":  # `ip addr`, which keepalived cannot delay
                    said = world.said[self.node.name]
                    return f"2: eth0    inet {TOPO.vip}/32 scope global eth0\n" if said.holds_vip else ""
                if self.node.name not in world.said:  # a worker
                    return ""
                world.asked[self.node.name] = world.asked.get(self.node.name, 0) + 1
                said = world.said[self.node.name]  # what it says is as of when it was asked
                await asyncio.sleep(world.slow.get(self.node.name, world.probe_s))
                world.done[self.node.name] = world.done.get(self.node.name, 0) + 1
                if self.node.name in world.off:
                    raise SshError(f"{self.node.name}: nothing for 2.5 s from: the status probe")
                world.answers[id(said)] = said
                return str(id(said))

            async def haproxy(self, *_a) -> str:
                return ""

            def close(self) -> None:
                pass

        async def connect(_topo, node, _policy):
            world.connects.append(node.name)
            if node.name in world.off:
                raise SshUnreachable(f"{node.name}: cannot reach {node.address}:22: timed out")
            return Node(node)

        monkeypatch.setattr(poll, "connect", connect)
        monkeypatch.setattr(poll, "answered", lambda _t, _node, out, _s: world.answers[int(out)])

    def holds(self, name: str, holds: bool = True) -> None:
        self.said[name] = replace(self.said[name], holds_vip=holds, vrrp_state="MASTER" if holds else "BACKUP")


M1, M2 = TOPO.masters[0].name, TOPO.masters[1].name


def test_a_holder_gone_silent_is_not_shown_beside_its_successor_but_a_live_split_brain_is(monkeypatch):
    world = World(monkeypatch)
    world.holds(M1)

    async def run() -> None:
        c = poll.Collector(TOPO, POLICY, census=False, watch_vip=False)
        try:
            assert (await c.poll_once()).holders == [M1]
            world.off.add(M1)  # M1 drops off the network: its last word stays until its silence shows
            world.holds(M2)
            c._vip_event(c.sessions[1], True)  # M2 takes over: its address stream says so
            snap = c.current()
            assert snap.holders == [M2] and not snap.split_brain and snap.unconfirmed == [M1]
            await c._poll(c.sessions[1])  # M2's probe: MASTER now, a claim that begins
            snap = c.current()
            assert snap.claimants == [M2] and not snap.split_brain and snap.alarms == []
            world.off.discard(M1)  # ... but M1 was only cut off from VRRP: it answers, still holding
            await c._poll(c.sessions[0])
            snap = c.current()
            assert snap.holders == [M1, M2] and snap.split_brain and snap.unconfirmed == []
        finally:
            c.close()
    asyncio.run(run())


async def until(check, deadline_s: float = 5.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def shown_from(ready, act, interval: float = 1.0) -> list:
    """Run a collector on the fake world until `ready(last snapshot)`, then `await act(c, shown)`,
    which returns the index of the first snapshot to judge; those snapshots."""
    async def run() -> list:
        shown: list = []
        c = poll.Collector(TOPO, POLICY, interval=interval, census=False, watch_vip=False, on_snapshot=shown.append)
        task = asyncio.ensure_future(c.run())
        try:
            await until(lambda: bool(shown) and ready(shown[-1]))
            return shown[await act(c, shown):]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return asyncio.run(run())


@pytest.mark.parametrize("reached", ["backing off", "first probe slower than an interval"])
def test_a_holder_back_on_the_network_is_waited_for_when_the_vip_leaves_the_others(monkeypatch, reached):
    """M1 returns and wins its election back: M2's delete is seen first. Without asking M1 at
    once the monitor showed NO HOLDER until M1's next try (here 30 s away); with its connection
    up again but its first probe under way, NO HOLDER was shown at once (lab replay of
    `offline`), and after one interval when that probe took longer (an hour's soak: 0.4 s)."""
    world = World(monkeypatch)
    world.holds(M2)
    world.off.add(M1)

    async def returns(c, shown) -> int:
        m1 = c.sessions[0]
        world.off.discard(M1)
        world.holds(M1)
        if reached == "backing off":
            m1.next_try = time.monotonic() + 30
        else:
            world.slow[M1] = 1.5  # reconnecting and a first probe, on a busy node
            m1.next_try = 0.0
            m1.wake.set()
            await until(lambda: m1.conn is not None)
        world.holds(M2, False)
        seen = len(shown)
        c._vip_event(c.sessions[1], False)
        await until(lambda: shown[-1].holders == [M1])
        return seen
    after = shown_from(lambda snap: snap.holders == [M2] and M1 in snap.unreachable, returns)
    assert [s.holders for s in after if s.no_holder] == []


async def split_brain(c, shown) -> int:
    """M2 takes the VIP too (VRRP lost between them), and M1 keeps it."""
    seen = len(shown)
    c._vip_event(c.sessions[1], True)
    await until(lambda: shown[-1].holders == [M1, M2])
    return seen


def test_a_live_split_brain_shows_both_holders_at_once_not_first_the_newer_one(monkeypatch):
    """The older holder's word is heard again before the move is shown: without waiting for it,
    the newer holder was shown alone for a probe's time (bench/soak.py: 4 moments in 8 min)."""
    world = World(monkeypatch)
    world.holds(M1)
    world.probe_s = 0.3  # longer than the move's settling (SETTLE_S)

    async def act(c, shown) -> int:
        world.holds(M2)
        return await split_brain(c, shown)
    after = shown_from(lambda snap: snap.holders == [M1], act)
    assert [s.holders for s in after if s.holders != [M1, M2]] == []


def test_a_nodes_answer_between_the_settling_time_and_the_settler_does_not_show_the_move(monkeypatch):
    """The settling time is up but the loop was busy: a node's answer is handled before the
    settler wakes. It published the unsettled snapshot, the newer holder alone (lab replay of
    vrrp-drop with the exporter's collector: 2 of 5 split brains)."""
    world = World(monkeypatch)
    world.holds(M1)

    async def act(c, shown) -> int:
        world.holds(M2)
        seen = len(shown)
        c._vip_event(c.sessions[1], True)
        time.sleep(poll.SETTLE_S + 0.05)  # the loop busy past the settling time (a busy machine)
        await c._publish()  # ... as a node loop does when its answer comes first
        await until(lambda: shown[-1].holders == [M1, M2])
        return seen
    after = shown_from(lambda snap: snap.holders == [M1], act)
    assert [s.holders for s in after if s.holders != [M1, M2]] == []


def test_a_holder_whose_keepalived_is_paused_is_heard_by_its_vip_not_its_whole_probe(monkeypatch):
    """A paused keepalived delays the probe (it waits for keepalived's dump), not `ip addr`: the
    monitor showed the newer holder alone for a second (bench/soak.py)."""
    world = World(monkeypatch)
    world.holds(M1)

    async def act(c, shown) -> int:
        world.slow[M1] = 3.0  # keepalived paused: its probes take 3 s
        world.holds(M2)  # so M2 hears no adverts
        return await split_brain(c, shown)
    after = shown_from(lambda snap: snap.holders == [M1], act)
    assert [s.holders for s in after if s.holders != [M1, M2]] == []


def test_a_probe_asked_before_the_vip_check_does_not_undo_it_when_it_answers_later(monkeypatch):
    world = World(monkeypatch)
    world.holds(M1)

    async def act(c, shown) -> int:
        world.slow[M1] = 0.8
        asked = world.asked.get(M1, 0)
        await until(lambda: world.asked.get(M1, 0) > asked)  # a slow probe of M1 under way
        done = world.done.get(M1, 0)
        world.holds(M2)
        seen = await split_brain(c, shown)
        await until(lambda: world.done.get(M1, 0) > done)  # the probe asked before it answered
        count = len(shown)
        await until(lambda: len(shown) > count + 1)  # and was shown
        return seen
    after = shown_from(lambda snap: snap.holders == [M1], act)
    assert after and [s.holders for s in after if s.holders != [M1, M2]] == []


@pytest.mark.parametrize("turns", range(4))
def test_a_collector_cancelled_as_a_wake_comes_stops(monkeypatch, turns):
    """asyncio.wait_for (3.11) swallows a cancel that arrives with its result: a node loop waiting
    for its wake ran on after the collector was closed, and a soak hung on exit."""
    World(monkeypatch)

    async def run() -> None:
        c = poll.Collector(TOPO, POLICY, interval=5.0, census=False, watch_vip=False)
        task = asyncio.ensure_future(c.run())
        await until(lambda: all(s.polled is not None and s.polled.is_set() for s in c.sessions))
        for _ in range(5):  # a few turns of the event loop: every node loop is at its wake's wait
            await asyncio.sleep(0)
        c._wake()
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=3.0)
        assert done, "the collector did not stop"
        leftover = [t for t in asyncio.all_tasks() if "_node_loop" in repr(t)]
        assert leftover == [], leftover
    asyncio.run(run())
