"""One change at a time per cluster, and a trail of every attempt.

Deploy, rollback and every action run inside `change(...)`: it takes the cluster lock on every
reachable master (a majority of them at least, so two operators who each reach a different part
of the cluster cannot both hold it), renews it while the change runs, releases it at the end,
and appends the attempt — ok, failed or refused — to the operator's own audit log and to every
reachable master's, so the second operator sees what the first one did.

The lock is a file on the masters (PATHS.lock_file), created with `ln` (atomic, and whole before
anyone can see it). Two operators racing take the masters in the same order: whoever gets the
first one wins, the other is refused there, before it holds anything.

The lock is a lease (lockfile.py): a holder proven gone loses it to the next command, which says
so and records it; and a holder checks it still has it before every step that changes a node
(`Change.ensure_held`, fencing), so one that was paused past the lease stops instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from k8s_ha_tui.errors import Refused
from k8s_ha_tui.paths import PATHS, local_state_dir
from k8s_ha_tui.remote import auditlog, node_ops, roles
from k8s_ha_tui.remote.lockfile import RENEW_EVERY, LockInfo, lock_probe, parse_probe
from k8s_ha_tui.remote.ssh import NodeConnection, SshError

NODE_TIMEOUT = 5.0  # a lock or audit command that takes longer is a lost node, not a wait
WAIT_POLL = 1.0

Log = Callable[[str], None]


class LockHeld(Refused):
    """Somebody else's change is running (or their lock was left behind)."""


class LockLost(Refused):
    """This command's lock was taken over (it was paused or cut off past the lease)."""


@dataclass
class LockOptions:
    wait: float = 0.0  # seconds to queue for the lock; 0 refuses at once
    break_stale: bool = False


def local_audit_path() -> Path:
    return local_state_dir() / "audit.log"


def append_local(entry: auditlog.AuditEntry) -> None:
    """The operator's own copy (0600, in a 0700 folder)."""
    path = local_audit_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(entry.line())


async def append_remote(conns: list[NodeConnection], entry: auditlog.AuditEntry) -> list[str]:
    """Append to every node's audit log at once; the names of those that did not take it."""
    results = await asyncio.gather(*(node_ops.run(c, "audit", input=entry.line(), timeout=NODE_TIMEOUT)
                                     for c in conns), return_exceptions=True)
    return [c.name for c, r in zip(conns, results) if isinstance(r, BaseException)]


async def record(conns: list[NodeConnection], entry: auditlog.AuditEntry) -> list[str]:
    append_local(entry)
    return await append_remote(conns, entry)


# --- the lock on one node ---------------------------------------------------------------------

async def _try_node(conn: NodeConnection, lock: LockInfo) -> tuple[LockInfo, float | None] | None:
    """None when this node's lock is now ours, else the lock found there and its file's age by
    the node's own clock (None when unknown)."""
    out = str((await node_ops.run(conn, "lock-acquire", input=lock.text(), timeout=NODE_TIMEOUT)).stdout or "")
    head, _, rest = out.partition("\n")
    if head.strip() == "TAKEN":
        return None
    node_now, _, probe = rest.partition("\n")
    found = parse_probe(probe)
    if found is None:  # gone between our `ln` and our look (released just then): the next round takes it
        return LockInfo("", "nobody (released just now)", "?", 0, "?", "?", time.time(), time.time()), None
    try:
        age: float | None = float(node_now) - float(probe.split("\n", 1)[0])
    except ValueError:
        age = None
    return found, age


def _is_ours(lock: LockInfo) -> str:
    return f"grep -qF '\"id\": \"{lock.id}\"' {PATHS.lock_file}"


async def _release_node(conn: NodeConnection, lock: LockInfo) -> None:
    await node_ops.run(conn, "lock-release", input=lock.text(), timeout=NODE_TIMEOUT)


async def _renew_node(conn: NodeConnection, lock: LockInfo) -> None:
    await node_ops.run(conn, "lock-renew", input=lock.text(), timeout=NODE_TIMEOUT)


async def _break_node(conn: NodeConnection, found: LockInfo) -> bool:
    """Remove exactly the lock file that was seen (same hash), never one written since."""
    res = await node_ops.run(conn, "lock-break", input=found.token, check=False, timeout=NODE_TIMEOUT)
    return "BROKEN" in str(res.stdout or "")


# --- the change ---------------------------------------------------------------------------------

@dataclass
class Change:
    """A change under way: set `result` (and `seconds`) to say what it did, for the audit trail.
    Left unset, the result is derived from how the block ended."""

    conns: list[NodeConnection]
    cluster: str
    action: str
    target: str
    lock: LockInfo
    result: str | None = None
    seconds: float | None = None
    locked: list[NodeConnection] = field(default_factory=list)
    lock_left_on: list[str] = field(default_factory=list)
    total_masters: int = 0

    def entry(self, result: str, seconds: float | None) -> auditlog.AuditEntry:
        return auditlog.entry(self.cluster, self.action, self.target, result, seconds)

    async def ensure_held(self, before: str) -> None:
        """Fencing, before every step that changes a node: the lock must still be ours on a
        majority of the masters. A holder that was paused or cut off past the lease may have
        lost it to another command; it stops here (LockLost) and changes nothing more."""
        look = f"if {_is_ours(self.lock)}; then echo OURS; else {lock_probe(PATHS.lock_file)}; fi"
        results = await asyncio.gather(*(c.run(look, check=False, timeout=NODE_TIMEOUT) for c in self.locked),
                                       return_exceptions=True)
        answers = [str(r.stdout or "") for r in results if not isinstance(r, BaseException)]
        if sum(a.startswith("OURS") for a in answers) * 2 > self.total_masters:
            return
        now = next((info for a in answers if (info := parse_probe(a)) is not None), None)
        self.locked = []  # none of it is ours to release any more
        raise LockLost(f"the cluster lock is no longer this command's"
                       f"{f' (now: {now.describe()})' if now else ''}: it was taken over while this command "
                       f"was stopped or cut off; stopped before {before}, which was not changed")


