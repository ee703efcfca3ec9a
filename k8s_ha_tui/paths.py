"""Where things live on a master (and, at the end, on the operator's machine). Deploy, actions,
the cluster lock, the audit trail and the collector all use these paths, so they are defined
once, below every module that needs them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NodePaths:
    """Every path on a master that k8s-ha-tui reads or writes."""

    keepalived_conf: str = "/etc/keepalived/keepalived.conf"
    check_script: str = "/etc/keepalived/check_apiserver.sh"
    notify_script: str = "/etc/keepalived/notify.sh"
    maintenance_file: str = "/etc/keepalived/maintenance"
    boost_file: str = "/etc/keepalived/priority_boost"
    haproxy_cfg: str = "/etc/haproxy/haproxy.cfg"
    stats_socket: str = "/run/haproxy/admin.sock"
    watch_socket: str = "/run/haproxy/watch.sock"  # level user: `show stat` without root
    # keepalived's notify FIFO: in /run itself, which exists at boot before keepalived starts.
    vrrp_fifo: str = "/run/k8s-ha-tui.fifo"
    state_dir: str = "/run/k8s-ha-tui"
    keepalived_pod: str = "/etc/kubernetes/manifests/keepalived.yaml"
    haproxy_pod: str = "/etc/kubernetes/manifests/haproxy.yaml"
    # Where kubeadm writes the apiserver's static pod (init and join --control-plane): its
    # presence tells "not installed yet" apart from "down".
    apiserver_manifest: str = "/etc/kubernetes/manifests/kube-apiserver.yaml"
    # On every master; a master that reboots loses its copy, the others keep the cluster locked.
    lock_file: str = "/run/k8s-ha-tui/lock"
    audit_log: str = "/var/log/k8s-ha-tui/audit.log"
    backups: str = "/var/backups/k8s-ha-tui"
    staging: str = "/run/k8s-ha-tui/staging"  # root-only, and gone after a reboot
    transaction_lock: str = "/run/k8s-ha-tui/transaction.lock"  # flock: one file swap at a time
    # The roles' groups (not paths, but node names all the same): watch reads the state, the
    # lock, the audit trail and HAProxy's level-user socket; operate also the admin socket.
    watch_group: str = "k8s-ha-watch"
    # The operate role's helper, and the sudoers drop-in prefix (one file per user).
    op_helper: str = "/usr/local/sbin/k8s-ha-tui-op"
    sudoers_prefix: str = "/etc/sudoers.d/k8s-ha-tui-"
    operate_group: str = "k8s-ha-operate"

    @property
    def state_file(self) -> str:
        return f"{self.state_dir}/vrrp-state"

    @property
    def events_file(self) -> str:
        return f"{self.state_dir}/vrrp-events.log"


PATHS = NodePaths()


def local_state_dir() -> Path:
    """The operator's own records (audit log, drill reports): $XDG_STATE_HOME/k8s-ha-tui."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "k8s-ha-tui"
