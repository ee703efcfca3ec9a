"""One master in a rollout: back it up, swap its files in one node-side transaction, verify it,
and put it back from its backup if anything goes wrong (a failure, a lost link, a signal).
`Rollout` is what a whole deploy or rollback works with and what its report reads."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from k8s_ha_tui.clusters.adopt import CutOver
from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.operations import guard
from k8s_ha_tui.operations.interrupts import Interrupts
from k8s_ha_tui.remote import auditlog
from k8s_ha_tui.remote.ssh import HostKeyPolicy, SshError, reconnect
from k8s_ha_tui.rollouts import backups
from k8s_ha_tui.rollouts.deploy_steps import (
    DEPLOYED_OK,
    INSTALLED,
    INSTALLING,
    RESTORED,
    SERVICE_FILES,
    DeployError,
    FileChange,
    Log,
    NodePlan,
    commit,
    configured_after,
)
from k8s_ha_tui.rollouts.deploy_verify import verify


@dataclass
class Options:
    dry_run: bool = False
    allow_install: bool = True
    verify_timeout: float = 30.0
    template_dir: Path | None = None
    topology_file: str | None = None  # recorded in each backup
    keep_backups: int = backups.KEEP
    lock: guard.LockOptions = field(default_factory=guard.LockOptions)


@dataclass
class Rollout:
    """One deploy or rollback: what it works with, and what is true on every node so far (the
    report, readable whatever way the run ends)."""

    topo: Topology
    policy: HostKeyPolicy
    options: Options
    log: Log
    interrupts: Interrupts = field(default_factory=Interrupts)
    plans: list[NodePlan] = field(default_factory=list)
    lock_note: str = ""
    cutover: CutOver | None = None  # when the masters would stop hearing each other (clusters/adopt.py)
    bootstrap: bool = False  # no kube-apiserver on any master yet: verify the load balancer alone
    # Fencing: raises when the cluster lock is no longer this rollout's (guard.Change.ensure_held)
    fence: Callable[[str], Awaitable[None]] | None = None

    @property
    def hold_between_files(self) -> bool:
        """Tests only: pause the file swap after the first file (see deploy_steps.commit_script)."""
        return os.environ.get("K8S_HA_TUI_TEST_HOLD") == "1"


def rollout_order(plans: list[NodePlan]) -> list[NodePlan]:
    """Masters without the VIP first (in topology order), the holder(s) last."""
    return sorted(plans, key=lambda p: p.state.holds_vip)


def results_text(plans: list[NodePlan]) -> str:
    return "; ".join(f"{p.name} {p.result}" for p in plans)


def _wanted_services(changes: list[FileChange], services: list[str],
                     was_active: dict[str, bool] | None = None) -> dict[str, bool]:
    """Per service touched: run it after the swap (a deploy), or as it was before (a restore)."""
    return {s: (configured_after(changes, s) if was_active is None else was_active.get(s, False)) for s in services}


async def _backup(ctx: Rollout, p: NodePlan, backup_id: str, action: str, protected: set[str]) -> None:
    existing = [b.id for b in await backups.list_backups(p.conn)]
    topo_file = ctx.options.topology_file
    digest = hashlib.sha256(Path(topo_file).read_bytes()).hexdigest() if topo_file else "?"
    info = backups.BackupInfo(backup_id, auditlog.whoami(), action, ctx.topo.name, topo_file or "?", digest,
                              existing[-1] if existing else None)
    prune = backups.to_prune(existing, ctx.options.keep_backups, protected)
    p.backup = await backups.create(p.conn, info, [c.path for c in p.changes if c.old is not None],
                                    [c.path for c in p.changes if c.old is None], prune)


async def restore(ctx: Rollout, p: NodePlan) -> None:
    """Put the node's files back from its backup and its daemons as they were. Waits (on the
    node's transaction lock) for an interrupted swap to finish first; reconnects once if the
    link was lost. What could not be done stays in p.result / p.note."""
    changes = [c.reversed() for c in p.changed]
    wanted = _wanted_services(changes, p.services_touched(), p.state.active)
    for attempt in (1, 2):
        try:
            if attempt == 2:
                await reconnect(p.conn, ctx.topo, ctx.policy)
            await commit(p, changes, p.backup, wanted)
            break
        except SshError as exc:
            if attempt == 2:
                p.note = f"could not restore: {exc}"
                if p.result == INSTALLED:
                    p.result = f"{INSTALLED}; unreachable"
                return
    p.result = RESTORED
    if all(wanted.values()) and all(p.state.active.get(s) for s in SERVICE_FILES):
        try:
            await verify(p, ctx.topo, ctx.options.verify_timeout, ctx.bootstrap)
        except (DeployError, SshError) as exc:
            p.note = f"restored, but it does not verify: {exc}"


async def apply_node(ctx: Rollout, p: NodePlan, backup_id: str, action: str, protected: set[str]) -> None:
    started = time.monotonic()
    if not p.changed:
        ctx.log(f"{p.name}: no change")
        return
    services = p.services_touched()
    await _backup(ctx, p, backup_id, action, protected)
    try:
        p.result = INSTALLING
        wanted = _wanted_services(p.changed, services)
        if p.keep_stopped and "keepalived" in wanted:
            wanted["keepalived"] = False  # a cut-over keeps it out of the election this way
        await commit(p, p.changed, p.stage, wanted, ctx.hold_between_files)
        p.result = INSTALLED
        ctx.log(f"{p.name}: installed {len(p.changed)} file(s), backup in {p.backup}; {', '.join(services)} "
                f"reloaded; verifying{' (in maintenance: expecting FAULT)' if p.state.maintenance else ''}"
                f"{' (keepalived kept stopped)' if p.keep_stopped else ''}")
        if all(configured_after(p.changes, s) for s in SERVICE_FILES):
            await verify(p, ctx.topo, ctx.options.verify_timeout, ctx.bootstrap)
    except BaseException as exc:  # a failure, a lost link or a signal: put this node back first
        why = "interrupted" if isinstance(exc, asyncio.CancelledError) else str(exc)
        ctx.log(f"{p.name}: {why}; restoring the backup")
        with ctx.interrupts.protected():
            await restore(ctx, p)
        p.seconds = time.monotonic() - started
        if isinstance(exc, DeployError | SshError):
            raise DeployError(f"rollout stopped: {exc} ({p.name}: {p.result}"
                              f"{'; ' + p.note if p.note else ''})") from None
        raise
    p.result = DEPLOYED_OK
    p.seconds = time.monotonic() - started
    ctx.log(f"{p.name}: verified in {p.seconds:.1f} s")
