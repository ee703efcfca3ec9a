"""Every fault the lab can inject, on the VIP's holder and on a backup, is diagnosed: the node
and the cause, within a bound, from the real daemons' answers — and once healed, nothing is.

With K8S_HA_RECORD=FOLDER the nodes' answers at the moment of each diagnosis are written there
(one JSON file per case): tests/unit/recorded/ holds them, replayed by test_diagnosis_rules.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest
from labtools import MASTERS, wait_for

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status.diagnosis import diagnose
from k8s_ha_tui.status.poll import Collector

HOLDER, BACKUP = "k8s-master-01", "k8s-master-03"  # after deploy: priorities 150, 140, 130
BOUND = 20.0  # seconds from the fault to its diagnosis; measured: bench/diagnosis.py (all under 4 s)

# fault → the diagnosis code expected on the faulty node
EXPECTED = {
    "apiserver-down": "apiserver-not-running",
    "apiserver-hang": "apiserver-hung",
    "apiserver-unready": "apiserver-not-ready",
    "haproxy-down": "haproxy-down",
    "keepalived-down": "keepalived-down",
    "vrrp-drop": "cut-off",
    "offline": "unreachable",
    "config-edit": "reload-pending",  # keepalived.conf's priority changed on disk, no reload
    "priority-tie": "priority-tie",  # lab fault `priority 140`: master-02's priority by a hand edit, reloaded
}
TIE_WITH = 140  # k8s-master-02's priority: the holder or the backup set to it ties with master-02


def snapshot(lab):
    """One status round, and what every node said (for the record)."""
    async def once():
        c = Collector(lab.topo, policy_for(lab.topo), watch_vip=False)
        try:
            snap = await c.poll_once()
            return snap, {s.node.name: (list(s.answer) if s.last and s.last.reachable else None, s.error)
                          for s in c.sessions}
        finally:
            c.close()
    return asyncio.run(once())


def inject(fault: str, node: str) -> None:
    if fault == "priority-tie":
        cluster.fault(node, "priority", TIE_WITH)
    else:
        cluster.fault(node, fault)


def heal(fault: str, node: str) -> None:
    cluster.heal(node, "priority" if fault == "priority-tie" else fault)


@pytest.fixture(scope="module")
def deployed(lab):
    lab.heal_all()
    lab.deploy()
    for m in MASTERS:
        lab.ssh(m, f"echo 0 > {PATHS.maintenance_file}; echo 0 > {PATHS.boost_file}")
    return lab


def healthy(lab):
    snap, _ = snapshot(lab)
    return snap if snap.holders == [HOLDER] and not diagnose(snap) else None


@pytest.mark.parametrize("role", ["holder", "backup"])
@pytest.mark.parametrize("fault", list(EXPECTED))
def test_each_fault_is_diagnosed_on_its_node(deployed, fault, role):
    node = HOLDER if role == "holder" else BACKUP
    wait_for(lambda: healthy(deployed), 30, "a healthy cluster with nothing to diagnose")
    started = time.monotonic()
    inject(fault, node)
    seen: list[str] = []
    try:
        def diagnosed():
            snap, said = snapshot(deployed)
            seen[:] = [d.line() for d in diagnose(snap)]
            found = [d for d in diagnose(snap) if d.node == node and d.code == EXPECTED[fault]]
            return (found[0], snap, said) if found else None
        try:
            found, snap, said = wait_for(diagnosed, BOUND, f"{EXPECTED[fault]} on {node}", interval=0.2)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the last diagnosis: {seen}") from None
        took = time.monotonic() - started
        others = [d for d in diagnose(snap) if d.node not in (node, "cluster") and d.code == EXPECTED[fault]]
        assert not others, f"the same cause blamed on other nodes too: {others}"
        assert found.evidence and found.next
        print(f"{fault} on the {role} ({node}): {found.code} in {took:.1f} s")
        folder = os.environ.get("K8S_HA_RECORD")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / f"{fault}-{role}.json").write_text(json.dumps(
                {"fault": fault, "role": role, "node": node, "code": found.code, "answers": said}, indent=1))
    finally:
        heal(fault, node)
    wait_for(lambda: healthy(deployed), 30, f"nothing to diagnose once {fault} is healed")


def test_a_latin1_comment_on_a_node_neither_breaks_the_poll_nor_reads_as_an_edit(deployed):
    """keepalived reads bytes; the collector reads keepalived.conf every round: a comment in
    Latin-1 (byte 0xE9) must be neither a lost node nor a reload pending."""
    wait_for(lambda: healthy(deployed), 30, "a healthy cluster with nothing to diagnose")
    deployed.ssh(HOLDER, f"cp -p {PATHS.keepalived_conf} /root/keepalived.conf.saved && "
                         f"printf '# r\\351seau du caf\\351\\n' >> {PATHS.keepalived_conf}")
    try:
        snap, _ = snapshot(deployed)
        m = snap.master(HOLDER)
        assert (m.reachable, m.keepalived, m.vrrp_state, m.apiserver, m.holds_vip) == (True, "active", "MASTER", "up",
                                                                                     True)
        assert not diagnose(snap), [d.line() for d in diagnose(snap)]
    finally:
        deployed.ssh(HOLDER, f"mv -f /root/keepalived.conf.saved {PATHS.keepalived_conf}")
