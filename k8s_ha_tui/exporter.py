"""Prometheus metrics for every cluster of the given topology files, from one process: a front
end beside the monitor and `status`, reading the same ClusterStatus snapshots.

One Collector per cluster polls in the background (asyncio); a scrape builds the metrics from
the latest snapshots and never waits for SSH. Names follow what dashboards already use — the
keepalived exporter's (gen2brain/keepalived_exporter) and HAProxy's own — with `cluster` and
`node` labels added; what only a view of the whole cluster can say is under `k8s_ha_`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector as PromCollector
from prometheus_client.registry import CollectorRegistry

from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.remote.apiserver import NOT_INSTALLED, UNKNOWN, UP
from k8s_ha_tui.remote.keepalived import STATS_NAMES
from k8s_ha_tui.remote.ssh import HostKeyPolicy
from k8s_ha_tui.status.diagnosis import diagnose
from k8s_ha_tui.status.model import ClusterStatus, NodeStatus
from k8s_ha_tui.status.poll import Collector

DEFAULT_LISTEN = "127.0.0.1:9651"  # next to the keepalived exporter's 9650
DEFAULT_INTERVAL = 5.0
RENDER_GAP_S = 0.05  # at least this between two renders of the page
VRRP_CODES = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}  # keepalived_vrrp_state, as the keepalived exporter
SERVER_STATES = ("UP", "DOWN", "MAINT", "DRAIN", "NOLB")  # haproxy_server_status{state}, as HAProxy's exporter
CHECK_STATES = ("HANA", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP", "L7TOUT", "L7RSP",
                "L7OK", "L7OKC", "L7STS", "PROCERR", "PROCTOUT", "PROCOK", "INI", "UNK")


@dataclass
class Watch:
    """One cluster as the exporter follows it: the latest snapshot and what only a history shows."""

    topo: Topology
    snap: ClusterStatus | None = None
    collect_seconds: float | None = None
    moves: int = 0
    last_move: float | None = None
    _last_holder: str | None = field(default=None, repr=False)
    _last_shape: tuple = field(default=(), repr=False)

    def seen(self, snap: ClusterStatus, collect_seconds: float | None = None) -> bool:
        """A new snapshot: a VIP move is a single holder other than the last single holder. True
        when who holds the VIP, who claims it or who is reachable changed: the page shows that
        at once, the rest once per interval."""
        if len(snap.holders) == 1:
            holder = snap.holders[0]
            if self._last_holder is not None and holder != self._last_holder:
                self.moves += 1
                self.last_move = snap.taken_at
            self._last_holder = holder
        self.snap = snap
        if collect_seconds is not None:
            self.collect_seconds = collect_seconds
        shape = (tuple(snap.holders), tuple(snap.claimants), tuple(snap.holders6), tuple(snap.claimants6),
                 tuple(n.reachable for n in (*snap.masters, *snap.workers)))
        changed, self._last_shape = shape != self._last_shape, shape
        return changed


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def families(watches: Iterable[Watch]) -> list[Metric]:
    """Every metric for every cluster (pure: a snapshot in, metric families out)."""
    node = ["cluster", "node"]
    server = ["cluster", "node", "proxy", "server", "master"]
    f = {
        "ka_up": _gauge("keepalived_up", "keepalived runs on the master (1) or not (0)", node),
        "ka_state": _gauge("keepalived_vrrp_state", "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT",
                           [*node, "iname", "intf", "vrid"]),
        **{name: CounterMetricFamily(f"keepalived_{name}", f"keepalived STATS: {group or key} {key}".strip(),
                                     labels=[*node, "iname"])
           for (group, key), name in STATS_NAMES.items()},
        "hp_status": _gauge("haproxy_server_status", "Server state as this HAProxy sees it (1 for the current one)",
                            [*server, "state"]),
        "hp_check": _gauge("haproxy_server_check_status", "Last health check status (1 for the current one)",
                           [*server, "state"]),
        "hp_fail": CounterMetricFamily("haproxy_server_check_failures", "Failed health checks", labels=server),
        "hp_active": _gauge("haproxy_backend_active_servers", "Active (up) servers of a backend",
                            ["cluster", "node", "proxy"]),
        "holders": _gauge("k8s_ha_vip_holders", "Masters holding the VIP of this family (the kernel's word)",
                          ["cluster", "family"]),
        "holds": _gauge("k8s_ha_vip_holder", "This master holds the VIP of this family", [*node, "family"]),
        "split": _gauge("k8s_ha_split_brain", "Two or more masters hold or claim the VIP of this family",
                        ["cluster", "family"]),
        "health": _gauge("k8s_ha_health", "0 healthy, 1 degraded, 2 critical (the rules of `status`)", ["cluster"]),
        "api": _gauge("k8s_ha_api_up", "The API answers through the VIP of this family, seen from this node",
                      [*node, "role", "family"]),
        "bootstrap": _gauge("k8s_ha_bootstrap", "1 while no master has a kube-apiserver yet (a first-time setup, "
                            "before kubeadm init)", ["cluster"]),
        "installed": _gauge("k8s_ha_apiserver_installed", "The master has a kube-apiserver (a manifest, a process "
                            "or a listener), whether or not it answers", node),
        "apiserver": _gauge("k8s_ha_apiserver_up", "The master's own kube-apiserver answers /readyz", node),
        "reachable": _gauge("k8s_ha_node_reachable", "The exporter reaches the node over SSH", [*node, "role"]),
        "prio": _gauge("k8s_ha_vrrp_effective_priority", "Effective VRRP priority of the VIP's instance", node),
        "maint": _gauge("k8s_ha_maintenance", "The master is in maintenance", node),
        "moves": CounterMetricFamily("k8s_ha_vip_moves", "Times the VIP moved to another master", labels=["cluster"]),
        "last_move": _gauge("k8s_ha_last_vip_move_timestamp_seconds", "When the VIP last moved", ["cluster"]),
        "duration": _gauge("k8s_ha_collect_duration_seconds", "The slowest node's last poll", ["cluster"]),
        "collected": _gauge("k8s_ha_last_collect_timestamp_seconds", "When the cluster was last collected",
                            ["cluster"]),
        "segment": _gauge("k8s_ha_vrrp_segment_advertiser_last_heard_timestamp_seconds",
                          "Every VRRP router the masters hear on their segment, by router id (the census): "
                          "when it was last heard", ["cluster", "vrid", "address", "priority", "ours"]),
        "foreign": _gauge("k8s_ha_vrrp_foreign_advertisers", "Routers on this cluster's router id that are not "
                          "its masters, or advertise other VIPs: a router id collision", ["cluster", "vrid"]),
        "diagnosis": _gauge("k8s_ha_diagnosis", "1 for each current diagnosis (node, cause code, severity): "
                            "`status` says the evidence and the next step", ["cluster", "node", "code", "severity"]),
    }
    for w in watches:
        _cluster(f, w)
    return list(f.values())


def _cluster(f: dict, w: Watch) -> None:
    c, snap = w.topo.name, w.snap
    f["moves"].add_metric([c], w.moves)
    if w.last_move is not None:
        f["last_move"].add_metric([c], w.last_move)
    if snap is None:  # nothing collected yet: the collect timestamp is absent, which alerts
        return
    f["collected"].add_metric([c], snap.taken_at)
    if w.collect_seconds is not None:
        f["duration"].add_metric([c], w.collect_seconds)
    vips = by_family(snap)
    for family, holders, split in vips:
        f["holders"].add_metric([c, family], len(holders))
        f["split"].add_metric([c, family], int(split))
    f["health"].add_metric([c], int(snap.health))
    f["bootstrap"].add_metric([c], int(snap.bootstrap))
    for d in diagnose(snap):
        f["diagnosis"].add_metric([c, d.node, d.code, d.severity], 1)
    foreign = snap.foreign_routers
    for a in snap.segment:
        f["segment"].add_metric([c, str(a.vrid), a.address, str(a.priority),
                                 "true" if a.vrid == snap.router_id and a not in foreign else "false"], a.last_heard)
    if snap.router_id is not None:
        f["foreign"].add_metric([c, str(snap.router_id)], len(foreign))
    for m in snap.masters:
        f["reachable"].add_metric([c, m.name, "master"], int(m.reachable))
        if not m.reachable:
            continue
        f["ka_up"].add_metric([c, m.name], int(m.keepalived == "active"))
        for family, holders, _split in vips:  # as the count: a holder whose word is older than another's claim waits
            f["holds"].add_metric([c, m.name, family], int(m.name in holders))
        f["maint"].add_metric([c, m.name], int(m.maintenance))
        if m.effective_priority is not None:
            f["prio"].add_metric([c, m.name], m.effective_priority)
        _api(f, c, snap, m, "master")
        if m.apiserver != UNKNOWN:
            f["installed"].add_metric([c, m.name], int(m.apiserver != NOT_INSTALLED))
            f["apiserver"].add_metric([c, m.name], int(m.apiserver == UP))
        for inst in m.instances:
            if inst.state in VRRP_CODES:
                f["ka_state"].add_metric([c, m.name, inst.name, inst.interface or "", str(inst.router_id or "")],
                                         VRRP_CODES[inst.state])
        for iname, counters in m.vrrp_stats:
            for name, value in counters:
                f[name].add_metric([c, m.name, iname], value)
        _haproxy(f, c, m)
    for wk in snap.workers:
        f["reachable"].add_metric([c, wk.name, "worker"], int(wk.reachable))
        if wk.reachable:
            _api(f, c, snap, wk, "worker")


def by_family(snap: ClusterStatus) -> list[tuple[str, list[str], bool]]:
    """(family, holders, split brain) for each VIP: 'ipv4' or 'ipv6', and a dual stack's vip6."""
    out = [("ipv6" if ":" in snap.vip else "ipv4", snap.holders, "the VIP" in snap.split_families)]
    if snap.vip6 is not None:
        out.append(("ipv6", snap.holders6, f"VIP6 {snap.vip6}" in snap.split_families))
    return out


