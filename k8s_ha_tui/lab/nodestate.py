"""What a lab master really runs, for tests and benches: the check's `rise` in both config files
on disk and in both running daemons (keepalived's data dump, HAProxy's `show stat`). A node whose
four numbers agree runs what is on disk; a deploy that changes check.rise changes all four."""

from __future__ import annotations

from k8s_ha_tui.lab.cluster import _require_state
from k8s_ha_tui.lab.nodes import node_exec
from k8s_ha_tui.remote.keepalived import KEEPALIVED_DUMP

_RUNNING = KEEPALIVED_DUMP + r"""
echo; echo "FILES $(grep -m1 -o 'rise [0-9]*' /etc/keepalived/keepalived.conf | cut -d' ' -f2) \
$(grep -m1 -o ' rise [0-9]*' /etc/haproxy/haproxy.cfg | cut -d' ' -f3)"
echo "KEEPALIVED $(grep -m1 'Rise = ' /tmp/keepalived.data | awk '{print $3}')"
. /usr/local/sbin/k8s-ha-tui-lab.env
echo "HAPROXY $($LAB_PYTHON -c '
import csv, io, socket
s = socket.socket(socket.AF_UNIX); s.connect("/run/haproxy/admin.sock"); s.sendall(b"show stat\n"); d = b""
while True:
    c = s.recv(65536)
    if not c: break
    d += c
rows = csv.DictReader(io.StringIO(d.decode().lstrip("# ")))
print(" ".join(sorted({r["check_rise"] for r in rows if r["svname"] not in ("FRONTEND", "BACKEND")})))
')"
"""


def running_rise(name: str) -> dict[str, str]:
    """{"FILES": "r r", "KEEPALIVED": "r", "HAPROXY": "r"} for one master."""
    state, _ = _require_state()
    out = node_exec(state.init(name), ["sh", "-c", _RUNNING], timeout=30, check=False).stdout
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in str(out).splitlines()
            if line.split(" ", 1)[0] in ("FILES", "KEEPALIVED", "HAPROXY")}


def consistent_rise(name: str) -> str | None:
    """The one rise the node has on disk and in both daemons, or None when they disagree."""
    r = running_rise(name)
    on_disk = set(r.get("FILES", "").split())
    if len(on_disk) == 1 and r.get("KEEPALIVED") in on_disk and r.get("HAPROXY") in on_disk:
        return on_disk.pop()
    return None
