"""From a snapshot to a diagnosis: for each thing wrong, the node, the cause in an operator's
words, the evidence it rests on, and the next step. Pure rules on one ClusterStatus (tested on
recorded node answers and against every fault the lab injects), so `status`, `status --json`
and the monitor say the same thing.

The evidence is what the daemons themselves report: HAProxy's check codes from every node,
keepalived's states and whom each BACKUP hears ("Master router" in its DATA dump), systemd's
word for each service, curl's answer from the apiserver's own /readyz, SSH reachability, the
files on disk against what runs, and the audit trail.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from k8s_ha_tui.model.topology import host_port
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.apiserver import DOWN, FAILING, HUNG, NOT_INSTALLED, NOT_READY, NOT_RUNNING, UP
from k8s_ha_tui.status.model import ClusterStatus, MasterStatus

CLUSTER = "cluster"  # the node of a diagnosis about the cluster as a whole


@dataclass(frozen=True)
class Diagnosis:
    node: str  # the node it is about, or CLUSTER
    code: str  # stable, for scripts and alerts: split-brain, cut-off, apiserver-hung, ...
    cause: str
    evidence: tuple[str, ...]
    next: str  # the next step: this tool's command or key, or what to run on the node
    severity: str = "critical"  # critical | warning
    # A remedy this tool can run, as (action, node, argument): ("maintenance", NODE, "on") or
    # ("restart", NODE, SERVICE); the front ends turn it into an action behind its interlocks.
    remedy: tuple[str, str, str] | None = None

    def line(self) -> str:
        where = "" if self.node == CLUSTER else f"{self.node}: "
        return f"{where}{self.cause} — {self.next}"

    def as_dict(self) -> dict:
        return {"node": self.node, "code": self.code, "cause": self.cause, "evidence": list(self.evidence),
                "next": self.next, "severity": self.severity,
                "remedy": None if self.remedy is None else " ".join(self.remedy)}


def document(snap: ClusterStatus) -> dict:
    """The `status --json` document: the snapshot and its diagnosis."""
    return {**snap.as_dict(), "diagnosis": [d.as_dict() for d in diagnose(snap)]}


def diagnose(snap: ClusterStatus) -> list[Diagnosis]:
    """Every diagnosis, the worst first: the VIP, then the nodes, then the apiservers."""
    out = _collision(snap) + _split_brain(snap) + _no_holder(snap) + _no_holder6(snap) + _apart(snap) + _api_down(snap)
    for m in snap.masters:
        out += _unreachable(snap, m) if not m.reachable else _services(snap, m) + _own_apiserver(snap, m)
    out += _refused_by_haproxy(snap) + _priority_tie(snap)
    for m in snap.masters:
        if m.reachable:
            out += _reload_pending(m) + _maintenance(snap, m)
    out += [Diagnosis(w.name, "unreachable", f"unreachable: {w.error or 'no answer over SSH'}",
                      (f"SSH to {w.address}: {w.error or 'no answer'}",),
                      f"check {w.name}'s power and network; the masters do not depend on it", "warning")
            for w in snap.workers if not w.reachable]
    return sorted(out, key=lambda d: d.severity != "critical")


# --- the VIP ----------------------------------------------------------------------------------

def _collision(snap: ClusterStatus) -> list[Diagnosis]:
    """Another router on this cluster's virtual router id: the two elections interfere, and
    keepalived says little of it (mismatched adverts in its log at best)."""
    out = []
    for a in snap.foreign_routers:
        ours = a.address in {m.address for m in snap.masters}
        what = (f"{a.address}, one of this cluster's masters, advertises other VIPs ({', '.join(a.vips)})" if ours
                else f"{a.address} advertises router id {a.vrid}, this cluster's, with VIP {', '.join(a.vips) or 'none'}")
        out.append(Diagnosis(
            a.address, "vrid-collision", f"router id collision: {what} (priority {a.priority}): the two elections "
            "interfere (keepalived discards the other's adverts as mismatched, so both sides may claim the router "
            "id; other VRRP routers let the higher priority own it)",
            (f"heard by {', '.join(a.heard_by)}: VRRPv{a.version} advert from {a.address}, vrid {a.vrid}, "
             f"priority {a.priority}, every {a.interval:g} s, VIPs {', '.join(a.vips) or 'none'}",),
            f"give one of them another router id: router id {snap.free_router_id} is free on this segment "
            "(vrrp.router_id in the topology, then deploy)"))
    return out


def _hears(snap: ClusterStatus) -> dict[str, str]:
    """BACKUP master → the master whose adverts it hears (keepalived's "Master router")."""
    by_address = {m.address: m.name for m in snap.masters}
    return {m.name: by_address.get(m.hears, m.hears) for m in snap.masters
            if m.reachable and m.vrrp_state == "BACKUP" and m.hears}


def _address_key(m: MasterStatus) -> tuple:
    """VRRP's tie-break: the higher address wins (compared as addresses, not as text)."""
    try:
        return (0, ipaddress.ip_address(m.address))
    except ValueError:
        return (-1, m.address)


def _claim(m: MasterStatus) -> str:
    held = "holds the VIP" if m.holds_vip else "does not hold the VIP"
    if m.vrrp_state6 is not None:  # dual stack
        held = f"VRRP (IPv6) {m.vrrp_state6}, {held}, {'holds' if m.holds_vip6 else 'does not hold'} VIP6"
    return f"{m.name}: VRRP {m.vrrp_state}, {held}, priority {m.effective_priority or '?'}"


def leftover_vip(snap: ClusterStatus) -> list[str]:
    """Reachable masters that carry the VIP while their keepalived does not run: a crashed
    (SIGKILLed) keepalived leaves its addresses behind, and clients may still reach them."""
    return [m.name for m in snap.masters if m.reachable and m.holds_vip and m.keepalived != "active"]


@dataclass(frozen=True)
class SplitBrain:
    """Who claims the VIP with a running keepalived, whom the other masters follow, and so which
    claimant to take out: one rule for the diagnosis and for the interlock of its remedy."""

    claim: tuple[str, ...]
    followed: str | None  # the one claimant the BACKUPs hear (None: they tell nothing apart)
    keeper: str  # the one to keep: the followed claimant, else the highest priority
    cut_off: tuple[str, ...]  # the others: taking each of them out ends the split brain


def split_brain(snap: ClusterStatus) -> SplitBrain | None:
    claim: list[str] = []
    for claiming in ({*snap.holders, *snap.claimants}, {*snap.holders6, *snap.claimants6}):  # each VIP's own
        claim = sorted(m.name for m in snap.masters if m.name in claiming and m.keepalived == "active")
        if len(claim) >= 2:
            break
    else:  # one master for each VIP is no split brain (the VIPs apart are: _apart)
        return None
    heard = set(_hears(snap).values()) & set(claim)
    followed = next(iter(heard)) if len(heard) == 1 else None
    ranked = sorted((m for m in snap.masters if m.name in claim),
                    key=lambda m: (m.effective_priority or 0, _address_key(m)), reverse=True)
    keeper = followed or ranked[0].name
    return SplitBrain(tuple(claim), followed, keeper, tuple(n for n in claim if n != keeper))


def _split_brain(snap: ClusterStatus) -> list[Diagnosis]:
    out = [Diagnosis(
        node, "leftover-vip", "keepalived is not running, but the VIP is still on its interface (a crashed "
        "keepalived leaves it): clients that reach it here get no VRRP master behind it",
        (f"systemctl is-active keepalived: {m.keepalived}", f"{node}: the VIP is on an interface",
         f"holders: {', '.join(snap.holders)}"),
        f"`restart {node} keepalived`: it starts, sees the others' adverts and settles; or remove the address "
        f"by hand on {node}", remedy=("restart", node, "keepalived"))
        for node in leftover_vip(snap) for m in [snap.master(node)] if m is not None]
    sb = split_brain(snap)
    if sb is None:
        return out
    hears = _hears(snap)
    evidence = tuple([_claim(m) for m in snap.masters if m.name in sb.claim]
                     + [f"{b}: BACKUP, keepalived hears adverts from {heard}" for b, heard in sorted(hears.items())])
    if sb.followed is not None:
        return out + [Diagnosis(
            node, "cut-off", "cut off from VRRP: it claims the VIP, but no other master hears its adverts",
            evidence,
            f"{_maintenance_on(snap, node)}: {node} drops the VIP and {sb.keeper}, which the others follow, keeps "
            f"it — that ends the split brain; then find what blocks VRRP (IP protocol 112) on {node}: "
            "`nft list ruleset`, `tcpdump -nn ip proto 112`", remedy=_maintenance_remedy(snap, node))
            for node in sb.cut_off]
    first = sb.cut_off[0]
    return out + [Diagnosis(
        CLUSTER, "split-brain", f"split brain: {', '.join(sb.claim)} claim the VIP and do not hear each other",
        evidence + ("the BACKUP masters do not tell them apart (none, or some follow each)",),
        f"{_maintenance_on(snap, first)} ends it: {first} drops the VIP, {sb.keeper} (the highest "
        "priority) keeps it; then check VRRP between them: firewall (IP protocol 112), multicast, router id",
        remedy=_maintenance_remedy(snap, first))]


def _follows_switch(snap: ClusterStatus, node: str) -> bool:
    """Its running keepalived follows the maintenance switch (a hand-made one may not: then
    maintenance means stopping keepalived, the CLI's --method stop, which the monitor has no key for)."""
    m = snap.master(node)
    return m is None or m.tracks_maintenance is not False


def _maintenance_on(snap: ClusterStatus, node: str) -> str:
    return f"`maintenance {node} on` (key m)" if _follows_switch(snap, node) else \
        f"`maintenance {node} on --method stop` (it does not follow the maintenance switch)"


def _maintenance_remedy(snap: ClusterStatus, node: str) -> tuple[str, str, str] | None:
    return ("maintenance", node, "on") if _follows_switch(snap, node) else None


def _no_holder(snap: ClusterStatus) -> list[Diagnosis]:
    if snap.holders or not any(m.reachable for m in snap.masters):  # vip6 alone: _no_holder6
        return []
    evidence = tuple(_claim(m) + (", in maintenance" if m.maintenance else "") + f", check {m.check}"
                     for m in snap.masters if m.reachable)
    heard = sorted({h for h in _hears(snap).values() if (m := snap.master(h)) is not None and not m.reachable})
    if heard:
        return [Diagnosis(CLUSTER, "no-holder", f"no reachable master holds the VIP; the BACKUPs hear {heard[0]}, "
                          "which cannot be reached: it most likely holds it", evidence + tuple(
                              f"{b}: BACKUP, hears {h}" for b, h in sorted(_hears(snap).items())),
                          f"reach {heard[0]} (its SSH, its network); the clients may be fine meanwhile", "warning")]
    if all(m.maintenance for m in snap.masters if m.reachable):
        first = next(m.name for m in snap.masters if m.reachable)
        step = f"`maintenance {first} off` (key m)"
    else:
        step = "the diagnoses below say why each master cannot; keepalived's journal: `journalctl -u keepalived -n 50`"
    return [Diagnosis(CLUSTER, "no-holder", "no master holds the VIP", evidence, step)]


def _no_holder6(snap: ClusterStatus) -> list[Diagnosis]:
    """Dual stack: the IPv4 VIP is held, vip6 is not (no holder at all is _no_holder's)."""
    if snap.vip6 is None or snap.holders6 or not snap.holders:
        return []
    holder = snap.holders[0]
    return [Diagnosis(CLUSTER, "no-holder", f"no master holds VIP6 {snap.vip6}, while {holder} holds {snap.vip}: "
                      "IPv6 clients have no endpoint",
                      tuple(_claim(m) for m in snap.masters if m.reachable),
                      f"on {holder}: `ip -6 addr show` (a `dadfailed` VIP6: another host on the segment has that "
                      "address) and `journalctl -u keepalived -n 50`; `doctor` checks that both instances are in "
                      "one sync group")]


def _apart(snap: ClusterStatus) -> list[Diagnosis]:
    if not snap.vips_apart:
        return []
    return [Diagnosis(CLUSTER, "vips-apart", f"the VIPs are apart: {snap.holders[0]} holds {snap.vip}, "
                      f"{snap.holders6[0]} holds {snap.vip6}",
                      tuple(_claim(m) for m in snap.masters if m.reachable),
                      "both instances in one vrrp_sync_group on every master, with the same priority: `doctor` "
                      "names where they are not; `deploy` renders them so", "warning")]


def _api_down(snap: ClusterStatus) -> list[Diagnosis]:
    """The API through each VIP that nobody reached it through."""
    if snap.bootstrap or snap.api_starting:
        return []
    up = [m.name for m in snap.masters if m.reachable and m.apiserver == UP]
    out = []
    for six, vip, down, holders in ((False, snap.vip, snap.api_down, snap.holders),
                                    (True, snap.vip6, snap.api6_down, snap.holders6)):
        if vip is None or not down:
            continue
        endpoint = host_port(vip, snap.frontend_port)
        asked = [n.name for n in (*snap.masters, *snap.workers)
                 if n.reachable and (n.api_via_vip6 if six else n.api_via_vip) is not None]
        evidence = (f"GET /readyz through {endpoint}: no 200 from {', '.join(asked)}",
                    f"holder: {', '.join(holders) or 'nobody'}",
                    f"apiservers that answer on their own masters: {', '.join(up) or 'none'}")
        step = ("every apiserver fails: see each master's diagnosis" if not up else
                f"HAProxy on the holder does not reach {', '.join(up)}: its backends and the diagnoses below")
        out.append(Diagnosis(CLUSTER, "api-down", f"the API does not answer through the VIP {endpoint}", evidence, step))
    return out


# --- one master -------------------------------------------------------------------------------

def _unreachable(snap: ClusterStatus, m: MasterStatus) -> list[Diagnosis]:
    evidence = [f"SSH to {m.address}: {m.error or 'no answer'}", *_backend_views(snap, m.name)]
    evidence += [f"{b}: BACKUP, hears {heard}" for b, heard in sorted(_hears(snap).items())]
    taken = [h for h in snap.holders if h != m.name]
    if m.name in _hears(snap).values():
        evidence.append("its VRRP adverts still arrive: it runs, only SSH does not reach it")
    step = (f"check {m.name}'s power and network (console, BMC); "
            + (f"{taken[0]} holds the VIP meanwhile; if {m.name} is only cut off it may still claim the VIP on its "
               "side until it is back" if taken else "nobody else holds the VIP"))
    return [Diagnosis(m.name, "unreachable", f"unreachable: {m.error or 'no answer over SSH'}", tuple(evidence), step,
                      "warning" if taken else "critical")]


def _audit_about(snap: ClusterStatus, node: str) -> list[str]:
    """The newest audit entry that names the node: what somebody did there, on purpose."""
    named = re.compile(rf"(?<![\w.-]){re.escape(node)}(?![\w.-])")
    entries = [e for e in snap.recent_audit if named.search(e.target)]
    return [f"audit: {entries[-1].when} {entries[-1].text()}"] if entries else []


def _services(snap: ClusterStatus, m: MasterStatus) -> list[Diagnosis]:
    out = []
    others = [h for h in snap.holders if h != m.name]
    consequence = "it cannot hold the VIP" + (f"; {others[0]} holds it" if others else "")
    severity = "warning" if others else "critical"
    on_purpose = [e for e in snap.recent_audit if e.target == m.name and e.action.startswith("maintenance")
                  and e.kind == "ok"]
    # With the maintenance switch, keepalived keeps running: stopped after a maintenance on, it was --method stop.
    if m.keepalived in ("inactive", "failed") and on_purpose and on_purpose[-1].action == "maintenance on":
        out.append(Diagnosis(
            m.name, "maintenance", "in maintenance: keepalived stopped on purpose (--method stop)",
            (f"systemctl is-active keepalived: {m.keepalived}", *_audit_about(snap, m.name)),
            f"`maintenance {m.name} off --method stop` when the work is done", "warning"))
    elif m.keepalived in ("inactive", "failed"):
        out.append(Diagnosis(
            m.name, "keepalived-down", f"keepalived is not running ({m.keepalived}): {consequence}",
            (f"systemctl is-active keepalived: {m.keepalived}", f"VRRP state: {m.vrrp_state}",
             *_audit_about(snap, m.name)),
            f"read why: `journalctl -u keepalived -n 50` on {m.name}; then `restart {m.name} keepalived`",
            severity, remedy=("restart", m.name, "keepalived")))
    if m.haproxy in ("inactive", "failed"):
        out.append(Diagnosis(
            m.name, "haproxy-down", f"HAProxy is not running ({m.haproxy}): keepalived's check fails, so {consequence}",
            (f"systemctl is-active haproxy: {m.haproxy}", f"keepalived's check: {m.check}, VRRP {m.vrrp_state}",
             *_audit_about(snap, m.name)),
            f"read why: `journalctl -u haproxy -n 50` and `haproxy -c -f {PATHS.haproxy_cfg}` on {m.name}; then "
            f"`restart {m.name} haproxy`", severity, remedy=("restart", m.name, "haproxy")))
    elif m.vrrp_state == "FAULT" and not m.maintenance and m.keepalived == "active" and m.check == "BAD":
        out.append(Diagnosis(
            m.name, "check-failing", f"keepalived's HAProxy check fails although HAProxy runs: {consequence}",
            (f"keepalived's check: {m.check}, VRRP FAULT", f"systemctl is-active haproxy: {m.haproxy}"),
            f"run the check by hand on {m.name}: `{PATHS.check_script}; echo $?`; `ss -ltn` shows whether HAProxy "
            "listens on the frontend port", severity))
    elif m.vrrp_state == "FAULT" and not m.maintenance and m.keepalived == "active":
        out.append(Diagnosis(
            m.name, "vrrp-fault", f"VRRP FAULT outside maintenance (its check says {m.check}): {consequence}",
            (f"VRRP FAULT, keepalived's check: {m.check}", f"maintenance switch: {'on' if m.maintenance else 'off'}"),
            f"keepalived's journal on {m.name} names what failed (interface, track file, script): "
            "`journalctl -u keepalived -n 50`", severity))
    return out


_APISERVER = {
    NOT_RUNNING: ("apiserver-not-running", "its kube-apiserver is not running: the apiserver port refuses connections",
                  "on {node}: `crictl ps -a --name kube-apiserver` and `crictl logs` of the newest one; kubelet "
                  "restarts it (`journalctl -u kubelet -n 50`)"),
    HUNG: ("apiserver-hung", "its kube-apiserver is hung or very slow: it takes connections and does not answer "
           "/readyz within a second", "if every apiserver is hung, look at etcd first (`crictl logs` of etcd); if "
           "only this one: on {node}, `crictl stop` its kube-apiserver container (kubelet starts a new one); "
           "meanwhile HAProxy sends to the others (key d drains it for good)"),
    NOT_READY: ("apiserver-not-ready", "its kube-apiserver answers but is not ready (/readyz is not 200)",
                "on {node}: `curl -gk https://{endpoint}/readyz?verbose` names the failing check (etcd, most "
                "often)"),
    DOWN: ("apiserver-down", "its kube-apiserver does not answer",
           "on {node}: `curl -gkv https://{endpoint}/readyz` and `crictl ps -a --name kube-apiserver`"),
}


def _backend_views(snap: ClusterStatus, master: str) -> list[str]:
    """How every reachable HAProxy sees this master's apiserver: 'HAProxy on X: DOWN L6TOUT'."""
    return [f"HAProxy on {h.name}: {b.status} {b.check_status}".rstrip()
            for h in snap.masters if h.reachable for b in h.backends_of(master)]


def _own_apiserver(snap: ClusterStatus, m: MasterStatus) -> list[Diagnosis]:
    if m.apiserver not in FAILING:
        return []
    code, cause, step = _APISERVER[m.apiserver]
    port = next((b.address.rsplit(":", 1)[-1] for h in snap.masters for b in h.backends_of(m.name)), "6443")
    others_up = [o.name for o in snap.masters if o.name != m.name and o.reachable and o.apiserver == UP]
    return [Diagnosis(
        m.name, code, cause + (f"; HAProxy sends to {', '.join(others_up)}" if others_up else ""),
        (f"its own /readyz: {m.apiserver}", *_backend_views(snap, m.name)),
        step.format(node=m.name, endpoint=host_port(m.address, port)), "warning" if others_up else "critical")]


def _refused_by_haproxy(snap: ClusterStatus) -> list[Diagnosis]:
    """An apiserver that answers on its master, which some HAProxy does not send to: put out of
    service by somebody (MAINT, DRAIN), or refused by that HAProxy's check."""
    out = []
    for a in snap.masters:
        if not a.reachable or a.apiserver in FAILING or a.apiserver == NOT_INSTALLED:
            continue
        refused = [(h.name, b) for h in snap.masters if h.reachable for b in h.backends_of(a.name) if not b.up
                   or b.status == "DRAIN"]
        if not refused:
            continue
        states = {b.status for _, b in refused}
        where = ", ".join(h for h, _ in refused)
        if a.apiserver != UP:
            out.append(Diagnosis(a.name, "backend-down", f"HAProxy on {where} does not send to its apiserver, whose "
                                 "own answer is unknown (its probe did not say)", tuple(_backend_views(snap, a.name)),
                                 f"on {a.name}: `curl -gkv https://{host_port(a.address, '<apiserver port>')}/readyz`",
                                 "warning"))
        elif all("/" in state for state in states):
            out.append(Diagnosis(a.name, "backend-rising", f"HAProxy on {where} is admitting its apiserver again "
                                 "(its checks rising)", tuple(_backend_views(snap, a.name)),
                                 "nothing: HAProxy sends to it after `rise` good checks", "warning"))
        elif states <= {"MAINT", "DRAIN"}:
            out.append(Diagnosis(a.name, "backend-out", f"its apiserver is out of service ({'/'.join(sorted(states))}) "
                                 f"in HAProxy on {where}, on purpose", tuple(_backend_views(snap, a.name)
                                 + _audit_about(snap, a.name)), f"`backend {a.name} ready` (key r) puts it back",
                                 "warning"))
        else:
            codes = ", ".join(sorted({b.check_status for _, b in refused if b.check_status}))
            out.append(Diagnosis(a.name, "backend-refused", f"its apiserver answers, but HAProxy on {where} refuses "
                                 f"it (check {codes or '?'})", (f"its own /readyz: {a.apiserver}",
                                                                *_backend_views(snap, a.name)),
                                 f"what HAProxy's check sends differs from what answers, or the network between "
                                 f"them drops it: `doctor` compares the configs; from {refused[0][0]}: "
                                 f"`curl -gkv https://{host_port(a.address, '<apiserver port>')}/readyz`", "warning"))
    return out


def _priority_tie(snap: ClusterStatus) -> list[Diagnosis]:
    out = []
    for tied in snap.priority_ties:
        prio = tied[0].base_priority
        winner = max(tied, key=_address_key)
        edited = [m for m in tied if m.topology_priority is not None and m.topology_priority != prio] or tied
        for m in edited:
            out.append(Diagnosis(
                m.name, "priority-tie", f"priority tie: {', '.join(t.name for t in tied)} all run priority {prio}; "
                f"VRRP gives the VIP to the higher address ({winner.name}), which nobody chose",
                tuple(f"{t.name}: running priority {t.base_priority}, the topology says {t.topology_priority}"
                      for t in tied),
                f"set {m.name}'s priority back to {m.topology_priority} in {PATHS.keepalived_conf} and "
                f"`systemctl reload keepalived` there, or `deploy` this tool's configs" if m.topology_priority
                else "give every master its own priority", "warning"))
    return out


def _reload_pending(m: MasterStatus) -> list[Diagnosis]:
    if not m.reload_pending:
        return []
    service = " and ".join(name for name, path in (("keepalived", PATHS.keepalived_conf), ("haproxy", PATHS.haproxy_cfg))
                           if any(p.startswith(path) for p in m.reload_pending))
    return [Diagnosis(m.name, "reload-pending", "the config on disk differs from what runs: somebody edited it "
                      "without a reload", m.reload_pending,
                      f"`doctor` shows every difference; once the files are what you want, `systemctl reload {service}` "
                      f"on {m.name} — or `deploy` puts this tool's config back", "warning")]


def _maintenance(snap: ClusterStatus, m: MasterStatus) -> list[Diagnosis]:
    if not m.maintenance:
        return []
    return [Diagnosis(m.name, "maintenance", "in maintenance: it will not take the VIP",
                      (f"{PATHS.maintenance_file}: non-zero", f"VRRP {m.vrrp_state}", *_audit_about(snap, m.name)),
                      f"`maintenance {m.name} off` (key m) when the work is done", "warning",
                      remedy=("maintenance", m.name, "off"))]
