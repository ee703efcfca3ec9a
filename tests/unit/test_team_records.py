"""The pure parts of working as a team: lock records, audit lines, backup ids and listings, the
node-side transaction script and the parsers of deploy's node answers — garbage included."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.model import topology
from k8s_ha_tui.remote import auditlog, lockfile, nodefiles
from k8s_ha_tui.rollouts import backups, deploy_steps, deploy_verify
from k8s_ha_tui.rollouts.deploy_steps import FileChange

NOW = 1_800_000_000.0


def lock(**changes) -> lockfile.LockInfo:
    base = dict(id="abc", who="alice@laptop", host="laptop", pid=4242, what="deploy all masters", cluster="c",
                since=NOW - 30, renewed=NOW - 10)
    return lockfile.LockInfo(**{**base, **changes})


def test_a_lock_round_trips_and_its_token_names_the_exact_file():
    text = lock().text()
    parsed = lockfile.parse_lock(text, None)
    assert parsed.who == "alice@laptop" and parsed.pid == 4242 and parsed.what == "deploy all masters"
    assert parsed.token and lockfile.parse_lock(text + " ", None).token != parsed.token


def test_a_lock_is_stale_only_when_its_holder_cannot_be_running():
    alive, dead = (lambda _pid: True), (lambda _pid: False)
    assert lock().stale_reason(NOW, "laptop", alive) is None
    assert "process 4242 on laptop is gone" in lock().stale_reason(NOW, "laptop", dead)
    assert lock().stale_reason(NOW, "other-host", dead) is None  # someone else's pid says nothing here
    old = lock(renewed=NOW - lockfile.STALE_AFTER - 1)
    assert "not renewed for 121 s" in old.stale_reason(NOW, "other-host", alive)


def test_a_lock_is_taken_over_only_when_its_holder_is_proven_gone_by_both_clocks():
    alive, dead = (lambda _pid: True), (lambda _pid: False)
    ttl = lockfile.STALE_AFTER
    assert "process 4242 on laptop is gone" in lock().gone_reason(NOW, "laptop", 5.0, dead)
    assert lock().gone_reason(NOW, "other-host", 5.0, dead) is None  # another machine's pid proves nothing
    old = lock(renewed=NOW - ttl - 1)
    assert "not renewed for 130 s" in old.gone_reason(NOW, "other-host", ttl + 10, alive)
    # the node rewrote the file lately: its holder's record alone (or our clock) proves nothing
    assert old.gone_reason(NOW, "other-host", 10.0, alive) is None and old.stale_reason(NOW, "other-host", alive)
    assert old.gone_reason(NOW, "other-host", None, alive) is None
    # our clock says recent, the node's says old: not proven either
    assert lock().gone_reason(NOW, "other-host", ttl + 10, alive) is None


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_any_lock_file_is_a_lock(garbage):
    parsed = lockfile.parse_lock(garbage, 123.0)
    assert parsed.who and parsed.token  # never None, never an exception: a lock is a lock
    probe = lockfile.parse_probe(f"123\n{'a' * 64}\n{garbage}")
    assert probe is not None and probe.token == "a" * 64


def test_no_lock_file_is_no_lock():
    assert lockfile.parse_probe("NONE\n") is None and lockfile.parse_probe("") is None


def test_the_probe_reads_a_real_file_even_binary(tmp_path):
    f = tmp_path / "lock"
    f.write_bytes(b"\x00\xff garbage \x1b[31m")
    out = subprocess.run(["sh", "-c", lockfile.lock_probe(str(f))], capture_output=True, text=True).stdout
    found = lockfile.parse_probe(out)
    assert found is not None and "unreadable" in found.who and len(found.token) == 64
    assert "\x1b" not in out


def test_audit_lines_round_trip_and_garbage_is_skipped():
    e = auditlog.entry("c", "failover", "a->b", auditlog.refused("split brain"), 0.5)
    text = e.line() + "not json\n{\"when\": 1}\n[1,2]\n" + auditlog.entry("c", "deploy", "all", "ok").line()[:-9]
    parsed = auditlog.parse_lines(text)
    assert parsed == [e] and parsed[0].kind == "refused"


@given(st.text(max_size=500))
def test_audit_parser_never_raises(garbage):
    assert isinstance(auditlog.parse_lines(garbage), list)


def test_backup_ids_are_unique_and_sort_by_age():
    ids = [backups.new_id() for _ in range(50)]
    assert len(set(ids)) == 50 and ids == sorted(ids)
    assert all(backups.ID.fullmatch(i) for i in ids) and backups.ID.fullmatch("20261126T101500Z")


def test_pruning_keeps_the_newest_and_never_a_protected_one():
    existing = [f"2026010{i}T000000Z" for i in range(1, 7)]
    assert backups.to_prune(existing, 4, set()) == existing[:3]
    assert backups.to_prune(existing, 4, {existing[0]}) == existing[1:3]
    assert backups.to_prune(existing[:2], 10, set()) == []


def test_backup_listing_reads_meta_and_skips_what_is_not_a_backup():
    info = backups.BackupInfo("20261129T063012.482913Z", "bob@box", "deploy", "c", "/t.yaml", "f" * 64,
                              "20261128T000000Z")
    out = f"@@{info.id}\n{info.meta()}@@20261126T101500Z\n@@lost+found\nx\n@@20261127T000000Z\n{{broken"
    found = backups.parse_listing(out)
    assert [b.id for b in found] == ["20261126T101500Z", "20261127T000000Z", info.id]
    assert found[-1] == info and found[0].who == "?"


def test_backup_script_never_reuses_a_folder(tmp_path, monkeypatch):
    script = backups.create_script(backups.BackupInfo("20261129T000000.000001Z"), ["/etc/x"], [], [])
    assert " mkdir /var/backups/k8s-ha-tui/20261129T000000.000001Z" in script  # no -p: fails if it exists


# --- deploy's node answers -----------------------------------------------------------------------

def test_probe_answer_parsing_and_garbage():
    out = ("UID 0\nVERSION HAProxy version 2.6.12-1 2023/12/01\nVERSION Keepalived v2.2.7 (01/16,2022)\n"
           "ACTIVE keepalived active\nACTIVE haproxy inactive\nMAINT 1\nADDR 198.18.0.10/32\n")
    state = deploy_steps.parse_probe(out, "198.18.0.10")
    assert (state.uid, state.haproxy_version, state.keepalived_version) == ("0", "2.6.12", "2.2.7")
    assert state.active == {"keepalived": True, "haproxy": False} and state.maintenance and state.holds_vip
    empty = deploy_steps.parse_probe("\x00garbage\nMAINT x\nUID", "198.18.0.10")
    assert not empty.maintenance and empty.uid == "" and not empty.holds_vip


@given(st.binary(max_size=2000))
@settings(max_examples=60)
def test_files_are_read_back_byte_exact(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("f")
    text = (data.decode("utf-8", "surrogateescape") + "\n@@0\nABSENT\n@@k8s-ha-tui-file@@ x")
    (d / "a").write_bytes(text.encode("utf-8", "surrogateescape"))
    paths = [str(d / "a"), str(d / "missing")]
    out = subprocess.run(["sh", "-c", nodefiles.read_files_script(paths)], capture_output=True, text=True).stdout
    assert nodefiles.parse_files(out, paths) == {paths[0]: text, paths[1]: None}


def test_a_truncated_files_answer_is_an_error_not_a_guess():
    import pytest

    from k8s_ha_tui.errors import UserError
    good = base64.b64encode(b"hello").decode()
    assert nodefiles.parse_files(f"@@0\nPRESENT\n{good}\n", ["/a"]) == {"/a": "hello"}
    for bad in ("", "@@0\nPRESENT\nnot base64!", "@@0\nMAYBE\n"):
        with pytest.raises(UserError):
            nodefiles.parse_files(bad, ["/a"])


def test_verification_expects_fault_in_maintenance_and_names_what_fails():
    topo = topology.Topology.model_validate(topology.topology_to_dict(
        topology.load_topology("examples/sungup.yaml")))
    ok = "ACTIVE active active\nLOCAL 200\nVRRP BACKUP\nVIP 200\n"
    assert deploy_verify.verify_failure(ok, topo, maintenance=False) is None
    assert "expected FAULT (it is in maintenance)" in deploy_verify.verify_failure(ok, topo, maintenance=True)
    assert deploy_verify.verify_failure(ok.replace("BACKUP", "FAULT"), topo, maintenance=True) is None
    assert "services" in deploy_verify.verify_failure("garbage", topo, maintenance=False)
    assert "does not serve /readyz" in deploy_verify.verify_failure(ok.replace("LOCAL 200", "LOCAL 000"), topo, False)
    # keepalived's own DATA dump wins over the notify record (hand-made configs have no notify script)
    dump = (Path(__file__).parent.parent / "fixtures" / "nodes" / "keepalived-handmade.data").read_text()
    handmade = topo.model_copy(update={"vip": "198.18.0.10"})
    no_notify = ok.replace("VRRP BACKUP", "VRRP") + "@@data\n" + dump
    assert deploy_verify.verify_failure(no_notify, handmade, maintenance=False) is None
    assert "expected FAULT" in deploy_verify.verify_failure(no_notify, handmade, maintenance=True)
    # kept out of a cut-over by a stopped keepalived: that is what is expected
    stopped = "ACTIVE active inactive\nLOCAL 200\nVRRP\nVIP 200\n"
    assert deploy_verify.verify_failure(stopped, topo, False, keepalived_stopped=True) is None
    assert "keepalived stopped" in deploy_verify.verify_failure(ok, topo, False, keepalived_stopped=True)
    assert "services" in deploy_verify.verify_failure(stopped, topo, False)


def test_the_transaction_swaps_every_file_or_none(tmp_path):
    """Run the real script (systemctl left out): a missing source leaves every target untouched."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / str(dst).lstrip("/")).mkdir(parents=True)
    dst.mkdir(exist_ok=True)
    for name in ("a", "b"):
        (dst / name).write_text(f"old {name}\n")
    (src / str(dst / "a").lstrip("/")).write_text("new a\n")
    changes = [FileChange(str(dst / "a"), "old a\n", "new a\n", 0o644),
               FileChange(str(dst / "b"), "old b\n", "new b\n", 0o644)]  # b's source is missing
    script = deploy_steps.commit_script(changes, str(src), {}).replace("-o root -g root ", "")
    script = script.replace(deploy_steps.PATHS.state_dir, str(tmp_path / "run")).replace(
        deploy_steps.PATHS.transaction_lock, str(tmp_path / "run" / "lock"))
    res = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert "FAILED install" in res.stdout and "COMMITTED" not in res.stdout
    assert [(dst / n).read_text() for n in ("a", "b")] == ["old a\n", "old b\n"]
    assert sorted(p.name for p in dst.iterdir()) == ["a", "b"]  # no .k8s-ha-tui-new left behind
    (src / str(dst / "b").lstrip("/")).write_text("new b\n")
    res = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert "COMMITTED" in res.stdout
    assert [(dst / n).read_text() for n in ("a", "b")] == ["new a\n", "new b\n"]

