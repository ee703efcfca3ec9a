"""The wizard in a real pseudo-terminal (prompt_toolkit needs one): typing, errors, Ctrl-C."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pexpect
import pytest
from test_wizard import ScriptedPrompter

from k8s_ha_tui import wizard
from k8s_ha_tui.model import topology as tp

EXE = shutil.which("k8s-ha-tui", path=str(Path(sys.executable).parent))


def questions() -> list[str]:
    """The questions the default flow asks, in order (from a scripted run of the same code)."""
    p = ScriptedPrompter()
    wizard.ask_topology(p)
    return p.asked


def answer_defaults(child: pexpect.spawn, asked: list[str]) -> None:
    """Wait for each question before pressing Enter: keys typed between prompts are lost."""
    for q in asked:
        child.expect_exact(q)
        child.send("\r")


def spawn(tmp_path: Path) -> pexpect.spawn:
    child = pexpect.spawn(EXE, ["wizard", "-o", str(tmp_path / "t.yaml"), "--render-dir", str(tmp_path / "out")],
                          env={"TERM": "xterm", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "PROMPT_TOOLKIT_NO_CPR": "1"},  # no terminal here answers CPR
                          dimensions=(40, 120), timeout=15, encoding="utf-8")
    return child


@pytest.mark.skipif(EXE is None, reason="the k8s-ha-tui entry point is not installed")
def test_typing_a_bad_vip_shows_the_error_then_the_whole_flow_writes(tmp_path):
    child = spawn(tmp_path)
    child.expect("Cluster name")
    child.send("\r")
    child.expect("API DNS name")
    child.send("\r")
    child.expect("Virtual IP")
    child.send("\x15")  # Ctrl-U: clear the default
    child.send("10.0.3.300\r")
    child.expect("is not an IP address")
    child.send("\x15" + "10.0.3.10\r")
    answer_defaults(child, questions()[3:])
    child.expect(r"Write .*\(Y/n\)")
    child.send("y")
    child.expect("rendered configs for 3 masters")
    child.expect_exact(f"next: k8s-ha-tui deploy -t {tmp_path / 't.yaml'} --dry-run")
    child.expect(r"Run `k8s-ha-tui deploy -t .*` now\? .*\(y/N\)")  # the seed's addresses: never yes here
    child.send("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert tp.load_topology(tmp_path / "t.yaml").vip == "10.0.3.10"
    assert (tmp_path / "out/k8s-master-01/etc/keepalived/keepalived.conf").exists()


@pytest.mark.skipif(EXE is None, reason="the k8s-ha-tui entry point is not installed")
def test_ctrl_c_in_a_terminal_leaves_nothing(tmp_path):
    child = spawn(tmp_path)
    asked = questions()
    answer_defaults(child, asked[:asked.index("How many masters?")])
    child.expect_exact("How many masters?")
    child.sendcontrol("c")
    child.expect("nothing was written")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == []

