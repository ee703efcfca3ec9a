"""Running the cut-over that clusters/adopt.py plans (masters that would stop hearing each other): deciding
on it from each master's running keepalived, the holder's second load, and letting the others
back into the election."""

from __future__ import annotations

import asyncio

from k8s_ha_tui.clusters import adopt
from k8s_ha_tui.clusters.nodeconfig import keepalived_files
from k8s_ha_tui.model.vrrp_timing import master_down_seconds
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.keepalived import KEEPALIVED_DUMP, running_keepalived
from k8s_ha_tui.remote.nodefiles import read_files
from k8s_ha_tui.remote.ssh import SshError
from k8s_ha_tui.rollouts.deploy_node import Rollout, restore, rollout_order
from k8s_ha_tui.rollouts.deploy_steps import DEPLOYED_OK, INSTALLED, DeployError, FileChange, NodePlan, commit
from k8s_ha_tui.rollouts.deploy_verify import verify
from k8s_ha_tui.status.vrrpview import from_running


async def running_view(p: NodePlan, vip: str):
    if not p.state.active.get("keepalived"):
        return None
    inst = running_keepalived(str((await p.conn.run(KEEPALIVED_DUMP, check=False, timeout=15)).stdout or "")
                              ).instance_for(vip)
    return from_running(inst) if inst is not None else None


async def plan_cutover(ctx: Rollout) -> None:
    """Decide between a rolling deploy and a cut-over; for a cut-over, keep every master but the
    holder out of the election (the maintenance switch where the new config follows it, else a
    stopped keepalived), and give the holder the owner variant when the router id changes. The
    switch and the variant are part of the changes: staged, validated, shown and backed up."""
    vip = ctx.topo.vip
    views = await asyncio.gather(*(running_view(p, vip) for p in ctx.plans))
    running = {p.name: view for p, view in zip(ctx.plans, views)}
    texts = {p.name: next((c.new for c in p.changes if c.path == PATHS.keepalived_conf), None) for p in ctx.plans}
    async def included(p: NodePlan) -> dict[str, str]:
        text = texts[p.name]
        return await keepalived_files(p.conn, PATHS.keepalived_conf, text) if text else {}
    files = dict(zip(texts, await asyncio.gather(*(included(p) for p in ctx.plans))))
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


async def second_load(ctx: Rollout, p: NodePlan) -> None:
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
        await verify(p, ctx.topo, ctx.options.verify_timeout, ctx.bootstrap)
    except BaseException:
        with ctx.interrupts.protected():
            await restore(ctx, p)
        raise
    conf.new, p.final_keepalived = step.new, None


async def release(ctx: Rollout, p: NodePlan) -> None:
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
        await verify(p, ctx.topo, ctx.options.verify_timeout, ctx.bootstrap)
    except (DeployError, SshError) as exc:
        p.result, p.note = INSTALLED, f"back in the election, but: {exc}"
        raise DeployError(f"rollout stopped: {exc}") from None
