"""Names, addresses and paths of the lab. Everything the lab makes is named here, so that
`lab down` can find all of it again, also after a crash."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

SUBNET = ipaddress.ip_network("198.18.0.0/24")  # the benchmarking range: never a real network
ROOT_ADDRESS = "198.18.0.1"
# IPv6 (`lab up --family ipv6|dual`): a unique local prefix that reads like the IPv4 one, and
# each node's host number written alike (198.18.0.11 ↔ fd01:98:18::11).
SUBNET6 = ipaddress.IPv6Network("fd01:98:18::/64")
FAMILIES = ("ipv4", "ipv6", "dual")
VIP = "198.18.0.10"
MASTER_BASE = 11
WORKER_BASE = 21
MAX_MASTERS = 9
MAX_WORKERS = 20  # .21-.40
MAX_CLUSTERS = 4
CLUSTER_BLOCK = 60  # cluster c uses .(c-1)*60+10 (its VIP) to .(c-1)*60+40: 4 fit in the /24

NETNS_PREFIX = "k8sha-"
BRIDGE_NETNS = "k8sha-bridge"
BRIDGE = "br0"
ROOT_LINK = "k8sha0"  # the root namespace's end of the operator's veth
ROOT_PEER = "vroot"  # its other end, in the bridge namespace
NODE_LINK = "eth0"  # every node's interface, as on a plain server
APISERVER_PORT = 6443
ROUTER_ID = 51

DEFAULT_STATE_DIR = Path("/var/lib/k8s-ha-tui/lab")


def state_dir() -> Path:
    """Where the lab keeps its keys, node files and state (K8S_HA_TUI_LAB_DIR overrides)."""
    return Path(os.environ.get("K8S_HA_TUI_LAB_DIR", str(DEFAULT_STATE_DIR)))


def netns_of(name: str) -> str:
    """The network namespace of the lab node called `name`."""
    return f"{NETNS_PREFIX}{name}"


def cluster_name(cluster: int) -> str:
    return "lab" if cluster == 1 else f"lab{cluster}"


def six(address4: str) -> str:
    """The IPv6 twin of a lab IPv4 address: the same host number, written the same way."""
    host = int(ipaddress.IPv4Address(address4)) - int(SUBNET.network_address)
    return str(ipaddress.IPv6Address(f"{SUBNET6.network_address}{host}"))


ROOT_ADDRESS6 = six(ROOT_ADDRESS)


def cluster_vip(cluster: int) -> str:
    return str(SUBNET[10 + (cluster - 1) * CLUSTER_BLOCK])


def cluster_router_id(cluster: int) -> int:
    """Neighbours on one segment: each cluster its own virtual router id (51, 52, ...)."""
    return ROUTER_ID + cluster - 1


@dataclass(frozen=True)
class LabNode:
    name: str
    role: str  # "master" or "worker"
    index: int  # 1-based within its role
    address: str  # IPv4, or IPv6 in an ipv6 lab: the node's SSH and apiserver address
    cluster: int = 1  # which of the lab's clusters (1-4) it belongs to
    address6: str | None = None  # a dual-stack lab's second address

    @property
    def addresses(self) -> list[str]:
        return [self.address, *([self.address6] if self.address6 else [])]

    @property
    def netns(self) -> str:
        return netns_of(self.name)

    @property
    def bridge_port(self) -> str:
        """The node's veth end in the bridge namespace (≤ 15 characters)."""
        return f"v{self.role[0]}{self.index}" if self.cluster == 1 else f"v{self.cluster}{self.role[0]}{self.index}"

    @property
    def is_master(self) -> bool:
        return self.role == "master"


def lab_nodes(masters: int, workers: int, clusters: int = 1, family: str = "ipv4") -> list[LabNode]:
    """Every cluster's masters and workers; the first cluster's names and addresses are the ones
    the lab always had (k8s-master-01 at .11), the others' are prefixed (c2-master-01 at .71).
    `family` ipv6: the IPv6 twins instead; dual: both (address6)."""
    nodes = []
    for c in range(1, clusters + 1):
        prefix, base = ("k8s-", 0) if c == 1 else (f"c{c}-", (c - 1) * CLUSTER_BLOCK)
        for role, name, first, count in (("master", "master", MASTER_BASE, masters),
                                         ("worker", "node", WORKER_BASE, workers)):
            for i in range(1, count + 1):
                four = str(SUBNET[base + first + i - 1])
                address = six(four) if family == "ipv6" else four
                address6 = six(four) if family == "dual" else None
                nodes.append(LabNode(f"{prefix}{name}-{i:02d}", role, i, address, c, address6))
    return nodes


@dataclass(frozen=True)
class LabPaths:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def topology(self) -> Path:
        return self.root / "topology.yaml"

    def topology_of(self, cluster: int) -> Path:
        return self.topology if cluster == 1 else self.root / f"topology-{cluster_name(cluster)}.yaml"

    @property
    def client_key(self) -> Path:
        return self.root / "ssh" / "id_ed25519"

    @property
    def authorized_keys(self) -> Path:
        return self.root / "ssh" / "authorized_keys"

    @property
    def known_hosts(self) -> Path:
        return self.root / "ssh" / "known_hosts"

    @property
    def tls_cert(self) -> Path:
        return self.root / "tls" / "apiserver.crt"

    @property
    def tls_key(self) -> Path:
        return self.root / "tls" / "apiserver.key"

    def node(self, name: str) -> Path:
        return self.root / "nodes" / name

    def log(self, name: str) -> Path:
        return self.node(name) / "var" / "log" / "node.log"
