"""Writing files on the operator's machine: whole or not at all, never world-readable by
accident, and a one-line error for a path that cannot be written, found before any work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError


def atomic_write(path: str | os.PathLike, text: str, mode: int = 0o600) -> None:
    """Write a file whole or not at all, created with `mode` (never world-readable by accident)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_writable(path: str | os.PathLike) -> None:
    """Before any work whose result goes there: a one-line error for a path that cannot be a file."""
    p = Path(path)
    if p.is_dir():
        raise UserError(f"{p}: is a directory; give a file name")
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{p}: {parent} is not a directory")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{p}: {parent} is not writable")
