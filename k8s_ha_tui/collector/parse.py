"""Parsers for what nodes answer. Garbage in gives 'unknown' out, never an exception."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field, replace

from .model import VRRP_STATES, BackendServer

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


def _int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        return None


def holds_address(ip_output: str, address: str) -> bool:
    """From `ip -o -4 addr show`: is `address` on any interface?"""
    return any(re.search(rf"\sinet {re.escape(address)}/\d+\s", f" {line} ") for line in ip_output.splitlines())


@dataclass(frozen=True)
class RunningInstance:
    """One vrrp_instance as the running keepalived has it (its DATA dump): what is in force now,
    whatever the files on disk say. The PASS password itself is never kept, only a digest."""

    name: str
    state: str | None = None
    version: int | None = None
    router_id: int | None = None
    base_priority: int | None = None
    effective_priority: int | None = None
    advert_int: float | None = None
    interface: str | None = None
    auth_type: str | None = None
    auth_digest: str | None = None  # sha256 of the PASS password, to compare nodes
    unicast_peers: tuple[str, ...] = ()
    vips: tuple[str, ...] = ()  # "ADDR/LEN"
    last_transition: float | None = None
    tracked_files: tuple[tuple[str, int], ...] = ()  # (track file name, weight)
    tracked_scripts: tuple[tuple[str, int], ...] = ()

    def has_vip(self, vip: str) -> bool:
        return any(v.split("/")[0] == vip for v in self.vips)


@dataclass(frozen=True)
class KeepalivedData:
    instances: tuple[RunningInstance, ...] = ()
    track_files: dict = field(default_factory=dict)  # name → (file path, weight)
    script_status: dict = field(default_factory=dict)  # script name → GOOD/BAD

    def instance_for(self, vip: str | None) -> RunningInstance | None:
        """The instance that carries `vip` (several instances are common), else the first."""
        match = next((i for i in self.instances if vip and i.has_vip(vip)), None)
        return match or (self.instances[0] if self.instances else None)

    def tracks_file(self, instance: RunningInstance, path: str, weight_positive: bool) -> bool:
        """Whether the instance follows the track file at `path`: weight 0 (FAULT on non-zero)
        for a maintenance switch, a positive weight for a priority boost."""
        for name, weight in instance.tracked_files:
            file, own = self.track_files.get(name, (None, 0))
            w = weight if weight is not None else own
            if file == path and ((w > 0) if weight_positive else (w == 0)):
                return True
        return False


def _seconds(value: str) -> float | None:
    m = re.match(r"(\d+(?:\.\d+)?)\s*(milli-sec|sec)", value)
    if not m:
        return None
    return float(m.group(1)) / (1000 if m.group(2) == "milli-sec" else 1)


_INSTANCE_KEYS = {"State": "state", "VRRP Version": "version", "Virtual Router ID": "router_id",
                  "Priority": "base_priority", "Effective priority": "effective_priority",
                  "Interface": "interface", "Authentication type": "auth_type"}
_INT_KEYS = {"version", "router_id", "base_priority", "effective_priority"}


def running_keepalived(text: str) -> KeepalivedData:
    """keepalived's DATA dump (/tmp/keepalived.data) read for every instance, its tracked files
    and scripts. Garbage gives an empty result, never an exception."""
    instances: list[dict] = []
    track_files: dict[str, tuple[str | None, int]] = {}
    scripts: dict[str, str] = {}
    section, sub, current_file, current_script = "", "", None, None
    for raw in text.splitlines():
        line = raw.strip()
        m = re.match(r"-+<\s*(.+?)\s*>-+", line)
        if m:
            section, sub = m.group(1), ""
            continue
        key, sep, value = line.partition(" = ")
        if section == "VRRP Topology":
            if key == "VRRP Instance":
                instances.append({"name": value, "lists": {}})
                continue
            if not instances:
                continue
            inst = instances[-1]
            if line.endswith(":") and not sep:
                sub = line[:-1].split(" (")[0].strip()
                continue
            if not sep and sub:
                inst["lists"].setdefault(sub, []).append(line)
                continue
            sub = ""
            if key in _INSTANCE_KEYS:
                name = _INSTANCE_KEYS[key]
                inst[name] = _int(value) if name in _INT_KEYS else value.split()[0] if value else None
            elif key == "Advert interval":
                inst["advert_int"] = _seconds(value)
            elif key == "Password":
                inst["auth_digest"] = hashlib.sha256(value.encode()).hexdigest()
            elif key == "Last transition":
                try:
                    inst["last_transition"] = float(value.split()[0])
                except (ValueError, IndexError):
                    pass
            elif key.startswith("Virtual IP"):
                sub = "Virtual IP"
        elif section == "VRRP Track files":
            if key == "Track file":
                current_file = value
                track_files[value] = (None, 0)
            elif current_file and key == "File":
                track_files[current_file] = (value, track_files[current_file][1])
            elif current_file and key == "Weight":
                track_files[current_file] = (track_files[current_file][0], _int(value) or 0)
        elif section == "VRRP Scripts":
            if key == "VRRP Script":
                current_script = value
            elif current_script and key == "Status" and current_script not in scripts:
                scripts[current_script] = "GOOD" if value == "GOOD" else "BAD"
    return KeepalivedData(tuple(_instance(i) for i in instances), track_files, scripts)


_ADDRESS = re.compile(r"[0-9A-Fa-f:.]+(/\d+)?(\s|$)")


def _weighted(lines: list[str]) -> tuple[tuple[str, int], ...]:
    """'name weight -20' or 'name, weight 0' → (name, weight)."""
    out = []
    for line in lines:
        m = re.match(r"(\S+?),?\s+weight\s+(-?\d+)", line)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return tuple(out)


def _instance(raw: dict) -> RunningInstance:
    lists = raw.pop("lists")
    state = raw.get("state")
    return RunningInstance(
        name=raw["name"], state=state if state in VRRP_STATES else None, version=raw.get("version"),
        router_id=raw.get("router_id"), base_priority=raw.get("base_priority"),
        effective_priority=raw.get("effective_priority"), advert_int=raw.get("advert_int"),
        interface=raw.get("interface"), auth_type=raw.get("auth_type"), auth_digest=raw.get("auth_digest"),
        unicast_peers=tuple(x.split()[0] for x in lists.get("Unicast Peer", []) if _ADDRESS.match(x)),
        vips=tuple(x.split()[0] for x in lists.get("Virtual IP", []) if _ADDRESS.match(x)),
        last_transition=raw.get("last_transition"),
        tracked_files=_weighted(lists.get("Tracked files", [])),
        tracked_scripts=_weighted(lists.get("Tracked scripts", [])))


def keepalived_data(text: str, vip: str | None = None) -> dict:
    """From keepalived's DATA dump: the state, base and effective priority, last transition and
    check status of the instance that carries `vip` (else the first)."""
    data = running_keepalived(text)
    inst = data.instance_for(vip)
    if inst is None:
        return {}
    out: dict = {"instance": inst.name}
    for key in ("state", "base_priority", "effective_priority", "last_transition"):
        if getattr(inst, key) is not None:
            out[key] = getattr(inst, key)
    statuses = [data.script_status[name] for name, _ in inst.tracked_scripts if name in data.script_status]
    if statuses:
        out["check"] = "GOOD" if all(x == "GOOD" for x in statuses) else "BAD"
    return out


def notify_state(text: str) -> dict:
    """From the rendered notify script's record: 'EPOCH INSTANCE NAME STATE PRIORITY'."""
    parts = text.split()
    if len(parts) >= 5 and parts[3] in VRRP_STATES:
        try:
            return {"state": parts[3], "last_transition": float(parts[0]), "effective_priority": _int(parts[4])}
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
                address=(row.get("addr") or "").strip()))
    except (csv.Error, KeyError):
        return ()
    return tuple(out)


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


def flag_file(text: str) -> int:
    """A track file's number (missing or garbage: 0, as keepalived reads it)."""
    return _int(text.strip().split("\n")[0] if text.strip() else "0") or 0
