"""HAProxy's own verdict on a file lint is given, where HAProxy is installed on this machine:
`haproxy -c` reads HAProxy syntax exactly, which lint's parser does not try to. keepalived's
`-t` is not run here: its verdict depends on the node's interfaces and script owners, so doctor
asks it on the node itself."""

from __future__ import annotations

import os
import shutil
import subprocess

from k8s_ha_tui.configs.lint import Finding

SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def haproxy_verdict(path: str, timeout: float = 20) -> Finding | None:
    """H100 when `haproxy -c` refuses the file (its alerts, in its words); None when it accepts
    it or HAProxy is not installed here."""
    binary = shutil.which("haproxy", path=SEARCH)
    if binary is None:
        return None
    try:
        res = subprocess.run([binary, "-c", "-f", path], capture_output=True, text=True, timeout=timeout,
                             errors="replace", stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode == 0:
        return None
    lines = [ln.strip() for ln in (res.stdout + res.stderr).splitlines() if "[ALERT]" in ln]
    said = " | ".join(ln.split(": ", 1)[-1] for ln in lines[:3]) or f"exit {res.returncode}"
    return Finding("H100", "error", f"haproxy -c refuses this file: {said}",
                   "fix what HAProxy names: it cannot start or reload with this file", path)
