"""Writing files on the operator's machine: whole or not at all, never world-readable by
accident, and a one-line error for a path that cannot be written, found before any work."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from k8s_ha_tui.errors import UserError


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
    if p.exists() and not p.is_file():  # written by rename, a device or FIFO would be replaced
        raise UserError(f"{p}: is not a regular file; give a file name")
    check_creatable(p)


def check_creatable(p: Path) -> None:
    """`p` can be made: its nearest existing ancestor is a writable directory."""
    parent = p.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{p}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK):
        raise UserError(f"{p}: {parent} is not writable")


MiB = 1 << 20


def require_regular(path: Path, what: str) -> None:
    """Where `path` exists, it must be a regular file: a device or a FIFO named by mistake would
    be read forever (or block until a writer comes)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # missing or unreadable: the reader says so in its own words
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: {what} is {'a directory' if stat.S_ISDIR(mode) else 'not a regular file'}")


def read_input(path: str | os.PathLike, limit: int, what: str, strict: bool = True) -> str:
    """A file the user named, read whole as UTF-8: a regular file of at most `limit` bytes. A
    device, a FIFO or a huge file is a one-line error, never a hang or a memory blow-up.
    `strict=False` for daemons' configs: keepalived and HAProxy read bytes, so a Latin-1 comment
    is fine there; such bytes read as U+FFFD instead of making the file unreadable."""
    p = Path(path)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    except FileNotFoundError:
        raise UserError(f"{p}: no such {what}") from None
    except OSError as exc:
        raise UserError(f"{p}: cannot read: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UserError(f"{p}: {'a directory' if stat.S_ISDIR(mode) else 'not a regular file'}, not a {what}")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(limit + 1)
        except OSError as exc:
            raise UserError(f"{p}: cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise UserError(f"{p}: larger than {limit / MiB:g} MiB, too large for a {what}")
    try:
        return data.decode("utf-8", errors="strict" if strict else "replace")
    except UnicodeDecodeError as exc:
        raise UserError(f"{p}: cannot read: not UTF-8 (byte {exc.start})") from None
