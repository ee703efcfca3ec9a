"""Several operators, interrupts and lost links, against the lab's real sshd, keepalived and HAProxy.

Every interrupted rollout must leave each master fully on the old config or fully on the new one,
with its daemons running what is on disk, a report that says which, and the lock released."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from labtools import MASTERS, tool, wait_for

from k8s_ha_tui.lab import cluster, layout, nodestate

HOLD = "/run/k8s-ha-tui/test-hold"
LOCK = "/run/k8s-ha-tui/lock"
AUDIT = "/var/log/k8s-ha-tui/audit.log"


def start(*args: str, hold: bool = False) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **({"K8S_HA_TUI_TEST_HOLD": "1"} if hold else {})}
    return subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL, env=env)


class Output:
    """A running command's output, read line by line, so a test can act on what it printed."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.lines = proc, []

    def wait_line(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"no line with {text!r} in: {''.join(self.lines)}")

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, "".join(self.lines) + out


def variant(lab, tmp_path: Path, name: str, **check) -> Path:
    data = yaml.safe_load(lab.topology_path.read_text())
    data["check"].update(check)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def rise_everywhere(_lab, node: str) -> str:
    """The one rise a consistent node has on disk and in both daemons; fails on any mismatch."""
    rise = nodestate.consistent_rise(node)
    assert rise is not None, f"{node}: {nodestate.running_rise(node)}"
    return rise


def rows(out: str) -> dict[str, str]:
    """The report's result per master."""
    found = {}
    for line in out.splitlines():
        parts = line.split(None, 1)
        if parts and parts[0] in MASTERS and len(parts) == 2 and not parts[1].startswith(("connected", "new files")):
            found[parts[0]] = parts[1]
    return found


def audit_on(lab, node: str) -> list[dict]:
    out = lab.ssh(node, f"cat {AUDIT} 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def no_lock(lab) -> bool:
    return all(lab.ssh(m, f"[ ! -e {LOCK} ]", check=False).returncode == 0 for m in MASTERS)


@pytest.fixture(scope="module")
def team(lab, tmp_path_factory):
    lab.heal_all()
    lab.deploy()
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "master-01 holding the VIP")
    yield lab
    lab.heal_all()
    for m in MASTERS:
        lab.ssh(m, f"rm -f {HOLD} {HOLD}.reached; echo 0 > /etc/keepalived/maintenance", check=False)
    res = tool("deploy", "-t", str(lab.topology_path), "--yes", "--break-stale-lock")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.fixture
def base(team, tmp_path):
    """Every master on the lab's own topology (rise 2) before the test, no lock, no fault."""
    team.heal_all()
    res = tool("deploy", "-t", str(team.topology_path), "--yes", "--break-stale-lock")
    assert res.returncode == 0, res.stdout + res.stderr
    assert {rise_everywhere(team, m) for m in MASTERS} == {"2"}
    return team


def test_two_concurrent_deploys_one_wins_one_refuses_one_backup(base, tmp_path):
    before = set(json.dumps(x) for x in backup_ids(base))
    first = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes"))
    wait_for(lambda: not no_lock(base), 30, "the first deploy to take the lock")
    started = time.monotonic()
    second = tool("deploy", "-t", str(variant(base, tmp_path, "b.yaml", rise=4)), "--yes")
    refused_in = time.monotonic() - started
    rc, out = first.finish()
    assert rc == 0, out
    assert second.returncode == 3 and "the cluster is locked" in second.stderr and "deploy all masters by" in second.stderr
    assert refused_in < 10  # at once, not after the first one's rollout
    assert {m: rise_everywhere(base, m) for m in MASTERS} == {m: "3" for m in MASTERS}  # the winner's config
    new = [x for x in backup_ids(base) if json.dumps(x) not in before]
    assert len(new) == 1 and new[0][1] == MASTERS  # one new backup, on every master
    results = [e["result"] for e in audit_on(base, "k8s-master-02")[-2:]]
    assert results[0].startswith("refused: the cluster is locked") and results[1].startswith("ok: ")
    assert no_lock(base)


def backup_ids(lab) -> list[tuple[str, list[str]]]:
    res = tool("rollback", "-t", str(lab.topology_path), "--list")
    assert res.returncode == 0, res.stderr
    return [(line.split()[0], sorted(m.rstrip(",") for m in line.split() if m.rstrip(",") in MASTERS))
            for line in res.stdout.splitlines()[1:] if line[:1].isdigit()]


