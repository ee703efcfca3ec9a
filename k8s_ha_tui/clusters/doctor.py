"""`lint` of what really runs on every master, plus what files alone cannot show: a config on
disk that the daemon has not loaded (a reload pending), masters that disagree on what decides
who hears whom, priority ties, HAProxy server sets that differ, check scripts that are missing
or that keepalived's script security would refuse. Pure: the SSH side is nodeconfig.read_node.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from k8s_ha_tui.clusters.nodeconfig import LiveNode
from k8s_ha_tui.configs.confparse import parse_haproxy_files
from k8s_ha_tui.configs.daemon_check import haproxy_alerts
from k8s_ha_tui.configs.lint import Finding, Level, lint_haproxy, lint_keepalived, tracked_weights
from k8s_ha_tui.model.election import Candidate, combinations_count, unsafe_combinations
from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.remote.vrrp_census import Census, foreign, free_router_id
from k8s_ha_tui.status.vrrpview import VrrpView, differences, file_views, from_running


def _finding(code: str, level: Level, message: str, fix: str, where: str) -> Finding:
    return Finding(code, level, message, fix, where)


def lint_node(node: LiveNode, apiserver_port: int = 6443) -> list[Finding]:
    """lint on the node's live files, as files on a master; each finding names the node, the
    remote path and line."""
    out: list[Finding] = []
    if node.keepalived_text is not None:
        scripts = "\n".join(node.script_texts.values()) if node.script_texts else None
        out += lint_keepalived(node.keepalived_text, scripts, node.facts.keepalived_conf, node.keepalived_files)
    else:
        out.append(_finding("D300", "error", f"no keepalived config at {node.facts.keepalived_conf}",
                            "install keepalived's config (deploy does)", node.facts.keepalived_conf))
    if node.haproxy_files:
        (first, text), *more = node.haproxy_files
        out += lint_haproxy(text, first, more, on="master", apiserver_port=apiserver_port)
    else:
        out.append(_finding("D300", "error", f"no HAProxy config at {', '.join(node.facts.haproxy_configs)}",
                            "install HAProxy's config (deploy does)", node.facts.haproxy_configs[0]))
    return [replace(f, where=f"{node.name}:{f.where}") for f in out]


def reload_pending(node: LiveNode, vip: str) -> list[Finding]:
    out = []
    f = node.facts
    if not f.keepalived_running:
        out.append(_finding("D309", "warning", "keepalived is not running", "systemctl start keepalived", node.name))
    else:
        running = f.running.instance_for(vip)
        files = {v.name: v for v in file_views(node.keepalived_root())}
        if running is not None:
            live, disk = from_running(running), files.get(running.name)
            if disk is None:
                out.append(_finding("D305", "error", f"keepalived runs vrrp_instance {running.name}, which the files "
                                    "no longer have: a reload is pending", "systemctl reload keepalived (or restore "
                                    "the file)", f"{node.name}:{f.keepalived_conf}"))
            else:
                for text in differences(live, disk):
                    text += ": a reload is pending"
                    out.append(_finding("D305", "error", f"vrrp_instance {running.name}: {text}",
                                        "systemctl reload keepalived, once the file is what you want",
                                        f"{node.name}:{f.keepalived_conf}"))
    if not f.haproxy_running:
        out.append(_finding("D309", "warning", "HAProxy is not running", "systemctl start haproxy", node.name))
    elif f.haproxy_loaded_at is not None:
        newer = [p for p, _ in node.haproxy_files if node.mtimes.get(p, 0) > f.haproxy_loaded_at + 1]
        if newer:
            out.append(_finding("D306", "warning", f"{', '.join(newer)} changed after HAProxy last loaded its "
                                "config: a reload is pending", "systemctl reload haproxy, once the file is what you want",
                                f"{node.name}:{newer[0]}"))
    return out


def scripts(node: LiveNode) -> list[Finding]:
    out = []
    for path, st in node.scripts.items():
        where = f"{node.name}:{path}"
        if st is None:
            out.append(_finding("D307", "error", f"{path}, which keepalived runs, does not exist: the check (or "
                                "notify) always fails", "install the script, or fix its path", where))
            continue
        owner, mode = st
        writable = int(mode, 8) & 0o022 if mode.isdigit() else 0
        if owner != "root" or writable:
            out.append(_finding("D308", "error", f"{path} is owned by {owner} with mode {mode}: with script security "
                                "keepalived refuses to run it (others could change what root runs)",
                                f"chown root:root {path}; chmod go-w {path}", where))
    return out


def verdicts(node: LiveNode) -> list[Finding]:
    """What `haproxy -c` and `keepalived -t` say on the node itself, in their own words: HAProxy
    refusing its config is an error (a restart or reload fails); keepalived's complaints are
    warnings (it ignores what it names, or stops on a fatal one: the words say which)."""
    out = []
    for daemon, (code, said) in node.verdicts.items():
        if code == 0:
            continue
        if daemon == "haproxy":
            out.append(_finding("D313", "error", f"haproxy -c refuses the config (exit {code}): "
                                + (haproxy_alerts(said) or said.splitlines()[-1:][0] if said else "no reason given"),
                                "fix what it names; HAProxy cannot restart or reload until then", node.name))
        else:
            lines = [ln.strip() for ln in said.splitlines() if ln.strip()]
            out.append(_finding("D314", "warning", f"keepalived -t (exit {code}): " + " | ".join(lines[:3]),
                                "fix what keepalived names", node.name))
    return out


def _views(nodes: list[LiveNode], vip: str) -> dict[str, VrrpView]:
    return {n.name: view for n in nodes if (view := n.vrrp_view(vip)) is not None}


def cross_node(nodes: list[LiveNode], topo: Topology) -> list[Finding]:
    out: list[Finding] = []
    views = _views(nodes, topo.vip)
    for vip in topo.vips:  # a dual stack's vip6 too (an instance of its own)
        carried = views if vip == topo.vip else _views(nodes, vip)
        for name in (n.name for n in nodes if n.name not in carried or not carried[n.name].has_vip(vip)):
            out.append(_finding("D302", "error", f"no VRRP instance carries the VIP {vip}", "add it (deploy does)", name))
    groups = Counter(v.hears() for v in views.values())
    if len(groups) > 1:
        parts = []
        for key in groups:
            who = [n for n, v in views.items() if v.hears() == key]
            rid, ver, auth, _, uni, _ = key
            parts.append(f"router id {rid}, VRRPv{ver}, {auth or 'no'} auth, {'unicast' if uni else 'multicast'} "
                         f"on {', '.join(who)}")
        out.append(_finding("D301", "error", "the masters do not all hear each other's adverts, so two of them can "
                            "hold the VIP at once: " + "; ".join(parts),
                            "make router id, version, authentication and advert settings the same (deploy does)", "cluster"))
    prios = Counter(v.priority for v in views.values())
    for prio, count in prios.items():
        if count > 1:
            who = [n for n, v in views.items() if v.priority == prio]
            out.append(_finding("D303", "warning", f"priority tie: {', '.join(who)} all have {prio}; the higher address "
                                "wins, which nobody chose", "give every master its own priority", "cluster"))
    addresses = {m.address for m in topo.masters}
    for n, v in views.items():
        if v.unicast_peers:
            own = next((m.address for m in topo.masters if m.name == n), None)
            missing = sorted(addresses - {own} - set(v.unicast_peers))
            if missing:
                out.append(_finding("D310", "error", f"unicast_peer lacks {', '.join(missing)}: those masters never "
                                    "hear this one", "list every other master in unicast_peer", n))
    sets: dict[str, tuple[str, ...]] = {}
    for node in nodes:
        sections = parse_haproxy_files(node.haproxy_files)
        sets[node.name] = tuple(sorted(f"{s.host}:{s.port}" for sec in sections for s in sec.servers()))
    if len(set(sets.values())) > 1:
        out.append(_finding("D304", "warning", "the HAProxy server sets differ: " + "; ".join(
            f"{', '.join(v) or 'none'} on {n}" for n, v in sets.items()), "send every HAProxy to every apiserver",
            "cluster"))
    for m in topo.masters:
        if nodes and not any(f"{m.address}:{topo.apiserver_port}" in s for s in sets.values()):
            out.append(_finding("D311", "warning", f"no HAProxy sends to {m.name}'s apiserver "
                                f"({m.address}:{topo.apiserver_port})", "add it as a server", "cluster"))
    return out


def sync_groups(nodes: list[LiveNode], topo: Topology) -> list[Finding]:
    """Dual stack: on every master, the instances of the two VIPs in one vrrp_sync_group. Apart,
    each family elects on its own (a check failing for one, a lost advert) and the VIPs can end
    on different masters: HAProxy then serves each family from another node, and a failover or
    maintenance moves half."""
    if topo.vip6 is None:
        return []
    out = []
    for node in nodes:
        root = node.keepalived_root()
        names = {v.name for v in file_views(root) if v.has_vip(topo.vip) or v.has_vip(topo.vip6)}
        groups = [set(g.words()) for sg in root.all("vrrp_sync_group") if (g := sg.first("group")) is not None]
        if len(names) == 2 and not any(names <= g for g in groups):
            out.append(_finding("D318", "error", f"the instances of {topo.vip} and {topo.vip6} ({', '.join(sorted(names))}) "
                                "are not in one vrrp_sync_group: each family elects on its own, and the VIPs can end on "
                                "different masters", "put both in one vrrp_sync_group with sync_group_tracking_weight "
                                "(deploy does)", node.name))
    return out


def weighted_election(nodes: list[LiveNode], topo: Topology) -> list[Finding]:
    """Where one check lowers priorities (a negative weight), the election with the masters' real
    priorities: a case where a failed check leaves the VIP on its node while a healthy master
    exists. Positive weights (added while a check succeeds) and several weighted scripts are not
    modelled: no finding then."""
    candidates, weights = [], set()
    for node in nodes:
        root = node.keepalived_root()
        view = node.vrrp_view(topo.vip)
        inst = next((i for i in root.all("vrrp_instance") if view and i.args[:1] == [view.name]), None)
        address = next((m.address for m in topo.masters if m.name == node.name), None)
        if inst is None or view is None or view.priority is None or address is None:
            continue  # D302 names a master without the VIP's instance
        weighted = [w for w in tracked_weights(inst, root.all("vrrp_script")) if w != 0]
        weights.add(weighted[0] if len(weighted) == 1 else None if weighted else 0)
        candidates.append(Candidate(node.name, address, view.priority))
    weight = weights.pop() if len(weights) == 1 else None
    if weight is None or weight >= 0 or len(candidates) < 2:
        return []
    bad = unsafe_combinations(candidates, weight)
    if not bad:
        return []
    return [_finding("D312", "error", f"check weight {weight} with priorities "
                     f"{', '.join(f'{c.name} {c.priority}' for c in candidates)}: election simulation "
                     f"({combinations_count(len(candidates))} cases): {bad[0].describe()}",
                     "use weight 0 on the check (FAULT hands over), or priorities closer than the weight", "cluster")]


def segment(census: Census, topo: Topology) -> list[Finding]:
    """What the masters heard on their segment: a router on this cluster's router id that is not
    one of its masters (or advertises other VIPs) is an error; other clusters are information."""
    heard = census.advertisers()
    rid = topo.vrrp.router_id
    out = [_finding("D317", "warning", f"the census could not listen on {name} (no tcpdump): VRRP routers are "
                    "not heard there", "install tcpdump on the masters", name) for name in sorted(census.missing)]
    out += [_finding("D315", "error", f"router id collision: {a.describe()} (this cluster's router id), heard by "
                     f"{', '.join(a.heard_by)}: the two elections interfere",
                     f"give one of them another router id: {free_router_id(heard, rid)} is free on this segment",
                     "cluster") for a in foreign(heard, rid, {m.address for m in topo.masters}, topo.vip)]
    for vrid in sorted({a.vrid for a in heard} - {rid}):
        who = [a for a in heard if a.vrid == vrid]
        out.append(_finding("D316", "info", f"router id {vrid} on the segment: {', '.join(a.address for a in who)} "
                            f"(VIP {', '.join(sorted({v for a in who for v in a.vips})) or 'none'})", "", "segment"))
    return out


def diagnose(nodes: list[LiveNode], topo: Topology, census: Census | None = None) -> list[Finding]:
    out: list[Finding] = []
    for n in nodes:
        out += lint_node(n, topo.apiserver_port) + reload_pending(n, topo.vip) + scripts(n) + verdicts(n)
    out += cross_node(nodes, topo) + sync_groups(nodes, topo) + weighted_election(nodes, topo)
    return out + (segment(census, topo) if census is not None else [])
