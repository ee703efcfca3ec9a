"""Bring the whole lab up, take it down, say how it is, inject and heal faults."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from k8s_ha_tui.lab import faults, kubeadm, network, nodes
from k8s_ha_tui.lab import layout as L
from k8s_ha_tui.lab.layout import LabNode, LabPaths
from k8s_ha_tui.lab.proc import LabError, alive, run
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.remote.apiserver import readyz_from_here

REQUIRED_TOOLS = {
    "ip": "iproute2", "keepalived": "keepalived", "haproxy": "haproxy", "sshd": "openssh-server",
    "ssh-keygen": "openssh-client", "openssl": "openssl", "nsenter": "util-linux",
    "unshare": "util-linux", "nft": "nftables", "curl": "curl", "kill": "procps", "sudo": "sudo",
    "tcpdump": "tcpdump",
}
SETUP_HINT = "run: sudo scripts/setup.sh"


@dataclass
class LabState:
    """What `lab up` made, saved to state.json so later commands (and `lab down`) find it."""

    masters: int
    workers: int
    pids: dict[str, dict[str, int]] = field(default_factory=dict)  # node → unshare/init pids
    faults: dict[str, list[str]] = field(default_factory=dict)
    loops: dict[str, int] = field(default_factory=dict)  # node → process group of its pause loop
    bare: bool = False  # built without apiservers (a first-time setup: lab kubeadm adds them)
    made: list[str] = field(default_factory=list)  # host folders made as mount points, removed by down
    clusters: int = 1  # neighbours on the same bridge and subnet, each with its own VIP and router id
    family: str = "ipv4"  # the nodes' addresses and the VIPs: ipv4, ipv6 or dual (one VIP of each)

    def nodes(self) -> list[LabNode]:
        return L.lab_nodes(self.masters, self.workers, self.clusters, self.family)

    def topologies(self, paths: LabPaths) -> list[Path]:
        return [paths.topology_of(c) for c in range(1, self.clusters + 1)]

    def node(self, name: str) -> LabNode:
        for n in self.nodes():
            if n.name == name:
                return n
        raise LabError(f"no lab node named {name!r}; the lab has {', '.join(n.name for n in self.nodes())}")

    def init(self, name: str) -> int:
        return self.pids[name]["init"]

    def save(self, paths: LabPaths) -> None:
        tp.atomic_write(paths.state_file, json.dumps(self.__dict__, indent=2), mode=0o600)

    @classmethod
    def load(cls, paths: LabPaths) -> LabState | None:
        try:
            return cls(**json.loads(paths.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def lab_paths() -> LabPaths:
    return LabPaths(L.state_dir())


# --- checks before anything is made ----------------------------------------------------------

def preflight() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, mounts): run it with sudo")
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items()
                      if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin")})
    if missing:
        raise LabError(f"missing Debian packages: {' '.join(missing)}; {SETUP_HINT}")
    network.check_netns_support()
    root = L.state_dir().resolve()
    if root.is_relative_to("/tmp") or root.is_relative_to("/run"):
        raise LabError(f"lab folder {root}: nodes cover /tmp and /run with their own; choose another place")


def _check_sizes(masters: int, workers: int, clusters: int = 1, family: str = "ipv4") -> None:
    if family not in L.FAMILIES:
        raise LabError(f"--family {family}: choose {', '.join(L.FAMILIES)}")
    if not 1 <= clusters <= L.MAX_CLUSTERS:
        raise LabError(f"--clusters {clusters}: choose 1-{L.MAX_CLUSTERS}")
    if not 1 <= masters <= L.MAX_MASTERS:
        raise LabError(f"--masters {masters}: choose 1-{L.MAX_MASTERS}")
    if not 0 <= workers <= L.MAX_WORKERS:
        raise LabError(f"--workers {workers}: choose 0-{L.MAX_WORKERS}")


# --- the pieces of `lab up` ------------------------------------------------------------------

def _make_keys_and_cert(paths: LabPaths, node_list: list[LabNode]) -> None:
    (paths.root / "ssh").mkdir(parents=True, exist_ok=True, mode=0o700)
    (paths.root / "tls").mkdir(parents=True, exist_ok=True, mode=0o700)
    if not paths.client_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "k8s-ha-tui-lab", "-f", str(paths.client_key)])
    tp.atomic_write(paths.authorized_keys, Path(f"{paths.client_key}.pub").read_text(), mode=0o600)
    vips = {f"IP:{vip}" for n in node_list for vip in cluster_vips(n.cluster, node_list[0])}
    sans = ",".join([*sorted(vips), "DNS:kubernetes", "DNS:localhost", "IP:127.0.0.1"]
                    + [f"IP:{a}" for n in node_list if n.is_master for a in n.addresses])
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "30", "-subj", "/CN=kube-apiserver", "-addext", f"subjectAltName={sans}",
         "-keyout", str(paths.tls_key), "-out", str(paths.tls_cert)])
    paths.tls_key.chmod(0o600)


def cluster_vips(cluster: int, like: LabNode) -> list[str]:
    """The cluster's VIP(s), of the families its nodes (`like` one of them) have."""
    four = L.cluster_vip(cluster)
    return [four if "." in like.address else L.six(four), *([L.six(four)] if like.address6 else [])]


