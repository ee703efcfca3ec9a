"""Findings about a topology, or about keepalived/HAProxy configs someone already runs.

Each finding has a stable code, a level, one line of text and a fix. The keepalived and HAProxy
rules are the seed script's defects, measured with the real daemons (docs/reference.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Literal, cast

from k8s_ha_tui.configs.confparse import (
    HSection,
    KBlock,
    down_adverts,
    parse_haproxy_files,
    parse_keepalived,
    parse_timeout,
    vrrp_version,
)
from k8s_ha_tui.model import profiles
from k8s_ha_tui.model.election import Candidate, combinations_count, families_apart, unsafe_combinations
from k8s_ha_tui.model.profiles import FIRST_BACKUP_PRIORITY
from k8s_ha_tui.model.topology import Topology
from k8s_ha_tui.model.vrrp_timing import master_down_seconds, pause_always_survived

Level = Literal["error", "warning", "info"]  # info: no problem, a fact worth knowing

# Thresholds from bench/failover.py's lab runs (docs/speed.md).
SLOW_DETECTION_WARN_S = 3
SLOW_DETECTION_ERROR_S = 10
SLOW_TAKEOVER_WARN_S = 2.0  # a vanished holder replaced after longer than this: too slow
SHORT_PROXY_TIMEOUT_S = 60
# A freeze of the holder this long (a GC pause, a VM stun) must never move the VIP (bench/flap.py).
PAUSE_TO_SURVIVE_S = 0.25
NOTIFY_KEYWORDS = ("notify", "notify_master", "notify_backup", "notify_fault", "notify_stop")
# A vrrp_script that runs a program from here (killall, pidof, sh -c '...') says all it does in
# its own line: there is no script file to read.
SYSTEM_BINARIES = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/usr/lib")


@dataclass(frozen=True)
class Finding:
    code: str
    level: Level
    message: str
    fix: str
    where: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return f"{where}{self.level} {self.code}: {self.message}" + (f"\n    fix: {self.fix}" if self.fix else "")


def has_errors(findings: list[Finding]) -> bool:
    return any(f.level == "error" for f in findings)


# --- topology --------------------------------------------------------------------------------

def lint_topology(topo: Topology) -> list[Finding]:
    out: list[Finding] = []
    chk, vrrp = topo.check, topo.vrrp
    detect = chk.interval * chk.fall
    if detect > SLOW_DETECTION_WARN_S:
        level: Level = "error" if detect > SLOW_DETECTION_ERROR_S else "warning"
        out.append(Finding(
            "T001", level,
            f"a dead HAProxy is noticed only after check.interval × check.fall = {detect} s",
            "use the defaults: check.interval 1, check.fall 1", "check"))
    takeover = master_down_seconds(vrrp.advert_int, adverts=vrrp.down_adverts)
    if chk.weight != 0:
        out.append(Finding(
            "T002", "warning",
            f"check.weight {chk.weight} only changes the priority: the backup still waits the "
            f"master-down interval (~{takeover:.1f} s) before it takes the VIP",
            "use check.weight 0: a failed check then means FAULT and a handover within the skew time",
            "check.weight"))
        candidates = [Candidate(m.name, m.address, topo.priority_of(m)) for m in topo.masters]
        bad = unsafe_combinations(candidates, chk.weight)
        if bad:
            out.append(Finding(
                "T003", "error",
                f"election simulation ({combinations_count(len(candidates))} cases): {bad[0].describe()}",
                "use check.weight 0, or a weight larger than the gap between any two priorities",
                "check.weight"))
        if topo.vip6 is not None:
            apart = families_apart(candidates, [Candidate(m.name, str(m.address6), topo.priority_of(m))
                                                for m in topo.masters], chk.weight)
            if apart:
                out.append(Finding(
                    "T009", "error", f"election simulation, dual stack: {apart}",
                    "use check.weight 0, or order the masters' IPv6 addresses as their IPv4 ones", "check.weight"))
    if len(topo.masters) == 1:
        out.append(Finding("T004", "warning", "only one master: there is nowhere for the VIP to go",
                           "add masters (3 is the usual number)", "masters"))
    elif len(topo.masters) % 2 == 0:
        out.append(Finding(
            "T005", "warning",
            f"{len(topo.masters)} masters: etcd tolerates no more failures than with {len(topo.masters) - 1}",
            "use an odd number of masters", "masters"))
    named = profiles.matching(vrrp.version, vrrp.advert_int, vrrp.down_adverts, (chk.interval, chk.fall, chk.rise))
    if takeover > SLOW_TAKEOVER_WARN_S and named is None:  # `safe` is slow on purpose, and says so (T008)
        out.append(Finding(
            "T007", "warning",
            f"a holder that drops off the network is replaced only after {vrrp.down_adverts} × vrrp.advert_int + skew "
            f"(~{takeover:.1f} s); meanwhile the API is unreachable through the VIP",
            "use a speed profile (wizard --profile default or fast)", "vrrp.advert_int"))
    survives = pause_always_survived(vrrp.advert_int, FIRST_BACKUP_PRIORITY, vrrp.down_adverts)
    if survives < PAUSE_TO_SURVIVE_S:
        out.append(Finding(
            "T006", "warning",
            f"vrrp.advert_int {vrrp.advert_text} s × vrrp.down_adverts {vrrp.down_adverts}: a freeze of the holder "
            f"longer than {survives * 1000:.0f} ms (a GC pause, a VM stun) can move the VIP (flapping)",
            "use a speed profile (wizard --profile): fast takes over in ~0.6 s and rides through 350 ms",
            "vrrp.advert_int"))
    if named is not None:
        out.append(Finding("T008", "info", f"speed profile {named.describe()}", "", "vrrp"))
    return out


# --- keepalived.conf -------------------------------------------------------------------------

def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default


def _vips(instance: KBlock) -> list[str]:
    block = instance.first("virtual_ipaddress")
    return [w for w in (block.words() if block else [])]


def script_command(script: KBlock) -> list[str]:
    """A vrrp_script's `script` line (its words), or [] where it has none."""
    line = script.first("script")
    return line.args if line is not None else []


