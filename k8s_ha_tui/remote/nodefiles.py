"""Reading files on a node in one round trip, byte-exact (base64 under a section each), and
understanding the answer (`parse_files`: pure, tested with garbage)."""

from __future__ import annotations

import base64
import shlex

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.remote.answers import sections
from k8s_ha_tui.remote.ssh import NodeConnection


def read_files_script(paths: list[str]) -> str:
    """Each file base64-encoded under its own section: byte-exact, whatever the file holds."""
    return "; ".join(f"echo '@@{i}'; if [ -f {shlex.quote(p)} ]; then echo PRESENT; base64 -w0 {shlex.quote(p)}; "
                     f"echo; else echo ABSENT; fi" for i, p in enumerate(paths))


def parse_files(out: str, paths: list[str]) -> dict[str, str | None]:
    """Contents by path (None: absent). An answer that does not decode is an error, not a guess."""
    found = sections(out)
    result: dict[str, str | None] = {}
    for i, path in enumerate(paths):
        flag, _, body = found.get(str(i), "").partition("\n")
        if flag == "ABSENT":
            result[path] = None
        elif flag == "PRESENT":
            try:
                result[path] = base64.b64decode(body.strip(), validate=True).decode("utf-8", "surrogateescape")
            except ValueError:
                raise UserError(f"{path}: the node's answer did not decode", code=1) from None
        else:
            raise UserError(f"{path}: the node did not say whether it exists", code=1)
    return result


async def read_files(conn: NodeConnection, paths: list[str]) -> dict[str, str | None]:
    """Current contents (None where a file does not exist), in one round trip."""
    if not paths:
        return {}
    return parse_files(str((await conn.run(read_files_script(paths))).stdout or ""), paths)
