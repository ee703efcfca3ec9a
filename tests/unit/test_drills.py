"""Drills without a cluster: the interlocks of each scenario, what counts as restored, a client's
figures and the verdict, the report's files, and the worker's client loop as a real shell runs it."""

from __future__ import annotations

import json
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_tui import HEALTHY, TOPO, master, snap

from k8s_ha_tui.drills import clients, report, scenarios
from k8s_ha_tui.drills.clients import Client, Sample
from k8s_ha_tui.errors import Refused
from k8s_ha_tui.status.model import BackendServer

HOLDER = TOPO.masters[0].name


def test_every_scenario_plans_on_a_healthy_cluster_and_says_how_it_is_undone():
    for name in scenarios.SCENARIOS:
        p = scenarios.plan(HEALTHY, name)
        assert "Undone by" in p.says and p.target
    assert scenarios.plan(HEALTHY, "holder-keepalived").target == HOLDER
    assert scenarios.plan(HEALTHY, "failover").target == f"{HOLDER}->{TOPO.masters[1].name}"
    assert scenarios.plan(HEALTHY, "apiserver-drain", TOPO.masters[2].name).target == TOPO.masters[2].name


def test_a_cluster_that_is_not_healthy_is_refused():
    sick = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, keepalived="failed"), master(2))
    with pytest.raises(Refused, match="a drill starts from a healthy cluster; .* is degraded: k8s-master-02: "
                                      "keepalived failed"):
        scenarios.plan(sick, "failover")


def test_a_holder_that_nobody_could_replace_is_refused(monkeypatch):
    """Such a cluster is degraded already; the survival interlock must refuse on its own too."""
    monkeypatch.setattr(scenarios, "_healthy", lambda _s: None)
    alone = snap(master(0, vrrp_state="MASTER", holds_vip=True), master(1, maintenance=True, vrrp_state="FAULT"),
                 master(2, haproxy="failed"))
    for name in ("failover", "holder-keepalived", "holder-haproxy"):
        with pytest.raises(Refused, match="no other master is reachable, healthy and out of maintenance"):
            scenarios.plan(alone, name)


def test_a_failover_drill_where_the_track_files_are_not_followed_points_to_holder_keepalived():
    handmade = snap(master(0, vrrp_state="MASTER", holds_vip=True, tracks_boost=False, tracks_maintenance=False),
                    master(1, tracks_boost=False, tracks_maintenance=False),
                    master(2, tracks_boost=False, tracks_maintenance=False))
    with pytest.raises(Refused, match="does not follow .*priority_boost.*: the failover drill needs this tool's track "
                                      "files; the holder-keepalived drill moves the VIP without them") as refused:
        scenarios.plan(handmade, "failover")
    assert "--method" not in str(refused.value)
    assert scenarios.plan(handmade, "holder-keepalived").target == HOLDER


def test_holder_haproxy_needs_a_check_script_on_the_holder():
    unchecked = snap(master(0, vrrp_state="MASTER", holds_vip=True, check="unknown"), master(1), master(2))
    with pytest.raises(Refused, match="tracks no check script"):
        scenarios.plan(unchecked, "holder-haproxy")
    assert scenarios.plan(unchecked, "holder-keepalived").target == HOLDER


def test_draining_the_last_healthy_apiserver_is_refused_and_node_is_only_for_drains(monkeypatch):
    one_up = tuple(BackendServer("apiserver", x.name, "UP" if x.name == HOLDER else "DOWN", "L7OK", 2, 30, master=x.name)
                   for x in TOPO.masters)
    s = snap(*(master(i, vrrp_state="MASTER" if i == 0 else "BACKUP", holds_vip=i == 0, backends=one_up)
               for i in range(3)))
    monkeypatch.setattr(scenarios, "_healthy", lambda _s: None)
    with pytest.raises(Refused, match="last healthy apiserver"):
        scenarios.plan(s, "apiserver-drain")
    with pytest.raises(Refused, match="--node is for apiserver-drain"):
        scenarios.plan(HEALTHY, "failover", TOPO.masters[1].name)
    with pytest.raises(Refused, match="unknown drill"):
        scenarios.plan(HEALTHY, "reboot")


def test_restored_means_daemons_maintenance_boost_and_backends_as_found():
    assert scenarios.not_as_found(HEALTHY, HEALTHY) == []
    drained = tuple(replace(b, status="DRAIN") if b.master == HOLDER else b for b in HEALTHY.masters[1].backends)
    after = snap(master(0, vrrp_state="MASTER", holds_vip=True, keepalived="inactive"),
                 master(1, maintenance=True, backends=drained), master(2, boost=100))
    problems = scenarios.not_as_found(HEALTHY, after)
    assert f"keepalived inactive on {HOLDER}" in problems
    assert f"{TOPO.masters[1].name} in maintenance" in problems
    assert f"apiserver/{HOLDER} DRAIN on {TOPO.masters[1].name}" in problems
    assert f"{TOPO.masters[2].name} priority boost 100" in problems


def _client(pattern: str, start: float = 100.0, step: float = 0.1) -> Client:
    """A client from a string: '+' answered, '-' failed, one request every `step` seconds."""
    return Client("w", [Sample(start + (i + 1) * step, ch == "+", 0.01 * (i + 1)) for i, ch in enumerate(pattern)])


