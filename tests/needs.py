"""What a test needs of this machine: skipped where it is missing, a failure in CI (CI=true),
so that a missing install step can never turn into a green run."""

from __future__ import annotations

import os

import pytest


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"cannot run in CI: {reason}")
    pytest.skip(reason)