def new_lock(cluster: str, what: str) -> LockInfo:
    now = time.time()
    host = socket.gethostname()
    return LockInfo(id=secrets.token_hex(8), who=auditlog.whoami(), host=host, pid=os.getpid(), what=what,
                    cluster=cluster, since=now, renewed=now)


async def _acquire(op: Change, total_masters: int, options: LockOptions, log: Log) -> None:
    if len(op.conns) * 2 <= total_masters:
        raise LockHeld(f"only {len(op.conns)} of {total_masters} masters are reachable: the cluster lock needs "
                       "a majority, so nothing was changed")
    deadline = time.monotonic() + options.wait
    while True:
        held, where = None, None
        for conn in op.conns:  # the same order for every operator: the first contested node decides
            held = await _try_node(conn, op.lock)
            if held is not None:
                where = conn
                break
            op.locked.append(conn)
        if held is None:
            return
        await _release_all(op)
        assert where is not None
        found, age = held
        gone = found.gone_reason(time.time(), socket.gethostname(), age)
        stale = found.stale_reason(time.time(), socket.gethostname())
        if gone or (stale and options.break_stale):
            # a lease: a holder proven gone loses its lock to the next command; the flag is for the rest
            verb, why = ("took over", gone) if gone else ("broke", stale)
            if await _break_node(where, found):
                log(f"{verb} the lock of {found.describe()} on {where.name}: {why}")
                await record(op.conns, op.entry(auditlog.ok(f"{verb} the lock of {found.describe()} on "
                                                            f"{where.name} ({why})"), None))
            continue
        if time.monotonic() < deadline:
            await asyncio.sleep(WAIT_POLL)
            continue
        hint = (f"; it is stale by its holder's record ({stale}) but the node's clock does not prove it: break it "
                "with --break-stale-lock if its holder is gone" if stale else "; wait for it with --wait SECONDS")
        raise LockHeld(f"the cluster is locked on {where.name}: {found.describe()}{hint}")


async def _release_all(op: Change) -> None:
    results = await asyncio.gather(*(_release_node(c, op.lock) for c in op.locked), return_exceptions=True)
    op.lock_left_on = [c.name for c, r in zip(op.locked, results) if isinstance(r, BaseException)]
    op.locked = []


async def _renew_forever(op: Change) -> None:
    while True:
        await asyncio.sleep(RENEW_EVERY)
        op.lock = op.lock.renewed_now(time.time())
        await asyncio.gather(*(_renew_node(c, op.lock) for c in op.locked), return_exceptions=True)


def _result_of(exc: BaseException | None) -> str:
    if exc is None:
        return auditlog.ok("")
    if isinstance(exc, asyncio.CancelledError):
        return auditlog.failed("interrupted")
    if isinstance(exc, Refused):
        return auditlog.refused(str(exc))
    return auditlog.failed(str(exc) or type(exc).__name__)


@asynccontextmanager
async def change(conns: list[NodeConnection], total_masters: int, cluster: str, action: str, target: str,
                 options: LockOptions, log: Log, needs: str = "operate") -> AsyncIterator[Change]:
    """Hold the cluster lock for the block, then record what happened (also when it was refused).
    `needs`: the role the login must hold on every master (operate for actions and drills,
    deploy for deploy, rollback and the roles themselves)."""
    op = Change(conns, cluster, action, target, new_lock(cluster, f"{action} {target}".strip()),
                total_masters=total_masters)
    started = time.monotonic()
    try:
        # The login's role first, as the nodes say: a watch login is refused before it writes
        # anything (its refusal reaches the operator's own audit log; the nodes' it cannot write).
        why = roles.lacking(await roles.logins(conns), needs, action.split()[0])
        if why:
            raise Refused(f"{why}; nothing was changed")
        await _acquire(op, total_masters, options, log)
    except (Refused, SshError) as exc:
        await _release_all(op)
        await record(conns, op.entry(_result_of(exc), None))
        raise
    renewer = asyncio.ensure_future(_renew_forever(op))
    ended: BaseException | None = None
    try:
        yield op
    except BaseException as exc:
        ended = exc
        raise
    finally:
        renewer.cancel()
        await _release_all(op)
        result = op.result or _result_of(ended)
        if op.lock_left_on:
            result += f" (lock left on {', '.join(op.lock_left_on)}: unreachable)"
        await record(conns, op.entry(result, op.seconds if op.seconds is not None
                                     else time.monotonic() - started))
