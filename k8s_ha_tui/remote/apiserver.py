"""Is there a kube-apiserver on a master, and does it answer?

Not installed is not down. Before `kubeadm init` a master has no apiserver at all: that is a
first-time setup, where the load balancer is ready and the API is not there yet, not an outage.
A master has an apiserver when kubeadm left its static pod manifest, a `kube-apiserver` process
runs (an install without kubeadm), or something other than HAProxy listens on the apiserver
port. It is up when its own /readyz answers 200 (anonymous on every kubeadm cluster: the
system:public-info-viewer role); when it exists and does not, curl says how: the port refuses
(not running), the connection is taken and nothing answers within a second (hung, or very
slow: measured on a stopped apiserver, curl exit 28, HAProxy L6TOUT), or it answers something
else than 200 (not ready: HAProxy L7STS; 401/403 is a running apiserver that refuses anonymous
requests). Without curl's exit code (curl missing) it is only "down".
"""

from __future__ import annotations

import shlex
import socket
import ssl
import time

from k8s_ha_tui.model.topology import host_port
from k8s_ha_tui.paths import PATHS

UP = "up"
NOT_RUNNING = "not running"  # installed; its port refuses connections (curl exit 7)
HUNG = "hung"  # takes the connection, never answers (curl exit 28)
NOT_READY = "not ready"  # answers /readyz with something other than 200
DOWN = "down"  # installed and not answering, for another reason (TLS refused, say)
FAILING = (NOT_RUNNING, HUNG, NOT_READY, DOWN)  # installed, not up
NOT_INSTALLED = "not installed"
UNKNOWN = "unknown"  # the node did not say (unreachable, or an answer that does not parse)
EVIDENCE = ("MANIFEST", "PROCESS", "LISTEN")


def probe(address: str, port: int) -> str:
    """Shell lines that print the evidence (one word each) and READYZ with curl's HTTP code
    (000: no answer within a second) and exit code. Cheap: a file test, pgrep, ss and one curl."""
    url = shlex.quote(f"https://{host_port(address, port)}/readyz")
    return "; ".join([
        f"if [ -e {PATHS.apiserver_manifest} ]; then echo MANIFEST; fi",
        "if pgrep -x kube-apiserver >/dev/null 2>&1; then echo PROCESS; fi",
        # HAProxy may bind the same port on the VIP only (nonlocal bind): that is not an apiserver.
        f"if ss -Hltnp 'sport = :{port}' 2>/dev/null | grep -v '\"haproxy\"' | grep -q .; then echo LISTEN; fi",
        f"echo READYZ $(curl -sk --max-time 1 -o /dev/null -w '%{{http_code}}' {url}; echo \" $?\")",
    ])


def presence(answer: str) -> str:
    """UP, one of FAILING, NOT_INSTALLED, or UNKNOWN when the answer has no READYZ line (garbage,
    or cut short). Lines other than the probe's are ignored, so it reads a larger probe's output too."""
    words: dict[str, str] = {}
    for line in answer.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word in (*EVIDENCE, "READYZ"):
            words[word] = rest.strip()
    if "READYZ" not in words:
        return UNKNOWN
    code, _, curl_exit = words["READYZ"].partition(" ")
    curl_exit = curl_exit.strip()
    # 401/403: it answers, only not to anonymous requests (anonymous auth turned off): running.
    if code in ("200", "401", "403") and curl_exit == "0":
        return UP
    if code == "200" and not curl_exit:  # an older probe's answer, without curl's exit code
        return UP
    if not any(w in words for w in EVIDENCE):
        return NOT_INSTALLED
    if curl_exit == "0":  # curl got an HTTP answer, and not 200
        return NOT_READY
    return {"7": NOT_RUNNING, "28": HUNG}.get(curl_exit, DOWN)


def evidence(answer: str) -> list[str]:
    """What the answer showed of an installed apiserver, in words (for messages)."""
    said = {line.strip().split(" ", 1)[0] for line in answer.splitlines()}
    names = {"MANIFEST": f"its static pod manifest {PATHS.apiserver_manifest}",
             "PROCESS": "a kube-apiserver process", "LISTEN": "a listener on the apiserver port"}
    return [text for word, text in names.items() if word in said]


def _unverified() -> ssl.SSLContext:
    """Made once: ssl.create_default_context() loads every CA of the system (tens of ms of CPU,
    holding the GIL), which a client loop asking 20 times a second cannot pay on each request."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


_UNVERIFIED = _unverified()


def readyz_from_here(address: str, port: int, timeout: float = 1.0, connect_timeout: float | None = None,
                     accept: tuple[str, ...] = ("200",)) -> float | None:
    """GET /readyz over a fresh TLS connection from this machine: seconds until an answer with a
    status in `accept`, or None.
    No certificate check (the question is whether something answers, not who).

    connect_timeout, when given, bounds the TCP connect alone (is anybody answering at that
    address?) and `timeout` the TLS exchange after it."""
    started = time.monotonic()
    try:
        with socket.create_connection((address, port), timeout=connect_timeout or timeout) as raw:
            raw.settimeout(timeout)
            with _UNVERIFIED.wrap_socket(raw, server_hostname=address) as s:
                s.sendall(f"GET /readyz HTTP/1.0\r\nHost: {host_port(address, port)}\r\n\r\n".encode())
                head = b""
                while b"\r\n" not in head and len(head) < 256:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    head += chunk
    except (OSError, ValueError):  # ValueError: an address that is no address
        return None
    parts = head.split(b" ")
    return time.monotonic() - started if len(parts) > 1 and parts[1].decode("ascii", "replace") in accept else None
