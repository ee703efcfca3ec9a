"""What comes after keepalived and HAProxy on a first-time setup: kubeadm's configuration and
the exact commands, init on the first master and a control-plane join on each other one.

kubeadm's config API is `kubeadm.k8s.io/v1beta3` up to 1.30 and `v1beta4` from 1.31 (which still
reads v1beta3 with a warning); the fields used here are the same in both. Deploy asks the first
master's `kubeadm version`; where kubeadm is not installed yet, it writes v1beta4 and says how to
get the other.
"""

from __future__ import annotations

import re

from k8s_ha_tui.model.topology import Topology

APIS = {"v1beta3": "kubeadm 1.22-1.30", "v1beta4": "kubeadm 1.31 and newer"}
DEFAULT_API = "v1beta4"


def api_for(kubeadm_version: str | None) -> str | None:
    """The config API a kubeadm version reads best (`kubeadm version -o short`: v1.30.4); None
    when the version is unknown."""
    m = re.match(r"v?(\d+)\.(\d+)", (kubeadm_version or "").strip())
    if not m:
        return None
    return "v1beta4" if (int(m.group(1)), int(m.group(2))) >= (1, 31) else "v1beta3"


def join_command(topo: Topology, name: str) -> str:
    """The control-plane join for one master: token, CA hash and certificate key are the ones
    `kubeadm init --upload-certs` prints (secrets: never written here)."""
    m = topo.master(name)
    port = f" --apiserver-bind-port {topo.apiserver_port}" if topo.apiserver_port != 6443 else ""
    return (f"sudo kubeadm join {topo.control_plane_endpoint} --token <token> "
            f"--discovery-token-ca-cert-hash sha256:<hash> --control-plane --certificate-key <key> "
            f"--apiserver-advertise-address {m.address}{port}")


def next_steps(topo: Topology, config: str, api: str, kubeadm_version: str | None,
               topology_file: str = "TOPOLOGY") -> str:
    """The text deploy prints once the load balancer is ready and no apiserver exists yet."""
    first, others = topo.masters[0], topo.masters[1:]
    if kubeadm_version:
        which = f"kubeadm {kubeadm_version} found on {first.name}: config API {api}"
    else:
        other = next(a for a in APIS if a != api)
        which = (f"kubeadm is not installed on {first.name} yet: written for {APIS[api]} ({api}); for "
                 f"{APIS[other]} change both apiVersion lines to kubeadm.k8s.io/{other}")
    lines = [
        f"Next: no kube-apiserver exists yet on any master (a first-time setup). The load balancer is ready: "
        f"{topo.vip}:{topo.frontend_port} accepts connections and will send them to each apiserver as it starts.",
        "",
        f"1. On {first.name} ({first.address}), save this as kubeadm-config.yaml ({which}):",
        "",
        "cat > kubeadm-config.yaml <<'EOF'",
        config.rstrip("\n"),
        "EOF",
        "sudo kubeadm init --config kubeadm-config.yaml --upload-certs",
    ]
    if others:
        lines += ["", f"2. On {', '.join(m.name for m in others)}, one at a time, with the token, hash and "
                      "certificate key that kubeadm init printed:", ""]
        lines += [f"{m.name}:  {join_command(topo, m.name)}" for m in others]
    lines += ["", f"Watch it happen: k8s-ha-tui monitor -t {topology_file} (each apiserver shows up as it starts; "
                  f"`status` exits 0 once all {len(topo.masters)} answer)."]
    return "\n".join(lines)