_ASSIGN = re.compile(r"\s*(?:export\s+)?(\w+)=")
_HELD_HERE = re.compile(r"\bip\b.*\ba(ddr)?\b.*\|\s*grep\b(?!.*\|\|)")  # `ip addr | grep -q VIP` (not `|| curl`)


def tests_vip_unguarded(script: str, vip: str) -> bool:
    """Whether a check script tests the VIP on every node. The kubeadm guide's (and the seed's)
    `if ip addr | grep -q VIP; then curl https://VIP...` tests it only where it is held, which is
    the node's own HAProxy: harmless (the lab shows the VIP moving with it). Shell comments do
    not count; a variable set to the VIP (`VIP=...`, then `$VIP`) does."""
    literal = re.compile(rf"(?<![\d.]){re.escape(vip)}(?![\d])")
    code = [ln.split("#", 1)[0] for ln in script.splitlines()]
    names = {m.group(1) for ln in code if (m := _ASSIGN.match(ln)) and literal.search(ln)}
    uses = [ln for ln in code if not _ASSIGN.match(ln)
            and (literal.search(ln) or any(re.search(rf"\$\{{?{n}\b", ln) for n in names))]
    return bool(uses) and not any(_HELD_HERE.search(ln) for ln in uses)


def _runs_a_script_file(command: list[str]) -> bool:
    """Whether a `script` line runs a file of its own (whose text lint should read), not a
    program that says all it does in the line (`killall -0 haproxy`, `/usr/bin/curl ...`)."""
    first = command[0].strip("'").split()[0] if command and command[0].strip("'").split() else ""
    return first.startswith("/") and not first.startswith(SYSTEM_BINARIES)


def tracked(inst: KBlock, scripts: list[KBlock]) -> list[tuple[str, int, KBlock]]:
    """(script name, the weight it applies, the line that sets it) for each script the instance
    tracks: `track_script { chk weight -20 }` overrides the script's own weight."""
    block = inst.first("track_script")
    out = []
    for entry in block.children if block else []:
        script = next((s for s in scripts if s.args and s.args[0] == entry.keyword), None)
        own = script.first("weight") if script is not None else None
        if entry.args[:1] == ["weight"] and len(entry.args) > 1:
            out.append((entry.keyword, _int(entry.args[1], 0), entry))
        else:
            out.append((entry.keyword, _int(own.args[0] if own and own.args else None, 0), own or entry))
    return out


