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
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path

from k8s_ha_tui.configs import render
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model.topology import Master, Topology
from k8s_ha_tui.operations import guard
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import auditlog
from k8s_ha_tui.remote.apiserver import NOT_INSTALLED
from k8s_ha_tui.remote.nodefiles import read_files
from k8s_ha_tui.remote.ssh import HostKeyPolicy, NodeConnection, SshError, connect_all
from k8s_ha_tui.remote.vrrp_census import Census, foreign, free_router_id, listen
from k8s_ha_tui.rollouts import backups, cutover
from k8s_ha_tui.rollouts.deploy_node import Options, Rollout, apply_node, results_text, rollout_order
from k8s_ha_tui.rollouts.deploy_steps import (
    DEPLOYED,
    DEPLOYED_OK,
    UNCHANGED,
    DeployError,
    FileChange,
    NodePlan,
    clean_stage,
    configured_after,
    diff_text,
    ensure_packages,
    probe,
    require_root,
    stage,
    validate,
)
from k8s_ha_tui.rollouts.deploy_verify import verify_election

__all__ = ["DeployError", "FileChange", "NodePlan", "Options", "Rollout", "deploy", "rollback", "diff_text"]

Confirm = Callable[[list[NodePlan]], Awaitable[bool]]


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
                                                      options.lock, ctx.log, needs="deploy"))
    try:
        async with lock as op:
            states, census = await asyncio.gather(asyncio.gather(*(probe(c, topo) for c in conns)),
                                                   _hear_segment(conns, topo) if action == "deploy" else _none())
            _refuse_collision(topo, census, ctx.log)
            ctx.fence = op.ensure_held if op is not None else None
            ctx.plans = [NodePlan(c, s) for c, s in zip(conns, states)]
            for p in ctx.plans:
                ctx.log(f"{p.name}: connected; HAProxy {p.state.haproxy_version or '-'}, "
                        f"keepalived {p.state.keepalived_version or '-'}, kube-apiserver {p.state.apiserver}"
                        f"{'; holds the VIP' if p.state.holds_vip else ''}"
                        f"{'; in maintenance' if p.state.maintenance else ''}")
            ctx.bootstrap = all(p.state.apiserver == NOT_INSTALLED for p in ctx.plans)
            if ctx.bootstrap:
                ctx.log("no kube-apiserver on any master yet: a first-time setup. Verifying what can be verified "
                        "before kubeadm init: services, VRRP, HAProxy listening, the VIP accepting connections")
            for p in ctx.plans:
                await ensure_packages(p, topo, options.allow_install, ctx.log)
            refusals = [f"{p.name}: {why}" for p in ctx.plans
                        if (why := render.keepalived_refusal(topo, p.state.keepalived_version))]
            if refusals:
                raise UserError(f"{refusals[0]}; nothing was changed")
            for p, m in zip(ctx.plans, topo.masters):
                p.changes = await desired(p, m)
            await cutover.plan_cutover(ctx)
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


async def _hear_segment(conns: list[NodeConnection], topo: Topology) -> Census:
    """What VRRP routers each master hears for a moment (the census), while the probes run."""
    census = Census()
    await asyncio.gather(*(listen(census, c, m.name, topo.interface_of(m)) for c, m in zip(conns, topo.masters)))
    return census


def _refuse_collision(topo: Topology, census: Census | None, log: Callable[[str], None]) -> None:
    """Another router (not one of these masters: their VIPs are what this deploy changes) already
    on the router id this config uses: deploying would make the two elections interfere."""
    if census is None:
        return
    if census.missing:
        log(f"census: no tcpdump on {', '.join(sorted(census.missing))}: router id collisions were not checked there")
    routers = census.advertisers()
    masters = {m.address for m in topo.masters}
    bad = [a for a in foreign(routers, topo.vrrp.router_id, masters, topo.vip) if a.address not in masters]
    if bad:
        a = bad[0]
        raise UserError(f"{a.describe()} (heard by {', '.join(a.heard_by)}): router id {a.vrid} is taken on this "
                        f"segment; deploying would collide with it; router id {free_router_id(routers, a.vrid)} is "
                        "free (vrrp.router_id in the topology); nothing was changed")


async def _none() -> None:
    return None


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
            if ctx.fence is not None:
                await ctx.fence(p.name)
            await apply_node(ctx, p, stamp, action, protected | {stamp})
            if p.final_keepalived is not None:
                await cutover.second_load(ctx, p)
        for name in ctx.cutover.first if ctx.cutover else ():
            await cutover.release(ctx, by_name[name])
        if ctx.bootstrap and all(configured_after(p.changes, "keepalived") for p in ctx.plans):
            # (a rollback to the time before the first deploy leaves no keepalived to elect)
            holder = await verify_election(ctx.plans, ctx.topo, ctx.options.verify_timeout)
            ctx.log(f"{holder} is the one VRRP MASTER (the top priority): ready for kubeadm init")
    finally:
        for p in ctx.plans:
            if p.release and (p.state.maintenance or p.keep_stopped) and p.result == DEPLOYED_OK:
                how = "keepalived stopped" if p.keep_stopped else "in maintenance"
                undo = (f"maintenance {p.name} off --method stop" if p.keep_stopped else f"maintenance {p.name} off")
                p.note = f"{how}: the cut-over did not finish; `{undo}` once every master runs the new configs"
    if ctx.interrupts.requested:
        raise asyncio.CancelledError


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
