"""Is a master right after its files changed? Services active, its HAProxy serving, VRRP settled
(keepalived's own word), the API answering through the VIP — without a break for a while.
`verify_failure` understands the node's answer (pure, unit-tested).

On a first-time setup (no kube-apiserver on any master yet) the API cannot answer; what can be
verified then is the load balancer itself: HAProxy listening on the frontend port, the VIP
accepting connections there, and — once every master is done — exactly one VRRP MASTER, the
master with the top priority (`election_failure`)."""

from __future__ import annotations

import asyncio
import shlex
import time

from k8s_ha_tui.configs.render import instance_name
from k8s_ha_tui.model.topology import Topology, host_port
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.keepalived import KEEPALIVED_DUMP, running_keepalived
from k8s_ha_tui.rollouts.deploy_steps import DeployError, NodePlan


def settle_seconds(topo: Topology) -> float:
    """How long every check must keep passing before a node counts as verified: long enough for
    HAProxy to mark a bad backend down (interval × fall) — right after a reload the old worker
    may still answer for the new one."""
    return topo.check.interval * topo.check.fall + 1.0


# curl's exit codes that mean the connection was accepted: an answer (0), or HAProxy closing it
# during the TLS handshake or before any reply because no apiserver exists yet (35, 52, 56;
# measured in the lab: 35). 7 is refused, 28 no answer in time.
ACCEPTED = {"0", "35", "52", "56"}


def vrrp_script(topo: Topology) -> str:
    """The VRRP state alone: the notify record (the VIP's instance's line, else the last: a
    record written before it kept one per instance), and keepalived's own word (configs without
    our notify script have only that)."""
    f = PATHS.state_file
    return (f"echo VRRP $( (grep -F ' INSTANCE {instance_name(topo)} ' {f} || tail -n 1 {f}) 2>/dev/null "
            f"| tail -n 1 | cut -d' ' -f4); echo @@data; {KEEPALIVED_DUMP}")


def _suffix(i: int) -> str:
    """VIP, VIPCONN, VRRP for the first VIP; VIP6, VIPCONN6, VRRP6 for a dual-stack cluster's IPv6 one."""
    return "6" if i else ""


def verify_script(topo: Topology, bootstrap: bool = False) -> str:
    """What verification asks a node. On a first-time setup the API cannot answer, so instead of
    asking for /readyz (locally and through the VIP: 2 s timeouts for nothing) it asks whether
    HAProxy listens and the VIP accepts a connection. Each VIP is asked (dual stack: both), and
    an IPv6 VIP this node holds must not be `tentative` or `dadfailed` (someone else has it)."""
    fe = topo.frontend_port
    checks = [f"if ss -Hltn 'sport = :{fe}' 2>/dev/null | grep -q .; then echo FRONTEND listening; fi"] \
        if bootstrap else \
        [f"echo LOCAL $(curl -sk --max-time 2 -o /dev/null -w '%{{http_code}}' https://127.0.0.1:{fe}/readyz)"]
    for i, vip in enumerate(topo.vips):
        url = shlex.quote(f"https://{host_port(vip, fe)}/" + ("" if bootstrap else "readyz"))
        checks.append(f"curl -gsk --max-time 2 -o /dev/null {url}; echo VIPCONN{_suffix(i)} $?" if bootstrap else
                      f"echo VIP{_suffix(i)} $(curl -gsk --max-time 2 -o /dev/null -w '%{{http_code}}' {url})")
        if ":" in vip:
            checks.append(f"echo VIPFLAGS $(ip -o addr show | grep -F ' {vip}/' | grep -oE 'tentative|dadfailed')")
    return "; ".join(["echo ACTIVE $(systemctl is-active haproxy) $(systemctl is-active keepalived)", *checks,
                      vrrp_script(topo)])


def _facts(out: str, topo: Topology) -> dict[str, str]:
    """The verify script's answer by its first words; VRRP (VRRP6) from keepalived's own dump if any."""
    head, _, data = out.partition("@@data\n")
    facts = {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in head.splitlines() if " " in line}
    dump = running_keepalived(data)
    for i, vip in enumerate(topo.vips):
        running = dump.instance_for(vip)
        if running is not None and running.state:
            facts[f"VRRP{_suffix(i)}"] = running.state
    return facts


def vrrp_state(out: str, topo: Topology) -> str | None:
    return _facts(out, topo).get("VRRP")