def test_the_longest_gap_is_the_longest_time_without_an_answer_edges_included():
    f = report.figures(_client("+++-----++"), 100.0, 101.0)
    assert (f.requests, f.failed) == (10, 5) and f.longest_gap_s == pytest.approx(0.6)
    assert report.figures(_client("----++++++"), 100.0, 101.0).longest_gap_s == pytest.approx(0.5)
    assert report.figures(_client("++++++++--"), 100.0, 101.0).longest_gap_s == pytest.approx(0.2)
    nothing = report.figures(_client("-----"), 100.0, 101.0)
    assert nothing.longest_gap_s == pytest.approx(1.0) and nothing.p50_ms is None
    cut = _client("+++++")  # its link dropped after 0.5 s: judged up to its last answer, not beyond
    cut.ended = True
    assert report.figures(cut, 100.0, 110.0).longest_gap_s == pytest.approx(0.1)


def test_an_answer_of_an_apiserver_that_refuses_anonymous_requests_counts_and_503_does_not():
    assert clients.parse_line("100.0 401 0.02", 0).ok and clients.parse_line("100.0 403 0.02", 0).ok
    assert not clients.parse_line("100.0 503 0.02", 0).ok and not clients.parse_line("100.0 000 0.25", 0).ok
    c = Client("w")
    c.add(Sample(5.0, True, 0.1))
    c.add(Sample(6.0, False, 0.1))
    assert c.last_ok == 5.0
    assert clients.clock_offset("@@clock 1764000000.%N") is None


@given(st.text(alphabet="+-", min_size=1, max_size=200))
def test_the_gap_is_never_shorter_than_any_run_of_failures_nor_longer_than_the_window(pattern):
    f = report.figures(_client(pattern), 100.0, 100.0 + 0.1 * (len(pattern) + 1))
    longest_run = max(len(run) for run in pattern.split("+")) * 0.1
    # the failures between two answers, and one request's spacing more: never less, never more
    assert longest_run - 1e-9 <= f.longest_gap_s <= longest_run + 0.1 + 1e-9
    assert f.failed == pattern.count("-") and f.requests == len(pattern)


def _drill(gaps: list[float], **kw) -> report.Drill:
    d = report.Drill("20261201T000000-failover", "lab", "failover", "a->b", "the VIP moves", 1000.0, 20, 2.0, 10.0,
                     5.0, **kw)
    d.clients = [report.ClientFigures(f"w{i}", 100, 0, g, 3.0, 9.0) for i, g in enumerate(gaps)]
    d.samples = {f"w{i}": [(0.1, True), (0.2, False)] for i in range(len(gaps))}
    d.steps = [(0.0, "clients started"), (2.0, "failover: a->b"), (7.5, "restoring")]
    d.holders = [(0.0, ["a"]), (2.2, ["b"]), (8.0, ["a"])]
    d.ended_at = 1011.0
    return d


def test_the_verdict_is_the_worst_client_against_max_gap_and_any_abort_or_unrestored_state_fails():
    assert _drill([0.1, 1.9]).passed and _drill([0.1, 1.9]).verdict.startswith("PASS: longest gap 1.90 s")
    assert not _drill([0.1, 2.5]).passed and "2.50 s, over the 2 s allowed" in _drill([0.1, 2.5]).verdict
    assert not _drill([0.1], aborted="deadman: 3 of 4").passed
    assert _drill([0.1], restored=["haproxy inactive on a"]).verdict.startswith("FAIL: not restored")
    assert not _drill([]).passed and "no client measured" in _drill([]).verdict


def test_a_drill_is_kept_as_json_markdown_and_a_picture_and_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    d = _drill([0.3, 0.4])
    d.events = [(2.1, "VIP moved a → b in 0.20 s")]
    folder = report.save(d)
    assert sorted(p.name for p in folder.iterdir()) == sorted(report.FILES)
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in folder.iterdir())
    assert oct(report.drills_dir().stat().st_mode)[-3:] == "700"
    doc = json.loads((folder / "drill.json").read_text())
    assert doc["passed"] is True and doc["worst_gap_s"] == 0.4 and doc["clients"][1]["longest_gap_s"] == 0.4
    md = (folder / "report.md").read_text()
    assert "# Drill failover on lab: PASS" in md and "| w1 | 100 | 0 | 0.40 |" in md and "VIP moved a → b" in md
    root = ET.fromstring((folder / "timeline.svg").read_text())  # well-formed, with a row per client
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"w0", "w1", "VIP holder"} <= set(texts)
    (report.drills_dir() / "broken").mkdir()
    (report.drills_dir() / "broken" / "drill.json").write_text("{not json")
    assert [x.id for x in report.past()] == [d.id]


def test_the_worker_loop_reads_as_its_lines_say_and_ends_when_its_stdin_closes():
    """The loop as sh runs it, against a port nobody listens on (127.0.0.1:9, nothing sent
    anywhere else): it answers lines that parse, and it stops once stdin closes."""
    script = clients.loop_script("127.0.0.1", 9, rate=20, max_seconds=60)
    proc = subprocess.Popen(["sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(0.6)  # the loop runs a moment: what it measures is the point here, not a synchronisation
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)  # would run for 60 s if closing stdin did not end it
    assert proc.stdout is not None
    out = proc.stdout.read()
    lines = out.splitlines()
    assert lines[0].startswith("@@clock ")
    samples = [clients.parse_line(line, 0.0) for line in lines[1:]]
    assert len(samples) >= 3 and all(s is not None and not s.ok for s in samples)
    # stdout read to its end: every request that could still write has ended; none may be left
    left = subprocess.run(["pgrep", "-f", "[1]27.0.0.1:9/readyz"], capture_output=True, text=True).stdout
    assert left == "", f"requests still running after the loop ended: {left}"
    assert clients.parse_line("garbage", 0) is None and clients.parse_line("1.5 200 x", 0) is None
    assert clients.parse_line("100.0 200 0.25", 5.0) == Sample(105.25, True, 0.25)
