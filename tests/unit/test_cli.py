"""The command line as a user meets it: installed entry point, one-line errors, exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from k8s_ha_tui import cli

EXE = shutil.which("k8s-ha-tui", path=str(Path(sys.executable).parent)) or "k8s-ha-tui"


def run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


def test_installed_entry_point_renders_from_its_packaged_templates(tmp_path, example_path):
    res = run("render", "-t", str(example_path), "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "rendered 19 files for 3 masters" in res.stdout
    assert (tmp_path / "out/k8s-master-02/etc/keepalived/keepalived.conf").exists()


def test_module_and_help_work():
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for command in ("wizard", "render", "lint", "lab", "demo"):
        assert command in res.stdout


@pytest.mark.parametrize("content, message", [
    ("name: x\nvip: 10.0.3.10\nmasters:\n  - {name: a, address: 10.0.3.300}\n", "masters[0].address: '10.0.3.300'"),
    ("name: x\nvip: 10.0.3.10\nvrrp: {router_id: 300}\nmasters:\n  - {name: a, address: 10.0.3.11}\n",
     "vrrp.router_id: 300"),
    ("{{{ not yaml", "not valid YAML"),
    ("", "expected a mapping"),
])
def test_bad_topology_is_one_line_exit_2_and_writes_nothing(tmp_path, content, message):
    topo = tmp_path / "t.yaml"
    topo.write_text(content)
    res = run("render", "-t", str(topo), "-o", str(tmp_path / "out"))
    assert res.returncode == 2
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and message in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "out").exists()


SIX = "name: six\nvip: fd00::10\nmasters:\n  - {name: a, address: 'fd00::11'}\n  - {name: b, address: 'fd00::12'}\n"


def test_the_census_refuses_an_ipv6_only_cluster_in_one_line_before_connecting(tmp_path, monkeypatch, capsys):
    """It hears VRRP over IPv4 only, so for an IPv6-only cluster it would call every router id
    free (asyncssh.connect is made to fail the test if it is reached)."""
    import asyncssh

    async def no_connection(*_args, **_kw):
        raise AssertionError("a connection was attempted")
    monkeypatch.setattr(asyncssh, "connect", no_connection)
    topo = tmp_path / "six.yaml"
    topo.write_text(SIX)
    assert cli.main(["render", "-t", str(topo), "-o", str(tmp_path / "out")]) == 0
    assert cli.main(["lint", "-t", str(topo)]) == 0
    capsys.readouterr()
    assert cli.main(["wizard", "--from", str(topo), "--census", "-o", str(tmp_path / "new.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {topo}: --census hears VRRP over IPv4 only")


def test_lab_commands_refuse_cleanly_without_root_or_lab(tmp_path):
    res = run("lab", "fault", "k8s-master-01", "apiserver-down", env={"K8S_HA_TUI_LAB_DIR": str(tmp_path),
                                                                    "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"})
    assert res.returncode != 0 and res.stderr.startswith("error: ") and "Traceback" not in res.stderr


def test_a_reader_that_goes_away_gets_no_traceback(example_path):
    """`k8s-ha-tui lint ... | head -1`: the pipe closes before the output is written."""
    proc = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "lint", "-t", str(example_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=30) == 141 and err == "", err


def test_no_traceback_for_odd_but_plausible_input(tmp_path, example_path):
    """A wizard without a terminal, a render into a path under a file, a zero poll interval, a
    discover output that is a directory: one line each, exit 2, nothing written."""
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    cases = [
        (["wizard", "-o", str(tmp_path / "t.yaml")], "needs a terminal"),
        (["render", "-t", str(example_path), "-o", str(a_file / "out")], "is a file, not a directory"),
        (["monitor", "-t", str(example_path), "--interval", "0"], "outside 0.2–60 seconds"),
        (["monitor", "-t", str(tmp_path / "none.yaml")], "needs a terminal"),  # checked before anything else
        (["discover", "--masters", "198.18.0.11", "-o", str(tmp_path)], "is a directory"),
        (["exporter", "-t", str(example_path), "--interval", "0"], "outside 1–300 seconds"),
    ]
    for argv, message in cases:
        res = run(*argv)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, (argv, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_ctrl_c_says_what_was_left_and_exits_130(tmp_path, example_path, monkeypatch, capsys):
    """render stopped after its first file: one line, exit 130, and no folder, not even the
    staging one it was filling."""
    from k8s_ha_tui.configs import render

    real_fdopen, opened = render.os.fdopen, []

    def stop_on_second(*args, **kw):
        opened.append(1)
        if len(opened) == 2:
            raise KeyboardInterrupt
        return real_fdopen(*args, **kw)
    monkeypatch.setattr(render.os, "fdopen", stop_on_second)
    assert cli.main(["render", "-t", str(example_path), "-o", str(tmp_path / "out")]) == 130
    assert capsys.readouterr().err.strip() == "interrupted; nothing was changed"
    assert len(opened) == 2 and list(tmp_path.iterdir()) == []


def test_devices_fifos_folders_and_huge_files_are_refused_not_read(tmp_path, example_path, monkeypatch, capsys):
    """Read whole, /dev/zero would never end and a FIFO would block: one line and exit 2 instead,
    before anything connects (asyncssh.connect is made to fail the test if it is reached)."""
    import os

    import asyncssh
    import yaml

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big.yaml"
    big.write_text("#" * (2 << 20))
    data = yaml.safe_load(example_path.read_text())
    data["ssh"]["known_hosts"] = "/dev/zero"
    odd_ssh = tmp_path / "odd-ssh.yaml"
    odd_ssh.write_text(yaml.safe_dump(data))

    async def no_connection(*_args, **_kw):
        raise AssertionError("a connection was attempted")
    monkeypatch.setattr(asyncssh, "connect", no_connection)
    cases = [
        (["lint", "-t", "/dev/zero"], "/dev/zero: not a regular file, not a topology file"),
        (["lint", "--keepalived", str(fifo)], "not a regular file, not a config file"),
        (["lint", "--haproxy", str(tmp_path)], "a directory, not a config file"),
        (["render", "-t", str(big), "-o", str(tmp_path / "out")], "larger than 1 MiB"),
        (["status", "-t", str(odd_ssh)], "/dev/zero: ssh.known_hosts is not a regular file"),
    ]
    for argv, message in cases:
        assert cli.main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "out").exists()


def test_outputs_on_a_full_device_or_onto_a_device_are_one_line_and_leave_nothing(tmp_path, example_path):
    """A full tmpfs in a mount namespace of the test's own: render and wizard cannot write, and
    leave nothing; an output path that names a device is refused (a rename would replace it)."""
    if shutil.which("unshare") is None or __import__("os").geteuid() != 0:
        pytest.skip("needs root and unshare for a private tmpfs")
    full = tmp_path / "full"
    full.mkdir()
    script = (f"mount -t tmpfs -o size=8k tmpfs {full} && (head -c 16384 /dev/zero > {full}/filler 2>/dev/null; true) && "
              f"{sys.executable} -m k8s_ha_tui render -t {example_path} -o {full}/out; echo rc=$?; "
              f"{sys.executable} -m k8s_ha_tui wizard --defaults -o {full}/t.yaml >/dev/null; echo rc=$?; "
              f"echo left=$(ls -A {full})")
    res = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                         capture_output=True, text=True, timeout=60)
    assert "rc=2\nrc=2\nleft=filler\n" in res.stdout, res.stdout + res.stderr
    assert res.stderr.count("No space left on device") == 2 and "Traceback" not in res.stderr
    res = run("wizard", "--defaults", "-o", "/dev/null")
    assert res.returncode == 2 and "/dev/null: is not a regular file" in res.stderr
    assert __import__("pathlib").Path("/dev/null").is_char_device()