def tracked_weights(inst: KBlock, scripts: list[KBlock]) -> list[int]:
    return [w for _, w, _ in tracked(inst, scripts)]


def _tracked_by_group(root: KBlock, inst: KBlock, keyword: str) -> bool:
    """Whether a vrrp_sync_group the instance belongs to tracks something for it."""
    name = inst.args[0] if inst.args else None
    for group in root.all("vrrp_sync_group"):
        members = group.first("group")
        block = group.first(keyword)
        if members and name in members.words() and block and block.words():
            return True
    return False


def _speed_profile(root: KBlock, inst: KBlock, scripts: list[KBlock]) -> profiles.Profile | None:
    """The profile an instance's timing (and its first tracked script's) matches, if any."""
    try:
        advert = float(inst.value("advert_int") or 1)
    except ValueError:
        return None
    adverts = down_adverts(root, inst)
    tracked = inst.first("track_script")
    first = tracked.words()[0] if tracked and tracked.words() else None
    script = next((s for s in scripts if s.args and s.args[0] == first), None)
    check = None if script is None else (_int(script.value("interval"), 1), _int(script.value("fall"), 1),
                                         _int(script.value("rise"), 1))
    return profiles.matching(vrrp_version(root, inst), advert, adverts, check)


def lint_keepalived(text: str, check_script: str | None = None, where: str = "keepalived.conf",
                    files: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings on a keepalived.conf (its `include`d files taken from `files`, path → text); each
    names the file and line it is about."""
    root = parse_keepalived(text, where, files)
    out: list[Finding] = []

    def add(code: str, level: Level, at: KBlock | None, message: str, fix: str) -> None:
        out.append(Finding(code, level, message, fix, at.where if at is not None else where))

    gdefs = root.first("global_defs")
    scripts = root.all("vrrp_script")
    instances = root.all("vrrp_instance")
    notifiers = [*instances, *root.all("vrrp_sync_group")]
    uses_scripts = bool(scripts) or any(b.first(k) for b in notifiers for k in NOTIFY_KEYWORDS)
    if uses_scripts and not (gdefs and gdefs.first("enable_script_security")):
        add("K101", "warning", gdefs,
            "scripts run without enable_script_security: keepalived logs a SECURITY VIOLATION and runs them "
            "as root whoever can change them",
            "add enable_script_security and script_user root to global_defs; keep scripts root-owned")
    secure = bool(gdefs and gdefs.first("enable_script_security"))
    if secure and gdefs is not None and not gdefs.first("script_user"):
        for sc in (sc for sc in scripts if not sc.first("user")):
            add("K116", "error", sc,
                f"vrrp_script {sc.args[0] if sc.args else '?'}: script security on and no script_user: keepalived "
                "runs it as user keepalived_script, which Debian, Ubuntu and RHEL do not create; without that user "
                "it removes the script ('Unable to set default user') and the check never runs",
                "add script_user root to global_defs (or user root in the vrrp_script)")
    rid = gdefs.value("router_id") if gdefs else None
    if rid in (None, "LVS_DEVEL"):
        add("K107", "warning", gdefs,
            f"router_id is {rid or 'unset'}: every node logs under the same sample name",
            "set router_id to the node's own name")

    for s in scripts:
        name = s.args[0] if s.args else "?"
        interval = _int(s.value("interval"), 1)
        fall = _int(s.value("fall"), 1)
        detect = interval * fall
        if detect > SLOW_DETECTION_WARN_S:
            level: Level = "error" if detect > SLOW_DETECTION_ERROR_S else "warning"
            add("K103", level, s,
                f"vrrp_script {name}: a failure is noticed only after interval {interval} × fall {fall} = {detect} s",
                "use interval 1 and fall 2")

    all_vips: list[str] = []
    lvs = bool(root.all("virtual_server") or root.all("virtual_server_group"))  # keepalived balances itself
    for inst in instances:
        iname = inst.args[0] if inst.args else "?"
        auth = inst.first("authentication")
        pw = auth.value("auth_pass") if auth else None
        if auth is not None and pw is not None and len(pw) > 8:
            add("K105", "warning", auth.first("auth_pass") or auth,
                f"vrrp_instance {iname}: auth_pass is {len(pw)} characters; keepalived silently uses the first 8",
                "use at most 8 characters")
        if auth and vrrp_version(root, inst) == 3:
            add("K113", "warning", auth,
                f"vrrp_instance {iname}: VRRPv3 has no authentication; keepalived ignores this block",
                "remove the authentication block")
        vips = _vips(inst)
        all_vips += [v.split("/")[0] for v in vips]
        for v in vips:
            if "/" not in v and ":" not in v:  # an IPv6 address without a length is a /128 by design
                add("K106", "warning", inst.first("virtual_ipaddress"),
                    f"vrrp_instance {iname}: VIP {v} has no prefix length, so keepalived adds it as /32",
                    f"write {v}/LEN with the subnet's real length, and a dev")
        watches = [b for k in ("track_script", "track_process") if (b := inst.first(k)) and b.words()]
        if not watches and not lvs and not any(_tracked_by_group(root, inst, k) for k in ("track_script", "track_process")):
            add("K108", "error", inst,
                f"vrrp_instance {iname}: nothing is tracked, so the VIP stays on a node whose HAProxy is dead",
                "track a script that checks the local HAProxy")
        if inst.first("nopreempt") and (inst.value("state") or "").upper() == "MASTER":
            add("K114", "warning", inst.first("nopreempt"),
                f"vrrp_instance {iname}: nopreempt with state MASTER: keepalived clears nopreempt "
                "('nopreempt will not work with initial state MASTER')", "use state BACKUP on every node with nopreempt")
        # keepalived looks names up as it reads: only blocks above the instance count
        earlier = root.children[:next(i for i, c in enumerate(root.children) if c is inst)]
        for kind, block_kind, level in (("track_script", "vrrp_script", "error"),
                                        ("track_file", "vrrp_track_file", "warning")):
            defined = {b.args[0] for b in earlier if b.keyword == block_kind and b.args}
            block = inst.first(kind)
            for name in [w for w in (block.words() if block else []) if w not in defined]:
                add("K115", cast(Level, level), block,
                    f"vrrp_instance {iname}: {kind} {name} names no {block_kind} block above it: keepalived "
                    "ignores it ('not found, ignoring')", f"define {block_kind} {name} before the instance")
        for name, weight, at in tracked(inst, scripts):
            if weight != 0:
                add("K102", "warning", at,
                    f"vrrp_instance {iname} tracks {name} with weight {weight}: a failed check never hands the VIP "
                    "over faster than the master-down interval, and only if the drop beats the next node's priority",
                    "use weight 0: a failed check then means FAULT and an immediate handover")
        prio = _int(inst.value("priority"), 100)
        weighted = [w for w in tracked_weights(inst, scripts) if w != 0]
        if prio >= 255 and weighted:
            add("K112", "error", inst.first("priority") or inst,
                f"vrrp_instance {iname}: priority 255 with a weighted track script: keepalived ignores the script "
                "('with weights due to address_owner'), so this node keeps the VIP when its check fails",
                "use weight 0 on the script (a failed check means FAULT and a handover); a priority below 255 "
                "helps only where the weight can bring it under the others'")
        if not inst.first("track_file") and not _tracked_by_group(root, inst, "track_file"):
            add("K109", "warning", inst,
                f"vrrp_instance {iname}: no vrrp_track_file maintenance switch; the VIP cannot be moved on purpose cleanly",
                "add a vrrp_track_file with weight 0 and track it")

        named = _speed_profile(root, inst, scripts)
        if named is not None:
            add("K111", "info", inst, f"vrrp_instance {iname}: speed profile {named.describe()}", "")

    script_texts = [check_script] if check_script else []
    commands = {s.args[0] if s.args else "?": script_command(s) for s in scripts}
    script_texts += [" ".join(c) for c in commands.values() if c]
    for vip in all_vips:
        if any(tests_vip_unguarded(t, vip) for t in script_texts):
            add("K104", "error", scripts[0] if scripts else None,
                f"the check script tests the VIP {vip}, not this node: when the holder's HAProxy dies every "
                "node's check fails at once, so the VIP never moves to a node whose HAProxy works",
                "check the LOCAL HAProxy (e.g. its monitor-uri on 127.0.0.1), never the VIP")
    script_files = [s for s in scripts if _runs_a_script_file(script_command(s))]
    if script_files and check_script is None:
        add("K110", "warning", script_files[0],
            "the check script itself was not read, so what it tests is unknown",
            "pass --check-script FILE to lint it too")
    return list(dict.fromkeys(out))  # a block read twice (an include loop) is one finding, not several


# --- haproxy.cfg ------------------------------------------------------------------------------

Add = Callable[[str, Level, HSection, int, str, str], None]
ANY_ADDRESS = ("", "*", "0.0.0.0", "::", "[::]")
APISERVER_PORT = 6443
READINESS_PATHS = ("/readyz", "/livez")  # only a kube-apiserver answers these; /healthz is anyone's
CHECK_OPTIONS = ("httpchk", "tcp-check", "ssl-hello-chk", "ldap-check", "mysql-check", "pgsql-check",
                 "redis-check", "smtpchk")
Where = Literal["master", "lb"]  # where the file runs: on a master beside kube-apiserver, or on a load balancer


def backends_used(fe: HSection, sections: list[HSection]) -> list[HSection]:
    """The backends a frontend sends to (default_backend and use_backend), or itself for a listen."""
    names = {t[1] for _, t in fe.directives("default_backend") if len(t) > 1}
    names |= {t[1] for _, t in fe.directives("use_backend") if len(t) > 1}
    found = [s for s in sections if s.kind in ("backend", "listen") and s.name in names]
    return found or ([fe] if fe.servers() else [])


def bind_ports(fe: HSection) -> list[tuple[int, str, int]]:
    """(line, address, port) for each bind; address '' or '*' means every address."""
    out = []
    for n, t in fe.directives("bind"):
        for spec in t[1].split(",") if len(t) > 1 else []:
            addr, _, port = spec.split("@", 1)[-1].rpartition(":")
            if port.isdigit():
                out.append((n, addr, int(port)))
    return out


def _check_kind(be: HSection) -> tuple[str, int]:
    """Which health check the backend really runs: the last check option wins."""
    chosen, line = "tcp", be.line
    for n, t in be.inherited("option"):
        if len(t) > 1 and t[1].lower() in CHECK_OPTIONS:
            chosen, line = t[1].lower(), n
    return chosen, line


_PATH = re.compile(r"(?:^|\s)(/[^\s\\]*)")


def _check_path(be: HSection, kind: str) -> tuple[str | None, int]:
    """The path the HTTP check asks for, and the line that sets it: `option httpchk [METH] PATH`,
    `http-check send ... uri PATH`, or the request a `tcp-check send` writes by hand (quoted, or
    with escaped spaces)."""
    path, line = None, be.line
    if kind == "tcp-check":
        for n, t in be.inherited("tcp-check", "send"):
            found = _PATH.search(" ".join(t[2:]).replace("\\ ", " "))
            path, line = (found.group(1), n) if found else (path, line)
        return path, line
    for n, t in be.inherited("option", "httpchk"):
        if len(t) >= 3:
            path, line = t[3] if len(t) >= 4 else t[2], n
    for n, t in be.inherited("http-check", "send"):
        if "uri" in t[2:]:
            i = t.index("uri")
            path, line = (t[i + 1], n) if i + 1 < len(t) else (path, line)
    return path, line


def _plain_checks(be: HSection, kind: str) -> tuple[list[str], bool]:
    """Servers whose health check speaks plain HTTP, and whether the check goes somewhere other
    than the server's own port (`check port 80`, `http-check connect port 80`: an nginx in front
    of the apiserver, not the TLS apiserver). TLS comes from `check-ssl`/`ssl` on the server or
    default-server (undone by `no-check-ssl`/`no-ssl`), or an `http-check connect ... ssl` rule."""
    rules = be.inherited("http-check" if kind == "httpchk" else "tcp-check", "connect")
    if any("ssl" in t[2:] for _, t in rules):
        return [], False
    elsewhere = any("port" in t[2:] for _, t in rules)
    defaults = {w for _, t in be.inherited("default-server") for w in t}
    plain = []
    for srv in be.servers():
        words = set(srv.tokens)
        tls = ({"check-ssl", "ssl"} & words) or ({"check-ssl", "ssl"} & defaults and not {"no-check-ssl", "no-ssl"} & words)
        elsewhere |= any(srv.tokens[i] == "port" and srv.tokens[i + 1] != str(srv.port) for i in range(len(srv.tokens) - 1))
        if not tls:
            plain.append(srv.name)
    return plain, elsewhere


def is_apiserver_backend(be: HSection, apiserver_port: int) -> bool:
    """A backend that sends to kube-apiservers: a server on the apiserver's port, or a check of
    /readyz or /livez. A web proxy's :80 backend in the same file is not one."""
    if any(srv.port == apiserver_port for srv in be.servers()):
        return True
    path, _ = _check_path(be, _check_kind(be)[0])
    return path is not None and path.split("?")[0] in READINESS_PATHS


