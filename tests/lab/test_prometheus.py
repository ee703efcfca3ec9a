"""The exporter against the lab, scraped by a real Prometheus (Debian's) loaded with
examples/prometheus: split brain goes to firing through Prometheus's own API, and resolves."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from labtools import wait_for

from k8s_ha_tui.lab import cluster

PROM = Path(__file__).parent.parent.parent / "examples" / "prometheus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except OSError:
        return ""


def alerts(prom: str, name: str) -> list[dict]:
    text = get(f"{prom}/api/v1/alerts")
    found = json.loads(text)["data"]["alerts"] if text else []
    return [a for a in found if a["labels"]["alertname"] == name]


@pytest.fixture
def watched(lab, tmp_path):
    """The lab deployed, the exporter on it, and Prometheus scraping the exporter every second."""
    if shutil.which("prometheus") is None:
        from needs import skip_or_fail
        skip_or_fail("prometheus is not installed (Debian package prometheus)")
    lab.deploy()
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "master-01 holding the VIP")
    exporter_port, prom_port = free_port(), free_port()
    # A second cluster whose masters do not exist (unused lab addresses): a dead cluster is a metric.
    ghost = yaml.safe_load(lab.topology_path.read_text())
    ghost.update(name="ghost", workers=[], masters=[{"name": f"ghost-{i}", "address": f"198.18.0.{36 + i}"}
                                                   for i in (1, 2, 3)])
    (tmp_path / "ghost.yaml").write_text(yaml.safe_dump(ghost))
    exp = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "exporter", "-t", str(lab.topology_path),
                            "-t", str(tmp_path / "ghost.yaml"),
                            "--listen", f"127.0.0.1:{exporter_port}", "--interval", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROM / "alerts.yml")]
    config["scrape_configs"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{prom_port}"
    try:
        yield lab, url, exp, f"http://127.0.0.1:{exporter_port}/metrics"
    finally:
        for proc in (prom, exp):  # only what this test started, by its own pid
            proc.terminate()
            proc.wait(timeout=20)
        lab.heal_all()


def test_split_brain_fires_in_a_real_prometheus_and_resolves(watched):
    lab, prom, exp, page = watched
    wait_for(lambda: 'k8s_ha_node_reachable{cluster="ghost",node="ghost-1",role="master"} 0.0' in get(page), 60,
             "the unreachable cluster reported as a metric")
    wait_for(lambda: '"k8s_ha_split_brain"' in get(f"{prom}/api/v1/query?query=k8s_ha_split_brain") and
             '"value"' in get(f"{prom}/api/v1/query?query=k8s_ha_split_brain"), 60,
             "Prometheus to have scraped the exporter")
    assert not alerts(prom, "K8sHaSplitBrain")
    cluster.fault("k8s-master-01", "vrrp-drop")
    firing = wait_for(lambda: [a for a in alerts(prom, "K8sHaSplitBrain") if a["state"] == "firing"], 90,
                      "K8sHaSplitBrain firing")
    assert firing[0]["labels"]["cluster"] == lab.topo.name and firing[0]["labels"]["severity"] == "critical"
    cluster.heal("k8s-master-01")
    wait_for(lambda: not alerts(prom, "K8sHaSplitBrain"), 90, "K8sHaSplitBrain to resolve")
    assert exp.poll() is None  # the exporter ran through all of it
