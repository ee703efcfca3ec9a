"""The real `keepalived -t` and `haproxy -c`, run the way a node would see the files.

keepalived checks that the interface exists and that scripts are root-owned and secure, so each
check runs in a network namespace of its own (with veths named as the topology asks) and a
private mount namespace where the rendered folders are bind-mounted on /etc/keepalived,
/etc/haproxy and a tmpfs /run.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from k8s_ha_tui.paths import PATHS

NETNS = "khtui-check"  # not k8sha-*: `lab down` must not take it away mid-session


@dataclass
class Result:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces)"
    for tool in ("keepalived", "haproxy", "ip", "unshare"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            return f"{tool} is not installed (run scripts/setup.sh)"
    return None


class RealCheckers:
    def __init__(self) -> None:
        self._peer = itertools.count()
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        subprocess.run(["ip", "netns", "add", NETNS], check=True)
        self.interfaces: set[str] = set()
        # The node's /etc as deploy leaves it: the roles' groups exist (an overlay of this
        # machine's /etc, which stays untouched).
        self.etc = Path(tempfile.mkdtemp(prefix="khtui-etc-"))
        (self.etc / "upper").mkdir()
        (self.etc / "work").mkdir()
        groups = Path("/etc/group").read_text()
        for i, name in enumerate((PATHS.watch_group, PATHS.operate_group)):
            if f"\n{name}:" not in f"\n{groups}":
                groups += f"{name}:x:{60990 + i}:\n"
        (self.etc / "upper" / "group").write_text(groups)

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)

    def ensure_interface(self, name: str) -> None:
        if name in self.interfaces:
            return
        peer = f"khp{next(self._peer)}"
        while peer == name:
            peer = f"khp{next(self._peer)}"
        subprocess.run(["ip", "-n", NETNS, "link", "add", "name", name, "type", "veth", "peer", "name", peer],
                       check=True, capture_output=True)
        self.interfaces |= {name, peer}

    def _in_node(self, tree: Path, command: str, timeout: float = 30) -> Result:
        script = (f"set -e; mount -t overlay overlay -o lowerdir=/etc,upperdir={self.etc}/upper,"
                  f"workdir={self.etc}/work /etc; mount --bind '{tree}/etc/keepalived' /etc/keepalived; "
                  f"mkdir -p /etc/haproxy; mount --bind '{tree}/etc/haproxy' /etc/haproxy; "
                  f"mount -t tmpfs tmpfs /run; mkdir -p /run/haproxy; {command}")
        res = subprocess.run(["ip", "netns", "exec", NETNS, "unshare", "--mount", "--propagation", "private",
                              "sh", "-c", script], capture_output=True, text=True, timeout=timeout)
        return Result(res.returncode, (res.stdout + res.stderr).strip())

    def keepalived(self, tree: Path, interfaces: list[str]) -> Result:
        """`keepalived -t` on DIR/<master>'s keepalived.conf as /etc/keepalived/keepalived.conf."""
        for name in interfaces:
            self.ensure_interface(name)
        return self._in_node(tree, "keepalived -t -l -f /etc/keepalived/keepalived.conf")

    def haproxy(self, tree: Path) -> Result:
        return self._in_node(tree, "haproxy -c -f /etc/haproxy/haproxy.cfg")

    def check_rendered(self, out_dir: Path, topo) -> dict[str, tuple[Result, Result]]:
        """Both checkers on every master's rendered files."""
        results = {}
        for m in topo.masters:
            tree = out_dir / m.name
            results[m.name] = (self.keepalived(tree, [topo.interface_of(m)]), self.haproxy(tree))
        return results
