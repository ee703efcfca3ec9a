"""Every change the actions, drills and the cluster lock make on a master, as a fixed operation
with its own shell body. Variable data (a lock record, a track file's number, an audit line)
travels on stdin and is checked by the body; it is never part of a command line.

A login with root (or sudo for everything) runs a body directly. The operate role runs
`sudo -n HELPER OPERATION`: the helper (installed by `access grant operate`) holds the same
bodies, and the role's sudoers rules name each operation's exact argv, so no other argument,
file name or command can slip in.
"""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.keepalived import KEEPALIVED_DUMP, KEEPALIVED_STATS
from k8s_ha_tui.remote.lockfile import lock_probe
from k8s_ha_tui.remote.roles import shared_dir
from k8s_ha_tui.remote.ssh import NodeConnection, SshError

HELPER = PATHS.op_helper
AUDIT_MAX_BYTES = 4 << 20  # on a node; then the newest AUDIT_KEEP_LINES are kept
AUDIT_KEEP_LINES = 10000
SERVICES = ("keepalived", "haproxy")
CONFIG_CHECK = {"keepalived": f"keepalived -t -l -f {PATHS.keepalived_conf}",
                "haproxy": f"haproxy -c -q -f {PATHS.haproxy_cfg}"}
BAD_INPUT = 65  # the helper's exit when stdin is not what the operation takes

# The lock record's id, read from the record on stdin (hex only: nothing else reaches grep).
_LOCK_ID = "id=$(printf '%s' \"$rec\" | sed -n 's/.*\"id\": \"\\([0-9a-f]*\\)\".*/\\1/p')"
_READ_RECORD = "rec=$(head -c 4096)"


def _flag(path: str, allowed: str) -> str:
    """A track file's new number from stdin, `allowed` a case pattern; written whole (keepalived
    reads the file on inotify and must see one value)."""
    return (f"v=$(head -c 16 | tr -d ' \\n'); case \"$v\" in {allowed}) ;; *) echo \"not a value for "
            f"{Path(path).name}: $v\" >&2; exit {BAD_INPUT};; esac; umask 022; "
            f"printf '%s\\n' \"$v\" > {path}.k8s-ha-tui-new && mv -f {path}.k8s-ha-tui-new {path}")


def _operations() -> dict[str, str]:
    f, log = PATHS.lock_file, PATHS.audit_log
    ops = {
        "maintenance": _flag(PATHS.maintenance_file, "0|1"),
        # 0-254: keepalived clamps the effective priority to 254 anyway
        "boost": _flag(PATHS.boost_file, "[0-9]|[0-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4]"),
        "audit": (f"umask 027; {shared_dir(str(Path(log).parent))} && head -n 1 | head -c 4096 >> {log} "
                  f"&& chmod 640 {log} && if [ $(stat -c %s {log}) -gt {AUDIT_MAX_BYTES} ]; then "
                  f"tail -n {AUDIT_KEEP_LINES} {log} > {log}.new && mv -f {log}.new {log}; fi"),
        "lock-acquire": (f"umask 027; {shared_dir(str(Path(f).parent))} && t=$(mktemp {f}.XXXXXX) && "
                         f"chmod 640 \"$t\" && head -c 4096 > \"$t\" && "
                         f"if ln \"$t\" {f} 2>/dev/null; then rm -f \"$t\"; echo TAKEN; "
                         f"else rm -f \"$t\"; echo HELD; date +%s; {lock_probe(f)}; fi"),
        "lock-renew": (f"umask 027; {_READ_RECORD}; {_LOCK_ID}; if [ -n \"$id\" ] && grep -qF "
                       f"\"\\\"id\\\": \\\"$id\\\"\" {f} 2>/dev/null; then t=$(mktemp {f}.XXXXXX) && "
                       f"chmod 640 \"$t\" && printf '%s\\n' \"$rec\" > \"$t\" && mv -f \"$t\" {f}; fi; true"),
        "lock-release": (f"{_READ_RECORD}; {_LOCK_ID}; if [ -n \"$id\" ] && grep -qF "
                         f"\"\\\"id\\\": \\\"$id\\\"\" {f} 2>/dev/null; then rm -f {f}; fi; true"),
        # removes exactly the file that was seen (same sha256), never one written since
        "lock-break": (f"tok=$(head -c 64 | tr -cd 0-9a-f); [ ${{#tok}} -eq 64 ] && "
                       f"[ \"$(sha256sum < {f} | cut -d' ' -f1)\" = \"$tok\" ] && rm -f {f} && echo BROKEN; true"),
    }
    # keepalived's own dumps: a signal, so root only (the watch role reads the state file instead)
    ops["dump data"], ops["dump stats"] = KEEPALIVED_DUMP, KEEPALIVED_STATS
    for service in SERVICES:
        for verb in ("start", "stop", "restart", "reload"):
            ops[f"service {verb} {service}"] = f"systemctl {verb} {service}"
        ops[f"check {service}"] = f"{CONFIG_CHECK[service]} 2>&1"
    return ops


OPERATIONS = _operations()


def helper_script() -> str:
    """The helper the operate role's sudo rules name: one case per operation, the same bodies a
    root login runs directly; anything else is refused."""
    cases = "\n".join(f"    {shlex.quote(name)})\n        {body}\n        ;;" for name, body in OPERATIONS.items())
    return f"""#!/bin/sh
# k8s-ha-tui's operations on this master, for the operate role (installed by `k8s-ha-tui access
# grant operate`; replaced by the next grant). sudo runs it only with the exact arguments its
# rules name; data comes on stdin and is checked below.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
case "$*" in
{cases}
    *)
        echo "k8s-ha-tui-op: not an operation: $*" >&2
        exit 64
        ;;
esac
"""


def helper_digest() -> str:
    """The helper this version of the tool installs, to tell an outdated one."""
    return hashlib.sha256(helper_script().encode()).hexdigest()


def sudo_rules(user: str) -> str:
    """The operate role's sudoers drop-in: every operation's exact argv, nothing else."""
    commands = ", \\\n    ".join(f"{HELPER} {name}" for name in OPERATIONS)
    return (f"# k8s-ha-tui: the operate role for {user} (written by `k8s-ha-tui access grant operate`).\n"
            f"# Exact arguments only: sudo runs {HELPER} with one of these argument lists and no other.\n"
            f"{user} ALL=(root) NOPASSWD: \\\n    {commands}\n")


async def run(conn: NodeConnection, operation: str, input: str | None = None, timeout: float = 30,
              check: bool = True):
    """One operation on the node: its body as root, or through the helper for the operate role."""
    if operation not in OPERATIONS:
        raise SshError(f"{conn.name}: not an operation: {operation}")
    body = OPERATIONS[operation]
    label = body if len(body) < 60 else operation  # `systemctl stop haproxy` says more than its name
    if conn.limited:
        return await conn.run(f"sudo -n {HELPER} {operation}", input=input, timeout=timeout, check=check,
                              label=label, as_login=True)
    return await conn.run(body, input=input, timeout=timeout, check=check, label=label)


def in_probe(operation: str) -> str:
    """An operation inside a probe that runs as the login: directly as root; through the helper
    for an operate login (asked only of the operate group's members, so a watch login's poll
    never makes sudo log a refusal every second); nothing otherwise."""
    return (f"if [ \"$(id -u)\" = 0 ]; then {OPERATIONS[operation]}; elif id -Gn | grep -qw {PATHS.operate_group}; "
            f"then sudo -n {HELPER} {operation} 2>/dev/null; fi")
