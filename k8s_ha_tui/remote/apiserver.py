"""Is there a kube-apiserver on a master, and does it answer?

Not installed is not down. Before `kubeadm init` a master has no apiserver at all: that is a
first-time setup, where the load balancer is ready and the API is not there yet, not an outage.
A master has an apiserver when kubeadm left its static pod manifest, a `kube-apiserver` process
runs (an install without kubeadm), or something other than HAProxy listens on the apiserver
port. It is up when its own /readyz answers 200 (anonymous on every kubeadm cluster: the
system:public-info-viewer role), down when it exists and does not.
"""

from __future__ import annotations

import shlex

from k8s_ha_tui.paths import PATHS

UP = "up"
DOWN = "down"
NOT_INSTALLED = "not installed"
UNKNOWN = "unknown"  # the node did not say (unreachable, or an answer that does not parse)
EVIDENCE = ("MANIFEST", "PROCESS", "LISTEN")


def probe(address: str, port: int) -> str:
    """Shell lines that print the evidence (one word each) and READYZ with curl's HTTP code
    (000: no answer within a second). Cheap: a file test, pgrep, ss and one curl."""
    url = shlex.quote(f"https://{address}:{port}/readyz")
    return "; ".join([
        f"if [ -e {PATHS.apiserver_manifest} ]; then echo MANIFEST; fi",
        "if pgrep -x kube-apiserver >/dev/null 2>&1; then echo PROCESS; fi",
        # HAProxy may bind the same port on the VIP only (nonlocal bind): that is not an apiserver.
        f"if ss -Hltnp 'sport = :{port}' 2>/dev/null | grep -v '\"haproxy\"' | grep -q .; then echo LISTEN; fi",
        f"echo READYZ $(curl -sk --max-time 1 -o /dev/null -w '%{{http_code}}' {url})",
    ])


def presence(answer: str) -> str:
    """UP, DOWN, NOT_INSTALLED, or UNKNOWN when the answer has no READYZ line (garbage, or cut
    short). Lines other than the probe's are ignored, so it reads a larger probe's output too."""
    words: dict[str, str] = {}
    for line in answer.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word in (*EVIDENCE, "READYZ"):
            words[word] = rest.strip()
    if "READYZ" not in words:
        return UNKNOWN
    if words["READYZ"] == "200":
        return UP
    return DOWN if any(w in words for w in EVIDENCE) else NOT_INSTALLED


def evidence(answer: str) -> list[str]:
    """What the answer showed of an installed apiserver, in words (for messages)."""
    said = {line.strip().split(" ", 1)[0] for line in answer.splitlines()}
    names = {"MANIFEST": f"its static pod manifest {PATHS.apiserver_manifest}",
             "PROCESS": "a kube-apiserver process", "LISTEN": "a listener on the apiserver port"}
    return [text for word, text in names.items() if word in said]
