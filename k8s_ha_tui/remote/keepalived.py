"""What the running keepalived says about itself: its DATA dump (every instance, what it tracks)
and its STATS dump (advert and error counters). Garbage in gives empty results, never an
exception; the PASS password in the DATA dump is never kept, only a digest."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from k8s_ha_tui.remote.answers import int_or_none as _int

VRRP_STATES = ("MASTER", "BACKUP", "FAULT", "STOP", "INIT")


def keepalived_dump(signal: str, path: str, pid_file: str = "/run/keepalived.pid", lock: str | None = None) -> str:
    """Ask the running keepalived for a dump (DATA or STATS) and print it once it is complete.
    Only root can ask (a signal): a login without root gets nothing, never an older dump that
    root left behind (the watch role reads the notify script's state file instead). While it
    waits it prints an empty line now and then (the parsers skip them): the collector takes a
    probe that stays silent for long to mean a node gone from the network. A keepalived that is
    gone (killed: its pid file stays) is not waited for (lab, keepalived-down: the collector's
    probe took 1.3 s where it takes 0.15 s; the exporter's asks for two dumps).
    keepalived writes every dump to the same file, so askers take turns (`flock`, up to a
    second, then without it): a monitor, an exporter and a command asking at once removed or
    read each other's dump half-written (lab: 2 of 120 dumps unusable with 4 askers; the hour's
    soak: a `maintenance off` refused, "what its keepalived follows is unknown")."""
    lock = lock or f"/run/k8s-ha-tui-keepalived-{signal.lower()}.lock"
    return (f"pf={pid_file}; f={path}; "
            f"if [ -s $pf ] && [ \"$(id -u)\" = 0 ]; then ( "
            "command -v flock >/dev/null && flock -w 1 9; rm -f $f; "
            f"if kill -s $(keepalived --signum={signal}) $(cat $pf) 2>/dev/null; then "
            "i=0; last=-1; while [ $i -lt 50 ]; do s=$(stat -c %s $f 2>/dev/null || echo -1); "
            "[ \"$s\" -gt 0 ] && [ \"$s\" = \"$last\" ] && break; last=$s; sleep 0.02; i=$((i+1)); "
            "[ $((i % 10)) = 0 ] && echo; done; "
            f"cat $f 2>/dev/null; fi ) 9>>{lock}; fi")


KEEPALIVED_DUMP = keepalived_dump("DATA", "/tmp/keepalived.data")
KEEPALIVED_STATS = keepalived_dump("STATS", "/tmp/keepalived.stats")




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
    master_router: str | None = None  # a BACKUP's word for whose adverts it hears (its address)

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
                  "Interface": "interface", "Authentication type": "auth_type", "Master router": "master_router"}
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
        tracked_scripts=_weighted(lists.get("Tracked scripts", [])),
        master_router=raw.get("master_router") if raw.get("state") == "BACKUP" else None)


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


# The STATS dump's counters, by the names the widely used keepalived exporter gives them
# (gen2brain/keepalived_exporter), so dashboards built on it read ours too.
STATS_NAMES = {
    ("Advertisements", "Received"): "advertisements_received",
    ("Advertisements", "Sent"): "advertisements_sent",
    ("", "Became master"): "become_master",
    ("", "Released master"): "release_master",
    ("Packet Errors", "Length"): "packet_length_errors",
    ("Packet Errors", "TTL"): "ip_ttl_errors",
    ("Packet Errors", "Invalid Type"): "invalid_type_received",
    ("Packet Errors", "Advertisement Interval"): "advertisements_interval_errors",
    ("Packet Errors", "Address List"): "address_list_errors",
    ("Authentication Errors", "Invalid Type"): "authentication_invalid",
    ("Authentication Errors", "Type Mismatch"): "authentication_mismatch",
    ("Authentication Errors", "Failure"): "authentication_failure",
    ("Priority Zero", "Received"): "priority_zero_received",
    ("Priority Zero", "Sent"): "priority_zero_sent",
}


def keepalived_stats(text: str) -> dict[str, dict[str, int]]:
    """keepalived's STATS dump (/tmp/keepalived.stats): instance → counter → value."""
    out: dict[str, dict[str, int]] = {}
    instance, group = None, ""
    for raw in text.splitlines():
        if raw.startswith("VRRP Instance:"):
            instance, group = raw.split(":", 1)[1].strip(), ""
            out[instance] = {}
            continue
        if instance is None or not raw.strip():
            continue
        key, _, value = raw.strip().partition(":")
        depth = len(raw) - len(raw.lstrip())
        if not value.strip():
            group = key if depth <= 2 else group
            continue
        name = STATS_NAMES.get((group if depth > 2 else "", key))
        number = _int(value)
        if name and number is not None:
            out[instance][name] = number
    return out