def verify_failure(out: str, topo: Topology, maintenance: bool, keepalived_stopped: bool = False,
                   bootstrap: bool = False) -> str | None:
    """Why the node is not (yet) right, or None. A node in maintenance must be in FAULT (that is
    what maintenance means) and still serve the API through its own HAProxy; one kept out of the
    election by a stopped keepalived (a cut-over to configs without the maintenance switch) must
    have keepalived stopped. `bootstrap`: no apiserver exists anywhere yet, so HAProxy listening
    and the VIP accepting connections stand in for the API answering."""
    facts = _facts(out, topo)
    wanted = ("FAULT",) if maintenance else ("MASTER", "BACKUP")
    services = facts.get("ACTIVE", "?")
    if keepalived_stopped:
        if services.split()[:1] != ["active"] or services.split()[1:] == ["active"]:
            return f"services: haproxy/keepalived are {services}, expected haproxy active, keepalived stopped"
    elif services != "active active":
        return f"services: haproxy/keepalived are {services}"
    if bootstrap:
        if facts.get("FRONTEND") != "listening":
            return f"this node's HAProxy does not listen on the frontend port {topo.frontend_port}"
    elif facts.get("LOCAL") != "200":
        return f"this node's HAProxy does not serve /readyz (HTTP {facts.get('LOCAL', '?')})"
    if keepalived_stopped:
        pass
    elif facts.get("VRRP") not in wanted:
        because = " (it is in maintenance)" if maintenance else ""
        return f"VRRP state is {facts.get('VRRP') or 'unknown'}, expected {' or '.join(wanted)}{because}"
    if topo.vip6 and not keepalived_stopped and facts.get("VRRP6") != facts.get("VRRP"):
        return (f"its IPv6 instance is {facts.get('VRRP6') or 'unknown'} and its IPv4 one {facts.get('VRRP')}: "
                "the two VIPs did not move together")
    if facts.get("VIPFLAGS"):
        return f"an IPv6 VIP here is {facts['VIPFLAGS']}: another host on the segment may have the address"
    for i, vip in enumerate(topo.vips):
        where = host_port(vip, topo.frontend_port)
        if bootstrap:
            if facts.get(f"VIPCONN{_suffix(i)}") not in ACCEPTED:
                return f"the VIP {where} does not accept connections (curl exit {facts.get(f'VIPCONN{_suffix(i)}', '?')})"
        elif facts.get(f"VIP{_suffix(i)}") != "200":
            return f"the API does not answer through the VIP {where} (HTTP {facts.get(f'VIP{_suffix(i)}', '?')})"
    return None


def election_failure(states: dict[str, str | None], topo: Topology, in_maintenance: set[str]) -> str | None:
    """Why the masters' VRRP states (name → MASTER/BACKUP/FAULT/None) are not exactly one MASTER,
    the eligible master with the top priority — or None. Equal top priorities: any one of them."""
    masters = [n for n, s in states.items() if s == "MASTER"]
    if len(masters) != 1:
        return f"{len(masters)} masters in VRRP state MASTER ({', '.join(masters) or 'none'}), expected exactly one"
    eligible = [m for m in topo.masters if m.name not in in_maintenance]
    top = max((topo.priority_of(m) for m in eligible), default=None)
    winners = [m.name for m in eligible if topo.priority_of(m) == top]
    if winners and masters[0] not in winners:
        return f"{masters[0]} is MASTER, expected {' or '.join(winners)} (priority {top})"
    return None


async def verify(plan: NodePlan, topo: Topology, timeout: float, bootstrap: bool = False) -> None:
    """Services active, this node's HAProxy serves /readyz, VRRP settled, the API answers through
    the VIP — all of it without a break for settle_seconds. Polled until the deadline; the last
    failing check is the reason."""
    deadline = time.monotonic() + max(timeout, settle_seconds(topo) + 1)
    passing_since: float | None = None
    while True:
        out = str((await plan.conn.run(verify_script(topo, bootstrap), check=False, timeout=10)).stdout or "")
        reason = verify_failure(out, topo, plan.state.maintenance, plan.keep_stopped, bootstrap)
        if reason is None:
            passing_since = passing_since or time.monotonic()
            if time.monotonic() - passing_since >= settle_seconds(topo):
                return
        else:
            passing_since = None
            if time.monotonic() >= deadline:
                raise DeployError(f"{plan.name}: verification failed after {timeout:g} s: {reason}")
        await asyncio.sleep(0.5)


async def verify_election(plans: list[NodePlan], topo: Topology, timeout: float) -> str:
    """After a first-time setup's rollout: exactly one MASTER, the top priority (a preemption
    takes one master-down interval, so it is polled until the deadline). Returns its name."""
    deadline = time.monotonic() + timeout
    in_maintenance = {p.name for p in plans if p.state.maintenance}
    while True:
        outs = await asyncio.gather(*(p.conn.run(vrrp_script(topo), check=False, timeout=10) for p in plans))
        states = {p.name: vrrp_state(str(o.stdout or ""), topo) for p, o in zip(plans, outs)}
        reason = election_failure(states, topo, in_maintenance)
        if reason is None:
            return next(n for n, s in states.items() if s == "MASTER")
        if time.monotonic() >= deadline:
            raise DeployError(f"every master is deployed, but the election did not settle after {timeout:g} s: {reason}")
        await asyncio.sleep(0.5)
