"""Shared fixtures: the real config checkers (the lab's are in tests/lab/conftest.py), and the markers.

Where they cannot run, their tests are skipped with the reason; in CI (CI=true) that is a
failure instead, so a missing install step can never turn into a green run.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from needs import skip_or_fail  # noqa: E402
from realcheck import RealCheckers, why_unavailable  # noqa: E402


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


def pytest_collection_modifyitems(config, items):
    """The markers by where a test lives (or what it uses): `pytest -m "not lab"` runs the unit
    suite alone, without root or the lab."""
    for item in items:
        folder = item.path.parent.name
        if folder == "lab" or "lab" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.lab)
        if folder == "checkers" or "checkers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.checkers)
