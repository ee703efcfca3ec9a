"""Make rendered configs live on every master, the way a careful operator would.

Connect to every master (host keys checked) → take the cluster lock → probe → upload to a
staging folder → validate there with the node's own `keepalived -t` and `haproxy -c` → show the
diff → then node by node: back up → one node-side transaction (every file in place, the daemons
reloaded) → verify. Masters that do not hold the VIP go first, the holder last, each verified
before the next. A node that fails verification, loses its link or is interrupted (Ctrl-C,
SIGTERM) is put back from its backup, and the rollout stops; `Rollout.plans` then says what is
true on every node, for the report.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from . import adopt, auditlog, backups, guard, render
from .collector.keepalived import running_keepalived
from .collector.poll import KEEPALIVED_DUMP
from .collector.ssh import HostKeyPolicy, SshError, connect_all, reconnect
from .deploy_steps import (
    DEPLOYED,
    DEPLOYED_OK,
    INSTALLED,
    INSTALLING,
    RESTORED,
    SERVICE_FILES,
    UNCHANGED,
    DeployError,
    FileChange,
    NodePlan,
    clean_stage,
    commit,
    configured_after,
    diff_text,
    ensure_packages,
    probe,
    read_files,
    require_root,
    stage,
    validate,
    verify,
)
from .interrupts import Interrupts
from .lint import master_down_seconds
from .nodeconfig import keepalived_files
from .paths import PATHS
from .topology import Master, Topology
from .vrrpview import from_running

__all__ = ["DeployError", "FileChange", "NodePlan", "Options", "Rollout", "deploy", "rollback", "diff_text"]

Log = Callable[[str], None]
Confirm = Callable[[list[NodePlan]], Awaitable[bool]]


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
    cutover: adopt.CutOver | None = None  # when the masters would stop hearing each other

    @property
    def hold_between_files(self) -> bool:
        """Tests only: pause the file swap after the first file (see deploy_steps.commit_script)."""
        return os.environ.get("K8S_HA_TUI_TEST_HOLD") == "1"


def rollout_order(plans: list[NodePlan]) -> list[NodePlan]:
    """Masters without the VIP first (in topology order), the holder(s) last."""
    return sorted(plans, key=lambda p: p.state.holds_vip)


def results_text(plans: list[NodePlan]) -> str:
    return "; ".join(f"{p.name} {p.result}" for p in plans)


# --- one node ---------------------------------------------------------------------------------

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


async def _restore(ctx: Rollout, p: NodePlan) -> None:
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
            await verify(p, ctx.topo, ctx.options.verify_timeout)
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
            await verify(p, ctx.topo, ctx.options.verify_timeout)
    except BaseException as exc:  # a failure, a lost link or a signal: put this node back first
        why = "interrupted" if isinstance(exc, asyncio.CancelledError) else str(exc)
        ctx.log(f"{p.name}: {why}; restoring the backup")
        with ctx.interrupts.protected():
            await _restore(ctx, p)
        p.seconds = time.monotonic() - started
        if isinstance(exc, DeployError | SshError):
            raise DeployError(f"rollout stopped: {exc} ({p.name}: {p.result}"
                              f"{'; ' + p.note if p.note else ''})") from None
        raise
    p.result = DEPLOYED_OK
    p.seconds = time.monotonic() - started
    ctx.log(f"{p.name}: verified in {p.seconds:.1f} s")


# --- the rollout ------------------------------------------------------------------------------

async def stage_and_validate(ctx: Rollout, stamp: str) -> None:
    async def one(p: NodePlan) -> None:
        if not p.changed:
            return
        await stage(p, stamp)
        await validate(p)
        ctx.log(f"{p.name}: new files validated on the node ({len(p.changed)} changed)")

    results = await asyncio.gather(*(one(p) for p in ctx.plans), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


Desired = Callable[[NodePlan, Master], Awaitable[list[FileChange]]]


async def _run(ctx: Rollout, action: str, desired: Desired, confirm: Confirm, protected: set[str]) -> None:
    topo, options = ctx.topo, ctx.options
    conns = await connect_all(topo, topo.masters, ctx.policy)
    try:
        await asyncio.gather(*(require_root(c, topo) for c in conns))
    except BaseException:
        for c in conns:
            c.close()
        raise
    lock: AbstractAsyncContextManager = (nullcontext() if options.dry_run else
                                         guard.change(conns, len(topo.masters), topo.name, action, "all masters",
                                                      options.lock, ctx.log))
    try:
        async with lock as op:
            states = await asyncio.gather(*(probe(c, topo) for c in conns))
            ctx.plans = [NodePlan(c, s) for c, s in zip(conns, states)]
            for p in ctx.plans:
                ctx.log(f"{p.name}: connected; HAProxy {p.state.haproxy_version or '-'}, "
                        f"keepalived {p.state.keepalived_version or '-'}"
                        f"{'; holds the VIP' if p.state.holds_vip else ''}"
                        f"{'; in maintenance' if p.state.maintenance else ''}")
            for p in ctx.plans:
                await ensure_packages(p, topo, options.allow_install, ctx.log)
            for p, m in zip(ctx.plans, topo.masters):
                p.changes = await desired(p, m)
            await _plan_cutover(ctx)
            try:
                await _roll(ctx, action, confirm, protected)
            finally:
                if op is not None:
                    op.result = _audit_result(ctx)
    finally:
        with ctx.interrupts.protected():
            await asyncio.gather(*(clean_stage(p) for p in ctx.plans), return_exceptions=True)
        for c in conns:
            c.close()


def _audit_result(ctx: Rollout) -> str | None:
    if not any(p.changed for p in ctx.plans):
        return auditlog.ok("nothing to change")
    if all(p.result in (DEPLOYED_OK, UNCHANGED) for p in ctx.plans) and any(p.result == DEPLOYED_OK
                                                                            for p in ctx.plans):
        return auditlog.ok(results_text(ctx.plans))
    if any(p.result not in (UNCHANGED,) for p in ctx.plans):
        why = "interrupted" if ctx.interrupts.requested else "stopped"
        return auditlog.failed(f"{why}; {results_text(ctx.plans)}")
    return None  # refused or stopped before any change: derived from how it ended


async def _roll(ctx: Rollout, action: str, confirm: Confirm, protected: set[str]) -> None:
    stamp = backups.new_id()
    await stage_and_validate(ctx, stamp)
    if ctx.cutover:
        for line in ctx.cutover.plan_lines():
            ctx.log(line)
    if ctx.options.dry_run or not any(p.changed for p in ctx.plans):
        for p in ctx.plans:
            p.result = "would change" if p.changed else UNCHANGED
        return
    if not await confirm(ctx.plans):
        raise DeployError("nothing was changed (not confirmed)")
    by_name = {p.name: p for p in ctx.plans}
    order = ([by_name[n] for n in (*ctx.cutover.first, ctx.cutover.holder)] if ctx.cutover
             else rollout_order(ctx.plans))
    try:
        for p in order:
            if ctx.interrupts.requested:  # asked to stop while a protected cleanup ran
                raise asyncio.CancelledError
            await apply_node(ctx, p, stamp, action, protected | {stamp})
            if p.final_keepalived is not None:
                await _second_load(ctx, p)
        for name in ctx.cutover.first if ctx.cutover else ():
            await _release(ctx, by_name[name])
    finally:
        for p in ctx.plans:
            if p.release and (p.state.maintenance or p.keep_stopped) and p.result == DEPLOYED_OK:
                how = "keepalived stopped" if p.keep_stopped else "in maintenance"
                undo = (f"maintenance {p.name} off --method stop" if p.keep_stopped else f"maintenance {p.name} off")
                p.note = f"{how}: the cut-over did not finish; `{undo}` once every master runs the new configs"
    if ctx.interrupts.requested:
        raise asyncio.CancelledError


# --- the cut-over (adopt.py): masters that would stop hearing each other ------------------------

async def _running_view(p: NodePlan, vip: str):
    if not p.state.active.get("keepalived"):
        return None
    inst = running_keepalived(str((await p.conn.run(KEEPALIVED_DUMP, check=False, timeout=15)).stdout or "")
                              ).instance_for(vip)
    return from_running(inst) if inst is not None else None


async def _plan_cutover(ctx: Rollout) -> None:
    """Decide between a rolling deploy and a cut-over; for a cut-over, keep every master but the
    holder out of the election (the maintenance switch where the new config follows it, else a
    stopped keepalived), and give the holder the owner variant when the router id changes. The
    switch and the variant are part of the changes: staged, validated, shown and backed up."""
    vip = ctx.topo.vip
    running = {p.name: await _running_view(p, vip) for p in ctx.plans}
    texts = {p.name: next((c.new for c in p.changes if c.path == PATHS.keepalived_conf), None) for p in ctx.plans}
    files = {p.name: await keepalived_files(p.conn, PATHS.keepalived_conf, texts[p.name]) if texts[p.name] else {}
             for p in ctx.plans}
    new = {n: adopt.view_of_text(texts[n], vip, files[n]) for n in texts}
    order = [p.name for p in rollout_order(ctx.plans)]
    cut = adopt.plan(running, new, order, [p.name for p in ctx.plans if p.state.holds_vip])
    ctx.cutover = cut
    if cut is None:
        return
    cut.stopped = {n for n in cut.first if not adopt.follows_maintenance(texts[n], vip, files[n])}
    holder_view = new.get(cut.holder)
    cut.owner_load = adopt.view_of_text(texts[cut.holder], vip) is not None  # the instance is in the main file
    if holder_view is not None and holder_view.advert_int:
        cut.gap_s = master_down_seconds(holder_view.advert_int, holder_view.priority or 100)
    live = await asyncio.gather(*(read_files(p.conn, [PATHS.maintenance_file]) for p in ctx.plans))
    for p, found in zip(ctx.plans, live):
        if p.name in cut.stopped:
            p.keep_stopped, p.release = True, True
        elif p.name in cut.first:
            p.changes.append(FileChange(PATHS.maintenance_file, found[PATHS.maintenance_file], adopt.MAINTENANCE_ON,
                                        0o644))
            p.release = not p.state.maintenance  # it goes back into the election at the end
            p.state.maintenance = True  # verified as FAULT: in the new group, claiming nothing
        elif cut.router_id_changes and cut.owner_load:
            conf = next(c for c in p.changes if c.path == PATHS.keepalived_conf)
            p.final_keepalived, conf.new = conf.new, adopt.owner_variant(conf.new or "")


async def _second_load(ctx: Rollout, p: NodePlan) -> None:
    """The holder, MASTER under the new router id with priority 255: now its own priority (the
    same router id, so keepalived keeps the state). Put back from the backup if it fails."""
    conf = next(c for c in p.changes if c.path == PATHS.keepalived_conf)
    step = FileChange(PATHS.keepalived_conf, conf.new, p.final_keepalived, conf.mode)
    ctx.log(f"{p.name}: now with its own priority (same router id: it stays MASTER)")
    source = f"{p.stage}/final"
    await p.conn.run(f"mkdir -p {source}/etc/keepalived && cat > {source}{PATHS.keepalived_conf}",
                     input=step.new)
    try:
        await commit(p, [step], source, {"keepalived": True})
        await verify(p, ctx.topo, ctx.options.verify_timeout)
    except BaseException:
        with ctx.interrupts.protected():
            await _restore(ctx, p)
        raise
    conf.new, p.final_keepalived = step.new, None


async def _release(ctx: Rollout, p: NodePlan) -> None:
    """Back into the election after a cut-over: maintenance off, or keepalived started; then
    verified as a backup in the new group."""
    if not p.release or p.result != DEPLOYED_OK:
        return
    path = PATHS.maintenance_file
    if p.keep_stopped:
        await p.conn.run("systemctl start keepalived", timeout=30, label="systemctl start keepalived")
        p.keep_stopped = False
        ctx.log(f"{p.name}: keepalived started; verifying it as a backup in the new group")
    else:
        await p.conn.run(f"printf '0\\n' > {path}.k8s-ha-tui-new && mv -f {path}.k8s-ha-tui-new {path}")
        p.state.maintenance = False
        ctx.log(f"{p.name}: maintenance off; verifying it as a backup in the new group")
    try:
        await verify(p, ctx.topo, ctx.options.verify_timeout)
    except (DeployError, SshError) as exc:
        p.result, p.note = INSTALLED, f"back in the election, but: {exc}"
        raise DeployError(f"rollout stopped: {exc}") from None


async def deploy(ctx: Rollout, confirm: Confirm) -> list[NodePlan]:
    topo, options = ctx.topo, ctx.options

    async def desired(plan: NodePlan, master: Master) -> list[FileChange]:
        files = {f.path: f for f in render.render_node(topo, master, plan.state.haproxy_version,
                                                       options.template_dir) if f.path in DEPLOYED}
        live = await read_files(plan.conn, list(files))
        return [FileChange(path, live[path], f.text, f.mode) for path, f in files.items()]

    await _run(ctx, "deploy", desired, confirm, set())
    return ctx.plans


async def rollback(ctx: Rollout, to: str | None, confirm: Confirm) -> list[NodePlan]:
    """Put a backup back the same careful way (validated, itself backed up, rolling, verified)."""
    chosen_ids: set[str] = set()

    async def desired(plan: NodePlan, master: Master) -> list[FileChange]:
        ids = [b.id for b in await backups.list_backups(plan.conn)]
        chosen = to or (ids[-1] if ids else None)
        if chosen is None or chosen not in ids:
            raise DeployError(f"{plan.name}: no backup {to or ''} in {PATHS.backups}".replace("  ", " "))
        chosen_ids.add(chosen)
        base = backups.folder(chosen)
        manifest = (await read_files(plan.conn, [f"{base}/{backups.MANIFEST}"]))[f"{base}/{backups.MANIFEST}"] or ""
        entries = [line.split(" ", 1) for line in manifest.splitlines() if " " in line]
        saved = await read_files(plan.conn, [f"{base}{path}" for kind, path in entries if kind == "present"])
        live = await read_files(plan.conn, [path for _, path in entries])
        modes = {f.path: f.mode for f in render.render_node(ctx.topo, master)}
        ctx.log(f"{plan.name}: restoring backup {chosen}")
        return [FileChange(path, live[path], saved.get(f"{base}{path}") if kind == "present" else None,
                           modes.get(path, 0o644)) for kind, path in entries]

    await _run(ctx, f"rollback to {to or 'latest'}", desired, confirm, chosen_ids)
    return ctx.plans


async def list_all_backups(topo: Topology, policy: HostKeyPolicy) -> dict[str, list[backups.BackupInfo]]:
    """Per reachable master, its backups (oldest first); unreachable ones are left out."""
    async def one(m: Master) -> list[backups.BackupInfo] | None:
        try:
            conn = (await connect_all(topo, [m], policy))[0]
        except SshError:
            return None
        try:
            return await backups.list_backups(conn)
        finally:
            conn.close()
    found = await asyncio.gather(*(one(m) for m in topo.masters))
    return {m.name: b for m, b in zip(topo.masters, found) if b is not None}


def summary_rows(plans: list[NodePlan]) -> list[tuple[str, str, str, str, str]]:
    return [(p.name, p.result + (f" ({p.note})" if p.note else ""),
             (", ".join(Path(c.path).name for c in p.changed) if p.result != UNCHANGED else "") or "-",
             p.backup or "-", f"{p.seconds:.1f} s" if p.seconds else "-") for p in plans]