def lab_topology(state: LabState, paths: LabPaths, cluster: int = 1) -> tp.Topology:
    node_list = [n for n in state.nodes() if n.cluster == cluster]
    vips = cluster_vips(cluster, node_list[0])

    def entry(n: LabNode) -> dict:
        return {"name": n.name, "address": n.address, **({"address6": n.address6} if n.address6 else {})}
    return tp.topology_from_dict({
        "name": L.cluster_name(cluster),
        "vip": vips[0],
        "prefix": L.SUBNET.prefixlen if "." in vips[0] else L.SUBNET6.prefixlen,
        **({"vip6": vips[1], "prefix6": L.SUBNET6.prefixlen} if len(vips) > 1 else {}),
        "interface": L.NODE_LINK,
        "apiserver_port": L.APISERVER_PORT,
        "masters": [entry(n) for n in node_list if n.is_master],
        "workers": [entry(n) for n in node_list if not n.is_master],
        "vrrp": {"router_id": L.cluster_router_id(cluster)},
        "ssh": {"user": "root", "port": 22, "identity_file": str(paths.client_key),
                "known_hosts": str(paths.known_hosts), "become": "none"},
    }, "lab topology")


def apiserver_ready(address: str, port: int = L.APISERVER_PORT, timeout: float = 1.0,
                    connect_timeout: float | None = None) -> bool:
    """GET /readyz over TLS answers 200 (the lab's certificate is self-signed: no verification)."""
    return readyz_from_here(address, port, timeout, connect_timeout) is not None


def healthy(state: LabState) -> bool:
    """Every node's init alive and its namespace present, and the root link up."""
    if not network.link_exists(L.ROOT_LINK):
        return False
    present = set(network.lab_namespaces())
    for n in state.nodes():
        pid = state.pids.get(n.name, {}).get("init")
        if n.netns not in present or pid is None or not alive(pid):
            return False
    return L.BRIDGE_NETNS in present


# --- commands --------------------------------------------------------------------------------