def _tls_terminated(fe: HSection) -> bool:
    return any("ssl" in t[2:] for _, t in fe.directives("bind"))


def _lint_pair(fe: HSection, be: HSection, add: Add, on: Where | None, apiserver_port: int) -> None:
    """What can go wrong between a frontend and the backend it sends the apiserver traffic to."""
    if fe.mode() == "tcp" and be.mode() == "http":
        why = "" if be.own_mode() else " (no mode of its own, so it takes the defaults' mode http)"
        add("H201", "error", be, be.line,
            f"backend {be.name} runs in HTTP mode behind TCP frontend {fe.name}{why}: "
            "TLS to the apiserver through it fails",
            f"put 'mode tcp' in backend {be.name} (and in defaults)")
    elif fe.mode() == "http" and not _tls_terminated(fe):
        why = "" if fe.own_mode() else " (it takes the defaults' mode http)"
        add("H210", "error", fe, fe.line,
            f"frontend {fe.name} runs in HTTP mode{why}, but kubectl and kubelets speak TLS to the "
            "apiserver: every request through it fails",
            f"put 'mode tcp' in frontend {fe.name} and backend {be.name} (and in defaults)")
    for n, addr, port in bind_ports(fe):
        if port != apiserver_port or on == "lb":
            continue
        level: Level = "error" if on == "master" else "warning"
        where = "" if on == "master" else "if this file runs on a master (lint --on master|lb): "
        on_what = "every address" if addr in ANY_ADDRESS else f"{addr} (kube-apiserver listens on every address by default)"
        add("H202", level, fe, n,
            f"{where}frontend {fe.name} binds port {port}, the apiserver's own port, on {on_what}: "
            "on a master HAProxy then cannot start beside kube-apiserver",
            "give HAProxy its own port (e.g. 8443) and use it in controlPlaneEndpoint")
    for word, section in (("client", fe), ("server", be)):
        found = section.inherited("timeout", word)
        if found and len(found[-1][1]) > 2:
            secs = parse_timeout(found[-1][1][2])
            if secs is not None and secs < SHORT_PROXY_TIMEOUT_S:
                owner = section if any(n == found[-1][0] for n, _ in section.lines) else (section.defaults or section)
                add("H209", "warning", owner, found[-1][0],
                    f"timeout {word} {found[-1][1][2]} cuts quiet kube-apiserver watches (kubectl get -w, logs -f)",
                    f"use timeout {word} 1h in TCP mode")


