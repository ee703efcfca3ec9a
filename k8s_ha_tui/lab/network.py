"""The lab's network: a bridge in a namespace of its own, one namespace per node, and one veth
into the root namespace so the operator's shell reaches 198.18.0.0/24."""

from __future__ import annotations

import ipaddress
import json

from k8s_ha_tui.lab import layout as L
from k8s_ha_tui.lab.layout import LabNode
from k8s_ha_tui.lab.proc import LabError, run, stop_pids, wait_until


def ip(*args: str, netns: str | None = None, check: bool = True):
    return run(["ip", *(["-n", netns] if netns else []), *args], check=check)


def subnet_conflicts(family: str = "ipv4") -> list[str]:
    """Routes or addresses in the root namespace that overlap the lab subnet(s) of `family` and
    are not the lab's."""
    found = []
    for flag, subnet in (("-4", L.SUBNET), ("-6", L.SUBNET6)):
        if family != "dual" and flag != {"ipv4": "-4", "ipv6": "-6"}[family]:
            continue
        routes = json.loads(run(["ip", "-j", flag, "route", "show", "table", "all"]).stdout or "[]")
        for r in routes:
            dst = r.get("dst", "")
            if dst in ("", "default") or r.get("dev") == L.ROOT_LINK or r.get("type") in ("local", "broadcast"):
                continue
            try:
                net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/{subnet.max_prefixlen}", strict=False)
            except ValueError:
                continue
            if net.overlaps(subnet):
                found.append(f"route {dst} dev {r.get('dev', '?')}")
        addrs = json.loads(run(["ip", "-j", flag, "addr", "show"]).stdout or "[]")
        for link in addrs:
            if link.get("ifname") == L.ROOT_LINK:
                continue
            for a in link.get("addr_info", []):
                if ipaddress.ip_address(a["local"]) in subnet:
                    found.append(f"address {a['local']} on {link.get('ifname')}")
    return found


def _add_address(address: str, netns: str | None, dev: str) -> None:
    """An IPv6 one without duplicate address detection: on the lab's own bridge nobody else can
    have it, and a tentative address would hold sshd and keepalived back for a second or two."""
    if ":" in address:
        ip("addr", "add", f"{address}/{L.SUBNET6.prefixlen}", "dev", dev, "nodad", netns=netns)
    else:
        ip("addr", "add", f"{address}/{L.SUBNET.prefixlen}", "dev", dev, netns=netns)


def lab_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(L.NETNS_PREFIX)]


def link_exists(name: str, netns: str | None = None) -> bool:
    return ip("link", "show", "dev", name, netns=netns, check=False).returncode == 0


def build(nodes: list[LabNode], family: str = "ipv4") -> None:
    """Namespaces, bridge, veths and addresses; nodes get eth0 with their address(es)."""
    run(["ip", "netns", "add", L.BRIDGE_NETNS])
    ip("link", "add", L.BRIDGE, "type", "bridge", netns=L.BRIDGE_NETNS)
    ip("link", "set", L.BRIDGE, "up", netns=L.BRIDGE_NETNS)
    ip("link", "add", L.ROOT_LINK, "type", "veth", "peer", "name", L.ROOT_PEER, "netns", L.BRIDGE_NETNS)
    ip("link", "set", L.ROOT_PEER, "master", L.BRIDGE, "up", netns=L.BRIDGE_NETNS)
    for address in {"ipv4": [L.ROOT_ADDRESS], "ipv6": [L.ROOT_ADDRESS6]}.get(family, [L.ROOT_ADDRESS, L.ROOT_ADDRESS6]):
        _add_address(address, None, L.ROOT_LINK)
    ip("link", "set", L.ROOT_LINK, "up")
    for node in nodes:
        run(["ip", "netns", "add", node.netns])
        ip("link", "set", "lo", "up", netns=node.netns)
        ip("link", "add", L.NODE_LINK, "netns", node.netns, "type", "veth",
           "peer", "name", node.bridge_port, "netns", L.BRIDGE_NETNS, netns=L.BRIDGE_NETNS)
        ip("link", "set", node.bridge_port, "master", L.BRIDGE, "up", netns=L.BRIDGE_NETNS)
        for address in node.addresses:
            _add_address(address, node.netns, L.NODE_LINK)
        ip("link", "set", L.NODE_LINK, "up", netns=node.netns)


def netns_pids(netns: str) -> list[int]:
    res = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def teardown() -> list[str]:
    """Stop every process inside the lab's namespaces, then remove namespaces and links.

    The processes are found by the namespace they run in, which only the lab creates, never by
    name. Returns what was removed, for the report."""
    removed = []
    namespaces = lab_namespaces()
    pids = sorted({p for ns in namespaces for p in netns_pids(ns)})
    if pids:
        stop_pids(pids)
        removed.append(f"stopped {len(pids)} processes")
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
    if namespaces:
        removed.append(f"deleted {len(namespaces)} namespaces")
    if link_exists(L.ROOT_LINK):
        ip("link", "del", L.ROOT_LINK, check=False)
        removed.append(f"deleted link {L.ROOT_LINK}")
    # Namespaces are freed asynchronously; wait until the kernel has let the links go.
    wait_until(lambda: not link_exists(L.ROOT_LINK) and not lab_namespaces(), 15,
               "the lab's namespaces and links to disappear")
    return removed


def check_netns_support() -> None:
    res = run(["ip", "netns", "list"], check=False)
    if res.returncode != 0:
        raise LabError(f"network namespaces are not available here: {res.stderr.strip()}")
