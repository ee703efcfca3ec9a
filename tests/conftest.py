"""Shared fixtures: the real config checkers and the lab (both need root and Debian packages).

Where they cannot run, their tests are skipped with the reason; in CI (CI=true) that is a
failure instead, so a missing install step can never turn into a green run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from realcheck import RealCheckers, why_unavailable  # noqa: E402


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def checkers():
    reason = why_unavailable()
    if reason:
        skip_or_fail(reason)
    c = RealCheckers()
    yield c
    c.close()


@pytest.fixture
def example_path() -> Path:
    return ROOT / "examples" / "sungup.yaml"


@pytest.fixture(scope="session")
def lab():
    """One lab for the whole session: up before the first lab test, down after the last."""
    from labtools import Lab, lab_unavailable

    reason = lab_unavailable()
    if reason:
        skip_or_fail(reason)
    lab = Lab.start()
    try:
        yield lab
    finally:
        lab.stop()


def pytest_collection_modifyitems(config, items):
    """The markers by where a test lives (or what it uses): `pytest -m "not lab"` runs the unit
    suite alone, without root or the lab."""
    for item in items:
        folder = item.path.parent.name
        if folder == "lab" or "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
        if folder == "checkers" or "checkers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.checkers)
