"""Immutable snapshots of the cluster: what every front end (TUI, `status --json`, tests) reads.

The collector builds them; nothing else does I/O. Derived facts (who holds the VIP, split
brain, alarms, health) are computed here, once, so every front end agrees.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import IntEnum

from k8s_ha_tui.model.topology import host_port
from k8s_ha_tui.remote.apiserver import NOT_INSTALLED, UNKNOWN, UP
from k8s_ha_tui.remote.auditlog import AuditEntry
from k8s_ha_tui.remote.keepalived import RunningInstance
from k8s_ha_tui.remote.lockfile import LockInfo
from k8s_ha_tui.remote.vrrp_census import Advertiser, foreign, free_router_id


class Health(IntEnum):
    """Also the exit code of `status`."""

    HEALTHY = 0
    DEGRADED = 1
    CRITICAL = 2


@dataclass(frozen=True)
class BackendServer:
    """One apiserver as one node's HAProxy sees it (a row of `show stat`)."""

    backend: str
    server: str
    status: str  # UP, DOWN, MAINT, DRAIN, NOLB, "UP 1/2", ...
    check_status: str  # L7OK, L4CON, L4TOUT, ...
    check_duration_ms: int | None
    last_change_s: int | None
    address: str = ""  # ADDR:PORT it sends to (show stat's addr)
    master: str | None = None  # the master at that address and the apiserver port; None: none of ours
    check_failures: int | None = None  # show stat's chkfail

    @property
    def up(self) -> bool:
        return self.status.startswith("UP") or self.status == "DRAIN"


@dataclass(frozen=True)
class NodeStatus:
    """What every node's snapshot says: who, and whether we reach it (or since when not)."""

    name: str
    address: str
    reachable: bool
    unreachable_since: float | None = None
    error: str | None = None
    api_via_vip: bool | None = None  # the API through the VIP, asked from this node
    api_via_vip6: bool | None = None  # a dual-stack cluster's: the API through its IPv6 VIP (vip6)


@dataclass(frozen=True)
class MasterStatus(NodeStatus):
    keepalived: str = "unknown"  # active / inactive / failed / unknown
    haproxy: str = "unknown"
    vrrp_state: str = "UNKNOWN"
    base_priority: int | None = None
    effective_priority: int | None = None
    check: str = "unknown"  # GOOD / BAD / unknown: keepalived's view of the HAProxy check
    holds_vip: bool = False
    maintenance: bool = False
    boost: int = 0
    apiserver: str = UNKNOWN  # its own kube-apiserver: up / down / not installed (apiserver.py)
    backends: tuple[BackendServer, ...] = ()
    last_transition: float | None = None
    lock: LockInfo | None = None  # the cluster lock as this master has it
    hears: str | None = None  # a BACKUP's: the address of the master whose adverts it hears
    reload_pending: tuple[str, ...] = ()  # what the files on disk would change if the daemons reloaded
    topology_priority: int | None = None  # the priority the topology gives it (a hand edit may differ)
    audit: tuple[AuditEntry, ...] = ()  # its newest audit entries
    login_role: str | None = None  # what the tool's login may do there (remote/roles.py), None: unknown
    # What its RUNNING keepalived follows (None: unknown, keepalived is not running): whether the
    # maintenance switch and the priority boost that actions write can work on this node.
    tracks_maintenance: bool | None = None
    tracks_boost: bool | None = None
    # For metrics: every VRRP instance the running keepalived has, its counters (instance →
    # (counter, value)...; only when the collector asks for them), each HAProxy backend's
    # active servers.
    instances: tuple[RunningInstance, ...] = ()
    vrrp_stats: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    proxies: tuple[tuple[str, int], ...] = ()
    # When the collector last had word of this master (its probe was asked; for the VIP, also an
    # address event), and since when it holds the VIP / is MASTER as far as it saw that begin
    # (None: so when first seen). Operator's clock. See current_claims.
    seen_at: float | None = None
    vip_seen_at: float | None = None
    vip_since: float | None = None
    master_since: float | None = None
    # A dual-stack cluster's second VIP (vip6) and its instance, judged alike (None: no vip6).
    holds_vip6: bool = False
    vrrp_state6: str | None = None
    vip6_seen_at: float | None = None
    vip6_since: float | None = None
    master6_since: float | None = None

    def backends_of(self, master: str) -> list[BackendServer]:
        """This HAProxy's servers that send to `master`'s apiserver, whatever they are called."""
        return [b for b in self.backends if b.master == master]

    @property
    def eligible(self) -> bool:
        """Could take the VIP now: reachable, healthy, out of maintenance."""
        return (self.reachable and not self.maintenance and self.vrrp_state in ("MASTER", "BACKUP")
                and self.check != "BAD" and self.haproxy == "active" and self.keepalived == "active")


