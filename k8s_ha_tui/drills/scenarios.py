"""What each drill does to the cluster, how it is undone, and when the cluster could not survive
it (refused before anything is changed).

Every scenario is planned on a snapshot taken under the cluster lock: `plan` judges the
interlocks (Refused: exit 3) and says in words what will happen and how it is undone; `act`
does it; `effect` says when the cluster shows it; `undo` puts back what `act` changed and is
safe to run twice, or after an `act` that was cut short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from k8s_ha_tui.errors import Refused
from k8s_ha_tui.operations import actions
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import node_ops
from k8s_ha_tui.status.model import ClusterStatus, Health

SCENARIOS = {
    "failover": "the controlled failover: the VIP moves make-before-break to the best backup",
    "holder-keepalived": "keepalived stopped on the VIP holder: VRRP elects another master (break-before-make)",
    "holder-haproxy": "HAProxy stopped on the VIP holder: keepalived's check fails and the VIP moves",
    "apiserver-drain": "one apiserver drained on every HAProxy (the holder's, or --node's), then made ready",
}


@dataclass(frozen=True)
class Plan:
    scenario: str
    target: str  # what it acts on, for the lock, the audit trail and the report
    says: str  # what will happen and how it is undone (the question asked first)
    act: Callable[[actions.ConnFor], Awaitable[object]]
    undo: Callable[[actions.ConnFor], Awaitable[object]]
    effect: Callable[[ClusterStatus], bool]  # the cluster shows what `act` did


def _healthy(snap: ClusterStatus) -> None:
    if snap.health != Health.HEALTHY:
        raise Refused(f"a drill starts from a healthy cluster; {snap.name} is {snap.health.name.lower()}: "
                      + "; ".join(snap.alarms or snap.notices), reason="the cluster is not healthy")


def _another_takes_over(snap: ClusterStatus) -> str:
    """The master VRRP elects when the holder goes (Refused when none could)."""
    _, elected = actions.stop_failover_target(snap, None)
    return elected


async def _systemctl(conn_for: actions.ConnFor, node: str, verb: str, service: str) -> None:
    """A stop still under way on the node when the drill is cut short (deadman, Ctrl-C) ends
    before this returns: an undo that started beside it would find the dying daemon still
    running, do nothing, and leave it stopped."""
    conn = await conn_for(node)
    command = asyncio.ensure_future(node_ops.run(conn, f"service {verb} {service}"))
    try:
        await asyncio.shield(command)
    except asyncio.CancelledError:
        await asyncio.gather(command, return_exceptions=True)
        raise


def _holds(snap: ClusterStatus, nodes: set[str]) -> bool:
    """Every VIP (a dual stack's two) is held, and only by `nodes`."""
    return all(held and set(held) <= nodes for held in (snap.holders, *([snap.holders6] if snap.vip6 else [])))


def plan(snap: ClusterStatus, scenario: str, node: str | None = None) -> Plan:
    """The drill `scenario` on this cluster, every interlock judged (Refused: nothing changed)."""
    if scenario not in SCENARIOS:
        raise Refused(f"unknown drill {scenario!r}; choose {', '.join(SCENARIOS)}")
    _healthy(snap)
    if scenario == "apiserver-drain":
        return _drain(snap, node or snap.holders[0])
    if node is not None:
        raise Refused(f"--node is for apiserver-drain; {scenario} acts on the VIP holder")
    holder = snap.holders[0]
    others = {m.name for m in snap.masters} - {holder}
    if scenario == "failover":
        try:
            _, target = actions.plan_failover(snap, None, "boost")
        except Refused as exc:
            if "does not follow" not in str(exc):
                raise
            raise Refused(f"{str(exc).split(';')[0]}: the failover drill needs this tool's track files; the "
                          "holder-keepalived drill moves the VIP without them (break-before-make)",
                          reason=exc.reason) from None

        async def undo_failover(conn_for: actions.ConnFor) -> None:
            for name, path in ((target, PATHS.boost_file), (holder, PATHS.maintenance_file)):
                await actions.write_flag(await conn_for(name), path, 0)
        return Plan(scenario, f"{holder}->{target}",
                    f"the VIP moves from {holder} to {target} make-before-break ({target}'s priority is raised "
                    f"until it holds the VIP, then {holder} goes into maintenance). Undone by: maintenance off "
                    f"on {holder}; it takes the VIP back if its priority is the highest.",
                    lambda conn_for: actions.failover(snap, conn_for, target), undo_failover,
                    lambda s: _holds(s, {target}))
    if scenario == "holder-keepalived":
        elected = _another_takes_over(snap)
        return _stop_on_holder(scenario, holder, "keepalived", others,
                               f"keepalived is STOPPED on {holder}, the VIP holder (its last advert has priority 0); "
                               f"VRRP elects {elected}: a short gap (break-before-make).")
    m = snap.master(holder)
    assert m is not None  # holders are masters
    if m.check not in ("GOOD", "BAD"):
        raise Refused(f"{holder}'s keepalived tracks no check script: with HAProxy stopped it would keep the VIP "
                      "and the API would be down until the deadman stops the drill",
                      reason=f"{holder} has no check script")
    elected = _another_takes_over(snap)
    return _stop_on_holder(scenario, holder, "haproxy", others,
                           f"HAProxy is STOPPED on {holder}, the VIP holder; keepalived's check fails there and the "
                           f"VIP moves to {elected} (requests through {holder} fail until then).")


def _stop_on_holder(scenario: str, holder: str, service: str, others: set[str], says: str) -> Plan:
    """A daemon stopped on the VIP holder; in effect once the VIP is on another master."""
    return Plan(scenario, holder, f"{says} Undone by: `systemctl start {service}` on {holder}.",
                lambda conn_for: _systemctl(conn_for, holder, "stop", service),
                lambda conn_for: _systemctl(conn_for, holder, "start", service),
                lambda s: _holds(s, others))


def _drain(snap: ClusterStatus, node: str) -> Plan:
    actions.check_backend(snap, node, "drain")

    def drained(s: ClusterStatus) -> bool:
        seen = [b for m in s.masters if m.reachable for b in m.backends_of(node)]
        return bool(seen) and all(b.status == "DRAIN" for b in seen)
    return Plan("apiserver-drain", node,
                f"{node}'s apiserver is DRAINED on every master's HAProxy (no new connections go to it; the other "
                f"apiservers take them). Undone by: set it ready again on every HAProxy.",
                lambda conn_for: actions.backend(snap, conn_for, node, "drain"),
                lambda conn_for: actions.backend(snap, conn_for, node, "ready"),
                drained)


def not_as_found(before: ClusterStatus, now: ClusterStatus) -> list[str]:
    """What differs from how the drill found the cluster: daemons, maintenance, backends, health."""
    out = []
    for b in before.masters:
        m = now.master(b.name)
        if m is None or not m.reachable:
            out.append(f"{b.name} unreachable")
            continue
        for svc in ("keepalived", "haproxy"):
            if getattr(m, svc) != getattr(b, svc):
                out.append(f"{svc} {getattr(m, svc)} on {m.name}")
        if m.maintenance and not b.maintenance:
            out.append(f"{m.name} in maintenance")
        if m.boost and not b.boost:
            out.append(f"{m.name} priority boost {m.boost}")
        out += [f"{b2.backend}/{b2.server} {b2.status} on {m.name}" for b2 in m.backends
                if b2.master is not None and not b2.status.startswith("UP")
                and any(x.backend == b2.backend and x.server == b2.server and x.status.startswith("UP") for x in b.backends)]
    if now.health != Health.HEALTHY and not out:
        out.append(f"cluster {now.health.name.lower()}: {'; '.join(now.alarms)}")
    return out
