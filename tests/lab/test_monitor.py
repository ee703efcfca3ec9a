"""The TUI against the lab's real daemons, driven with Textual's Pilot."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

from labtools import MASTERS, until
from textual.widgets import RichLog, Static

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.lab.nodes import node_exec
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status.poll import SILENCE_S, Collector
from k8s_ha_tui.tui.app import MonitorApp
from k8s_ha_tui.tui.confirm_modal import ConfirmModal
from k8s_ha_tui.tui.diagnosis_screen import DiagnosisScreen


def events(app) -> str:
    return "\n".join(line.text for line in app.query_one("#events", RichLog).lines)


async def in_thread(*args):
    return await asyncio.to_thread(subprocess.run, list(args), capture_output=True, text=True, timeout=120)


async def test_monitor_follows_failover_split_brain_and_a_lost_node(lab):
    lab.deploy()
    for m in MASTERS:
        lab.ssh(m, "echo 0 > /etc/keepalived/maintenance; echo 0 > /etc/keepalived/priority_boost")
    app = MonitorApp(lab.topo, policy_for(lab.topo), interval=0.5)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.status is not None and app.status.holders == ["k8s-master-01"]
                    and not app.status.alarms, 30, "a healthy cluster on screen")
        assert "k8s-master-01" in str(app.query_one("#banner", Static).render())

        # A controlled failover from the keyboard, confirmed in the modal.
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "the confirmation")
        await pilot.press("y")
        await until(pilot, lambda: "VIP moved k8s-master-01 → k8s-master-02 in" in events(app)
                    and "failover k8s-master-01 → k8s-master-02: VIP answers on k8s-master-02" in events(app),
                    30, "the move in the event log")
        assert lab.holders() == ["k8s-master-02"]
        res = await in_thread(sys.executable, "-m", "k8s_ha_tui", "maintenance", "-t", str(lab.topology_path),
                              "k8s-master-01", "off", "--yes")
        assert res.returncode == 0, res.stderr
        await until(pilot, lambda: app.status.holders == ["k8s-master-01"], 20, "the VIP back on master-01")

        # Split brain: diagnosed, and ended from the monitor with the remedy the evidence points at.
        await asyncio.to_thread(cluster.fault, "k8s-master-01", "vrrp-drop")
        await until(pilot, lambda: "k8s-master-01: cut off from VRRP" in str(app.query_one("#alarms", Static).render())
                    and len(app.status.holders) == 2, 20, "the split brain, diagnosed")
        assert app.query_one("#banner").has_class("critical")
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, DiagnosisScreen), 5, "the diagnosis screen")
        assert "k8s-master-03: BACKUP, keepalived hears adverts from k8s-master-02" in \
            str(app.screen.query_one("#diagnosis-text", Static).render())
        await pilot.click("#remedy-0")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal), 5, "the question")
        assert "ends the split brain" in str(app.screen.query_one("#confirm-text", Static).render())
        await pilot.press("y")
        await until(pilot, lambda: app.status.holders == ["k8s-master-02"] and not app.status.split_brain
                    and any("the split brain is over" in c for c in app.changes), 20,
                    "one holder again, and the action's outcome")
        await asyncio.to_thread(cluster.heal, "k8s-master-01")
        res = await in_thread(sys.executable, "-m", "k8s_ha_tui", "maintenance", "-t", str(lab.topology_path),
                              "k8s-master-01", "off", "--yes")
        assert res.returncode == 0, res.stderr
        await until(pilot, lambda: app.status.holders == ["k8s-master-01"], 20, "the VIP back on master-01")

        # A node that drops off the network is a state on the screen; the app keeps running.
        await asyncio.to_thread(cluster.fault, "k8s-master-03", "offline")
        await until(pilot, lambda: app.status.master("k8s-master-03").reachable is False, 30, "master-03 lost")
        assert "lost SSH to k8s-master-03" in events(app)
        assert "k8s-master-03: unreachable" in str(app.query_one("#alarms", Static).render())
        await asyncio.to_thread(cluster.heal, "k8s-master-03")
        await until(pilot, lambda: app.status.master("k8s-master-03").reachable, 40, "master-03 back")
        assert "k8s-master-03 reachable again" in events(app)


async def until_true(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.1)


async def test_a_dropped_ssh_connection_is_replaced_without_showing_the_node_unreachable(lab):
    """sshd restarted on a master (every connection dropped): the collector connects again at
    once, and no snapshot calls the node unreachable meanwhile."""
    shown: list = []
    collector = Collector(lab.topo, policy_for(lab.topo), interval=0.5, on_snapshot=shown.append)
    task = asyncio.ensure_future(collector.run())
    session = next(s for s in collector.sessions if s.node.name == "k8s-master-02")
    try:
        await until_true(lambda: shown and all(n.reachable for n in (*shown[-1].masters, *shown[-1].workers)),
                         30, "every node answering")
        old, since = session.conn, len(shown)
        said = await asyncio.to_thread(cluster.fault, "k8s-master-02", "ssh-drop")
        assert " 0 SSH" not in said, said
        await until_true(lambda: session.conn not in (None, old) and len(shown) > since + 6, 20,
                         "a new connection, and a few snapshots after it")
        assert all(snap.master("k8s-master-02").reachable for snap in shown[since:])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        collector.close()


async def test_a_node_off_the_network_is_unreachable_when_its_probe_falls_silent_and_back_when_it_returns(lab):
    """Not at the end of the whole probe's timeout: when the probe, which prints as it goes,
    has said nothing for SILENCE_S; and once back, the node is tried again every interval."""
    shown: list = []
    collector = Collector(lab.topo, policy_for(lab.topo), interval=0.5, on_snapshot=shown.append)
    task = asyncio.ensure_future(collector.run())
    try:
        await until_true(lambda: shown and shown[-1].master("k8s-master-03").reachable, 30, "master-03 answering")
        await asyncio.to_thread(cluster.fault, "k8s-master-03", "offline")
        await until_true(lambda: not shown[-1].master("k8s-master-03").reachable, 20, "master-03 unreachable")
        assert f"nothing for {SILENCE_S:g} s from: the status probe" in (shown[-1].master("k8s-master-03").error or "")
        await asyncio.to_thread(cluster.heal, "k8s-master-03", "offline")
        await until_true(lambda: shown[-1].master("k8s-master-03").reachable, 30, "master-03 back")
    finally:
        await asyncio.to_thread(cluster.heal, "k8s-master-03")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        collector.close()


def streams_on(node: str) -> set[str]:
    """The pids of the address and census streams running on a node (ip monitor, tcpdump)."""
    state = cluster.LabState.load(cluster.lab_paths())
    assert state is not None
    script = ("for p in /proc/[0-9]*; do case $(tr '\\0' ' ' < $p/cmdline) in "
              "'ip -o monitor address'*|tcpdump*) echo ${p#/proc/};; esac; done 2>/dev/null")
    return set(node_exec(state.init(node), ["sh", "-c", script]).stdout.split())


async def test_a_collector_that_goes_away_leaves_no_stream_running_on_the_nodes(lab):
    """Without a PTY sshd sends no SIGHUP: a stream whose reader is gone must end with its
    channel, not at its next write (days, for `ip monitor` on a quiet master)."""
    before = await asyncio.to_thread(streams_on, "k8s-master-02")  # another test's, maybe still ending
    shown: list = []
    collector = Collector(lab.topo, policy_for(lab.topo), interval=0.5, on_snapshot=shown.append)
    task = asyncio.ensure_future(collector.run())
    ours: set[str] = set()

    def ours_running() -> bool:
        ours.update(streams_on("k8s-master-02") - before)
        return len(ours) >= 2
    try:
        await until_true(lambda: shown and shown[-1].master("k8s-master-02").reachable, 30, "master-02 answering")
        await until_true(ours_running, 10, "its two streams running")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        collector.close()
    await until_true(lambda: not ours & streams_on("k8s-master-02"), 10, "the streams gone with the connection")
