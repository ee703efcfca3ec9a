"""The model, render, lint and collector layers import neither textual nor questionary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CORE = ["k8s_ha_tui.topology", "k8s_ha_tui.render", "k8s_ha_tui.lint", "k8s_ha_tui.election",
        "k8s_ha_tui.confparse", "k8s_ha_tui.collector.model", "k8s_ha_tui.collector.parse",
        "k8s_ha_tui.collector.poll", "k8s_ha_tui.collector.ssh", "k8s_ha_tui.deploy", "k8s_ha_tui.actions",
        "k8s_ha_tui.guard", "k8s_ha_tui.backups", "k8s_ha_tui.lockfile", "k8s_ha_tui.auditlog",
        "k8s_ha_tui.interrupts", "k8s_ha_tui.paths", "k8s_ha_tui.deploy_steps"]
UI = ("textual", "questionary", "prompt_toolkit")


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_ui(module):
    code = f"import sys, json, {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert not [m for m in loaded if m.split(".")[0] in UI]


def test_the_check_itself_can_fail():
    """The same check notices when a UI library is imported."""
    # Without a terminal the prompter refuses, after it has imported questionary (what is checked).
    code = ("import sys, json, k8s_ha_tui.wizard\ntry:\n    k8s_ha_tui.wizard.QuestionaryPrompter()\n"
            "except Exception:\n    pass\nprint(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert "questionary" in loaded


ROOT = Path(__file__).resolve().parents[2]


def test_test_modules_have_unique_basenames():
    """pytest imports test modules by basename here (no __init__.py): two test_x.py in different
    folders break the whole collection, as CI found twice."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
