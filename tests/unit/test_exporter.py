"""The exporter's metrics from synthetic snapshots (parsed back with prometheus_client's own
parser), and the alert rules proven with the real promtool: each fires and clears."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from k8s_ha_tui import exporter
from k8s_ha_tui.remote.keepalived import RunningInstance, keepalived_stats
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, MasterStatus, WorkerStatus
from k8s_ha_tui.wizard import defaults_topology

FIX = Path(__file__).parent.parent / "fixtures" / "nodes"
PROM = Path(__file__).parent.parent.parent / "examples" / "prometheus"
TOPO = defaults_topology()


def master(i: int, **kw) -> MasterStatus:
    m = TOPO.masters[i]
    stats = keepalived_stats((FIX / "keepalived.stats").read_text())
    base = dict(reachable=True, keepalived="active", haproxy="active", vrrp_state="BACKUP", effective_priority=150 - i,
                api_via_vip=True, instances=(RunningInstance("VI_51", state="BACKUP", router_id=51, interface="ens3"),),
                vrrp_stats=tuple((k, tuple(sorted(v.items()))) for k, v in stats.items()),
                backends=(BackendServer("kube", "cp-a", "DOWN", "L4CON", 1, 5, "10.0.3.11:6443", TOPO.masters[0].name, 7),
                          BackendServer("kube", "cp-b", "UP", "L7OK", 1, 5, "10.0.3.12:6443", TOPO.masters[1].name, 0)),
                proxies=(("kube", 1),))
    base.update(kw)
    return MasterStatus(name=m.name, address=m.address, **base)


def scrape(*watches: exporter.Watch) -> dict:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter.Metrics(list(watches)))
    text = generate_latest(registry).decode()
    return {s.name + str(sorted(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples[name + str(sorted(labels.items()))]


def test_metrics_of_a_cluster_under_the_names_dashboards_use():
    w = exporter.Watch(TOPO)
    holder = master(0, vrrp_state="MASTER", holds_vip=True,
                    instances=(RunningInstance("VI_51", state="MASTER", router_id=51, interface="ens3"),))
    snap = ClusterStatus("k8s", "10.0.3.10", 8443, 1000.0, (holder, master(1), MasterStatus("k8s-master-03", "x", False)),
                         (WorkerStatus("w1", "10.0.3.21", True, api_via_vip=False),))
    w.seen(snap, 0.25)
    s = scrape(w)
    c, m1 = TOPO.name, "k8s-master-01"
    assert value(s, "keepalived_vrrp_state", cluster=c, node=m1, iname="VI_51", intf="ens3", vrid="51") == 2
    assert value(s, "keepalived_up", cluster=c, node=m1) == 1
    assert value(s, "keepalived_advertisements_sent_total", cluster=c, node=m1, iname="VI_51") > 0
    assert value(s, "keepalived_become_master_total", cluster=c, node=m1, iname="VI_51") == 1
    down = dict(cluster=c, node=m1, proxy="kube", server="cp-a", master=m1)
    assert value(s, "haproxy_server_status", **down, state="DOWN") == 1
    assert value(s, "haproxy_server_status", **down, state="UP") == 0
    assert value(s, "haproxy_server_check_status", **down, state="L4CON") == 1
    assert value(s, "haproxy_server_check_failures_total", **down) == 7
    assert value(s, "haproxy_backend_active_servers", cluster=c, node=m1, proxy="kube") == 1
    assert value(s, "k8s_ha_vip_holders", cluster=c, family="ipv4") == 1
    assert value(s, "k8s_ha_split_brain", cluster=c, family="ipv4") == 0
    assert value(s, "k8s_ha_health", cluster=c) == 1  # an unreachable master and a backend down: degraded
    assert value(s, "k8s_ha_node_reachable", cluster=c, node="k8s-master-03", role="master") == 0
    assert value(s, "k8s_ha_api_up", cluster=c, node="w1", role="worker", family="ipv4") == 0
    assert value(s, "k8s_ha_vrrp_effective_priority", cluster=c, node=m1) == 150
    assert value(s, "k8s_ha_collect_duration_seconds", cluster=c) == 0.25
    assert value(s, "k8s_ha_last_collect_timestamp_seconds", cluster=c) == 1000.0
    assert value(s, "k8s_ha_diagnosis", cluster=c, node="k8s-master-03", code="unreachable", severity="warning") == 1


def test_vip_moves_are_counted_from_snapshots():
    w = exporter.Watch(TOPO)

    def snap(t: float, *holders: int) -> ClusterStatus:
        return ClusterStatus("k8s", "10.0.3.10", 8443, t, tuple(master(i, holds_vip=i in holders) for i in range(3)))
    for t, holders in ((1, (0,)), (2, (0,)), (3, ()), (4, (1,)), (5, (0, 1)), (6, (1,)), (7, (2,))):
        w.seen(snap(t, *holders))
    s = scrape(w)
    assert value(s, "k8s_ha_vip_moves_total", cluster=TOPO.name) == 2  # 0 → 1 (through nobody), 1 → 2
    assert value(s, "k8s_ha_last_vip_move_timestamp_seconds", cluster=TOPO.name) == 7
    assert value(s, "k8s_ha_split_brain", cluster=TOPO.name, family="ipv4") == 0


def test_a_holder_whose_word_is_older_than_its_successors_claim_is_not_exported_as_holding():
    w = exporter.Watch(TOPO)
    gone = master(0, vrrp_state="MASTER", holds_vip=True, seen_at=10.0, vip_seen_at=10.0)
    new = master(1, vrrp_state="MASTER", holds_vip=True, seen_at=12.1, vip_seen_at=12.0, vip_since=12.0, master_since=12.1)
    w.seen(ClusterStatus("k8s", "10.0.3.10", 8443, 12.2, (gone, new, master(2))))
    s = scrape(w)
    c = TOPO.name
    assert [value(s, "k8s_ha_vip_holder", cluster=c, node=m.name, family="ipv4") for m in TOPO.masters] == [0, 1, 0]
    assert value(s, "k8s_ha_vip_holders", cluster=c, family="ipv4") == 1
    assert value(s, "k8s_ha_split_brain", cluster=c, family="ipv4") == 0


def test_a_dual_stack_cluster_is_exported_per_family():
    """Each VIP's holders, split brain and the API through it carry the VIP's family; a split
    brain of the IPv6 VIP alone is that family's."""
    w = exporter.Watch(TOPO)
    both = master(0, vrrp_state="MASTER", holds_vip=True, holds_vip6=True, vrrp_state6="MASTER", api_via_vip=True,
                  api_via_vip6=False)
    six = master(1, holds_vip6=True, vrrp_state6="MASTER")
    w.seen(ClusterStatus("k8s", "10.0.3.10", 8443, 5.0, (both, six, master(2)), vip6="fd00::10"))
    s = scrape(w)
    c, m1 = TOPO.name, TOPO.masters[0].name
    assert [value(s, "k8s_ha_vip_holders", cluster=c, family=f) for f in ("ipv4", "ipv6")] == [1, 2]
    assert [value(s, "k8s_ha_split_brain", cluster=c, family=f) for f in ("ipv4", "ipv6")] == [0, 1]
    assert [value(s, "k8s_ha_vip_holder", cluster=c, node=TOPO.masters[1].name, family=f)
            for f in ("ipv4", "ipv6")] == [0, 1]
    assert [value(s, "k8s_ha_api_up", cluster=c, node=m1, role="master", family=f) for f in ("ipv4", "ipv6")] == [1, 0]


def test_a_change_of_holder_is_on_the_page_at_once_not_at_the_next_interval(monkeypatch):
    """The page is rendered again as soon as who holds the VIP changes (the soak scraped a holder
    or reachability up to an interval late); the interval here is 60 s."""
    second_holder = threading.Event()

    class Collector:  # a cluster whose VIP moves once, 0.2 s after the first snapshot
        def __init__(self, *_a, **_kw) -> None:
            self.poll_seconds = 0.1

        async def run(self) -> None:
            def snap(holder: int) -> ClusterStatus:
                return ClusterStatus("k8s", "10.0.3.10", 8443, time.time(),
                                     tuple(master(i, holds_vip=i == holder) for i in range(3)))
            self.on_snapshot(snap(0))
            await asyncio.sleep(0.2)  # the cluster's own pace (simulated), not synchronisation
            self.on_snapshot(snap(1))
            second_holder.set()
            await asyncio.Event().wait()

    monkeypatch.setattr(exporter, "Collector", Collector)
    address: list[str] = []

    def holders() -> list[str]:
        with urllib.request.urlopen(f"http://{address[0]}/metrics", timeout=5) as r:
            body = r.read().decode()
        return re.findall(r'k8s_ha_vip_holder\{[^}]*node="([^"]+)"[^}]*\} 1', body)

    async def run() -> list[str]:
        task = asyncio.ensure_future(exporter.serve([TOPO], [None], ("127.0.0.1", 0), 60.0,  # type: ignore[list-item]
                                                    started=address.append))
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not (second_holder.is_set() and holders() == ["k8s-master-02"]):
                await asyncio.sleep(0.05)
            return holders()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert asyncio.run(run()) == ["k8s-master-02"]


