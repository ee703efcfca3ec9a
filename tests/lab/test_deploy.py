"""deploy and rollback against the lab's real sshd, keepalived and HAProxy."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest
import yaml
from labtools import MASTERS, Lab, tool, wait_for

from k8s_ha_tui.lab import cluster

FILES = "/etc/keepalived/keepalived.conf /etc/keepalived/check_apiserver.sh /etc/keepalived/notify.sh " \
        "/etc/haproxy/haproxy.cfg"



def snapshot(lab: Lab) -> dict[str, str]:
    """Per master: checksums of the managed files and the pids of keepalived and haproxy."""
    return {m: lab.ssh(m, f"sha256sum {FILES} 2>&1; cat /run/keepalived.pid /run/haproxy.pid 2>&1",
                       check=False).stdout for m in MASTERS}


def variant(lab: Lab, tmp_path: Path, name: str = "t.yaml", **changes) -> Path:
    data = yaml.safe_load(lab.topology_path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            data[key].update(value)
        else:
            data[key] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def bare_lab(lab):
    """A lab where nothing was ever deployed: every module starts from one (tests/lab/conftest.py)."""
    return lab


def test_deploy_to_a_bare_lab_puts_the_vip_on_the_highest_priority(bare_lab):
    assert bare_lab.holders() == []
    res = tool("deploy", "-t", str(bare_lab.topology_path), "--yes")
    assert res.returncode == 0, res.stdout + res.stderr
    assert bare_lab.holders() == ["k8s-master-01"]
    assert cluster.apiserver_ready("198.18.0.10", 8443)
    summary = res.stdout.splitlines()[-3:]
    assert all(" deployed " in line for line in summary)
    for m in MASTERS:
        mode = bare_lab.ssh(m, "stat -c '%a %U' /etc/keepalived/keepalived.conf /etc/keepalived/check_apiserver.sh")
        assert mode.stdout.split("\n")[:2] == ["640 root", "755 root"]


def test_second_deploy_changes_and_restarts_nothing(bare_lab):
    before = snapshot(bare_lab)
    res = tool("deploy", "-t", str(bare_lab.topology_path), "--yes")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count(" unchanged ") == 3
    assert snapshot(bare_lab) == before


def test_invalid_config_is_stopped_on_the_node_before_anything_changes(bare_lab, tmp_path):
    templates = tmp_path / "templates"
    shutil.copytree(Path(__file__).parents[2] / "templates", templates)
    cfg = templates / "haproxy.cfg.j2"
    cfg.write_text(cfg.read_text().replace("balance roundrobin", "balance no-such-algorithm"))
    before = snapshot(bare_lab)
    res = tool("deploy", "-t", str(bare_lab.topology_path), "--yes", "--templates", str(templates))
    assert res.returncode == 1
    assert "haproxy -c refused the new haproxy.cfg" in res.stderr and "Traceback" not in res.stderr
    assert snapshot(bare_lab) == before


def test_failed_verification_rolls_back_that_node_and_the_vip_stays(bare_lab, tmp_path):
    before = snapshot(bare_lab)
    samples: list[list[str]] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            samples.append(bare_lab.holders())
            stop.wait(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        # Valid configs (both checkers accept them) whose backends all point at a closed port.
        res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, apiserver_port=6444)), "--yes",
                   "--verify-timeout", "5")
    finally:
        stop.set()
        watcher.join()
    assert res.returncode == 1
    assert "rollout stopped: k8s-master-02: verification failed" in res.stderr, res.stdout
    assert "does not serve /readyz" in res.stderr
    assert "restored from backup" in res.stdout and res.stdout.count(" unchanged ") == 2  # the others untouched
    after = snapshot(bare_lab)
    assert {m: after[m].split("\n")[:4] for m in MASTERS} == {m: before[m].split("\n")[:4] for m in MASTERS}
    assert samples and all(s == ["k8s-master-01"] for s in samples)


def test_dry_run_shows_the_diff_and_changes_nothing(bare_lab, tmp_path):
    before = snapshot(bare_lab)
    res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, check={"rise": 3})), "--dry-run")
    assert res.returncode == 0, res.stderr
    line = "default-server check check-ssl verify none inter 1s fastinter 250ms fall 1 rise {} observe layer4"
    assert f"-    {line.format(2)}" in res.stdout
    assert f"+    {line.format(3)}" in res.stdout
    assert res.stdout.count(" would change ") == 3
    assert "Plan (dry run): deploy to k8s-master-02 → k8s-master-03 → k8s-master-01" in res.stdout
    assert snapshot(bare_lab) == before


def test_no_confirmation_without_a_terminal_changes_nothing(bare_lab, tmp_path):
    before = snapshot(bare_lab)
    res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, check={"rise": 3})))
    assert res.returncode == 2 and "run with --yes" in res.stderr
    assert snapshot(bare_lab) == before


def test_a_changed_host_key_stops_the_deploy(bare_lab, tmp_path):
    keygen = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")])
    assert keygen.returncode == 0
    alg, blob = (tmp_path / "k.pub").read_text().split()[:2]
    lines = bare_lab.paths.known_hosts.read_text().splitlines()
    forged = [f"198.18.0.12 {alg} {blob}" if ln.startswith("198.18.0.12 ") else ln for ln in lines]
    kh = tmp_path / "known_hosts"
    kh.write_text("\n".join(forged) + "\n")
    before = snapshot(bare_lab)
    topo = variant(bare_lab, tmp_path, ssh={"known_hosts": str(kh)}, check={"rise": 3})
    for extra in ([], ["--accept-new-host-keys"]):
        res = tool("deploy", "-t", str(topo), "--yes", *extra)
        assert res.returncode != 0 and "HOST KEY CHANGED for 198.18.0.12" in res.stderr
    assert snapshot(bare_lab) == before
    assert kh.read_text() == "\n".join(forged) + "\n"


def test_unknown_host_key_needs_consent_and_is_then_recorded(bare_lab, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("".join(ln + "\n" for ln in bare_lab.paths.known_hosts.read_text().splitlines()
                          if not ln.startswith("198.18.0.13 ")))
    topo = variant(bare_lab, tmp_path, ssh={"known_hosts": str(kh)})
    res = tool("deploy", "-t", str(topo), "--dry-run")
    assert res.returncode != 0 and "unknown host key for 198.18.0.13" in res.stderr
    res = tool("deploy", "-t", str(topo), "--dry-run", "--accept-new-host-keys")
    assert res.returncode == 0, res.stderr
    assert "recorded new host key: 198.18.0.13" in res.stdout
    recorded = [ln for ln in kh.read_text().splitlines() if ln.startswith("198.18.0.13 ")]
    real = [ln for ln in bare_lab.paths.known_hosts.read_text().splitlines() if ln.startswith("198.18.0.13 ")]
    assert [r.split()[:3] for r in recorded] == [r.split()[:3] for r in real]


def test_a_change_rolls_out_and_rollback_restores_it(bare_lab, tmp_path):
    res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, check={"rise": 3})), "--yes")
    assert res.returncode == 0, res.stderr
    order = [line.split(":")[0] for line in res.stdout.splitlines() if line.endswith("; verifying")]
    assert order == ["k8s-master-02", "k8s-master-03", "k8s-master-01"]  # the holder last
    assert "rise 3" in bare_lab.ssh("k8s-master-02", "cat /etc/haproxy/haproxy.cfg").stdout
    res = tool("rollback", "-t", str(bare_lab.topology_path), "--yes")
    assert res.returncode == 0, res.stderr
    for m in MASTERS:
        assert "rise 2" in bare_lab.ssh(m, "cat /etc/haproxy/haproxy.cfg").stdout
    wait_for(lambda: bare_lab.holders() == ["k8s-master-01"], 10, "the VIP on master-01")
    assert cluster.apiserver_ready("198.18.0.10", 8443)


def test_become_sudo_deploys_as_a_plain_user(bare_lab, tmp_path):
    res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, ssh={"user": "operator", "become": "sudo"},
                                           check={"rise": 3})), "--yes")
    assert res.returncode == 0, res.stderr
    assert "sudo:" not in res.stderr
    for m in MASTERS:
        stat = bare_lab.ssh(m, "stat -c '%U %a' /etc/haproxy/haproxy.cfg; grep -c 'rise 3' /etc/haproxy/haproxy.cfg")
        assert stat.stdout.split("\n")[:2] == ["root 644", "1"]
    assert tool("deploy", "-t", str(bare_lab.topology_path), "--yes").returncode == 0  # back to the baseline


def test_a_plain_user_without_become_is_refused_before_anything_changes(bare_lab, tmp_path):
    before = snapshot(bare_lab)
    res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, ssh={"user": "operator"}, check={"rise": 3})),
               "--yes")
    assert res.returncode == 3 and "commands run as operator, not root; set ssh.become: sudo" in res.stderr
    assert "deploy needs the deploy role" in res.stderr
    assert snapshot(bare_lab) == before


def test_demo_brings_up_and_deploys_the_lab(bare_lab):
    res = tool("demo")
    assert res.returncode == 0, res.stderr
    assert "The API answers at https://198.18.0.10:8443/readyz" in res.stdout
    assert cluster.apiserver_ready("198.18.0.10", 8443)
    assert bare_lab.holders() == ["k8s-master-01"]


def test_an_unreachable_master_stops_the_deploy_before_anything_changes(bare_lab, tmp_path):
    before = {m: v for m, v in snapshot(bare_lab).items() if m != "k8s-master-03"}
    cluster.fault("k8s-master-03", "offline")
    try:
        res = tool("deploy", "-t", str(variant(bare_lab, tmp_path, check={"rise": 3})), "--yes")
    finally:
        cluster.heal("k8s-master-03")
    assert res.returncode == 2
    assert res.stderr.startswith("error: k8s-master-03: cannot reach 198.18.0.13:22") and "Traceback" not in res.stderr
    assert {m: v for m, v in snapshot(bare_lab).items() if m != "k8s-master-03"} == before
