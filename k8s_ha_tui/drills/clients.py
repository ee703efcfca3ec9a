"""The drill's clients: what the API looks like from where the clients are.

Every reachable worker runs a loop over SSH with what a worker already has (sh, date, sleep and
curl): a fresh TLS connection to the VIP's /readyz `rate` times a second, each request in the
background so a slow one does not hold up the next, each bounded by a short timeout. The loop
is bounded in count, and it ends when its SSH channel's stdin closes (no PTY means no SIGHUP on
the node): when the drill ends, is interrupted or dies, nothing keeps running there.
The operator's machine runs the same loop in a thread when it reaches the VIP.

Any HTTP answer of an apiserver counts (200, or 401/403 from one that refuses anonymous
requests); a refused or timed-out connection, HAProxy's 503 or a 500 do not.

Times are this machine's: a worker's clock is read once when its loop starts and the difference
applied to all its answers (the SSH round trip is its error, milliseconds).
"""

from __future__ import annotations

import asyncio
import shlex
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import asyncssh

from k8s_ha_tui.model.topology import host_port
from k8s_ha_tui.remote.apiserver import readyz_from_here
from k8s_ha_tui.remote.ssh import NodeConnection

REQUEST_TIMEOUT = 1.0  # the whole request, once connected
# HAProxy on the VIP holder accepts at once, whatever its backends do: a connect that takes
# longer means nobody answers at the VIP right now (the benches use the same bound).
CONNECT_TIMEOUT = 0.25
NO_CURL = "NO-CURL"
START_TIMEOUT = 10.0  # a worker that cannot start its loop in this long measures nothing


@dataclass(frozen=True)
class Sample:
    at: float  # when the answer (or the failure) came, epoch seconds on this machine
    ok: bool  # an apiserver answered (ANSWERED: 200, or 401/403)
    latency: float  # seconds


@dataclass
class Client:
    """One client loop's answers so far (filled while it runs)."""

    name: str  # the worker's name, or "this machine"
    samples: list[Sample] = field(default_factory=list)
    note: str = ""  # why it measured nothing or stopped early (no curl, its link ended)
    ended: bool = False  # its loop stopped before the drill ended it: its window ends at its last answer
    last_ok: float = 0.0  # when it last got an answer

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)
        if sample.ok:
            self.last_ok = max(self.last_ok, sample.at)


ANSWERED = ("200", "401", "403")  # an apiserver answered (401/403: it refuses anonymous requests, as hardened ones do)


def loop_script(vip: str, port: int, rate: float, max_seconds: float) -> str:
    """The worker's loop, as the login user (no root needed): one line per request,
    `START_EPOCH HTTP_CODE SECONDS`. Bounded by its count; ended when stdin closes."""
    url = shlex.quote(f"https://{host_port(vip, port)}/readyz")
    count = max(1, int(rate * max_seconds))
    curl = (f"curl -sk -o /dev/null --connect-timeout {CONNECT_TIMEOUT:g} --max-time {REQUEST_TIMEOUT:g} "
            f"-w '%{{http_code}} %{{time_total}}' {url} 2>/dev/null")
    loop = (f"n=0; while [ $n -lt {count} ]; do "
            f"( s=$(date +%s.%N); r=$({curl}); echo \"$s ${{r:-000 0}}\" ) & "
            f"n=$((n+1)); sleep {1 / rate:.3f}; done; wait")
    return (f"export LC_ALL=C; command -v curl >/dev/null || {{ echo {NO_CURL}; exit 0; }}; "
            f"echo \"@@clock $(date +%s.%N)\"; ( {loop} ) & l=$!; cat >/dev/null; kill $l 2>/dev/null; wait")


def parse_line(line: str, offset: float) -> Sample | None:
    """A loop line as a Sample on this machine's clock; None for anything else."""
    parts = line.split()
    if len(parts) != 3:
        return None
    try:
        start, code, seconds = float(parts[0]), parts[1], float(parts[2])
    except ValueError:
        return None
    return Sample(start + seconds + offset, code in ANSWERED, seconds)


def clock_offset(line: str) -> float | None:
    """This machine's clock minus the worker's, from the loop's first line (None: no such clock)."""
    try:
        return time.time() - float(line.split()[1])
    except (IndexError, ValueError):  # a date without %N (busybox) prints "1764...%N"
        return None


class RemoteLoop:
    """A worker's loop over its SSH connection."""

    def __init__(self, conn: NodeConnection, vip: str, port: int, rate: float, max_seconds: float,
                 name: str | None = None):
        self.client = Client(name or conn.name)
        self._conn, self._script = conn, loop_script(vip, port, rate, max_seconds)
        self._proc: asyncssh.SSHClientProcess | None = None
        self._reader: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        try:
            # not through sudo: asking the VIP needs no root
            self._proc = await asyncio.wait_for(self._conn.conn.create_process(self._script, errors="replace"),
                                                START_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - this client measures nothing, and the report says why
            self.client.note, self.client.ended = f"its loop did not start ({exc or type(exc).__name__})", True
            return
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._proc is not None
        offset = 0.0
        try:
            async for line in self._proc.stdout:
                if line.startswith(NO_CURL):
                    self.client.note = "no curl on this worker"
                elif line.startswith("@@clock "):
                    clock = clock_offset(line)
                    if clock is None:
                        self.client.note = "its date has no %N (sub-second times): not measured"
                        break
                    offset = clock
                elif (sample := parse_line(line, offset)) is not None:
                    self.client.add(sample)
        except Exception as exc:  # noqa: BLE001 - the connection went away: said in the report
            self.client.note = self.client.note or f"its SSH connection ended ({exc or type(exc).__name__})"
        if not self._stopping:
            self.client.ended = True
            self.client.note = self.client.note or "its loop ended early"

    async def stop(self, grace: float = REQUEST_TIMEOUT + 2) -> None:
        """Close the loop's stdin (the node kills it), then read what the last requests say."""
        self._stopping = True
        if self._proc is None:
            return
        try:
            self._proc.stdin.write_eof()
        except Exception:  # noqa: BLE001 - already closed
            pass
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, grace)
            except TimeoutError:
                pass
        self._proc.close()


class LocalLoop:
    """The same loop from the operator's machine: requests on a schedule, each in a thread of its
    own (as each curl runs in the background on a worker), so one slow request does not stretch
    the gap the next ones would have closed."""

    def __init__(self, vip: str, port: int, rate: float, max_seconds: float, name: str = "this machine"):
        self.client = Client(name)
        self._vip, self._port, self._rate, self._max = vip, port, rate, max_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        in_flight = int(rate * (REQUEST_TIMEOUT + CONNECT_TIMEOUT)) + 2
        self._pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="drill-client")
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        start, n = time.monotonic(), 0
        while not self._stop.is_set() and n < self._rate * self._max:
            delay = start + n / self._rate - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            self._pool.submit(self._one)
            n += 1

    def _one(self) -> None:
        began = time.time()
        took = readyz_from_here(self._vip, self._port, REQUEST_TIMEOUT, CONNECT_TIMEOUT, ANSWERED)
        with self._lock:
            self.client.add(Sample(time.time(), took is not None, took or time.time() - began))

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 1.0)
        await asyncio.to_thread(self._pool.shutdown, True)  # the requests in flight end within their timeout


def reaches_from_here(vip: str, port: int) -> bool:
    """Whether this machine gets an answer from the VIP (a client loop here would measure something)."""
    return any(readyz_from_here(vip, port, REQUEST_TIMEOUT, CONNECT_TIMEOUT, ANSWERED) is not None for _ in range(2))