def up(masters: int = 3, workers: int = 3, log=print, bare: bool = False, clusters: int = 1,
       family: str = "ipv4") -> Path:
    """Build the lab (or keep a healthy one); returns the (first cluster's) topology file's path.
    `bare`: masters without any kube-apiserver, as fresh machines before `kubeadm init`.
    `clusters`: that many clusters on the same bridge and subnet (`lab_topologies` lists them).
    `family`: the nodes' addresses and VIPs, ipv4, ipv6 or dual."""
    _check_sizes(masters, workers, clusters, family)
    preflight()
    paths = lab_paths()
    state = LabState.load(paths)
    if state and healthy(state):
        if (state.masters, state.workers, state.clusters, state.family) != (masters, workers, clusters, family):
            raise LabError(f"a lab with {state.clusters} cluster(s) of {state.masters} masters and {state.workers} "
                           f"workers ({state.family}) is up; run 'k8s-ha-tui lab down' first")
        with_api = [n.name for n in state.nodes() if n.is_master and kubeadm.has_manifest(paths, n)]
        if bare and with_api:
            raise LabError(f"a lab is up and {', '.join(with_api)} run(s) an apiserver; run 'k8s-ha-tui lab down' "
                           "first, or 'k8s-ha-tui lab kubeadm NODE reset' on each")
        log(f"lab already up: {state.masters} masters, {state.workers} workers")
        return paths.topology
    if state or network.lab_namespaces() or network.link_exists(L.ROOT_LINK):
        log("removing the remains of an earlier lab")
        down(log=lambda _msg: None)
    conflicts = network.subnet_conflicts(family)
    if conflicts:
        subnets = {"ipv4": f"{L.SUBNET}", "ipv6": f"{L.SUBNET6}"}.get(family, f"{L.SUBNET} or {L.SUBNET6}")
        raise LabError(f"{subnets} is already in use here ({'; '.join(conflicts)}); the lab will not touch it")

    state = LabState(masters, workers, bare=bare, clusters=clusters, family=family)
    try:
        _build(state, paths, log)
    except BaseException:
        down(log=lambda _msg: None)
        raise
    return paths.topology


def _build(state: LabState, paths: LabPaths, log) -> None:
    started = time.monotonic()
    node_list = state.nodes()
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths.root.chmod(0o700)
    state.save(paths)  # from here on, `lab down` knows what to remove
    for _rel, target in nodes.BIND_MOUNTS:  # a mount point the host lacks (/etc/kubernetes, mostly)
        if not Path(target).exists():
            Path(target).mkdir(mode=0o755)
            state.made.append(target)
            state.save(paths)
    _make_keys_and_cert(paths, node_list)
    for n in node_list:
        nodes.prepare(n, paths)
    network.build(node_list, state.family)
    subnets, you = {"ipv4": (f"{L.SUBNET}", L.ROOT_ADDRESS), "ipv6": (f"{L.SUBNET6}", L.ROOT_ADDRESS6)}.get(
        state.family, (f"{L.SUBNET} and {L.SUBNET6}", f"{L.ROOT_ADDRESS} and {L.ROOT_ADDRESS6}"))
    log(f"network: {subnets} on bridge {L.BRIDGE} in {L.BRIDGE_NETNS}; you are {you} on {L.ROOT_LINK}")
    unshare_pids = {n.name: nodes.start(n, paths) for n in node_list}
    for n in node_list:
        init = nodes.wait_ready(n, unshare_pids[n.name], paths)
        state.pids[n.name] = {"unshare": unshare_pids[n.name], "init": init}
    state.save(paths)
    tp.atomic_write(paths.known_hosts, "".join(nodes.host_key_line(n, paths) for n in node_list), mode=0o644)
    if not state.bare:  # masters as `kubeadm init` and the joins leave them
        for n in node_list:
            if n.is_master:
                kubeadm.install(paths, n, state.init(n.name), apiserver_ready)
    for c, path in enumerate(state.topologies(paths), start=1):
        tp.save_topology(lab_topology(state, paths, c), path)
    log("nodes: " + ", ".join(" ".join([n.name, *n.addresses]) for n in node_list))
    log(f"ssh: ssh -i {paths.client_key} -o UserKnownHostsFile={paths.known_hosts} root@{node_list[0].address}")
    bare = "; no kube-apiserver anywhere yet (lab kubeadm NODE init|join adds them)" if state.bare else ""
    log(f"lab up in {time.monotonic() - started:.1f} s; keepalived and haproxy wait for a deploy{bare}")


