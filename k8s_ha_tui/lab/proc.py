"""Running commands for the lab: always with a timeout, failures as one-line LabErrors."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

from k8s_ha_tui.errors import UserError


class LabError(UserError):
    """Something the lab could not do; the message says what and why."""


def run(cmd: list[str], timeout: float = 20, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input)
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(cmd[:4])}...: no answer within {timeout:g} s") from None
    except FileNotFoundError:
        raise LabError(f"{cmd[0]}: not installed") from None
    if check and res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        said = next((line for line in detail if "Error:" in line), detail[-1] if detail else f"exit {res.returncode}")
        raise LabError(f"{' '.join(cmd)}: {said.strip()}")
    return res


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `condition` until it holds; a LabError naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def alive(pid: int) -> bool:
    """A running process with this pid: not gone, and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def stop_pids(pids: list[int], timeout: float = 5) -> None:
    """SIGTERM (and SIGCONT, for stopped ones), then SIGKILL whatever is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
