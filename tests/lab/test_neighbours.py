"""Two clusters on one segment (`lab up --clusters 2`): each hears the other in its census; a
router id edited by hand on one cluster's master (as a careless person would) is a critical alarm
on the other within seconds, in `status`, `doctor` and the exporter; deploy refuses a colliding
router id and leaves every node as it was."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import pytest
import yaml
from labtools import tool, wait_for
from test_prometheus import free_port, get

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status.poll import Collector

NEIGHBOUR = "198.18.0.73"  # c2-master-03: router id 52, VIP 198.18.0.70
C2_MASTERS = ("198.18.0.71", "198.18.0.72", "198.18.0.73")


@pytest.fixture(scope="module")
def two(lab):
    """Both clusters deployed; the lab as `lab up` makes it again afterwards (the folder's fixture)."""
    lab.stop()
    first = cluster.up(3, 0, log=lambda _m: None, clusters=2)
    paths = cluster.lab_topologies()
    assert paths[0] == first and len(paths) == 2
    for path in paths:
        res = tool("deploy", "-t", str(path), "--yes")
        assert res.returncode == 0, res.stderr
    yield paths


def ssh(lab, address: str, command: str) -> str:
    return subprocess.run([*lab.ssh_argv(address), command], capture_output=True, text=True, timeout=20,
                          check=True).stdout


def status(path) -> tuple[int, dict]:
    res = tool("status", "-t", str(path), "--json")
    return res.returncode, json.loads(res.stdout)


def test_lab_up_prints_every_clusters_topology_and_each_hears_the_other(two):
    a, b = (topology.load_topology(p) for p in two)
    assert (a.vrrp.router_id, b.vrrp.router_id) == (51, 52) and a.vip != b.vip and a.name != b.name
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lab", "up", "--masters", "3", "--workers", "0",
                          "--clusters", "2"], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip().splitlines()[-2:] == [str(two[0]), str(two[1])]  # the first cluster's first
    for path, other in ((two[0], b), (two[1], a)):
        code, doc = status(path)
        heard = {(r["vrid"], r["address"]) for r in doc["segment"]}
        assert {(other.vrrp.router_id, m.address) for m in other.masters} & heard, doc["segment"]
        assert not [r for r in doc["segment"] if r["vrid"] != doc["router_id"] and r["ours"]]
        assert not any("COLLISION" in x for x in doc["alarms"]) and code != 2, doc["alarms"]


def test_a_hand_edited_router_id_is_a_collision_alarm_within_seconds(lab, two):
    a = topology.load_topology(two[0])
    seen: dict[str, float] = {}

    async def watch() -> None:
        def snap(s) -> None:
            if s.foreign_routers and "alarm" not in seen:
                seen["alarm"] = time.monotonic()
        collector = Collector(a, policy_for(a), 1.0, on_snapshot=snap)
        task = asyncio.ensure_future(collector.run())
        try:
            deadline = time.monotonic() + 10
            while not (collector.latest and any(r.vrid == 52 for r in collector.latest.segment)):
                assert time.monotonic() < deadline, "the census did not hear the neighbour cluster"
                await asyncio.sleep(0.05)
            assert "alarm" not in seen, "a collision before anything was edited"
            seen["edit"] = time.monotonic()
            await asyncio.to_thread(ssh, lab, NEIGHBOUR, "sed -i 's/virtual_router_id 52/virtual_router_id 51/' "
                                    "/etc/keepalived/keepalived.conf && systemctl reload keepalived")
            deadline = time.monotonic() + 15
            while "alarm" not in seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
    asyncio.run(watch())
    assert "alarm" in seen, "no collision alarm within 15 s"
    print(f"collision alarm {seen['alarm'] - seen['edit']:.2f} s after the edit")

    # A lower-priority router on our id flaps (BACKUP, then MASTER again ~2 s later) and is heard in
    # bursts: a one-shot listen (status, doctor) hears it at the latest on the next try.
    code, doc = wait_for(lambda: (r := status(two[0]))[0] == 2 and r, 20, "status to see the collision")
    assert doc["health"] == "critical"
    assert any("ROUTER ID COLLISION: 198.18.0.73" in x for x in doc["alarms"]), doc["alarms"]
    d = next(x for x in doc["diagnosis"] if x["code"] == "vrid-collision")
    assert d["node"] == "198.18.0.73" and "198.18.0.70" in d["cause"] and "router id" in d["next"]

    def doctor_d315():
        res = tool("doctor", "-t", str(two[0]), "--json")
        found = [f for f in json.loads(res.stdout) if f["code"] == "D315"]
        return res.returncode == 1 and found and found[0]
    assert "198.18.0.73" in wait_for(doctor_d315, 20, "doctor's D315")["message"]

    port = free_port()
    exp = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "exporter", "-t", str(two[0]),
                            "--listen", f"127.0.0.1:{port}", "--interval", "1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metric = 'k8s_ha_vrrp_foreign_advertisers{cluster="lab",vrid="51"}'
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        wait_for(lambda: f"{metric} 1.0" in get(metrics), 20, "the exporter's collision metric")
        ssh(lab, NEIGHBOUR, "sed -i 's/virtual_router_id 51/virtual_router_id 52/' /etc/keepalived/keepalived.conf "
                            "&& systemctl reload keepalived")
        # the same long-running exporter: the neighbour's leaving advert (priority 0) clears it
        wait_for(lambda: f"{metric} 0.0" in get(metrics), 15, "the collision to clear in the running exporter")
    finally:
        exp.terminate()
        exp.wait(10)
    assert status(two[0])[0] != 2
    # every tcpdump the exporter and the collectors started ended with their SSH channels
    wait_for(lambda: not subprocess.run(["pgrep", "-x", "tcpdump"], capture_output=True).stdout, 10,
             "no tcpdump left on the nodes")


