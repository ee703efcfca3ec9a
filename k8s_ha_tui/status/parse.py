"""Parsers for the status: HAProxy's `show stat` and the notify record. Garbage in gives
'unknown' out, never an exception."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import replace

from k8s_ha_tui.configs.confparse import include_patterns, parse_keepalived
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.answers import int_or_none as _int
from k8s_ha_tui.remote.keepalived import VRRP_STATES, RunningInstance
from k8s_ha_tui.status.model import BackendServer
from k8s_ha_tui.status.vrrpview import differences, file_views, from_running


def notify_state(text: str, instance: str | None = None) -> dict:
    """From the rendered notify script's record, a line 'EPOCH TYPE NAME STATE PRIORITY' per
    instance and sync group: `instance`'s line, else the last one (a record written before it
    kept a line per name). A sync group's line (TYPE GROUP) says the state, not the priority."""
    lines = [ln.split() for ln in text.splitlines() if len(ln.split()) >= 5]
    mine = [p for p in lines if p[1] == "INSTANCE" and p[2] == instance]
    parts = (mine or lines or [[]])[-1]
    if len(parts) >= 5 and parts[3] in VRRP_STATES:
        try:
            return {"state": parts[3], "last_transition": float(parts[0]),
                    "effective_priority": _int(parts[4]) if parts[1] == "INSTANCE" else None}
        except ValueError:
            return {}
    return {}


def show_stat(text: str) -> tuple[BackendServer, ...]:
    """HAProxy's `show stat` CSV, parsed by header name; only server rows."""
    lines = text.lstrip("# ").splitlines()
    if not lines:
        return ()
    out = []
    try:
        for row in csv.DictReader(io.StringIO("\n".join(lines))):
            server = row.get("svname") or ""
            if not row.get("pxname") or server in ("FRONTEND", "BACKEND", ""):
                continue
            out.append(BackendServer(
                backend=row["pxname"], server=server, status=(row.get("status") or "?").strip(),
                check_status=(row.get("check_status") or "").strip().lstrip("* "),
                check_duration_ms=_int(row.get("check_duration")), last_change_s=_int(row.get("lastchg")),
                address=(row.get("addr") or "").strip(), check_failures=_int(row.get("chkfail"))))
    except (csv.Error, KeyError):
        return ()
    return tuple(out)


def active_servers(text: str) -> tuple[tuple[str, int], ...]:
    """From `show stat`: each backend's number of active (up) servers (its BACKEND row's `act`)."""
    lines = text.lstrip("# ").splitlines()
    try:
        rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    except csv.Error:
        return ()
    return tuple((r["pxname"], n) for r in rows if r.get("svname") == "BACKEND" and r.get("pxname")
                 and (n := _int(r.get("act"))) is not None)


def attach_masters(servers: tuple[BackendServer, ...], masters: dict[str, str],
                   names: set[str]) -> tuple[BackendServer, ...]:
    """Each server with the master it sends to: by ADDR:PORT (`masters` maps "address:port" to a
    master's name), so hand-made configs with servers called anything map too; by name only
    where HAProxy did not say the address (versions before 1.9)."""
    def master_of(b: BackendServer) -> str | None:
        if b.address:
            return masters.get(b.address)
        return b.server if b.server in names else None
    return tuple(replace(b, master=master_of(b)) for b in servers)


def reload_pending(running: RunningInstance | None, keepalived_conf: str, haproxy_loaded: str) -> tuple[str, ...]:
    """What a reload would change: the running keepalived instance compared with the file on disk
    (a file that `include`s others is compared only where the instance is in the file itself),
    and HAProxy's config file changed after HAProxy last loaded it ("LOADED_EPOCH\nMTIME")."""
    out: list[str] = []
    if running is not None and keepalived_conf.strip():
        disk = {v.name: v for v in file_views(parse_keepalived(keepalived_conf))}.get(running.name)
        if disk is not None:
            out += [f"{PATHS.keepalived_conf}: {text}" for text in differences(from_running(running), disk)]
        elif not include_patterns(keepalived_conf, PATHS.keepalived_conf):
            out.append(f"{PATHS.keepalived_conf}: keepalived runs vrrp_instance {running.name}, which the file "
                       "no longer has")
    loaded, changed = (_int(x) for x in (haproxy_loaded.split() + ["", ""])[:2])
    if loaded is not None and changed is not None and changed > loaded + 1:
        out.append(f"{PATHS.haproxy_cfg} changed at {_clock(changed)}, after HAProxy loaded its config at "
                   f"{_clock(loaded)}")
    return tuple(out)


def _clock(epoch: int) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))
