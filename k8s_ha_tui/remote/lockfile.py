"""The cluster lock's record: who holds it, for what, since when — written on every master by
`guard`, read back by it and by the collector (pure: no I/O here, garbage tested).

A lock is a lease. Its holder is *gone* when that can be proven: its process is dead (known
only when it ran on this machine), or its lock was not renewed for STALE_AFTER seconds by its own
record AND by the node's clock (the file's age where it lies: an operator's clock that is wrong
proves nothing). A live holder renews every RENEW_EVERY seconds, so a crashed, killed, paused or
cut-off holder stops doing so. The next command takes a gone holder's lock over by itself, says so
and records it; `--break-stale-lock` is left for a lock that is stale only by its holder's own
record (the node's clock disagrees), which the tool cannot prove.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass

RENEW_EVERY = 15.0


def _ttl() -> float:
    """STALE_AFTER: 120 s (eight missed renewals), or K8S_HA_TUI_LOCK_TTL (30-3600 s). Every
    operator of a cluster should use the same value; shorter ones are for tests."""
    try:
        return min(3600.0, max(30.0, float(os.environ.get("K8S_HA_TUI_LOCK_TTL", "120"))))
    except ValueError:
        return 120.0


STALE_AFTER = _ttl()


@dataclass(frozen=True)
class LockInfo:
    id: str
    who: str  # user@host
    host: str
    pid: int
    what: str  # "deploy", "failover k8s-master-01->k8s-master-02", ...
    cluster: str
    since: float
    renewed: float
    token: str = ""  # sha256 of the file as read: breaking removes exactly that file, nothing newer

    def text(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if k != "token"}, sort_keys=True) + "\n"

    def describe(self) -> str:
        return f"{self.what} by {self.who} since {time.strftime('%H:%M:%S', time.localtime(self.since))}"

    def stale_reason(self, now: float, this_host: str, pid_alive=None) -> str | None:
        """Why its holder cannot be running any more, or None while it may be."""
        alive = pid_alive or _pid_alive
        if self.host == this_host and self.pid > 0 and not alive(self.pid):
            return f"its process {self.pid} on {self.host} is gone"
        if now - self.renewed > STALE_AFTER:
            return f"not renewed for {now - self.renewed:.0f} s (a live holder renews every {RENEW_EVERY:g} s)"
        return None

    def gone_reason(self, now: float, this_host: str, file_age: float | None, pid_alive=None) -> str | None:
        """Why its holder provably cannot be running any more (its lock may be taken over), or None.
        `file_age`: seconds since the lock file was last written, by the node's own clock."""
        alive = pid_alive or _pid_alive
        if self.host == this_host and self.pid > 0 and not alive(self.pid):
            return f"its process {self.pid} on {self.host} is gone"
        if file_age is not None and file_age > STALE_AFTER and now - self.renewed > STALE_AFTER:
            return f"not renewed for {file_age:.0f} s (a live holder renews every {RENEW_EVERY:g} s)"
        return None

    def renewed_now(self, now: float) -> LockInfo:
        return LockInfo(**{**asdict(self), "renewed": now, "token": ""})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_lock(text: str, mtime: float | None) -> LockInfo:
    """A lock file as found on a node. Whatever it holds, it is a lock: an unreadable one is
    held by 'unknown' and counts as renewed when the file was last written."""
    token = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError
        return LockInfo(id=str(data["id"]), who=str(data["who"]), host=str(data.get("host", "?")),
                        pid=int(data.get("pid", 0)), what=str(data.get("what", "?")),
                        cluster=str(data.get("cluster", "?")), since=float(data["since"]),
                        renewed=float(data["renewed"] if "renewed" in data else data["since"]), token=token)
    except (ValueError, KeyError, TypeError, OverflowError):
        stamp = mtime or 0.0
        return LockInfo(id="", who="unknown (unreadable lock file)", host="?", pid=0, what="?", cluster="?",
                        since=stamp, renewed=stamp, token=token)


def parse_probe(text: str) -> LockInfo | None:
    """The output of `lock_probe()`: 'NONE', or the file's mtime, its sha256 and its text."""
    lines = text.split("\n", 2)
    if lines[0].strip() in ("", "NONE") or len(lines) < 3:
        return None
    try:
        mtime: float | None = float(lines[0].strip())
    except ValueError:
        mtime = None
    info = parse_lock(lines[2], mtime)
    token = lines[1].strip()
    return LockInfo(**{**asdict(info), "token": token}) if len(token) == 64 else info


def lock_probe(path: str) -> str:
    """The lock as `parse_probe` reads it; binary garbage comes back printable, the token is
    the real file's hash (so a break removes exactly the file that was seen)."""
    return (f"if [ -e {path} ]; then stat -c %Y {path}; sha256sum < {path} | cut -d' ' -f1; "
            f"head -c 4096 {path} | tr -c '[:print:]\\n' '?'; else echo NONE; fi")
