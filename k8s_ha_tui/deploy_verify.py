"""Is a master right after its files changed? Services active, its HAProxy serving, VRRP settled
(keepalived's own word), the API answering through the VIP — without a break for a while.
`verify_failure` understands the node's answer (pure, unit-tested)."""

from __future__ import annotations

import asyncio
import time

from .collector.keepalived import running_keepalived
from .collector.poll import KEEPALIVED_DUMP
from .deploy_steps import DeployError, NodePlan
from .paths import PATHS
from .topology import Topology


def settle_seconds(topo: Topology) -> float:
    """How long every check must keep passing before a node counts as verified: long enough for
    HAProxy to mark a bad backend down (interval × fall) — right after a reload the old worker
    may still answer for the new one."""
    return topo.check.interval * topo.check.fall + 1.0


def verify_script(topo: Topology) -> str:
    fe = topo.frontend_port
    return "; ".join([
        "echo ACTIVE $(systemctl is-active haproxy) $(systemctl is-active keepalived)",
        f"echo LOCAL $(curl -sk --max-time 2 -o /dev/null -w '%{{http_code}}' https://127.0.0.1:{fe}/readyz)",
        f"echo VRRP $(cut -d' ' -f4 {PATHS.state_file} 2>/dev/null)",
        f"echo VIP $(curl -sk --max-time 2 -o /dev/null -w '%{{http_code}}' https://{topo.vip}:{fe}/readyz)",
        # keepalived's own word on the state: also for configs without our notify script
        f"echo @@data; {KEEPALIVED_DUMP}",
    ])


def verify_failure(out: str, topo: Topology, maintenance: bool, keepalived_stopped: bool = False) -> str | None:
    """Why the node is not (yet) right, or None. A node in maintenance must be in FAULT (that is
    what maintenance means) and still serve the API through its own HAProxy; one kept out of the
    election by a stopped keepalived (a cut-over to configs without the maintenance switch) must
    have keepalived stopped."""
    head, _, data = out.partition("@@data\n")
    facts = {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in head.splitlines() if " " in line}
    running = running_keepalived(data).instance_for(topo.vip)
    if running is not None and running.state:
        facts["VRRP"] = running.state
    wanted = ("FAULT",) if maintenance else ("MASTER", "BACKUP")
    services = facts.get("ACTIVE", "?")
    if keepalived_stopped:
        if services.split()[:1] != ["active"] or services.split()[1:] == ["active"]:
            return f"services: haproxy/keepalived are {services}, expected haproxy active, keepalived stopped"
    elif services != "active active":
        return f"services: haproxy/keepalived are {services}"
    if facts.get("LOCAL") != "200":
        return f"this node's HAProxy does not serve /readyz (HTTP {facts.get('LOCAL', '?')})"
    if keepalived_stopped:
        pass
    elif facts.get("VRRP") not in wanted:
        because = " (it is in maintenance)" if maintenance else ""
        return f"VRRP state is {facts.get('VRRP') or 'unknown'}, expected {' or '.join(wanted)}{because}"
    if facts.get("VIP") != "200":
        return f"the API does not answer through the VIP {topo.vip}:{topo.frontend_port} (HTTP {facts.get('VIP', '?')})"
    return None


async def verify(plan: NodePlan, topo: Topology, timeout: float) -> None:
    """Services active, this node's HAProxy serves /readyz, VRRP settled, the API answers through
    the VIP — all of it without a break for settle_seconds. Polled until the deadline; the last
    failing check is the reason."""
    deadline = time.monotonic() + max(timeout, settle_seconds(topo) + 1)
    passing_since: float | None = None
    while True:
        out = str((await plan.conn.run(verify_script(topo), check=False, timeout=10)).stdout or "")
        reason = verify_failure(out, topo, plan.state.maintenance, plan.keep_stopped)
        if reason is None:
            passing_since = passing_since or time.monotonic()
            if time.monotonic() - passing_since >= settle_seconds(topo):
                return
        else:
            passing_since = None
            if time.monotonic() >= deadline:
                raise DeployError(f"{plan.name}: verification failed after {timeout:g} s: {reason}")
        await asyncio.sleep(0.5)
