"""What `kubeadm init` and `kubeadm join --control-plane` do to a lab master, for our purposes:
the apiserver's static pod manifest where kubeadm writes it, and the apiserver running (here the
lab's stand-in, started as the kubelet would start the pod). `reset` undoes both, as `kubeadm
reset` does. A bare lab (`lab up --bare`) starts with no manifest and nothing on the port.
"""

from __future__ import annotations

import time
from pathlib import Path

from k8s_ha_tui.lab import layout as L
from k8s_ha_tui.lab.layout import LabNode, LabPaths
from k8s_ha_tui.lab.nodes import node_exec
from k8s_ha_tui.lab.proc import wait_until
from k8s_ha_tui.paths import PATHS

VERBS = ("init", "join", "reset")
TIMEOUT_S = 15  # the stand-in answers within a second; a real apiserver takes 20-60 s


def manifest_path(paths: LabPaths, node: LabNode) -> Path:
    """The manifest as the host sees it (the node's /etc/kubernetes is a folder of the lab)."""
    return paths.node(node.name) / PATHS.apiserver_manifest.lstrip("/")


def has_manifest(paths: LabPaths, node: LabNode) -> bool:
    return manifest_path(paths, node).exists()


def manifest_text(node: LabNode) -> str:
    """The shape of kubeadm's manifest (what matters to the tool is that it is there)."""
    return f"""\
# Written by `k8s-ha-tui lab kubeadm` where kubeadm writes it; the lab's stand-in runs instead.
apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: {node.address}:{L.APISERVER_PORT}
  labels:
    component: kube-apiserver
    tier: control-plane
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address={node.address}
    - --secure-port={L.APISERVER_PORT}
    image: registry.k8s.io/kube-apiserver:v1.30.0
    name: kube-apiserver
  hostNetwork: true
"""


def install(paths: LabPaths, node: LabNode, init: int, ready) -> float:
    """Write the manifest and start the apiserver; seconds until it answers /readyz."""
    started = time.monotonic()
    target = manifest_path(paths, node)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    target.write_text(manifest_text(node))
    target.chmod(0o600)  # as kubeadm leaves it
    node_exec(init, ["/usr/local/sbin/systemctl", "start", "kube-apiserver"])
    wait_until(lambda: ready(node.address), TIMEOUT_S, f"kube-apiserver on {node.name}")
    return time.monotonic() - started


def reset(paths: LabPaths, node: LabNode, init: int) -> None:
    node_exec(init, ["/usr/local/sbin/systemctl", "stop", "kube-apiserver"])
    manifest_path(paths, node).unlink(missing_ok=True)


def refusal(verb: str, node: LabNode, masters: list[LabNode], paths: LabPaths, endpoint_answers: bool,
            endpoint: str) -> str | None:
    """Why kubeadm would refuse `verb` on `node` now (a second init, a join without a cluster)."""
    if verb == "reset":
        return None
    if has_manifest(paths, node):
        return (f"{node.name} already runs a control plane ({PATHS.apiserver_manifest}); "
                f"`lab kubeadm {node.name} reset` first")
    others = [m.name for m in masters if m.name != node.name and has_manifest(paths, m)]
    if verb == "init" and others:
        return f"{others[0]} already runs the control plane: `lab kubeadm {node.name} join` adds this master to it"
    if verb == "join" and not others:
        return "no master runs a control plane yet: `lab kubeadm NODE init` on one first"
    if verb == "join" and not endpoint_answers:
        return f"kubeadm join would fail: the control-plane endpoint {endpoint} does not answer (deploy first?)"
    return None
