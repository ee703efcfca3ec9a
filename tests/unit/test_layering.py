"""The architecture, enforced: import-linter's contracts (pyproject.toml) hold, they name every
package and root module, no two modules import each other (not even under TYPE_CHECKING), and
nothing below the front ends loads a UI library when imported."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import k8s_ha_tui

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
LAYERS = next(c for c in CONTRACTS if c["type"] == "layers")["layers"]
CORE = next(c for c in CONTRACTS if c["type"] == "forbidden")["source_modules"]
UI = ("textual", "questionary", "prompt_toolkit")


def test_the_contracts_hold():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    res = subprocess.run([str(lint_imports)], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr


def test_every_package_and_root_module_has_a_layer():
    """A new package or root module cannot escape the contracts unseen."""
    layered = {name.strip() for layer in LAYERS for name in layer.split("|")}
    present = {f"k8s_ha_tui.{m.name}" for m in pkgutil.iter_modules(k8s_ha_tui.__path__) if m.name != "__main__"}
    assert present == layered
    assert len([m for m in pkgutil.iter_modules(k8s_ha_tui.__path__) if not m.ispkg]) <= 8


def test_no_module_imports_one_that_imports_it_back():
    import grimp

    graph = grimp.build_graph("k8s_ha_tui")
    sys.setrecursionlimit(10_000)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert cycles == []


def test_the_core_loads_no_ui_library():
    modules = sorted(m.name for pkg in CORE for m in _walk(pkg))
    code = f"import sys, json, importlib\nfor m in {modules!r}: importlib.import_module(m)\n" \
           "print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert len(modules) > 30 and not [m for m in loaded if m.split(".")[0] in UI]


def _walk(name: str):
    module = __import__(name, fromlist=["_"])
    yield pkgutil.ModuleInfo(None, name, hasattr(module, "__path__"))  # type: ignore[arg-type]
    if hasattr(module, "__path__"):
        yield from pkgutil.walk_packages(module.__path__, f"{name}.")


def test_the_check_itself_can_fail():
    """The same check notices when a UI library is imported."""
    # Without a terminal the prompter refuses, after it has imported questionary (what is checked).
    code = ("import sys, json, k8s_ha_tui.wizard\ntry:\n    k8s_ha_tui.wizard.QuestionaryPrompter()\n"
            "except Exception:\n    pass\nprint(json.dumps(sorted(sys.modules)))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                       check=True).stdout)
    assert "questionary" in loaded


def test_test_modules_have_unique_basenames():
    """pytest imports test modules by basename here (no __init__.py): two test_x.py in different
    folders break the whole collection, as CI found twice."""
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("layer", LAYERS)
def test_each_layer_names_real_packages(layer):
    for name in (n.strip() for n in layer.split("|")):
        __import__(name)
