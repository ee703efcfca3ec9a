"""The roles' pure parts: what a node's answers say about a login, the operate role's helper and
sudo rules (checked by the real visudo where sudo is installed), and the notify script that
keeps the watch role's state file (run for real on keepalived's FIFO lines)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.configs import render
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.operations import access
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import node_ops, roles
from k8s_ha_tui.wizard import SEED_DEFAULTS

# `sudo -n -l -U k8sha-ops` on a lab master after `access grant operate k8sha-ops`.
SUDO_LISTED = ("    (root) NOPASSWD: " + ", ".join(f"{PATHS.op_helper} {op}" for op in node_ops.OPERATIONS) + "\n")


def test_a_login_s_role_as_its_node_says():
    def login(uid="1000", groups="me", sudo="no", rules="no"):
        return roles.parse_login(f"@@user\nme\n@@uid\n{uid}\n@@groups\n{groups}\n@@sudo\n{sudo}\n@@oprules\n{rules}\n")

    assert login(uid="0").role == "deploy" and login(sudo="yes").role == "deploy"
    assert login(groups=f"me {PATHS.watch_group} {PATHS.operate_group}", rules="yes").role == "operate"
    # the group without the rules (a drop-in removed by hand) acts as nothing more than watch
    assert login(groups=f"me {PATHS.watch_group} {PATHS.operate_group}").role == "watch"
    assert login(groups=f"me {PATHS.watch_group}").role == "watch" and login().role == "none"
    assert roles.parse_login("garbage\x00\n@@uid\nx").role == "none"
    assert roles.probe_role("0\nroot") == "deploy" and roles.probe_role("") == "none"
    assert roles.probe_role(f"1001\nme {PATHS.operate_group}") == "operate"


def test_a_refusal_names_the_role_and_where_it_is_lacking():
    watch = roles.Login("k8sha-watch", 4243, (PATHS.watch_group,), False)
    root = roles.Login("root", 0, (), False)
    found = {"m1": watch, "m2": watch, "m3": root}
    why = roles.lacking(found, "operate", "failover")
    assert why == ("failover needs the operate role (`access grant operate`): k8sha-watch has the watch role "
                   "on m1, m2")
    assert roles.lacking({"m3": root}, "deploy", "deploy") is None
    assert roles.ranks("deploy", "watch") and not roles.ranks("watch", "operate")


@pytest.mark.parametrize("bad", ["root", "", "Admin", "a b", "x;rm -rf /", "-x", "a" * 33, "ops,ALL", "u\n"])
def test_only_plain_login_names_get_a_role(bad):
    with pytest.raises(UserError):
        access.check_user(bad)


def test_sudo_s_listing_is_read_as_exact_rules_or_not():
    assert access._sudo_summary(SUDO_LISTED) == (f"{len(node_ops.OPERATIONS)} k8s-ha-tui operations, exact "
                                                 "arguments", True)
    assert access._sudo_summary("    (ALL) NOPASSWD: ALL\n") == ("ALL", False)
    assert access._sudo_summary("") == ("none", False)
    one_more = SUDO_LISTED.rstrip("\n") + ", /usr/bin/tee\n"
    assert access._sudo_summary(one_more)[1] is False  # one rule more is not the operate role


def test_show_reads_groups_drop_ins_and_sudo_per_user():
    text = (f"@@uid\n0\n@@group:{PATHS.watch_group}\nk8sha-watch,k8sha-ops\n@@group:{PATHS.operate_group}\nk8sha-ops\n"
            f"@@dropins\nk8sha-ops\n@@helper\n{node_ops.helper_digest()}\n@@sockets\n"
            f"{PATHS.watch_socket} {PATHS.watch_group}\n@@sudo:k8sha-ops\n{SUDO_LISTED}@@sudo:k8sha-watch\n")
    holders, helper, sockets = access.parse_show("m1", text)
    assert [(h.user, h.role) for h in holders] == [("k8sha-ops", "operate"), ("k8sha-watch", "watch")]
    assert helper == node_ops.helper_digest() and PATHS.watch_group in sockets
    assert access.parse_show("m1", "\x00garbage") == ([], None, "")
    # as a login without root: the groups still say the roles, the rules are not listed
    unlisted, _, _ = access.parse_show("m1", text.replace("@@uid\n0\n", "@@uid\n4243\n"))
    assert [(h.user, h.role, h.sudo) for h in unlisted] == [("k8sha-ops", "operate", access.UNLISTED),
                                                           ("k8sha-watch", "watch", access.UNLISTED)]


def test_the_helper_is_valid_sh_and_refuses_what_it_does_not_know(tmp_path):
    script = tmp_path / "op"
    script.write_text(node_ops.helper_script())
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    for argv in (["bogus"], ["maintenance", "1"], ["service", "stop", "ssh"], []):
        res = subprocess.run(["sh", str(script), *argv], capture_output=True, text=True)
        assert res.returncode == 64 and "not an operation" in res.stderr
    assert all(f"    '{op}')" in node_ops.helper_script() or f"    {op})" in node_ops.helper_script()
               for op in node_ops.OPERATIONS)


def test_the_sudo_rules_name_every_operation_and_no_wildcard():
    rules = node_ops.sudo_rules("k8sha-ops")
    body = rules.split("NOPASSWD:", 1)[1]
    assert not any(c in body for c in "*?[]!=:") and "ALL" not in body
    assert [c.strip(" \\\n") for c in body.split(",")] == [f"{PATHS.op_helper} {op}" for op in node_ops.OPERATIONS]


@pytest.mark.skipif(shutil.which("visudo", path="/usr/sbin:/usr/bin:/sbin") is None,
                    reason="visudo (Debian package sudo) is not installed")
@settings(max_examples=15, deadline=None)
@given(user=st.from_regex(roles.USER_NAME, fullmatch=True).filter(lambda u: u != "root"))
def test_every_drop_in_passes_the_real_visudo(tmp_path_factory, user):
    path = tmp_path_factory.mktemp("sudoers") / "dropin"
    path.write_text(node_ops.sudo_rules(user))
    res = subprocess.run([shutil.which("visudo", path="/usr/sbin:/usr/bin:/sbin") or "visudo", "-cf", str(path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@dataclass
class FakeConn:
    limited: bool
    become: str = "sudo"
    name: str = "m1"
    sent: list = field(default_factory=list)

    async def run(self, command, input=None, timeout=0, check=True, label=None, as_login=False):
        self.sent.append((command, input, as_login))


async def test_an_operate_login_runs_the_helper_and_root_runs_the_body():
    ops, root = FakeConn(limited=True), FakeConn(limited=False)
    await node_ops.run(ops, "maintenance", input="1\n")
    await node_ops.run(root, "maintenance", input="1\n")
    assert ops.sent == [(f"sudo -n {PATHS.op_helper} maintenance", "1\n", True)]
    assert root.sent == [(node_ops.OPERATIONS["maintenance"], "1\n", False)]


def _notify_script(tmp_path) -> str:
    data = copy.deepcopy(SEED_DEFAULTS)
    t = tp.topology_from_dict(data)
    text = {f.path: f.text for f in render.render_node(t, t.masters[0])}[PATHS.notify_script]
    script = tmp_path / "notify.sh"
    script.write_text(text.replace(PATHS.state_dir, str(tmp_path / "state")))
    return str(script)


def test_the_notify_script_keeps_state_and_priority_from_keepalived_s_fifo(tmp_path):
    script = _notify_script(tmp_path)
    state = tmp_path / "state" / "vrrp-state"

    def feed(*lines: str) -> list[str]:
        fifo = tmp_path / "lines"
        fifo.write_text("".join(f"{ln}\n" for ln in lines))
        assert subprocess.run(["sh", script, str(fifo)], timeout=10).returncode == 0
        return state.read_text().split()

    first = feed('INSTANCE "VI_51" BACKUP 130')
    assert first[1:] == ["INSTANCE", "VI_51", "BACKUP", "130"]
    boosted = feed('INSTANCE "VI_51" BACKUP_PRIORITY 150', 'INSTANCE "VI_51" MASTER_RX_LOWER_PRI 150')
    assert boosted == [first[0], "INSTANCE", "VI_51", "BACKUP", "150"]  # a priority change keeps the time
    master = feed('INSTANCE "VI_51" MASTER 150')
    assert master[3] == "MASTER" and float(master[0]) >= float(first[0])
    # called the old way (a `notify` line of a config deployed before): one record
    subprocess.run(["sh", script, "INSTANCE", "VI_51", "FAULT", "0"], check=True, timeout=10)
    assert state.read_text().split()[1:] == ["INSTANCE", "VI_51", "FAULT", "0"]
    events = (tmp_path / "state" / "vrrp-events.log").read_text().splitlines()
    assert [e.split()[3] for e in events] == ["BACKUP", "BACKUP_PRIORITY", "MASTER", "FAULT"]


def test_the_notify_script_keeps_a_line_for_each_instance_and_the_sync_group(tmp_path):
    """A dual stack's two instances and their group each report; the record keeps each one's
    latest line, so a watch login finds its VIP's instance and priority (the group's line has none)."""
    from k8s_ha_tui.status import parse

    script = _notify_script(tmp_path)
    state = tmp_path / "state" / "vrrp-state"
    fifo = tmp_path / "lines"
    fifo.write_text('INSTANCE "VI_51" BACKUP 150\nINSTANCE "VI6_51" BACKUP 150\nGROUP "VG_51" BACKUP 0\n'
                    'INSTANCE "VI_51" MASTER 150\nINSTANCE "VI6_51" MASTER 150\nGROUP "VG_51" MASTER 0\n'
                    'INSTANCE "VI_51" MASTER_PRIORITY 155\n')
    assert subprocess.run(["sh", script, str(fifo)], timeout=10).returncode == 0
    lines = [ln.split() for ln in state.read_text().splitlines()]
    assert sorted(p[1:] for p in lines) == [["GROUP", "VG_51", "MASTER", "0"], ["INSTANCE", "VI6_51", "MASTER", "150"],
                                           ["INSTANCE", "VI_51", "MASTER", "155"]]
    v4, v6 = (parse.notify_state(state.read_text(), name) for name in ("VI_51", "VI6_51"))
    assert (v4["state"], v4["effective_priority"], v6["effective_priority"]) == ("MASTER", 155, 150)
    events = (tmp_path / "state" / "vrrp-events.log").read_text().splitlines()
    became = next(float(e.split()[0]) for e in events if e.split()[2:4] == ["VI_51", "MASTER"])
    assert v4["last_transition"] == became < float(events[-1].split()[0])  # the priority change kept the time
