"""Deploy backups on a master: one folder per change (`PATHS.backups/<id>`), never overwritten,
each saying who made it, for what, from which topology, and which backup came before it.

Ids are UTC times to the microsecond (`20261129T063012.482913Z`): unique, and their order is
their age. The folder is created with a plain `mkdir`, which fails rather than reuse one. The
newest KEEP are kept; a change never deletes the backup it just made nor the one it restores.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.answers import sections
from k8s_ha_tui.remote.ssh import NodeConnection

ID = re.compile(r"\d{8}T\d{6}(?:\.\d{6})?Z")  # also the second-resolution ids of earlier versions
KEEP = 10
KEEP_RANGE = (2, 1000)
MANIFEST = "MANIFEST"  # "present PATH" / "absent PATH" per managed file: what rollback puts back
META = "META.json"


def new_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


@dataclass(frozen=True)
class BackupInfo:
    id: str
    who: str = "?"
    action: str = "?"
    cluster: str = "?"
    topology: str = "?"
    topology_sha256: str = "?"
    previous: str | None = None

    def meta(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"


def folder(backup_id: str) -> str:
    return f"{PATHS.backups}/{backup_id}"


def listing_script() -> str:
    """Every complete backup (its MANIFEST is written last) with its META, in one round trip."""
    b = PATHS.backups
    return (f"for d in {b}/*/; do [ -f \"${{d}}{MANIFEST}\" ] || continue; "
            f"echo \"@@$(basename \"$d\")\"; cat \"${{d}}{META}\" 2>/dev/null; done; true")


def parse_listing(out: str) -> list[BackupInfo]:
    """Oldest first; folders that are not backups are ignored, a missing or garbled META leaves
    '?' (backups made before META existed have none)."""
    found = []
    for name, body in sections(out).items():
        if not ID.fullmatch(name):
            continue
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                data = {}
        except ValueError:
            data = {}
        fields = {k: str(v) for k, v in data.items() if k in BackupInfo.__dataclass_fields__ and v is not None}
        found.append(BackupInfo(**{**fields, "id": name}))
    return sorted(found, key=lambda b: b.id)


async def list_backups(conn: NodeConnection) -> list[BackupInfo]:
    return parse_listing(str((await conn.run(listing_script())).stdout or ""))


def to_prune(existing: list[str], keep: int, protected: set[str]) -> list[str]:
    """The oldest backups beyond `keep` (counting the one about to be made), never a protected one."""
    ordered = sorted(existing)
    surplus = max(0, len(ordered) + 1 - keep)
    return [b for b in ordered[:surplus] if b not in protected]


def create_script(info: BackupInfo, present: list[str], absent: list[str], prune: list[str]) -> str:
    """Copy the managed files as they are now; META, then MANIFEST last (a folder without it is
    not a backup). Ignores hangups: a client that goes away cannot leave it half done."""
    b = shlex.quote(folder(info.id))
    copy = f" && (cd / && cp -a --parents {' '.join(shlex.quote(p) for p in present)} {b}/)" if present else ""
    manifest = "".join(f"present {p}\\n" for p in present) + "".join(f"absent {p}\\n" for p in absent)
    drop = "".join(f"; rm -rf {shlex.quote(folder(x))}" for x in prune)
    return (f"trap '' HUP PIPE; umask 077; mkdir -p {PATHS.backups} && chmod 700 {PATHS.backups} && mkdir {b}"
            f"{copy} && cat > {b}/{META} && printf '{manifest}' > {b}/{MANIFEST}{drop}")


async def create(conn: NodeConnection, info: BackupInfo, present: list[str], absent: list[str],
                 prune: list[str]) -> str:
    await conn.run(create_script(info, present, absent, prune), input=info.meta())
    return folder(info.id)