def test_deploy_refuses_a_router_id_someone_else_advertises_and_changes_nothing(lab, two, tmp_path):
    data = yaml.safe_load(two[1].read_text())
    data["vrrp"]["router_id"] = 51  # cluster lab's
    colliding = tmp_path / "b.yaml"
    colliding.write_text(yaml.safe_dump(data))
    colliding.chmod(0o600)
    before = {m: ssh(lab, m, "md5sum /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg") for m in C2_MASTERS}
    res = tool("deploy", "-t", str(colliding), "--yes")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "router id 51 is taken on this segment" in res.stderr and "nothing was changed" in res.stderr, res.stderr
    assert "router id 53 is free" in res.stderr, res.stderr  # 51, 52 taken
    assert {m: ssh(lab, m, "md5sum /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg") for m in before} == before


async def test_the_fleet_monitor_shows_both_clusters_live_and_opens_each(two):
    from labtools import until
    from textual.widgets import DataTable

    from k8s_ha_tui.tui.app import MonitorApp
    from k8s_ha_tui.tui.fleet_screen import FleetScreen

    topos = [topology.load_topology(p) for p in two]
    app = MonitorApp(topos[0], policy_for(topos[0]), 1.0, fleet=[(t, policy_for(t)) for t in topos])
    async with app.run_test(size=(120, 30)) as pilot:
        def rows() -> list[list[str]]:
            table = app.screen.query_one(DataTable)
            return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        await until(pilot, lambda: isinstance(app.screen, FleetScreen) and len(rows()) == 2
                    and all(r[1] == "HEALTHY" for r in rows()), 20, "both clusters healthy in the fleet")
        assert {r[2] for r in rows()} == {"k8s-master-01", "c2-master-01"}  # each cluster's own holder
        await pilot.press(*(["down"] if rows()[0][0] == "lab" else []), "enter")
        await until(pilot, lambda: app.topo.name == "lab2" and app.status is not None
                    and app.status.name == "lab2", 10, "lab2's monitor")
        masters = app.query_one("#nodes", DataTable)
        assert [str(masters.get_row_at(i)[0]).strip() for i in range(masters.row_count)] == \
            ["c2-master-01", "c2-master-02", "c2-master-03"]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen), 5, "the fleet again")


def test_the_wizard_offers_a_router_id_nobody_else_uses(two, tmp_path):
    data = yaml.safe_load(two[1].read_text())
    data["vrrp"]["router_id"] = 51  # lab2's file, edited to lab's router id
    start = tmp_path / "b.yaml"
    start.write_text(yaml.safe_dump(data))
    start.chmod(0o600)
    res = tool("wizard", "--from", str(start), "--census", "--defaults", "-o", str(tmp_path / "out.yaml"))
    assert res.returncode == 0, res.stderr
    assert "51 is taken by 198.18.0.1" in res.stdout and "offering 53" in res.stdout, res.stdout
    assert topology.load_topology(tmp_path / "out.yaml").vrrp.router_id == 53
    res = tool("wizard", "--from", str(two[0]), "--census", "--defaults", "-o", str(tmp_path / "own.yaml"))
    assert res.returncode == 0 and "51 is free here" in res.stdout  # its own masters are not somebody else
    assert topology.load_topology(tmp_path / "own.yaml").vrrp.router_id == 51