def _lint_backend(be: HSection, add: Add) -> None:
    """The backend's own health checking."""
    kind, kline = _check_kind(be)
    path, pline = _check_path(be, kind)
    http_check = kind == "httpchk" or (kind == "tcp-check" and path is not None)
    servers = be.servers()
    defaults = [w for _, t in be.inherited("default-server") for w in t]
    unchecked = [srv.name for srv in servers if "check" not in srv.tokens and "check" not in defaults]
    if unchecked:
        add("H208", "warning", be, servers[0].line,
            f"backend {be.name}: server(s) {', '.join(unchecked)} have no health check, so HAProxy keeps sending "
            "to a dead apiserver",
            "add check to every server (or to default-server)")
    if len(unchecked) == len(servers):
        return  # no check runs at all: H208 says so, and what kind of check is moot
    httpchk_lines = [n for n, _ in be.inherited("option", "httpchk")]
    if httpchk_lines and not http_check:
        add("H203", "warning", be, kline,
            f"backend {be.name}: 'option {kind}' comes after 'option httpchk' and wins, so no HTTP check runs: "
            "an apiserver that is not ready stays in rotation",
            "keep only option httpchk, with http-check send meth GET uri /readyz")
    elif not http_check:
        add("H206", "warning", be, be.line,
            f"backend {be.name}: only a {'TLS hello' if kind == 'ssl-hello-chk' else 'TCP connect'} check, so an "
            "apiserver that is not ready stays in rotation",
            "use option httpchk with http-check send meth GET uri /readyz and check-ssl")
    if http_check and path and path.split("?")[0] in ("/healthz", "/"):
        add("H204", "warning", be, pline,
            f"backend {be.name}: checks {path}, which answers ok while the apiserver is not ready (shutting down, "
            "etcd lost): it stays in rotation",
            "check /readyz")
    plain, elsewhere = _plain_checks(be, kind)
    if http_check and plain and not elsewhere:
        every = len(plain) == len(servers)
        add("H205", "error" if every else "warning", be,
            next(srv.line for srv in servers if srv.name == plain[0]),
            f"backend {be.name}: the HTTP check of {'every server' if every else ', '.join(plain)} speaks plain "
            f"HTTP to the TLS apiserver, so it always fails and HAProxy sends to "
            f"{'no one' if every else 'the others only'}",
            "add check-ssl verify none to the servers (or default-server)")


