"""What the lab benchmarks share: the API client loop, deploy, and the kernel's view of the VIP.

Everything here talks to the lab only (198.18.0.0/24 and the lab's namespaces) and every loop
is bounded in count and time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

from k8s_ha_tui.lab import cluster, layout

RATE = 20  # requests per second
MAX_SECONDS = 120  # a client stops by itself after this, whatever happens
TIMEOUT = 1.0  # the TLS exchange, once connected
# HAProxy on the VIP holder accepts at once, whatever its backends do; a connect that takes
# longer means nobody answers at the VIP right now. Short, so the client notices the VIP come
# back within a quarter second instead of one whole timeout later.
CONNECT_TIMEOUT = 0.25
# A client that gives up a connect after one request interval: the gap it sees is within 50 ms
# of the moment the VIP answers again (the quarter-second client rounds up to 0.25 s steps).
FINE_CONNECT_TIMEOUT = 1 / RATE


class Client(threading.Thread):
    """Fresh TLS connections to /readyz at a fixed rate until stopped (or MAX_SECONDS)."""

    def __init__(self, host: str = layout.VIP, port: int = 8443, connect_timeout: float = CONNECT_TIMEOUT):
        super().__init__(daemon=True)
        self.host, self.port, self.connect_timeout = host, port, connect_timeout
        self.results: list[tuple[float, bool]] = []  # (when it finished, answered 200)
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self.stop.is_set() and n < RATE * MAX_SECONDS:
            delay = start + n / RATE - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            ok = cluster.apiserver_ready(self.host, self.port, timeout=TIMEOUT, connect_timeout=self.connect_timeout)
            self.results.append((time.monotonic(), ok))
            n += 1

    def ok_for(self, seconds: float) -> bool:
        """Every request of the last `seconds` answered (and there were some)."""
        now = time.monotonic()
        recent = [ok for t, ok in list(self.results) if t >= now - seconds]
        return len(recent) >= RATE * seconds / 2 and all(recent)

    def finish(self) -> None:
        self.stop.set()
        self.join()

    def report(self, since: float | None = None) -> dict:
        """sent and failed (from `since` on), and the longest stretch without a success."""
        results = list(self.results)
        counted = [ok for t, ok in results if since is None or t >= since]
        ok_times = [t for t, ok in results if ok]
        edges = [results[0][0]] + ok_times + [results[-1][0]] if results else []
        gap = max((b - a for a, b in zip(edges, edges[1:])), default=0.0)
        out = {"sent": len(counted), "failed": sum(not ok for ok in counted), "longest_gap_ms": round(gap * 1000)}
        if since is not None:  # when each failure ended, for reading a run's story in --json
            out["failed_at_s"] = [round(t - since, 2) for t, ok in results if not ok and t >= since]
        return out


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`k8s-ha-tui ARGS` as an operator runs it from a script (no terminal)."""
    return subprocess.run([sys.executable, "-m", "k8s_ha_tui", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def tool(*args: str, timeout: float = 300) -> None:
    """`cli`, and SystemExit naming the command where it fails: a bench cannot go on from there."""
    res = cli(*args, timeout=timeout)
    if res.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {res.stderr.strip() or res.stdout.strip()[-500:]}")


def deploy(topology: Path, templates: Path | None = None) -> float:
    """`k8s-ha-tui deploy` as an operator runs it; seconds it took."""
    started = time.monotonic()
    tool("deploy", "-t", str(topology), "--yes", *(["--templates", str(templates)] if templates else []), timeout=600)
    return time.monotonic() - started


def top_holder(topology: Path, top: str) -> str | None:
    """`top`, once `k8s-ha-tui status` calls the cluster healthy and `top` alone holds the VIP."""
    try:
        snap = json.loads(cli("status", "-t", str(topology), "--json").stdout)
    except ValueError:
        return None
    return top if snap.get("health") == "healthy" and snap.get("holders") == [top] else None


def vip_holders(masters: list[str], vip: str = layout.VIP) -> list[str]:
    """The masters whose kernel has `vip` (either family) on an interface right now."""
    return [m for m in masters if f" {vip}/" in subprocess.run(
        ["ip", "-n", layout.netns_of(m), "-o", "addr", "show"], capture_output=True, text=True).stdout]


class VipWatch:
    """When the kernel adds `vip` on each master (`ip monitor address` in its namespace)."""

    def __init__(self, masters: list[str], vip: str = layout.VIP):
        self.vip = vip
        self.added: list[tuple[float, str]] = []
        self.events: list[tuple[float, str, bool]] = []  # (when, node, added or deleted)
        self.initial = vip_holders(masters, vip)
        self._procs = []
        for m in masters:
            proc = subprocess.Popen(["ip", "-n", layout.netns_of(m), "-o", "monitor", "address"],
                                    stdout=subprocess.PIPE, text=True)
            self._procs.append(proc)
            threading.Thread(target=self._read, args=(m, proc), daemon=True).start()

    def _read(self, node: str, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if f" {self.vip}/" not in line:
                continue
            now, added = time.monotonic(), not line.startswith("Deleted")
            self.events.append((now, node, added))
            if added:
                self.added.append((now, node))

    def holders_story(self, since: float = 0.0) -> dict:
        """From `since` on: the most masters that held the VIP at once, the longest time two or
        more held it, and the longest time nobody held it (ms). Events before `since` only set
        the starting point. (Each node's events are read by its own thread: a VRRP preemption,
        where the new holder adds the VIP as the old one deletes it, shows as ~0 ms of two.)"""
        holders = set(self.initial)
        events = sorted(self.events)
        for _, node, added in (e for e in events if e[0] < since):
            (holders.add if added else holders.discard)(node)
        most, spans = len(holders), {"none": [None, 0.0], "two": [None, 0.0]}
        for t, node, added in (e for e in events if e[0] >= since):
            (holders.add if added else holders.discard)(node)
            most = max(most, len(holders))
            for key, now in (("none", not holders), ("two", len(holders) > 1)):
                began = spans[key][0]
                if now and began is None:
                    spans[key][0] = t
                elif not now and began is not None:
                    spans[key] = [None, max(spans[key][1], t - began)]
        return {"most_holders_at_once": most, "longest_two_holders_ms": round(spans["two"][1] * 1000, 1),
                "longest_without_holder_ms": round(spans["none"][1] * 1000)}

    def first_added(self, since: float, other_than: str) -> float | None:
        """When a node other than `other_than` first got the VIP after `since`."""
        return next((t for t, n in list(self.added) if t >= since and n != other_than), None)

    def close(self) -> None:
        for proc in self._procs:
            proc.terminate()
            proc.wait(timeout=5)


def wait_for(condition, timeout: float, what: str, step: float = 0.2):
    """Poll until condition() is truthy; SystemExit naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(step)
