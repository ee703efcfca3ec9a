"""HAProxy's own verdict on a file lint is given, where HAProxy is installed on this machine:
`haproxy -c` reads HAProxy syntax exactly, which lint's parser does not try to. keepalived's
`-t` is not run here: its verdict depends on the node's interfaces and script owners, so doctor
asks it on the node itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from k8s_ha_tui.configs.lint import Finding
from k8s_ha_tui.paths import PATHS

SEARCH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


def haproxy_alerts(output: str) -> str:
    """What `haproxy -c` refused, in its words: its first three [ALERT] lines without the prefix."""
    lines = [ln.strip() for ln in output.splitlines() if "[ALERT]" in ln]
    return " | ".join(ln.split(": ", 1)[-1] for ln in lines[:3])


# What haproxy -c says of a group this machine lacks, and its closing lines that add nothing.
_UNKNOWN_GROUP = re.compile(r"unknown group name '([^']*)'")
_SUMMARY = ("Error(s) found in configuration file", "Fatal errors found in configuration")


def only_role_groups_missing(output: str) -> bool:
    """Whether haproxy -c refused the file only because the roles' groups (the sockets' owners)
    do not exist here: deploy makes them on the nodes, not on the operator's machine."""
    alerts = [ln for ln in output.splitlines() if "[ALERT]" in ln and not any(x in ln for x in _SUMMARY)]
    groups = {m.group(1) for ln in alerts if (m := _UNKNOWN_GROUP.search(ln))}
    return bool(alerts) and all(_UNKNOWN_GROUP.search(ln) for ln in alerts) and \
        groups <= {PATHS.watch_group, PATHS.operate_group}


def haproxy_verdict(path: str, timeout: float = 20) -> Finding | None:
    """H100 when this machine's `haproxy -c` refuses the file (its alerts, in its words); None when
    it accepts it or HAProxy is not installed here. A warning: the node's HAProxy version, files
    and names may differ from this machine's (doctor asks the node's own)."""
    binary = shutil.which("haproxy", path=SEARCH)
    if binary is None:
        return None
    try:
        res = subprocess.run([binary, "-c", "-f", path], capture_output=True, text=True, timeout=timeout,
                             errors="replace", stdin=subprocess.DEVNULL)
        version = subprocess.run([binary, "-v"], capture_output=True, text=True, timeout=timeout,
                                 errors="replace", stdin=subprocess.DEVNULL).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode == 0 or only_role_groups_missing(res.stdout + res.stderr):
        return None
    said = haproxy_alerts(res.stdout + res.stderr) or f"exit {res.returncode}"
    here = f"HAProxy {version[2]}" if len(version) > 2 else "HAProxy"
    return Finding("H100", "warning", f"haproxy -c ({here} on this machine) refuses this file: {said}",
                   "fix what HAProxy names, unless the node's own HAProxy takes it (doctor asks the node's)", path)