def current_claims(claims: list[tuple[str, float | None, float | None]]) -> list[str]:
    """The names of the claims (name, since, seen) that count: a word older than another claim's
    beginning does not count until it is heard again. A holder that drops off the network looks
    like it holds until its silence marks it unreachable (2.5 s), while its successor's claim is
    newer; two dumps taken 0.1 s apart during a preemption both say MASTER (bench/soak.py). A live
    split brain counts again with the next answer, which a new claim asks for at once. None: no
    such time (a claim held when first seen has no beginning; an old record, no word time)."""
    out = []
    for name, _since, seen in claims:
        newest = max((since for other, since, _ in claims if other != name and since is not None), default=None)
        if newest is None or seen is None or seen >= newest:
            out.append(name)
    return out


@dataclass(frozen=True)
class WorkerStatus(NodeStatus):
    """A worker: what it adds is its view of the API through the VIP (NodeStatus.api_via_vip)."""


@dataclass(frozen=True)
class ClusterStatus:
    name: str
    vip: str
    frontend_port: int
    taken_at: float
    masters: tuple[MasterStatus, ...]
    workers: tuple[WorkerStatus, ...] = ()
    alarms_extra: tuple[str, ...] = field(default=())
    router_id: int | None = None  # the cluster's virtual router id (its topology's)
    segment: tuple[Advertiser, ...] = ()  # every VRRP router the masters heard (remote/vrrp_census)
    census_missing: tuple[str, ...] = ()  # masters where the census cannot listen (no tcpdump)
    vip6: str | None = None  # a dual-stack cluster's IPv6 VIP (an IPv6-only cluster's is `vip`)

    @property
    def vips(self) -> list[str]:
        """The VIP, and a dual stack's vip6."""
        return [self.vip, *([self.vip6] if self.vip6 else [])]

    @property
    def foreign_routers(self) -> list[Advertiser]:
        """Routers on this cluster's router id that are not its masters, or advertise other VIPs."""
        if self.router_id is None:
            return []
        return foreign(self.segment, self.router_id, {m.address for m in self.masters}, self.vip)

    @property
    def free_router_id(self) -> int | None:
        return free_router_id(self.segment, self.router_id) if self.router_id is not None else None

    @property
    def viewer_role(self) -> str | None:
        """The weakest role the tool's login holds on the masters that answered (None: unknown):
        what the actions may do from here."""
        held = [m.login_role for m in self.masters if m.reachable and m.login_role]
        return min(held, key=("none", "watch", "operate", "deploy").index) if held else None

    @property
    def holders(self) -> list[str]:
        """Masters whose interface carries the VIP (the kernel's word, not keepalived's), but for
        those whose word is older than another holder's beginning (current_claims)."""
        return current_claims([(m.name, m.vip_since, m.vip_seen_at) for m in self.masters
                               if m.reachable and m.holds_vip])

    @property
    def claimants(self) -> list[str]:
        """Masters whose keepalived says MASTER (by the same rule)."""
        return current_claims([(m.name, m.master_since, m.seen_at) for m in self.masters
                               if m.reachable and m.vrrp_state == "MASTER"])

    @property
    def holders6(self) -> list[str]:
        """A dual-stack cluster's holders of vip6, by the same rule (empty without vip6)."""
        return current_claims([(m.name, m.vip6_since, m.vip6_seen_at) for m in self.masters
                               if m.reachable and m.holds_vip6])

    @property
    def claimants6(self) -> list[str]:
        return current_claims([(m.name, m.master6_since, m.seen_at) for m in self.masters
                               if m.reachable and m.vrrp_state6 == "MASTER"])

    @property
    def unconfirmed(self) -> list[str]:
        """Reachable masters that hold a VIP or say MASTER by a word older than another's claim:
        not counted until they answer again (or fall silent)."""
        holders, claimants, holders6, claimants6 = self.holders, self.claimants, self.holders6, self.claimants6
        return [m.name for m in self.masters if m.reachable and (
            (m.holds_vip and m.name not in holders) or (m.vrrp_state == "MASTER" and m.name not in claimants)
            or (m.holds_vip6 and m.name not in holders6) or (m.vrrp_state6 == "MASTER" and m.name not in claimants6))]

    @property
    def split_families(self) -> list[str]:
        """The VIPs that two or more masters hold or claim: 'the VIP', 'VIP6 ADDR' (dual stack)."""
        out = ["the VIP"] if len(self.holders) > 1 or len(self.claimants) > 1 else []
        if self.vip6 and (len(self.holders6) > 1 or len(self.claimants6) > 1):
            out.append(f"VIP6 {self.vip6}")
        return out

    @property
    def split_brain(self) -> bool:
        return bool(self.split_families)

    @property
    def no_holder(self) -> bool:
        """No reachable master holds the VIP, or (dual stack) vip6."""
        return not self.holders or (self.vip6 is not None and not self.holders6)

    @property
    def vips_apart(self) -> bool:
        """Dual stack: each VIP has one holder, but not the same one. The sync group should hold
        them together (its two instances share one state): a client's family decides which
        HAProxy it reaches, and a maintenance or failover moves only half."""
        holders, holders6 = self.holders, self.holders6
        return self.vip6 is not None and len(holders) == 1 and len(holders6) == 1 and holders != holders6

    @property
    def unreachable(self) -> list[str]:
        return [n.name for n in (*self.masters, *self.workers) if not n.reachable]

    @property
    def backends_down(self) -> list[str]:
        """'node→master' for every apiserver a reachable node's HAProxy sees as not up (servers
        that point at none of the masters are not the apiserver's: doctor reports those)."""
        absent = set(self.not_installed)
        return [f"{m.name}→{b.master}" for m in self.masters if m.reachable for b in m.backends
                if b.master is not None and b.master not in absent and not b.up]

    @property
    def not_installed(self) -> list[str]:
        """Reachable masters with no kube-apiserver at all yet (kubeadm has not run there)."""
        return [m.name for m in self.masters if m.reachable and m.apiserver == NOT_INSTALLED]

    @property
    def bootstrap(self) -> bool:
        """A first-time setup: no master has a kube-apiserver yet (`kubeadm init` has not run).
        The load balancer can be complete and right; the API cannot answer yet, and that is no
        outage. Masters whose answer is unknown do not count either way."""
        known = [m for m in self.masters if m.reachable and m.apiserver != UNKNOWN]
        return bool(known) and all(m.apiserver == NOT_INSTALLED for m in known)

    @property
    def api_starting(self) -> bool:
        """The API is not through the VIP yet only because HAProxy is still admitting apiservers
        that just started (after `kubeadm init`): none is up in any HAProxy, and the ones that
        answer on their masters are rising there ('DOWN 1/2'). Not an outage: seconds."""
        if self.bootstrap or not self.api_down:
            return False
        answering = {m.name for m in self.masters if m.reachable and m.apiserver == UP}
        seen = [b for m in self.masters if m.reachable for b in m.backends if b.master in answering]
        return bool(seen) and not any(b.up for b in seen) and any("/" in b.status for b in seen)

    @property
    def notices(self) -> list[str]:
        """Calm lines: where a setup stands and the next step (never an alarm)."""
        endpoint = host_port(self.vip, self.frontend_port)
        if self.bootstrap:
            first = self.masters[0].name
            return [f"first-time setup: no kube-apiserver on any master yet; the load balancer is ready "
                    f"at {endpoint}. Next: kubeadm init on {first} (deploy prints the exact commands)"]
        starting = ([f"the API is starting: HAProxy admits the apiserver on "
                     f"{', '.join(m.name for m in self.masters if m.apiserver == UP)} after its checks rise"]
                    if self.api_starting else [])
        if self.census_missing:
            starting.append(f"the segment census cannot listen on {', '.join(self.census_missing)} (no tcpdump, "
                            "no right to capture: root or CAP_NET_RAW, or it stopped): VRRP routers are not heard there")
        if self.not_installed:
            up = sum(m.apiserver == UP for m in self.masters)
            return [*starting, f"{up} of {len(self.masters)} apiservers up; not installed yet on "
                    f"{', '.join(self.not_installed)}: kubeadm join {endpoint} --control-plane there"]
        return starting

    @property
    def impaired(self) -> list[str]:
        """Reachable masters that could not take the VIP for a reason nobody chose: a service
        stopped, or VRRP in FAULT outside maintenance (its HAProxy check fails)."""
        out = []
        for m in self.masters:
            if not m.reachable:
                continue
            stopped = [f"{svc} {state}" for svc, state in (("keepalived", m.keepalived), ("haproxy", m.haproxy))
                       if state in ("inactive", "failed")]
            if m.vrrp_state == "FAULT" and not m.maintenance:
                stopped.append("VRRP FAULT")
            if stopped:
                out.append(f"{m.name}: {', '.join(stopped)}")
        return out

    @property
    def priority_ties(self) -> list[list[MasterStatus]]:
        """Running masters whose keepalived runs the same base priority (a hand edit, say): VRRP
        then gives the VIP to the higher address, which nobody chose."""
        running = [m for m in self.masters if m.reachable and m.keepalived == "active" and m.base_priority is not None]
        prios = [m.base_priority for m in running]
        return [[m for m in running if m.base_priority == p] for p in dict.fromkeys(prios) if prios.count(p) > 1]

    @property
    def reload_pending(self) -> list[str]:
        """Reachable masters whose config files differ from what their daemons run."""
        return [m.name for m in self.masters if m.reachable and m.reload_pending]

    @property
    def api_down(self) -> bool:
        """Nobody who could ask got an answer through the VIP."""
        answers = [n.api_via_vip for n in (*self.masters, *self.workers) if n.reachable and n.api_via_vip is not None]
        return bool(answers) and not any(answers)

    @property
    def api6_down(self) -> bool:
        """Dual stack: nobody who could ask got an answer through vip6."""
        answers = [n.api_via_vip6 for n in (*self.masters, *self.workers) if n.reachable and n.api_via_vip6 is not None]
        return bool(answers) and not any(answers)

    @property
    def outage(self) -> list[str]:
        """The endpoints ('VIP:port') through which nobody reached the API, but while that is no
        outage (a first-time setup, an API starting)."""
        if self.bootstrap or self.api_starting:
            return []
        return ([host_port(self.vip, self.frontend_port)] if self.api_down else []) + (
            [host_port(self.vip6, self.frontend_port)] if self.vip6 and self.api6_down else [])

    @property
    def alarms(self) -> list[str]:
        out = []
        for a in self.foreign_routers:
            out.append(f"ROUTER ID COLLISION: {a.address} advertises router id {a.vrid} (this cluster's) with "
                       f"VIP {', '.join(a.vips) or 'none'}, priority {a.priority}")
        for what in self.split_families:
            six = what != "the VIP"
            names = {*self.holders6, *self.claimants6} if six else {*self.holders, *self.claimants}
            out.append(f"SPLIT BRAIN: {', '.join(sorted(names))} hold or claim {what}")
        lost = [m.name for m in self.masters if not m.reachable]
        for what, held in (("the VIP", self.holders), *([(f"VIP6 {self.vip6}", self.holders6)] if self.vip6 else [])):
            if not held:
                out.append(f"NO HOLDER: no reachable master holds {what} ({', '.join(lost)} unreachable)" if lost
                           else f"NO HOLDER: no master holds {what}")
        if self.vips_apart:
            out.append(f"VIPS APART: {self.holders[0]} holds {self.vip}, {self.holders6[0]} holds {self.vip6} "
                       "(the sync group should keep them on one master)")
        out += [f"API DOWN through the VIP {endpoint}" for endpoint in self.outage]
        if self.unreachable:
            out.append(f"unreachable: {', '.join(self.unreachable)}")
        out += self.impaired
        if self.backends_down:
            out.append(f"backends down: {', '.join(self.backends_down)}")
        out += [f"{m.name} in maintenance" for m in self.masters if m.maintenance]
        out += [f"priority tie: {', '.join(m.name for m in tie)} all run {tie[0].base_priority}"
                for tie in self.priority_ties]
        out += [f"{name}: config on disk differs from what runs (a reload is pending)" for name in self.reload_pending]
        out += list(self.alarms_extra)
        return out

    @property
    def health(self) -> Health:
        if self.foreign_routers or self.split_brain or self.no_holder or self.outage:
            return Health.CRITICAL
        if (self.vips_apart or self.bootstrap or self.not_installed or self.unreachable or self.impaired
                or self.backends_down or any(m.maintenance for m in self.masters) or self.priority_ties
                or self.reload_pending):
            return Health.DEGRADED
        return Health.HEALTHY

    @property
    def lock(self) -> LockInfo | None:
        """The cluster lock, if any master has one (the most recently renewed)."""
        locks = [m.lock for m in self.masters if m.reachable and m.lock is not None]
        return max(locks, key=lambda lk: lk.renewed) if locks else None

    @property
    def recent_audit(self) -> list[AuditEntry]:
        """Every master's newest audit entries, merged (each entry is on every master), oldest first;
        within a second in the order they were written (a set's order differs between processes)."""
        order: dict[AuditEntry, int] = {}
        for e in (e for m in self.masters if m.reachable for e in m.audit):
            order.setdefault(e, len(order))
        return sorted(order, key=lambda e: (e.when, order[e]))

    def master(self, name: str) -> MasterStatus | None:
        return next((m for m in self.masters if m.name == name), None)

    def as_dict(self) -> dict:
        """The `status --json` document, but its diagnosis (diagnosis.document adds it)."""
        return {
            "name": self.name,
            "vip": self.vip,
            "taken_at": self.taken_at,
            "health": self.health.name.lower(),
            "holders": self.holders,
            "vip6": self.vip6,
            "holders6": self.holders6,
            "vips_apart": self.vips_apart,
            "unconfirmed": self.unconfirmed,
            "split_brain": self.split_brain,
            "alarms": self.alarms,
            "bootstrap": self.bootstrap,
            "notices": self.notices,
            "lock": None if self.lock is None else {k: v for k, v in asdict(self.lock).items() if k != "token"},
            "nodes": [{**{k: v for k, v in asdict(m).items() if k not in ("lock", "audit", "instances", "vrrp_stats",
                                                                          "proxies")}, "role": "master",
                       "backends": [asdict(b) for b in m.backends]} for m in self.masters],
            "recent_audit": [asdict(e) for e in self.recent_audit],
            "router_id": self.router_id,
            "segment": [{**asdict(a), "ours": a not in self.foreign_routers and a.vrid == self.router_id}
                        for a in self.segment],
            "census_missing": list(self.census_missing),
            "workers": [{**asdict(w), "role": "worker"} for w in self.workers],
        }
