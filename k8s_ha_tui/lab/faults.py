"""Faults the lab can inject into a node, and how each one heals.

Daemons are found by the pid files their node keeps in its own /run (each node has its own PID
namespace, so those pids are the node's), never by name.
"""

from __future__ import annotations

from . import layout as L
from .layout import LabNode
from .network import ip
from .nodes import node_exec
from .proc import LabError

NFT_TABLE = "k8s_ha_lab"

KINDS = {
    "apiserver-down": "the kube-apiserver process dies (SIGKILL)",
    "apiserver-hang": "the kube-apiserver stops answering but keeps its socket (SIGSTOP)",
    "haproxy-down": "HAProxy dies (SIGKILL to its master and workers)",
    "keepalived-down": "keepalived dies (SIGKILL to all its processes: no goodbye advert)",
    "vrrp-drop": "the node stops sending and receiving VRRP (IP protocol 112); SSH keeps working",
    "offline": "the node drops off the network entirely (unplugged from the bridge)",
}
MASTER_ONLY = {"apiserver-down", "apiserver-hang", "haproxy-down", "keepalived-down"}
_SERVICE = {"apiserver-down": "kube-apiserver", "apiserver-hang": "kube-apiserver",
            "haproxy-down": "haproxy", "keepalived-down": "keepalived"}


def _signal_service(init: int, service: str, signal: str, group: bool) -> None:
    """Send a signal to a service's main pid (or its whole process group) inside the node."""
    target = '-- "-$pid"' if group else '"$pid"'
    script = (f'pf=/run/{service}.pid; [ -s "$pf" ] || {{ echo "{service} is not running" >&2; exit 1; }}; '
              f'pid=$(cat "$pf"); /bin/kill -s {signal} {target}')
    if signal == "KILL":  # return once it is gone (the node's init reaps it), not while it dies
        script += '; i=0; while [ -d "/proc/$pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ' \
                  '[ ! -d "/proc/$pid" ]'
    node_exec(init, ["sh", "-c", script])


def _systemctl(init: int, verb: str, service: str) -> None:
    node_exec(init, ["/usr/local/sbin/systemctl", verb, service], timeout=30)


def _nft(init: int, script: str) -> None:
    node_exec(init, ["nft", "-f", "-"], input=script)


def validate(node: LabNode, kind: str) -> None:
    if kind not in KINDS:
        raise LabError(f"unknown fault {kind!r}; choose one of {', '.join(KINDS)}")
    if kind in MASTER_ONLY and not node.is_master:
        raise LabError(f"{node.name} is a worker; {kind} applies to masters only")


def inject(node: LabNode, init: int, kind: str) -> None:
    validate(node, kind)
    if kind == "apiserver-down":
        _signal_service(init, "kube-apiserver", "KILL", group=False)
    elif kind == "apiserver-hang":
        _signal_service(init, "kube-apiserver", "STOP", group=False)
    elif kind in ("haproxy-down", "keepalived-down"):
        _signal_service(init, _SERVICE[kind], "KILL", group=True)
    elif kind == "vrrp-drop":
        _nft(init, f"""table inet {NFT_TABLE} {{
    chain input {{ type filter hook input priority 0; policy accept; ip protocol vrrp drop; }}
    chain output {{ type filter hook output priority 0; policy accept; ip protocol vrrp drop; }}
}}""")
    elif kind == "offline":
        # Like a cut cable behind the switch: the node keeps its link up and notices nothing,
        # everyone else stops hearing it.
        ip("link", "set", node.bridge_port, "nomaster", netns=L.BRIDGE_NETNS)


def heal(node: LabNode, init: int, kind: str) -> None:
    validate(node, kind)
    if kind == "apiserver-hang":
        _signal_service(init, "kube-apiserver", "CONT", group=False)
    elif kind in _SERVICE:
        _systemctl(init, "start", _SERVICE[kind])
    elif kind == "vrrp-drop":
        node_exec(init, ["nft", "delete", "table", "inet", NFT_TABLE], check=False)
    elif kind == "offline":
        ip("link", "set", node.bridge_port, "master", L.BRIDGE, netns=L.BRIDGE_NETNS)
