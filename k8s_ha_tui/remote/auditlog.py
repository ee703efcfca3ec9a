"""The audit trail's record: one JSON line per deploy, rollback or action, whatever its result
(pure: written by `guard`, read back by the collector, garbage tested).

A result starts with `ok`, `failed:` or `refused:`, then says what happened or why not.
"""

from __future__ import annotations

import getpass
import json
import socket
import time
from dataclasses import asdict, dataclass

RESULT_KINDS = ("ok", "failed", "refused")


def whoami() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class AuditEntry:
    when: str  # ISO 8601 with the UTC offset
    who: str
    cluster: str
    action: str
    target: str
    result: str
    seconds: float | None = None

    def line(self) -> str:
        data = {k: v for k, v in asdict(self).items() if v is not None}
        return json.dumps(data, ensure_ascii=False) + "\n"

    @property
    def kind(self) -> str:
        return next((k for k in RESULT_KINDS if self.result.startswith(k)), "?")

    def text(self) -> str:
        took = f" ({self.seconds:.1f} s)" if self.seconds is not None else ""
        return f"{self.who}: {self.action} {self.target}: {self.result}{took}"


def entry(cluster: str, action: str, target: str, result: str, seconds: float | None = None) -> AuditEntry:
    return AuditEntry(time.strftime("%Y-%m-%dT%H:%M:%S%z"), whoami(), cluster, action, target, result,
                      round(seconds, 3) if seconds is not None else None)


def ok(text: str) -> str:
    return f"ok: {text}" if text else "ok"


def failed(reason: str) -> str:
    return f"failed: {reason}"


def refused(reason: str) -> str:
    return f"refused: {reason}"


def parse_lines(text: str) -> list[AuditEntry]:
    """Every well-formed line; anything else (a torn last line, garbage) is skipped."""
    out = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                continue
            seconds = data.get("seconds")
            out.append(AuditEntry(str(data["when"]), str(data["who"]), str(data.get("cluster", "?")),
                                  str(data["action"]), str(data.get("target", "")), str(data["result"]),
                                  float(seconds) if isinstance(seconds, (int, float)) else None))
        except (ValueError, KeyError, TypeError):
            continue
    return out
