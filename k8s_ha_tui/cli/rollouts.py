"""deploy and rollback: the careful rollout, its confirmation and its report; the backup list."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from k8s_ha_tui.cli.common import Parents, bounded, go_ahead, lock_options, print_table
from k8s_ha_tui.errors import UserError


def _confirm_rollout(args: argparse.Namespace, what: str):
    """Ask before changing live nodes, unless --yes; never guess when nobody can answer."""
    async def confirm(plans) -> bool:
        from k8s_ha_tui.rollouts.deploy import rollout_order

        order = " → ".join(p.name for p in rollout_order(plans) if p.changed)
        print(f"\nPlan: {what} {order} (one at a time, each verified before the next; "
              "the VIP holder last)")
        return await go_ahead(args.yes, "deploy")
    return confirm


def _print_summary(plans) -> None:
    from k8s_ha_tui.rollouts.deploy import summary_rows

    print()
    print_table(("node", "result", "changed", "backup", "time"), summary_rows(plans))


def _next_steps(ctx, template_dir: Path | None, topology_file: str) -> str:
    """kubeadm's config and commands for a first-time setup, for the first master's kubeadm."""
    from k8s_ha_tui.configs import kubeadm_steps, render

    found = ctx.plans[0].state.kubeadm_version if ctx.plans else None
    api = kubeadm_steps.api_for(found) or kubeadm_steps.DEFAULT_API
    config = render.render_kubeadm_config(ctx.topo, api, template_dir)
    return kubeadm_steps.next_steps(ctx.topo, config, api, found, shlex.quote(topology_file))


def _rollout(args: argparse.Namespace, what: str, run) -> int:
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.operations.interrupts import Interrupted
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.rollouts import deploy as d

    topo = topology.load_topology(args.topology)
    policy = policy_for(topo, args.accept_new_host_keys)
    options = d.Options(dry_run=args.dry_run, allow_install=not args.no_install,
                        verify_timeout=args.verify_timeout,
                        template_dir=Path(args.templates) if getattr(args, "templates", None) else None,
                        topology_file=args.topology, keep_backups=args.keep_backups, lock=lock_options(args))
    ctx = d.Rollout(topo, policy, options, lambda line: print(line, flush=True))
    try:
        plans = ctx.interrupts.run(lambda: run(d, ctx, _confirm_rollout(args, what)))
    except Interrupted as exc:
        if ctx.plans:
            _print_summary(ctx.plans)
        if exc.abandoned:
            raise UserError("interrupted twice: cleanup abandoned. A node marked 'unreachable, state unknown' "
                            "may hold the new files (its swap finishes on the node by itself); a copy of the cluster "
                            "lock may be left behind (the next command takes it over: this process is gone)",
                            code=130) from None
        raise UserError("interrupted: the rollout stopped; every node is as the table says", code=130) from None
    except UserError:
        if ctx.plans and any(p.result != "unchanged" for p in ctx.plans):
            _print_summary(ctx.plans)
        raise
    for entry in policy.recorded:
        print(f"recorded new host key: {entry}")
    if args.dry_run:
        for p in plans:
            text = d.diff_text(p)
            print(text if text else f"{p.name}: no change")
        order = " → ".join(p.name for p in d.rollout_order(plans) if p.changed)
        print(f"Plan (dry run): {what} {order or 'no node: nothing to change'}")
    _print_summary(plans)
    if ctx.bootstrap and run is _deploy:
        if args.dry_run:
            print("\nNo kube-apiserver on any master yet (a first-time setup): deploy will verify the load "
                  "balancer alone, then print the kubeadm commands to run next.")
        else:
            print("\n" + _next_steps(ctx, options.template_dir, args.topology))
    return 0


def _deploy(d, ctx, confirm):
    return d.deploy(ctx, confirm)


def cmd_deploy(args: argparse.Namespace) -> int:
    return _rollout(args, "deploy to", _deploy)


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.list:
        return _list_backups(args)
    return _rollout(args, f"restore backup {args.to or '(latest)'} on",
                    lambda d, ctx, confirm: d.rollback(ctx, args.to, confirm))


def _list_backups(args: argparse.Namespace) -> int:
    import asyncio

    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.rollouts import deploy as d

    topo = topology.load_topology(args.topology)
    found = asyncio.run(d.list_all_backups(topo, policy_for(topo, args.accept_new_host_keys)))
    if not found:
        raise UserError("no master could be reached", code=1)
    by_id: dict = {}
    for node, infos in found.items():
        for info in infos:
            by_id.setdefault(info.id, (info, []))[1].append(node)
    rows = [(i.id, i.who, i.action, i.topology, i.previous or "-", ", ".join(nodes))
            for i, nodes in (by_id[k] for k in sorted(by_id))]
    if rows:
        print_table(("backup", "made by", "for", "topology", "previous", "on"), rows)
    missing = [m.name for m in topo.masters if m.name not in found]
    if missing:
        print(f"unreachable, not listed: {', '.join(missing)}")
    if not rows:
        print("no backups yet (deploy makes one on every master it changes)")
    return 0


def rollout_arguments(p: argparse.ArgumentParser) -> None:
    from k8s_ha_tui.rollouts.backups import KEEP, KEEP_RANGE

    p.add_argument("--keep-backups", type=bounded(int, *KEEP_RANGE), default=KEEP, metavar="N",
                   help=f"backups kept per master, oldest pruned first; the one made now and the one restored are "
                        f"never pruned ({KEEP_RANGE[0]}–{KEEP_RANGE[1]}, default: %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="validate on the nodes and show the diff; change nothing")
    p.add_argument("--accept-new-host-keys", action="store_true",
                   help="trust and record host keys not yet in known_hosts (never changed ones)")
    p.add_argument("--no-install", action="store_true", help="never apt-get install missing packages")
    p.add_argument("--verify-timeout", type=bounded(float, 1, 600, " seconds"), default=30.0, metavar="SECONDS",
                   help="how long a node may take to verify, 1-600 (default: %(default)s)")


def add_parsers(sub, p: Parents) -> None:
    de = sub.add_parser("deploy", parents=[p.topology, p.lock],
                        help="make the rendered configs live on every master over SSH",
                        description="Validate on each node, back up, install atomically, reload and verify, "
                                    "one master at a time, the VIP holder last; roll back a node that fails.")
    rollout_arguments(de)
    de.add_argument("--templates", metavar="DIR", help="render from these templates instead of the packaged ones")
    de.set_defaults(func=cmd_deploy)

    rb = sub.add_parser("rollback", parents=[p.topology, p.lock],
                        help="restore a deploy backup on every master, the same careful way")
    rollout_arguments(rb)
    rb.add_argument("--to", metavar="BACKUP", help="the backup to restore (default: the latest; see --list)")
    rb.add_argument("--list", action="store_true", help="list every master's backups: who made them, for what, "
                                                        "from which topology, and the one before; change nothing")
    rb.set_defaults(func=cmd_rollback)
