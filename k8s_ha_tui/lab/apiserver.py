"""The lab's stand-in kube-apiserver: TLS, and the health endpoints HAProxy and people probe.

Standalone (imports nothing of the package) because the lab's `systemctl` starts it inside a
node. It can be made to die (SIGKILL), hang (SIGSTOP keeps the socket; the kernel still
accepts connections, nobody answers) or report not ready (SIGUSR1: /readyz answers 500, as a
kube-apiserver whose etcd check fails; SIGUSR2: ready again) by the lab's faults. It can also be
made busy, as an overloaded apiserver is: while BUSY_FILE holds a number MS, it takes MS ms to
accept each connection and MS ms more before it answers, and its listen queue is short, so
under load the kernel drops new connections' SYNs until the queue drains.

usage: apiserver.py --port 6443 --cert FILE --key FILE --name NODE [--pidfile FILE]
"""

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HEALTH = ("/readyz", "/healthz", "/livez")
STATE = {"ready": True}  # SIGUSR1 / SIGUSR2 flip it
BUSY_FILE = "/run/kube-apiserver.busy"  # the node's own /run; `lab fault NODE apiserver-busy MS`
BUSY_BACKLOG = 16  # an overloaded apiserver's queue: full at once under load
BACKLOG = 1024


def busy_seconds() -> float:
    """The delay BUSY_FILE asks for (0: not busy); read on every accept, so a fault acts at once."""
    try:
        with open(BUSY_FILE) as f:
            return max(0.0, min(float(f.read().strip() or 0) / 1000, 10.0))
    except (OSError, ValueError):
        return 0.0


def make_handler(node: str):
    class Handler(BaseHTTPRequestHandler):
        server_version = "lab-kube-apiserver"
        protocol_version = "HTTP/1.1"
        timeout = 10

        def setup(self) -> None:
            delay = busy_seconds()
            if delay:
                time.sleep(delay)  # a loaded apiserver: slow to shake hands and to answer
            super().setup()

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Lab-Node", node)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            path = self.path.split("?", 1)[0]
            if path == "/readyz" and not STATE["ready"]:
                self._send(500, b"[-]etcd failed: reason withheld\nreadyz check failed", "text/plain; charset=utf-8")
            elif path in HEALTH:
                self._send(200, b"ok", "text/plain; charset=utf-8")
            elif path == "/version":
                body: dict[str, object] = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-lab", "node": node}
                self._send(200, json.dumps(body).encode(), "application/json")
            elif path == "/":
                body = {"paths": "/ /healthz /livez /readyz /version".split(), "node": node}
                self._send(200, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b'{"kind":"Status","code":404}', "application/json")

        def log_message(self, fmt, *args) -> None:
            sys.stdout.write(f"{self.address_string()} {fmt % args}\n")
            sys.stdout.flush()

    return Handler


class Server(ThreadingHTTPServer):
    # A real kube-apiserver listens with a long backlog: when it hangs, the kernel goes on
    # accepting connections for a long time. http.server's default of 5 would start dropping
    # them at once, which a TCP-only health check then notices (unlike in real life).
    request_queue_size = BACKLOG
    _backlog = BACKLOG

    def get_request(self):
        delay = busy_seconds()
        backlog = BUSY_BACKLOG if delay else BACKLOG
        if backlog != self._backlog:  # listen() again on a listening socket resizes its queue
            self.socket.listen(backlog)
            self._backlog = backlog
        if delay:
            time.sleep(delay)
        return super().get_request()


class Server6(Server):
    address_family = socket.AF_INET6  # bound to ::, it takes IPv4 clients too (v4-mapped)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=6443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--name", default="lab")
    ap.add_argument("--pidfile")
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server = (Server6 if ":" in args.bind else Server)((args.bind, args.port), make_handler(args.name))
    server.daemon_threads = True
    # The handshake happens in each request's thread, so a client that connects and says
    # nothing (a TCP check, a port scan) cannot stall the accept loop.
    server.socket = ctx.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    if args.pidfile:
        tmp = f"{args.pidfile}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{os.getpid()}\n")
        os.replace(tmp, args.pidfile)
    signal.signal(signal.SIGUSR1, lambda *_: STATE.update(ready=False))
    signal.signal(signal.SIGUSR2, lambda *_: STATE.update(ready=True))
    print(f"lab kube-apiserver for {args.name} on {args.bind}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
