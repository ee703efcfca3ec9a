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


@pytest.fixture(scope="module", autouse=True)
def a_plain_lab_for_each_module(lab):
    """Every module starts from the lab as `lab up` makes it (apiservers up, nothing deployed)
    and leaves it so for the next: no module depends on what the one before it did (2-3 s)."""
    yield
    lab.stop()
    lab.start()


@pytest.fixture(scope="module")
def deployed(lab):
    """This tool's configs deployed, the VIP on master-01 (a module may override it)."""
    from labtools import wait_for

    lab.deploy()
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "master-01 holding the VIP")
    return lab