def test_a_cluster_not_collected_yet_has_no_collect_timestamp():
    s = scrape(exporter.Watch(TOPO))
    assert "k8s_ha_last_collect_timestamp_seconds" not in "".join(s)
    assert value(s, "k8s_ha_vip_moves_total", cluster=TOPO.name) == 0


@pytest.mark.parametrize("text", ["127.0.0.1:9651", ":9651", "[::1]:9651"])
def test_listen_addresses(text):
    host, port = exporter.parse_listen(text)
    assert port == 9651 and host in ("127.0.0.1", "0.0.0.0", "::1")


@pytest.mark.parametrize("text", ["9651", "host:", "a:99999", "a:b"])
def test_bad_listen_addresses(text):
    with pytest.raises(ValueError):
        exporter.parse_listen(text)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        from needs import skip_or_fail
        skip_or_fail("promtool is not installed (Debian package prometheus)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


def test_every_alert_fires_and_clears_in_promtool(tmp_path):
    res = promtool("test", "rules", "alerts_test.yml", cwd=PROM)
    assert res.returncode == 0, res.stdout + res.stderr
    assert promtool("check", "config", "prometheus.yml", cwd=PROM).returncode == 0
    test_lines = (PROM / "alerts_test.yml").read_text().splitlines()
    tested = {line.split("alertname:")[1].split(",")[0].strip() for line in test_lines if "alertname:" in line}
    rule_lines = (PROM / "alerts.yml").read_text().splitlines()
    rules = {line.split("alert:")[1].strip() for line in rule_lines if "- alert:" in line}
    assert rules and rules == tested


def test_the_rule_tests_are_not_a_rubber_stamp(tmp_path):
    for f in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(PROM / f, tmp_path / f)
    rules = tmp_path / "alerts.yml"
    rules.write_text(rules.read_text().replace("k8s_ha_split_brain == 1", "k8s_ha_split_brain == 2"))
    assert promtool("test", "rules", "alerts_test.yml", cwd=tmp_path).returncode != 0


@pytest.mark.parametrize("cut", ['unless on (cluster) k8s_ha_bootstrap == 1',
                                 'unless on (cluster, master) label_replace(k8s_ha_apiserver_installed == 0, '
                                 '"master", "$1", "node", "(.*)")'])
def test_a_first_time_setup_pages_nobody_and_the_tests_know(tmp_path, cut):
    """Without its first-time-setup clause, a rule would page before kubeadm init: the rule tests fail."""
    for f in ("alerts.yml", "alerts_test.yml"):
        shutil.copy(PROM / f, tmp_path / f)
    rules = tmp_path / "alerts.yml"
    assert cut in rules.read_text()
    rules.write_text(rules.read_text().replace(cut, ""))
    assert promtool("test", "rules", "alerts_test.yml", cwd=tmp_path).returncode != 0


def test_the_exporter_says_where_a_first_time_setup_stands():
    from test_tui import bootstrapping

    def seen(snap) -> dict:
        w = exporter.Watch(TOPO)
        w.seen(snap, 0.1)
        return scrape(w)
    c = TOPO.name
    joining = seen(bootstrapping("k8s-master-01"))
    assert value(joining, "k8s_ha_bootstrap", cluster=c) == 0
    assert value(joining, "k8s_ha_apiserver_installed", cluster=c, node="k8s-master-02") == 0
    assert value(joining, "k8s_ha_apiserver_up", cluster=c, node="k8s-master-01") == 1
    assert value(seen(bootstrapping()), "k8s_ha_bootstrap", cluster=c) == 1