def test_an_action_during_a_deploy_is_refused_and_audited_everywhere(base, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    rollout = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes"))
    rollout.wait_line("verifying")
    res = tool("failover", "-t", str(base.topology_path), "--yes", env=dict(os.environ))
    assert res.returncode == 3 and "the cluster is locked" in res.stderr, res.stderr
    assert rollout.finish()[0] == 0
    assert base.holders() == ["k8s-master-01"]  # the failover did not run
    for m in MASTERS:
        entry = [e for e in audit_on(base, m) if e["action"] == "failover"][-1]
        assert entry["result"].startswith("refused: the cluster is locked") and "@" in entry["who"]
    local = [json.loads(line) for line in (tmp_path / "state" / "k8s-ha-tui" / "audit.log").read_text().splitlines()]
    assert [e["result"][:8] for e in local if e["action"] == "failover"] == ["refused:"]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_between_two_files_restores_that_node(base, tmp_path, how):
    base.ssh("k8s-master-02", f"mkdir -p /run/k8s-ha-tui; rm -f {HOLD}.reached; touch {HOLD}")
    run = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes", hold=True))
    wait_for(lambda: base.ssh("k8s-master-02", f"[ -e {HOLD}.reached ]", check=False).returncode == 0, 60,
             "the file swap to stop between two files")
    half = base.ssh("k8s-master-02", "grep -c 'rise 3' /etc/keepalived/keepalived.conf /etc/haproxy/haproxy.cfg",
                    check=False).stdout
    assert half.count(":1") == 1, half  # really between the files: one new, one old
    run.proc.send_signal(how)
    base.ssh("k8s-master-02", f"rm -f {HOLD}")  # the node-side swap goes on to its end, then is undone
    rc, out = run.finish()
    assert rc == 130, out
    assert rows(out)["k8s-master-02"].startswith("restored from backup"), out
    assert rows(out)["k8s-master-01"].startswith("unchanged") and rows(out)["k8s-master-03"].startswith("unchanged")
    assert {m: rise_everywhere(base, m) for m in MASTERS} == {m: "2" for m in MASTERS}
    assert no_lock(base)
    assert audit_on(base, "k8s-master-01")[-1]["result"].startswith("failed: interrupted")


def test_ctrl_c_while_verifying_restores_that_node_only(base, tmp_path):
    run = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes"))
    run.wait_line("k8s-master-02: verified")
    run.wait_line("k8s-master-03: installed")
    run.proc.send_signal(signal.SIGINT)
    rc, out = run.finish()
    assert rc == 130
    assert rows(out)["k8s-master-02"].startswith("deployed") and rows(out)["k8s-master-03"].startswith("restored")
    assert rows(out)["k8s-master-01"].startswith("unchanged")
    assert [rise_everywhere(base, m) for m in MASTERS] == ["2", "3", "2"]
    assert no_lock(base)


def test_ctrl_c_before_any_change_changes_nothing(base, tmp_path):
    run = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes"))
    run.wait_line("k8s-master-03: connected")
    run.proc.send_signal(signal.SIGINT)
    rc, out = run.finish()
    assert rc == 130 and set(rows(out)) == set(MASTERS), out
    assert all(r.startswith("unchanged") for r in rows(out).values())
    assert {rise_everywhere(base, m) for m in MASTERS} == {"2"}
    assert no_lock(base)
    assert base.ssh("k8s-master-02", "ls /run/k8s-ha-tui/staging 2>/dev/null | wc -l").stdout.strip() == "0"


def test_a_first_ctrl_c_while_restoring_lets_the_restore_finish(base, tmp_path):
    data = yaml.safe_load(base.topology_path.read_text())
    data["apiserver_port"] = 6444  # valid configs whose backends all point at a closed port
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    run = Output(start("deploy", "-t", str(bad), "--yes", "--verify-timeout", "3"))
    run.wait_line("restoring the backup")
    run.proc.send_signal(signal.SIGINT)
    rc, out = run.finish()
    assert rc == 1 and "rollout stopped: k8s-master-02: verification failed" in out, out  # why it stopped
    assert rows(out)["k8s-master-02"].startswith("restored from backup"), out
    assert {rise_everywhere(base, m) for m in MASTERS} == {"2"}
    assert base.ssh("k8s-master-02", "grep -c 6444 /etc/haproxy/haproxy.cfg", check=False).stdout.strip() == "0"
    assert no_lock(base)


def test_ssh_dropped_mid_install_is_restored_after_reconnecting(base, tmp_path):
    base.ssh("k8s-master-02", f"mkdir -p /run/k8s-ha-tui; rm -f {HOLD}.reached; touch {HOLD}")
    run = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes", hold=True))
    wait_for(lambda: base.ssh("k8s-master-02", f"[ -e {HOLD}.reached ]", check=False).returncode == 0, 60,
             "the file swap to stop between two files")
    ns = layout.netns_of("k8s-master-02")
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
    sessions = [p for p in pids if Path(f"/proc/{p}/cmdline").exists()
                and Path(f"/proc/{p}/cmdline").read_bytes().startswith(b"sshd: root@notty")]
    assert sessions
    for p in sessions:  # the deploy's own connection: the link is gone, the node-side swap goes on
        os.kill(int(p), signal.SIGKILL)
    base.ssh("k8s-master-02", f"rm -f {HOLD}")
    rc, out = run.finish()
    assert rc == 1, out
    assert rows(out)["k8s-master-02"].startswith("restored from backup"), out
    assert {rise_everywhere(base, m) for m in MASTERS} == {"2"}
    assert no_lock(base)


def test_a_node_offline_mid_rollout_is_reported_true_and_its_lock_taken_over_later(base, tmp_path):
    run = Output(start("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes"))
    run.wait_line("k8s-master-03: installed")
    cluster.fault("k8s-master-03", "offline")
    rc, out = run.finish(timeout=180)
    assert rc == 1, out
    assert rows(out)["k8s-master-03"].startswith("installed, not verified; unreachable"), out
    assert rows(out)["k8s-master-02"].startswith("deployed") and rows(out)["k8s-master-01"].startswith("unchanged")
    cluster.heal("k8s-master-03")
    assert [rise_everywhere(base, m) for m in MASTERS] == ["2", "3", "3"]  # what the report said
    # Its copy of the lock stayed behind (unreachable at release). Its process is gone: a lease, so
    # the next command takes it over by itself, says so and records it — no flag.
    assert "deploy all masters" in base.ssh("k8s-master-03", f"cat {LOCK}").stdout
    res = tool("deploy", "-t", str(base.topology_path), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "took over the lock of deploy all masters by" in res.stdout and "is gone" in res.stdout, res.stdout
    took = [e for e in audit_on(base, "k8s-master-03") if "took over the lock" in e["result"]]
    assert took and took[-1]["result"].startswith("ok: took over the lock of deploy all masters")
    assert no_lock(base)


def test_a_holder_paused_past_the_lease_finds_its_lock_taken_and_changes_nothing(base, tmp_path):
    """A deploy waits at its question; SIGSTOP; once the lease ran out another command takes the
    lock over and acts; SIGCONT and yes: the deploy sees the lock is not its own and stops
    before the first node, which it does not change."""
    import pexpect

    env = {**os.environ, "K8S_HA_TUI_LOCK_TTL": "30"}
    before = {m: base.ssh(m, "md5sum /etc/keepalived/keepalived.conf").stdout for m in MASTERS}
    child = pexpect.spawn(sys.executable, ["-m", "k8s_ha_tui", "deploy", "-t",
                                           str(variant(base, tmp_path, "a.yaml", rise=3))],
                          env=env, encoding="utf-8", timeout=60)
    try:
        child.expect_exact("Go ahead? [y/N]")
        child.kill(signal.SIGSTOP)
        res = tool("maintenance", "-t", str(base.topology_path), "k8s-master-03", "on", "--yes", env=env)
        assert res.returncode == 3 and "the cluster is locked" in res.stderr  # a live lease is never taken
        age = f"echo $(( $(date +%s) - $(stat -c %Y {LOCK}) ))"  # by the node's own clock
        wait_for(lambda: int(base.ssh("k8s-master-01", age).stdout) > 31, 60, "the lease to run out", interval=1)
        res = tool("maintenance", "-t", str(base.topology_path), "k8s-master-03", "on", "--yes", env=env)
        assert res.returncode == 0 and "took over the lock of deploy all masters" in res.stdout, res.stdout + res.stderr
        assert "not renewed for" in res.stdout
        child.kill(signal.SIGCONT)
        child.sendline("y")
        child.expect(pexpect.EOF, timeout=60)
        out = child.before
    finally:
        child.kill(signal.SIGCONT)
        child.close()
        base.ssh("k8s-master-03", "echo 0 > /etc/keepalived/maintenance")
    assert child.exitstatus == 3, out
    assert "the cluster lock is no longer this command's" in out and "which was not changed" in out, out
    assert {m: base.ssh(m, "md5sum /etc/keepalived/keepalived.conf").stdout for m in MASTERS} == before
    assert no_lock(base)


def test_a_master_in_maintenance_is_deployed_to_as_such(base, tmp_path):
    t = str(base.topology_path)
    assert tool("maintenance", "-t", t, "k8s-master-03", "on", "--yes").returncode == 0
    wait_for(lambda: base.vrrp_state("k8s-master-03") == "FAULT", 15, "master-03 in FAULT")
    res = tool("deploy", "-t", str(variant(base, tmp_path, "a.yaml", rise=3)), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "k8s-master-03: connected" in res.stdout and "in maintenance" in res.stdout
    assert rows(res.stdout)["k8s-master-03"].startswith("deployed")
    assert base.vrrp_state("k8s-master-03") == "FAULT"
    assert base.ssh("k8s-master-03", "cat /etc/keepalived/maintenance").stdout.strip() == "1"
    assert tool("maintenance", "-t", t, "k8s-master-03", "off", "--yes").returncode == 0
