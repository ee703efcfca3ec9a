"""Reading what a node answers to a probe: its sections, numbers, track files and addresses.
Garbage in gives 'unknown' (or 0, or False) out, never an exception."""

from __future__ import annotations

import re

SECTION = "@@"


def sections(text: str) -> dict[str, str]:
    """Split a probe's output at lines '@@name' into {name: body}."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith(SECTION) and len(line) > 2 and " " not in line:
            current = line[2:]
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def int_or_none(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def holds_address(ip_output: str, address: str) -> bool:
    """From `ip -o addr show`: is `address` (either family, canonical form) on any interface, and
    usable there? An IPv6 address whose duplicate address detection failed (`dadfailed`) is not:
    the kernel neither answers nor sends from it."""
    return any(re.search(rf"\sinet6? {re.escape(address)}/\d+\s", f" {line} ") and " dadfailed " not in f"{line} "
               for line in ip_output.splitlines())


def flag_file(text: str) -> int:
    """A track file's number (missing or garbage: 0, as keepalived reads it)."""
    return int_or_none(text.strip().split("\n")[0] if text.strip() else "0") or 0