def down(log=print) -> None:
    """Remove everything the lab made; fine with no lab, a half-built one, or killed processes."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root: run it with sudo")
    removed = network.teardown()
    paths = lab_paths()
    state = LabState.load(paths)
    for made in state.made if state else []:
        try:
            Path(made).rmdir()  # only while empty: the nodes wrote into their own folders
            removed.append(f"removed {made}")
        except OSError:
            pass
    if paths.root.exists():
        shutil.rmtree(paths.root)
        removed.append(f"removed {paths.root}")
        try:
            paths.root.parent.rmdir()  # /var/lib/k8s-ha-tui, if the lab made it and nothing else is there
        except OSError:
            pass
    log("lab down: " + ", ".join(removed) if removed else "lab down: there was no lab")


def _require_state() -> tuple[LabState, LabPaths]:
    paths = lab_paths()
    state = LabState.load(paths)
    if state is None or not healthy(state):
        raise LabError("the lab is not up; run 'sudo k8s-ha-tui lab up'")
    return state, paths


def _service_running(init: int, service: str) -> bool:
    """Reads the node's own /run and /proc through its init's root: no process is started."""
    root = Path(f"/proc/{init}/root")
    try:
        pid = int((root / "run" / f"{service}.pid").read_text().strip())
        stat = (root / "proc" / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _node_addresses(node: LabNode) -> list[str]:
    """Its IPv4 and global IPv6 addresses (not the link-local one every IPv6 interface has)."""
    res = network.ip("-j", "addr", "show", "dev", L.NODE_LINK, netns=node.netns, check=False)
    try:
        return [f"{a['local']}/{a['prefixlen']}" for link in json.loads(res.stdout or "[]")
                for a in link.get("addr_info", []) if a.get("scope") != "link"]
    except (ValueError, KeyError):
        return []


def status() -> dict:
    paths = lab_paths()
    state = LabState.load(paths)
    if state is None:
        return {"up": False, "namespaces": network.lab_namespaces(), "nodes": []}
    out_nodes = []
    for n in state.nodes():
        init = state.pids.get(n.name, {}).get("init")
        running = init is not None and alive(init)
        services = ("sshd",) + (("kube-apiserver", "keepalived", "haproxy") if n.is_master else ())
        out_nodes.append({
            "name": n.name, "role": n.role, "address": n.address, "netns": n.netns,
            "running": running,
            "addresses": _node_addresses(n) if running else [],
            "daemons": {s: running and (s == "sshd" or (init is not None and _service_running(init, s)))
                        for s in services},
            "faults": state.faults.get(n.name, []),
            **({"kubeadm": kubeadm.has_manifest(paths, n)} if n.is_master else {}),
        })
    first = state.nodes()[0]
    clusters = [{"name": L.cluster_name(c), "vip": cluster_vips(c, first)[0], "router_id": L.cluster_router_id(c),
                 **({"vip6": cluster_vips(c, first)[1]} if first.address6 else {}),
                 "topology": str(path)} for c, path in enumerate(state.topologies(paths), start=1)]
    subnet = {"ipv4": str(L.SUBNET), "ipv6": str(L.SUBNET6)}.get(state.family, f"{L.SUBNET} {L.SUBNET6}")
    return {"up": healthy(state), "family": state.family, "subnet": subnet, "vip": clusters[0]["vip"],
            "topology": str(paths.topology), "clusters": clusters, "namespaces": network.lab_namespaces(),
            "nodes": out_nodes}


def lab_topologies() -> list[Path]:
    """The topology file of every cluster of the running lab, the first cluster's first."""
    state, paths = _require_state()
    return state.topologies(paths)


