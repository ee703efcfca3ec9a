"""A keepalived + HAProxy that somebody set up by hand, installed on the lab's masters, so the
tool can be tried (and tested) on a cluster it did not build.

Everything differs from what `deploy` renders: VRRPv2 with 1 s adverts, unicast peers, PASS
authentication, virtual router id 77, priorities 120/110/100, the instance in an `include`d
file, a check script with a negative weight, an HAProxy frontend `kube_api` whose servers are
called `cp-a`, `cp-b`, `cp-c`, no notify script, and neither our maintenance nor our boost file.
"""

from __future__ import annotations

import base64
import shlex

from k8s_ha_tui.lab import layout as L
from k8s_ha_tui.lab.nodes import node_exec

ROUTER_ID = 77
PRIORITIES = (120, 110, 100)
SERVER_NAMES = ("cp-a", "cp-b", "cp-c")
FRONTEND_PORT = 8443
AUTH_PASS = "lab-77ok"  # a lab secret; PASS auth sends it in clear text anyway
OUR_FILES = ("/etc/keepalived/check_apiserver.sh", "/etc/keepalived/notify.sh", "/etc/keepalived/maintenance",
             "/etc/keepalived/priority_boost")

KEEPALIVED_CONF = """\
! Configuration File for keepalived -- set up by hand
global_defs {
   router_id LVS_DEVEL
   script_user root
   enable_script_security
}

include /etc/keepalived/conf.d/*.conf
"""

INSTANCE_CONF = """\
vrrp_script check_api {{
    script "/etc/keepalived/check_api.sh"
    interval 2
    fall 2
    rise 2
    weight -20
}}

vrrp_instance KUBE_API {{
    state {state}
    interface {iface}
    virtual_router_id {router_id}
    priority {priority}
    advert_int 1
    unicast_src_ip {address}
    unicast_peer {{
{peers}
    }}
    authentication {{
        auth_type PASS
        auth_pass {auth_pass}
    }}
    virtual_ipaddress {{
        {vip}/24
    }}
    track_script {{
        check_api
    }}
}}
"""

CHECK_SCRIPT = """\
#!/bin/sh
# is the API up through the local load balancer?
curl -sfk --max-time 2 -o /dev/null https://127.0.0.1:{port}/healthz || exit 1
"""

HAPROXY_CFG = """\
global
    log /dev/log local0
    stats socket /run/haproxy/admin.sock mode 660 level admin
    user haproxy
    group haproxy

defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend kube_api
    bind *:{port}
    default_backend kube_api_servers

backend kube_api_servers
    balance roundrobin
    option tcp-check
{servers}
"""


def files_for(index: int, masters: list[L.LabNode], cluster: int = 1) -> dict[str, tuple[str, int]]:
    """path → (text, mode) for the index-th master of the lab's `cluster`."""
    me = masters[index]
    peers = "\n".join(f"        {m.address}" for m in masters if m is not me)
    servers = "\n".join(f"    server {SERVER_NAMES[i] if i < len(SERVER_NAMES) else f'cp-{i}'} "
                        f"{m.address}:{L.APISERVER_PORT} check inter 2s fall 3 rise 2"
                        for i, m in enumerate(masters))
    instance = INSTANCE_CONF.format(
        state="MASTER" if index == 0 else "BACKUP", iface=L.NODE_LINK, router_id=ROUTER_ID + cluster - 1,
        priority=PRIORITIES[index] if index < len(PRIORITIES) else 90 - index, address=me.address,
        peers=peers, auth_pass=AUTH_PASS, vip=L.cluster_vip(cluster))
    return {
        "/etc/keepalived/keepalived.conf": (KEEPALIVED_CONF, 0o644),
        "/etc/keepalived/conf.d/kube-api.conf": (instance, 0o644),
        "/etc/keepalived/check_api.sh": (CHECK_SCRIPT.format(port=FRONTEND_PORT), 0o755),
        "/etc/haproxy/haproxy.cfg": (HAPROXY_CFG.format(port=FRONTEND_PORT, servers=servers), 0o644),
    }


def install_script(files: dict[str, tuple[str, int]]) -> str:
    """Stop both daemons, remove what k8s-ha-tui put there, write the files, start both."""
    lines = ["set -e", "systemctl stop keepalived haproxy 2>/dev/null || true",
             f"rm -rf /etc/keepalived/conf.d {' '.join(OUR_FILES)} /run/k8s-ha-tui/vrrp-state",
             "mkdir -p /etc/keepalived/conf.d"]
    for path, (text, mode) in files.items():
        data = base64.b64encode(text.encode()).decode()
        lines.append(f"echo {data} | base64 -d > {shlex.quote(path)}; chmod {mode:o} {shlex.quote(path)}")
    lines += ["systemctl start haproxy", "systemctl start keepalived"]
    return "\n".join(lines) + "\n"


def install(masters: list[L.LabNode], inits: dict[str, int], cluster: int = 1) -> None:
    """Replace whatever runs on the lab's masters with the hand-made setup (the first one first, so
    it is the one that comes up as MASTER)."""
    for i, m in enumerate(masters):
        node_exec(inits[m.name], ["sh", "-c", install_script(files_for(i, masters, cluster))], timeout=60)
