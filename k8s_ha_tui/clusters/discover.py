"""A topology that describes a running cluster as it runs, from what its masters say
(nodeconfig.LiveNode), with one line for each thing the model cannot express and each thing
the masters disagree on. Pure: the SSH side is nodeconfig.read_node.

What runs wins over what is on disk: the VRRP values come from keepalived's DATA dump where
keepalived runs (doctor reports a file that differs: a reload pending), the rest from the files.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass
from typing import cast

from k8s_ha_tui.clusters.nodeconfig import LiveNode, read_facts, read_node
from k8s_ha_tui.configs.confparse import KBlock, down_adverts, parse_haproxy_files, parse_timeout
from k8s_ha_tui.configs.lint import backends_used, bind_ports
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model.topology import (
    APISERVER_PORT,
    CONNECT_TIMEOUT_RANGE_MS,
    DOWN_ADVERTS_RANGE,
    FRONTEND_PORT,
    HEALTH_PORT,
    Check,
    Node,
    Ssh,
    Topology,
    check_name,
    topology_from_dict,
)
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.ssh import connect_all_as
from k8s_ha_tui.status.vrrpview import VrrpView, file_views, from_running

# What the model expresses of a vrrp_instance; anything else in one is named as not modelled.
MODELLED = {"state", "interface", "virtual_router_id", "priority", "advert_int", "authentication",
            "unicast_src_ip", "unicast_peer", "virtual_ipaddress", "track_script", "track_file", "version",
            "notify", "down_timer_adverts"}


@dataclass
class Discovery:
    topology: Topology
    notes: list[str]  # one line each: not expressible, or masters disagree


def instance_view(node: LiveNode, vip: str | None) -> tuple[VrrpView | None, KBlock | None]:
    """The node's instance that carries `vip` (else its first): the running one where keepalived
    runs, else the file's; and the file's block for it, for what only the file says."""
    view = node.vrrp_view(vip, first_if_none=True)
    blocks = node.keepalived_root().all("vrrp_instance")
    block = next((b for b in blocks if view and b.args[:1] == [view.name]), None)
    return view, block


def choose_vip(nodes: list[LiveNode], six: bool = False) -> str | None:
    """The VIP of a family (`six`: IPv6) most masters carry an instance for (ties: one a master
    holds now); None: no instance carries one."""
    counts: Counter[str] = Counter()
    for n in nodes:
        views = [from_running(i) for i in n.facts.running.instances] if n.facts.keepalived_running else \
            file_views(n.keepalived_root())
        counts.update({v.split("/")[0] for view in views for v in view.vips if (":" in v) == six})
    if not counts:
        return None
    held = {a for n in nodes for _, a, _ in n.facts.addresses}
    return max(counts, key=lambda v: (counts[v], v in held))


def _grouped(node: LiveNode, vip6: str) -> bool:
    """Whether the node's files put vip6's instance in one vrrp_sync_group with another instance
    (the IPv4 VIP's: a dual stack as deploy renders it)."""
    root = node.keepalived_root()
    six = {v.name for v in file_views(root) if v.has_vip(vip6)}
    return any(six & (members := set(g.words())) and len(members) > 1
               for sg in root.all("vrrp_sync_group") if (g := sg.first("group")) is not None)


def _second_family(nodes: list[LiveNode], vip6: str, router_id: object, version: object, notes: list[str]) -> dict:
    """A dual stack's vip6, prefix6 and each master's address6 (its address in vip6's subnet), or
    nothing, with a note, where a master has no instance for it or no such address, or the IPv4
    instance speaks VRRPv2 (the model runs both families on v3)."""
    if version != 3:
        notes.append(f"the instance of {vip6} is not modelled: the IPv4 one speaks VRRPv{version}, and a dual stack "
                     "runs both on VRRPv3")
        return {}
    views = {n.name: view for n in nodes if (view := n.vrrp_view(vip6)) is not None and view.has_vip(vip6)}
    lacking = [n.name for n in nodes if n.name not in views]
    if lacking:
        notes.append(f"{', '.join(lacking)} carry no instance for {vip6}: the topology describes the IPv4 VIP only")
        return {}
    apart = [n.name for n in nodes if not _grouped(n, vip6)]
    if apart:  # another service's IPv6 instance, say: not this cluster's second VIP
        notes.append(f"the instance of {vip6} is not in one vrrp_sync_group with the IPv4 VIP's on "
                     f"{', '.join(apart)}: it is not modelled; the topology describes the IPv4 VIP only")
        return {}
    prefix6 = _prefix(vip6, list(views.values()), nodes, notes)
    net = ipaddress.ip_network(f"{vip6}/{prefix6}", strict=False)
    own = {n.name: next((a for _, a, _ in n.facts.addresses if ":" in a and a != vip6
                         and ipaddress.ip_address(a) in net), None) for n in nodes}
    if None in own.values():
        notes.append(f"{', '.join(n for n, a in own.items() if a is None)} have no address in {net}: the topology "
                     "describes the IPv4 VIP only")
        return {}
    others = sorted({str(v.router_id) for v in views.values()} - {str(router_id)})
    if others:
        notes.append(f"the instance of {vip6} has router id {', '.join(others)}; the topology gives both instances "
                     f"router id {router_id} (deploy renders them so)")
    return {"vip6": vip6, "prefix6": prefix6, "address6": own}


def _agree(notes: list[str], what: str, values: dict[str, object], show=str) -> object:
    """The value most masters have; a note naming who differs when they do not all agree."""
    counts = Counter(values.values())
    if not counts:
        return None
    winner = counts.most_common(1)[0][0]
    if len(counts) > 1:
        groups: dict[object, list[str]] = {}
        for node, v in values.items():
            groups.setdefault(v, []).append(node)
        notes.append(f"masters disagree on {what}: " +
                     "; ".join(f"{show(v)} on {', '.join(ns)}" for v, ns in groups.items()))
    return winner


def _names(nodes: list[LiveNode], notes: list[str], kind: str = "master") -> list[str]:
    out: list[str] = []
    for i, n in enumerate(nodes, start=1):
        name = n.facts.hostname.split(".")[0]
        try:
            check_name(name)
        except ValueError:
            name = f"{kind}-{i}"
            notes.append(f"{n.address}: hostname {n.facts.hostname!r} cannot be a node name; called it {name}")
        if name in out:
            name = f"{name}-{i}"
            notes.append(f"{n.address}: hostname {n.facts.hostname!r} is taken; called it {name}")
        out.append(name)
    return out


def _prefix(vip: str, views: list[VrrpView], nodes: list[LiveNode], notes: list[str]) -> int:
    entry = next((v for view in views for v in view.vips if v.split("/")[0] == vip), vip)
    if "/" in entry and entry.split("/")[1].isdigit():
        return int(entry.split("/")[1])
    six = ":" in vip
    own = [p for n in nodes for _, a, p in n.facts.addresses
           if a != vip and (":" in a) == six and ipaddress.ip_address(vip) in ipaddress.ip_network(f"{a}/{p}", strict=False)]
    prefix = own[0] if own else 64 if six else 24
    notes.append(f"the VIP {vip} has no prefix length (keepalived adds it as /32); the topology uses /{prefix}, "
                 "the masters' own subnet, as deploy would render it")
    return prefix


RENDERED = re.compile(r"in cluster (\S+): rendered by k8s-ha-tui")


def ours(node: LiveNode) -> str | None:
    """The cluster name, when the node runs configs this tool rendered (their first line says so)."""
    m = RENDERED.search((node.keepalived_text or "")[:300])
    return m.group(1) if m else None


def _health_port(nodes: list[LiveNode]) -> int | None:
    """The port of the tool's own health frontend (k8s-ha-health), where the configs are ours."""
    for n in nodes:
        for sec in parse_haproxy_files(n.haproxy_files):
            if sec.kind == "frontend" and sec.name == "k8s-ha-health" and bind_ports(sec):
                return bind_ports(sec)[0][2]
    return None


def _check(block: KBlock | None, root: KBlock | None, notes: list[str], rendered: bool = False) -> dict:
    """The tracked vrrp_script's timing, where the model can hold it."""
    listed = block.first("track_script") if block is not None else None
    tracked = listed.words() if listed is not None else []
    script = next((s for s in (root.all("vrrp_script") if root else []) if s.args and s.args[0] in tracked), None)
    if script is None:
        notes.append("no vrrp_script is tracked: the check is the model's (this node's HAProxy, on 127.0.0.1) "
                     "with default timing")
        return {}
    out = {}
    for key in ("interval", "fall", "rise", "weight"):
        value = script.value(key)
        if value is None:
            continue
        try:
            out[key] = int(float(value))
            Check.model_validate(out)
        except ValueError:
            notes.append(f"vrrp_script {script.args[0]}: {key} {value} is outside what the model allows; default used")
            out.pop(key, None)
    command = script.value("script") or "?"
    if not rendered:
        notes.append(f"vrrp_script {script.args[0]} runs {command!r}: what it tests is not modelled (the tool's check "
                     f"asks the local HAProxy); its interval, fall, rise and weight are kept")
    return out


def _not_modelled(root: KBlock, block: KBlock | None, view: VrrpView, notes: list[str], rendered: bool,
                  six: VrrpView | None = None) -> None:
    """`six`: a dual stack's second instance (vip6's), modelled with its sync group."""
    watched = [view.name, *([six.name] if six else [])]
    for other in root.all("vrrp_instance"):
        if other.args[:1] not in ([w] for w in watched):
            notes.append(f"vrrp_instance {' '.join(other.args)} is not modelled (the tool watches {' and '.join(watched)})")
    for kind in ("virtual_server", "virtual_server_group", *(() if six else ("vrrp_sync_group",))):
        if root.first(kind):
            notes.append(f"{kind} blocks are not modelled")
    if block is not None:
        extra = sorted({c.keyword for c in block.children} - MODELLED)
        if extra:
            notes.append(f"vrrp_instance {view.name}: {', '.join(extra)} not modelled")
        if block.first("notify") and not rendered:
            notes.append(f"vrrp_instance {view.name}: its notify script is replaced by the tool's on deploy")
    if view.auth_type == "AH":
        notes.append("AH authentication is not modelled (only PASS)")


def _haproxy(nodes: list[LiveNode], masters: dict[str, str], notes: list[str]) -> tuple[dict, dict]:
    """frontend_port and apiserver_port from the frontend that sends to the masters, and its
    backend's connect timeout (the check section's connect_timeout_ms)."""
    found: dict[str, tuple[int, int]] = {}
    connects: dict[str, int] = {}
    for n in nodes:
        sections = parse_haproxy_files(n.haproxy_files)
        for fe in (s for s in sections if s.kind in ("frontend", "listen")):
            used = [be for be in backends_used(fe, sections) if any(srv.host in masters for srv in be.servers())]
            ports = {srv.port for be in used for srv in be.servers() if srv.host in masters and srv.port}
            binds = [p for _, _, p in bind_ports(fe)]
            if ports and binds:
                found[n.name] = (binds[0], sorted(ports)[0])
                timeout = used[0].inherited("timeout", "connect")
                seconds = parse_timeout(timeout[-1][1][2]) if timeout and len(timeout[-1][1]) > 2 else None
                if seconds is not None:
                    connects[n.name] = round(seconds * 1000)
                break
        sockets = [t for s in sections if s.kind == "global" for _, t in s.directives("stats", "socket")]
        if not any(len(t) > 2 and t[2] == PATHS.stats_socket for t in sockets):
            notes.append(f"{n.name}: HAProxy has no stats socket at {PATHS.stats_socket}, where the tool reads "
                         "backends and drains servers")
    if not found:
        notes.append("no HAProxy frontend on the masters sends to their apiservers: ports are the defaults")
        return {}, {}
    fe_port = _agree(notes, "the HAProxy frontend port", {k: v[0] for k, v in found.items()})
    api_port = _agree(notes, "the apiserver port", {k: v[1] for k, v in found.items()})
    check = {}
    if connects:
        ms = cast(int, _agree(notes, "HAProxy's timeout connect (ms)", dict(connects)))
        low, high = CONNECT_TIMEOUT_RANGE_MS
        check["connect_timeout_ms"] = min(max(ms, low), high)
        default = Check().connect_timeout_ms
        if ms != default:
            notes.append(f"HAProxy's timeout connect {ms} ms is kept as check.connect_timeout_ms: "
                         f"{check['connect_timeout_ms']} (the tool's default, {default} ms, suits "
                         "masters on one LAN: a vanished apiserver then costs a client that long once)")
    return {"frontend_port": fe_port, "apiserver_port": api_port}, check


def describe(nodes: list[LiveNode], workers: list[LiveNode], ssh: Ssh, name: str | None = None) -> Discovery:
    notes: list[str] = []
    vip = choose_vip(nodes) or choose_vip(nodes, six=True)
    if vip is None:
        raise UserError("no master runs or configures a VRRP instance with a VIP: nothing to describe")
    views = {n.name: instance_view(n, vip) for n in nodes}
    missing = [n.name for n in nodes if views[n.name][0] is None]
    if missing:
        raise UserError(f"{', '.join(missing)}: no VRRP instance found (keepalived not configured?)")
    v = {n: view for n, (view, _) in views.items() if view is not None}
    for node in nodes:
        if not v[node.name].has_vip(vip):
            notes.append(f"masters disagree on the VIP: {node.name} carries {', '.join(v[node.name].vips) or 'none'}")
    names = _names(nodes, notes)
    router_id = _agree(notes, "the virtual router id", {n: x.router_id for n, x in v.items()})
    version = _agree(notes, "the VRRP version", {n: x.version for n, x in v.items()})
    advert = _agree(notes, "advert_int", {n: x.advert_int for n, x in v.items()})
    _agree(notes, "authentication", {n: (x.auth_type, x.auth_digest) for n, x in v.items()},
           show=lambda a: "none" if a[0] is None else f"{a[0]} (password #{(a[1] or '?')[:6]})")
    unicast = any(x.unicast_peers for x in v.values())
    interface = _agree(notes, "the interface", {n: x.interface for n, x in v.items()})
    first = nodes[0]
    root = first.keepalived_root()
    rendered_as = ours(first)
    masters = []
    running = [(nm, node.address, v[node.name].priority or 100) for node, nm in zip(nodes, names)]
    priorities = distinct_priorities(running, notes)
    for node, nm in zip(nodes, names):
        entry: dict = {"name": nm, "address": node.address, "priority": priorities[nm]}
        if v[node.name].interface and v[node.name].interface != interface:
            entry["interface"] = v[node.name].interface
        masters.append(entry)
    block = views[first.name][1]
    auths = [auth for _, b in views.values() if b is not None and (auth := b.first("authentication")) is not None]
    password = next((p for auth in auths if (p := auth.value("auth_pass"))), None)
    vrrp = {"router_id": router_id, "version": version, "advert_int": advert, "unicast": unicast}
    if block is not None:
        missed = down_adverts(root, block)
        low, high = DOWN_ADVERTS_RANGE
        vrrp["down_adverts"] = min(max(missed, low), high)
        if vrrp["down_adverts"] != missed:
            notes.append(f"down_timer_adverts {missed}: the topology allows {low}-{high}; it says {vrrp['down_adverts']}")
    if password and version == 2 and v[first.name].auth_type == "PASS":
        vrrp["auth_pass"] = password[:8]
    ports, connect = _haproxy(nodes, {n.address: nm for n, nm in zip(nodes, names)}, notes)
    vip6 = choose_vip(nodes, six=True) if ":" not in vip else None
    second = _second_family(nodes, vip6, router_id, version, notes) if vip6 else {}
    _not_modelled(root, views[first.name][1], v[first.name], notes, rendered_as is not None,
                  first.vrrp_view(vip6) if second and vip6 else None)
    for node, entry in zip(nodes, masters):
        if second:
            entry["address6"] = second["address6"][node.name]
    data = {
        "name": name or rendered_as or _cluster_name(v[first.name].name),
        "vip": vip, "prefix": _prefix(vip, list(v.values()), nodes, notes),
        **({"vip6": second["vip6"], "prefix6": second["prefix6"]} if second else {}),
        "interface": interface or "eth0",
        **ports,
        "masters": masters,
        "workers": [{"name": nm, "address": w.address} for w, nm in zip(workers, _names(workers, notes, "worker"))],
        "vrrp": vrrp,
        "check": {**_check(block, root, notes, rendered_as is not None), **connect},
        "ssh": ssh.model_dump(),
    }
    taken = {data.get("frontend_port", FRONTEND_PORT), data.get("apiserver_port", APISERVER_PORT)}
    data["health_port"] = _health_port(nodes) or next(p for p in range(HEALTH_PORT, HEALTH_PORT + 3) if p not in taken)
    return Discovery(topology_from_dict(data, "the discovered cluster"), notes)


async def read_cluster(masters: list[str], workers: list[str], ssh: Ssh, policy) -> tuple[list[LiveNode], list[LiveNode]]:
    """Every master read whole (nodeconfig.read_node), every worker's hostname. One node that
    cannot be reached or is not root stops discover: a partial description would mislead."""
    nodes = [Node(name=a, address=a) for a in [*masters, *workers]]
    conns = await connect_all_as(ssh, nodes, policy)
    try:
        for c in conns:
            if str((await c.run("id -u", check=False)).stdout or "").strip() != "0":
                raise UserError(f"{c.name}: commands run as {ssh.user}, not root; use --become sudo or log in as root "
                                "(discover needs the deploy role)")
        live = await asyncio.gather(*(read_node(c) for c in conns[:len(masters)]),
                                    *(read_facts(c) for c in conns[len(masters):]))
    finally:
        for c in conns:
            c.close()
    return list(live[:len(masters)]), list(live[len(masters):])


def _cluster_name(instance: str) -> str:
    name = re.sub(r"[^a-z0-9.-]+", "-", instance.lower()).strip("-.") or "discovered"
    try:
        return check_name(name)
    except ValueError:
        return "discovered"


def distinct_priorities(masters: list[tuple[str, str, int]], notes: list[str]) -> dict[str, int]:
    """(name, address, priority) → name: a priority of its own (the topology wants them
    distinct), in the order keepalived elects in — higher priority first, and between equal ones
    the higher address — so the topology elects the same holder. Unchanged where they are
    distinct already; each change is a note."""
    order = sorted(masters, key=lambda m: (m[2], ipaddress.ip_address(m[1])), reverse=True)
    wanted = [min(max(p, 1), 254) for _, _, p in order]
    for i in range(1, len(wanted)):  # strictly falling, each as close to its running value as that allows
        wanted[i] = min(wanted[i], wanted[i - 1] - 1)
    if wanted and wanted[-1] < 1:  # fell below 1: lift from the bottom (≤ 9 masters fit in 1-254)
        wanted[-1] = 1
        for i in range(len(wanted) - 2, -1, -1):
            wanted[i] = max(wanted[i], wanted[i + 1] + 1)
    out = {}
    for (name, _address, running), prio in zip(order, wanted):
        out[name] = prio
        if prio != running:
            why = ("255 is the address owner's" if running > 254 else
                   "a priority tie (keepalived then prefers the higher address), or one it made room for")
            notes.append(f"priority {running} → {prio} for {name}: {why}; the topology's priorities are distinct "
                         "and keep the order keepalived elects in")
    return out