def fault(name: str, kind: str, value: float | None = None, every: float | None = None) -> str:
    """Inject a fault; `value` for those that take a number (vrrp-loss %, pause ms), `every` for a
    repeating pause. A one-off pause or an ssh-drop is over when this returns: nothing is left to heal."""
    state, paths = _require_state()
    node = state.node(name)
    faults.validate(node, kind)
    faults.check_value(kind, value, every)
    what = f"{kind} {value:g}" if value is not None else kind
    if kind == "pause" and every is None:
        assert value is not None
        faults.pause_once(state.init(name), value)
        return f"{name}: keepalived was paused for {value:g} ms"
    if kind == "ssh-drop":
        return f"{name}: {faults.drop_ssh(state.init(name))} SSH connection(s) dropped"
    if kind in state.faults.get(name, []):
        if kind not in faults.VALUES:
            return f"{name}: {kind} is already in effect"
        heal(name, kind)  # a new value replaces the old one
        state, paths = _require_state()
    if kind == "pause":
        assert value is not None and every is not None
        state.loops[name] = faults.start_pause_loop(state.init(name), value, every)
        what += f" every {every:g} s"
    else:
        faults.inject(node, state.init(name), kind, value)
    state.faults.setdefault(name, []).append(kind)
    state.save(paths)
    return f"{name}: {what}: {faults.KINDS[kind]}"


def heal(name: str, kind: str | None = None) -> str:
    state, paths = _require_state()
    node = state.node(name)
    active = state.faults.get(name, [])
    if kind is not None:
        faults.validate(node, kind)
    todo = [kind] if kind else list(active)
    # The network first: the rest may need the node reachable.
    todo.sort(key=lambda k: k != "offline")
    for k in todo:
        faults.heal(node, state.init(name), k, state.loops.pop(name, None) if k == "pause" else None)
        if k in active:
            active.remove(k)
    state.faults[name] = active
    state.save(paths)
    return f"{name}: healed {', '.join(todo)}" if todo else f"{name}: no faults to heal"


def install_handmade() -> str:
    """A hand-made keepalived + HAProxy on every master (lab/handmade.py), replacing ours."""
    from k8s_ha_tui.lab import handmade

    state, _ = _require_state()
    for c in range(1, state.clusters + 1):
        ours = [n for n in state.nodes() if n.is_master and n.cluster == c]
        handmade.install(ours, {m.name: state.init(m.name) for m in ours}, c)
    first = [n for n in state.nodes() if n.is_master and n.cluster == 1]
    others = " (the next cluster's +1, and so on)" if state.clusters > 1 else ""
    return (f"hand-made keepalived + HAProxy on every master: VRRPv2, unicast, PASS auth, "
            f"router id {handmade.ROUTER_ID}{others}, priorities {'/'.join(map(str, handmade.PRIORITIES[:len(first)]))}, "
            f"frontend kube_api on :{handmade.FRONTEND_PORT}, servers {', '.join(handmade.SERVER_NAMES[:len(first)])}. "
            f"Try: k8s-ha-tui discover --masters {','.join(m.address for m in first)} ...")


def shell_command(name: str) -> list[str]:
    state, _ = _require_state()
    state.node(name)
    return nodes.enter_command(state.init(name), ["env", f"PS1=[lab {name}] \\w# ", "bash", "--norc", "-i"])


def run_kubeadm(name: str, verb: str) -> str:
    """`lab kubeadm NODE init|join|reset`: what kubeadm would do to that master, for our purposes."""
    state, paths = _require_state()
    node = state.node(name)
    if not node.is_master:
        raise LabError(f"{name} is a worker; kubeadm {verb} --control-plane applies to masters")
    topo = tp.load_topology(paths.topology_of(node.cluster))
    endpoint = f"{topo.vip}:{topo.frontend_port}"
    masters = [n for n in state.nodes() if n.is_master and n.cluster == node.cluster]
    why = kubeadm.refusal(verb, node, masters, paths, verb == "join" and
                          apiserver_ready(topo.vip, topo.frontend_port, timeout=2), endpoint)
    if why:
        raise LabError(why)
    if verb == "reset":
        kubeadm.reset(paths, node, state.init(name))
        return f"{name}: kube-apiserver stopped and its manifest removed (as kubeadm reset)"
    took = kubeadm.install(paths, node, state.init(name), apiserver_ready)
    return (f"{name}: wrote {kubeadm.PATHS.apiserver_manifest} and started kube-apiserver; /readyz answers on "
            f"{node.address}:{L.APISERVER_PORT} after {took:.2f} s")
