"""The lab's fixtures, shared by every test in this folder (its helpers: tests/labtools.py)."""

from __future__ import annotations

import pytest
from needs import skip_or_fail


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