def _api(f: dict, c: str, snap: ClusterStatus, n: NodeStatus, role: str) -> None:
    """The API through each VIP from this node, labelled with the VIP's family."""
    for family, up in (("ipv6" if ":" in snap.vip else "ipv4", n.api_via_vip), ("ipv6", n.api_via_vip6)):
        if up is not None:
            f["api"].add_metric([c, n.name, role, family], int(up))


def _haproxy(f: dict, c: str, m) -> None:
    for b in m.backends:
        labels = [c, m.name, b.backend, b.server, b.master or ""]
        current = b.status.split()[0] if b.status else ""
        for state in SERVER_STATES:
            f["hp_status"].add_metric([*labels, state], int(current == state))
        for state in CHECK_STATES:
            f["hp_check"].add_metric([*labels, state], int(b.check_status == state))
        if b.check_failures is not None:
            f["hp_fail"].add_metric(labels, b.check_failures)
    for proxy, active in m.proxies:
        f["hp_active"].add_metric([c, m.name, proxy], active)


class Metrics(PromCollector):
    """What prometheus_client asks on every scrape: the families of the latest snapshots."""

    def __init__(self, watches: list[Watch]):
        self.watches = watches

    def collect(self) -> Iterator[Metric]:
        yield from families(self.watches)


def parse_listen(text: str) -> tuple[str, int]:
    """'127.0.0.1:9651', ':9651' or '[::1]:9651' → (address, port); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{text!r} is not ADDRESS:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


class Page:
    """The /metrics page, rendered in the collecting loop once per interval and served as bytes:
    a scrape only copies them (measured: rendering 20 clusters takes ~80 ms of CPU, which the
    scrape would otherwise wait for, behind the SSH work, up to 0.9 s)."""

    def __init__(self, watches: list[Watch]):
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(Metrics(watches))
        self.body = b""

    def render(self) -> None:
        self.body = generate_latest(self.registry)

    def app(self, environ, start_response):
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only /metrics here\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(self.body)))])
        return [self.body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - the stdlib's name
        pass  # a scrape every few seconds is not news


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


def start_server(page: Page, listen: tuple[str, int]) -> _Server:
    host, port = listen
    server = make_server(host, port, page.app, _Server6 if ":" in host else _Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def serve(topologies: list[Topology], policies: list[HostKeyPolicy], listen: tuple[str, int],
                interval: float, started=lambda address: None) -> None:
    """Collect every cluster and serve /metrics until SIGTERM or SIGINT."""
    watches = [Watch(t) for t in topologies]
    page = Page(watches)
    page.render()
    server = start_server(page, listen)
    started(f"{listen[0]}:{server.server_port}")
    stop, changed = asyncio.Event(), asyncio.Event()

    def stop_now() -> None:
        stop.set()
        changed.set()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_now)

    def on_snapshot(snap: ClusterStatus, w: Watch, col: Collector) -> None:
        if w.seen(snap, col.poll_seconds):
            changed.set()
    collectors = []
    for w, topo, policy in zip(watches, topologies, policies):
        col = Collector(topo, policy, interval, stats=True)
        col.on_snapshot = lambda snap, w=w, col=col: on_snapshot(snap, w, col)
        collectors.append(col)
    tasks = [asyncio.ensure_future(c.run()) for c in collectors]
    try:
        while not stop.is_set():
            changed.clear()
            started = time.monotonic()
            page.render()
            spent = time.monotonic() - started
            with contextlib.suppress(TimeoutError):  # not wait_for: it may swallow a cancel (3.11)
                async with asyncio.timeout(interval):
                    await changed.wait()
            # a burst of changes (a VIP move answers on every master) is one render, and
            # rendering keeps to a fifth of a core however many clusters there are
            await asyncio.sleep(max(RENDER_GAP_S, 4 * spent))
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.shutdown()