def lint_haproxy(text: str, where: str = "haproxy.cfg", more: list[tuple[str, str]] | None = None,
                 on: Where | None = None, apiserver_port: int = APISERVER_PORT) -> list[Finding]:
    """Findings on a haproxy.cfg (and on `more` files read after it, as HAProxy's further -f).
    Only frontends and backends that carry kube-apiserver traffic are judged; `on` says where
    the file runs, where that decides (None: the finding says its condition)."""
    sections = parse_haproxy_files([(where, text), *(more or [])])
    out: dict[tuple[str, str], Finding] = {}

    def add(code: str, level: Level, sec: HSection, line: int, message: str, fix: str) -> None:
        found = Finding(code, level, message, fix, sec.where(line))
        out.setdefault((code, found.where), found)  # a defaults line inherited by many: one finding

    apiservers = [s for s in sections if s.kind in ("backend", "listen") and is_apiserver_backend(s, apiserver_port)]
    for fe in (s for s in sections if s.kind in ("frontend", "listen")):
        for be in backends_used(fe, sections):
            if be in apiservers:
                _lint_pair(fe, be, add, on, apiserver_port)
    for be in apiservers:
        _lint_backend(be, add)
    findings = list(out.values())
    if not apiservers:
        if any(s.servers() for s in sections):
            findings.append(Finding(
                "H200", "info", f"no backend sends to port {apiserver_port} or checks /readyz: nothing here is "
                "judged as a kube-apiserver load balancer", "", where))
        return findings
    if not any("level" in t and "admin" in t for s in sections if s.kind == "global"
               for _, t in s.directives("stats", "socket")):
        glob = next((s for s in sections if s.kind == "global"), None)
        findings.append(Finding("H207", "warning",
                                "no stats socket at level admin: the monitor cannot read backend health or drain a server",
                                "add 'stats socket /run/haproxy/admin.sock mode 660 level admin' to global",
                                glob.where(glob.line) if glob else where))
    return findings


def lint_configs(keepalived: str | None, haproxy: str | None, check_script: str | None = None,
                 keepalived_name: str = "keepalived.conf", haproxy_name: str = "haproxy.cfg",
                 keepalived_files: Mapping[str, str] | None = None, on: Where | None = None,
                 apiserver_port: int = APISERVER_PORT) -> list[Finding]:
    out: list[Finding] = []
    if keepalived is not None:
        out += lint_keepalived(keepalived, check_script, keepalived_name, keepalived_files)
    if haproxy is not None:
        out += lint_haproxy(haproxy, haproxy_name, on=on, apiserver_port=apiserver_port)
    return out

