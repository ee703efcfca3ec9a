"""What deploy and rollback do on one master, and how they read its answers.

Talking to the node (probe, stage, validate, commit, verify) is kept apart from understanding
what it said (`parse_probe`, `parse_files`, `verify_failure`: pure, unit-tested with garbage).
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from k8s_ha_tui.errors import Refused, UserError
from k8s_ha_tui.model.topology import Master, Topology
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import apiserver, roles
from k8s_ha_tui.remote.answers import flag_file
from k8s_ha_tui.remote.ssh import NodeConnection

NEW_SUFFIX = ".k8s-ha-tui-new"
PACKAGES = {"keepalived": "/usr/sbin/keepalived", "haproxy": "/usr/sbin/haproxy", "curl": "/usr/bin/curl"}
# What deploy installs: the system-service files (static pod manifests are for `render` users).
DEPLOYED = (PATHS.keepalived_conf, PATHS.check_script, PATHS.notify_script, PATHS.haproxy_cfg)
SERVICE_FILES = {
    "haproxy": (PATHS.haproxy_cfg,),
    "keepalived": (PATHS.keepalived_conf, PATHS.check_script, PATHS.notify_script),
}
VERIFY_TIMEOUT = 30.0
COMMIT_TIMEOUT = 90.0  # a restore may first wait for an interrupted transaction to finish
TEST_HOLD = f"{PATHS.state_dir}/test-hold"  # tests only: see commit_script

# What a node's report can say (every one of them true when printed).
UNCHANGED = "unchanged"
DEPLOYED_OK = "deployed"  # and verified
INSTALLING = "unreachable, state unknown"  # the transaction was sent; whether it ran is unknown
INSTALLED = "installed, not verified"
RESTORED = "restored from backup"


class DeployError(UserError):
    """The rollout stopped; the message says on which node and why."""

    def __init__(self, message: str):
        super().__init__(message, code=1)


Log = Callable[[str], None]


@dataclass
class FileChange:
    path: str
    old: str | None  # None: the file does not exist yet
    new: str | None  # None: the file is to be removed (rollback to a state without it)
    mode: int

    @property
    def changed(self) -> bool:
        return self.old != self.new

    def reversed(self) -> FileChange:
        return FileChange(self.path, self.new, self.old, self.mode)


@dataclass
class NodeState:
    """What was found on a master before anything changed."""

    holds_vip: bool
    active: dict[str, bool]
    haproxy_version: str | None
    keepalived_version: str | None
    missing: list[str]
    maintenance: bool = False
    uid: str = "0"
    apiserver: str = apiserver.UNKNOWN  # its own kube-apiserver: up / down / not installed
    kubeadm_version: str | None = None  # `kubeadm version -o short`, where kubeadm is installed


@dataclass
class NodePlan:
    conn: NodeConnection
    state: NodeState
    changes: list[FileChange] = field(default_factory=list)
    stage: str | None = None
    backup: str | None = None
    result: str = UNCHANGED
    note: str = ""
    seconds: float = 0.0
    # A cut-over (clusters/adopt.py): the holder's own keepalived.conf, loaded after the owner variant; and
    # whether a master put in maintenance for it goes back into the election at the end.
    final_keepalived: str | None = None
    release: bool = False
    keep_stopped: bool = False  # kept out of the election by a stopped keepalived until released

    @property
    def name(self) -> str:
        return self.conn.name

    @property
    def changed(self) -> list[FileChange]:
        return [c for c in self.changes if c.changed]

    def services_touched(self) -> list[str]:
        paths = {c.path for c in self.changed}
        return [s for s, files in SERVICE_FILES.items() if paths & set(files)]


def configured_after(changes: list[FileChange], service: str) -> bool:
    """Whether the service's main config exists once the changes are in (a rollback to the time
    before the first deploy removes it)."""
    main = SERVICE_FILES[service][0]
    change = next((c for c in changes if c.path == main), None)
    return change.new is not None if change else True


# --- looking at a node -----------------------------------------------------------------------

def _version(text: str) -> str | None:
    m = re.search(r"(?:HAProxy|Keepalived) v?(?:ersion )?(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


def probe_script(topo: Topology, master: Master) -> str:
    return "; ".join([
        *(f"[ -x {path} ] || echo MISSING {pkg}" for pkg, path in PACKAGES.items()),
        "echo UID $(id -u)",
        f"{PACKAGES['haproxy']} -v 2>&1 | head -n 1 | sed 's/^/VERSION /'",
        f"{PACKAGES['keepalived']} -v 2>&1 | head -n 1 | sed 's/^/VERSION /'",
        *(f"echo ACTIVE {s} $(systemctl is-active {s} 2>/dev/null)" for s in SERVICE_FILES),
        f"echo MAINT $(head -c 64 {PATHS.maintenance_file} 2>/dev/null | head -n 1)",
        "ip -o addr show | awk '{print \"ADDR\", $4}'",  # both families: the VIP may be IPv6
        apiserver.probe(master.address, topo.apiserver_port),
        "echo KUBEADM $(kubeadm version -o short 2>/dev/null | head -n 1)",
        "true",
    ])


def parse_probe(out: str, vip: str) -> NodeState:
    """The probe's answer (garbage gives an empty state: nothing missing, nothing active)."""
    missing, active, versions, holds, maint, uid, kubeadm = [], {}, [], False, False, "?", None
    for line in out.splitlines():
        word, _, rest = line.partition(" ")
        if word == "MISSING":
            missing.append(rest.strip())
        elif word == "VERSION":
            versions.append(rest)
        elif word == "ACTIVE":
            svc, _, state = rest.partition(" ")
            active[svc] = state.strip() == "active"
        elif word == "ADDR" and rest.split("/")[0] == vip:
            holds = True
        elif word == "MAINT":
            maint = flag_file(rest) != 0
        elif word == "UID":
            uid = rest.strip()
        elif word == "KUBEADM" and re.fullmatch(r"v?\d+\.\d+[\w.+-]*", rest.strip()):
            kubeadm = rest.strip()
    hv = next((_version(v) for v in versions if "HAProxy" in v), None)
    kv = next((_version(v) for v in versions if "Keepalived" in v), None)
    return NodeState(holds, active, hv, kv, missing, maint, uid, apiserver.presence(out), kubeadm)


def _require_root(name: str, uid: str, topo: Topology) -> None:
    """Deploy and rollback need the deploy role: root, or sudo for everything (exit 3, nothing
    changed, before the lock)."""
    if uid == "0":
        return
    if topo.ssh.become == "sudo":
        raise Refused(f"{name}: deploy needs the deploy role (root, or sudo for everything): {topo.ssh.user}'s "
                      "sudo there runs only what a role grants it; nothing was changed")
    raise Refused(f"{name}: commands run as {topo.ssh.user}, not root; set ssh.become: sudo (with passwordless "
                  "sudo) or log in as root: deploy needs the deploy role; nothing was changed")


async def require_root(conn: NodeConnection, topo: Topology) -> None:
    """Before anything is written on the node, the cluster lock included."""
    _require_root(conn.name, str((await conn.run("id -u", check=False)).stdout or "").strip(), topo)


async def probe(conn: NodeConnection, topo: Topology) -> NodeState:
    """One round trip: packages, versions, service states, maintenance, and the VIP."""
    state = parse_probe(str((await conn.run(probe_script(topo, topo.master(conn.name)))).stdout or ""), topo.vip)
    _require_root(conn.name, state.uid, topo)
    return state


async def ensure_packages(plan: NodePlan, topo: Topology, allow_install: bool, log: Log) -> None:
    missing = plan.state.missing
    if not missing:
        return
    if not allow_install:
        raise DeployError(f"{plan.name}: {', '.join(missing)} not installed (and --no-install was given)")
    log(f"{plan.name}: installing {' '.join(missing)}")
    await plan.conn.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q " + " ".join(missing), timeout=600)
    plan.state = await probe(plan.conn, topo)


# --- staging and validation -------------------------------------------------------------------

async def stage(plan: NodePlan, stamp: str) -> None:
    """Upload the new files into a staging tree (root-only) that mirrors their final paths."""
    plan.stage = f"{PATHS.staging}/{stamp}"
    # The roles' groups first: the new haproxy.cfg names them, and its check needs them. The
    # track files and the shared folders readable by the watch role (keepalived makes a track
    # file it creates root-only).
    flags = " && ".join(f"{{ [ -e {f} ] || echo 0 > {f}; }} && chmod 644 {f}"
                        for f in (PATHS.maintenance_file, PATHS.boost_file))
    await plan.conn.run(f"umask 022; {roles.ENSURE_GROUPS} && {roles.shared_dir(PATHS.state_dir)} && "
                        f"{roles.shared_dir(str(Path(PATHS.audit_log).parent))} && "
                        f"mkdir -p {Path(PATHS.maintenance_file).parent} && {flags}", label="the roles' groups and folders")
    for c in plan.changes:
        if c.new is None:
            continue
        target = f"{plan.stage}{c.path}"
        await plan.conn.run(
            f"umask 077; mkdir -p {shlex.quote(str(Path(target).parent))} && "
            f"chmod 755 {shlex.quote(plan.stage)} {shlex.quote(str(Path(target).parent))} && "
            f"cat > {shlex.quote(target)} && chmod {c.mode:o} {shlex.quote(target)} && "
            f"chown root:root {shlex.quote(target)}",
            input=c.new)  # secrets travel on stdin, never on a command line


async def validate(plan: NodePlan) -> None:
    """The node's own checkers on the staged files, as they will be seen once in place.

    keepalived checks the scripts it names at their final paths, so it runs in a private
    mount namespace with the staged folder bind-mounted on /etc/keepalived."""
    s = plan.stage
    has_keepalived = any(c.path == PATHS.keepalived_conf and c.new is not None for c in plan.changes)
    has_haproxy = any(c.path == PATHS.haproxy_cfg and c.new is not None for c in plan.changes)
    if has_keepalived:
        check = f"exec keepalived -t -l -f {PATHS.keepalived_conf}"
        res = await plan.conn.run(
            f"unshare --mount --propagation private sh -c "
            f"{shlex.quote(f'mount --bind {s}/etc/keepalived /etc/keepalived && {check}')}"
            " 2>&1", check=False)
        if res.exit_status != 0:
            raise DeployError(f"{plan.name}: keepalived -t refused the new keepalived.conf: {_last_line(res.stdout)}")
    if has_haproxy:
        res = await plan.conn.run(f"haproxy -c -q -f {s}{PATHS.haproxy_cfg} 2>&1", check=False)
        if res.exit_status != 0:
            raise DeployError(f"{plan.name}: haproxy -c refused the new haproxy.cfg: {_last_line(res.stdout)}")


def _last_line(text) -> str:
    lines = [ln for ln in str(text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"


async def clean_stage(plan: NodePlan) -> None:
    if plan.stage:
        await plan.conn.run(f"rm -rf {shlex.quote(plan.stage)}", check=False, timeout=10)


# --- the diff -----------------------------------------------------------------------------------

_SECRET = re.compile(r"(auth_pass\s+)\S+")


def masked(text: str) -> str:
    return _SECRET.sub(r"\1********", text)


def diff_text(plan: NodePlan) -> str:
    out: list[str] = []
    for c in plan.changed:
        old = masked(c.old).splitlines(keepends=True) if c.old is not None else []
        new = masked(c.new).splitlines(keepends=True) if c.new is not None else []
        out += difflib.unified_diff(old, new, f"{plan.name}:{c.path} (live)", f"{plan.name}:{c.path} (new)")
        if old != new and c.old is not None and c.new is not None and masked(c.old) == masked(c.new):
            out.append(f"~~~ {plan.name}:{c.path}: auth_pass changes (not shown)\n")
    return "".join(out)


# --- making it live -------------------------------------------------------------------------------

# HAProxy's reload (USR2 to its master) returns before the master has re-executed; a second
# reload in that window was seen lost in the lab (a restore right after an interrupted deploy
# left HAProxy on the new config). So a reload is done when a new worker exists.
_RELOAD_HAPROXY = r"""children() { pgrep -P "$1" 2>/dev/null | tr '\n' ' '; }
reload_haproxy() {
  m=$(systemctl show haproxy 2>/dev/null 9>&- | sed -n 's/^MainPID=//p'); old=" $(children "$m")"
  out=$(systemctl reload haproxy 2>&1 9>&-) || fail reload haproxy: $out
  [ -n "$m" ] && [ "$m" != 0 ] || return 0
  i=0; while [ $i -lt 200 ]; do
    for p in $(children "$m"); do case "$old" in *" $p "*) ;; *) return 0 ;; esac; done
    sleep 0.05; i=$((i+1))
  done
  fail reload haproxy: no new worker within 10 s
}"""


def commit_script(changes: list[FileChange], source: str | None, services: dict[str, bool],
                  hold: bool = False) -> str:
    """One node-side transaction: every file in place and every daemon told, or no file changed.

    It ignores hangups and a closed pipe (and the daemons' output goes through the shell, never
    to the client), so a client that goes away (Ctrl-C, a lost link) cannot stop it between two
    files or between the files and the reload. It holds
    PATHS.transaction_lock, so a restore sent after an interruption waits until it is done.
    `services` says, per service touched, whether it should run afterwards (reload or start)
    or be stopped. `hold` (tests only) pauses between the first and second file while
    TEST_HOLD exists on the node, so a test can interrupt exactly there."""
    lines = ["trap '' HUP PIPE", f"mkdir -p {PATHS.state_dir}", f"exec 9>{PATHS.transaction_lock}",
             "flock 9", "fail() { echo \"FAILED $*\"; exit 1; }", _RELOAD_HAPROXY]
    staged = []
    for c in changes:
        if c.new is not None:
            p, src = shlex.quote(c.path), shlex.quote(f"{source}{c.path}")
            staged.append(f"{p}{NEW_SUFFIX}")
            lines.append(f"mkdir -p {shlex.quote(str(Path(c.path).parent))} && install -m {c.mode:o} -o root "
                         f"-g root {src} {p}{NEW_SUFFIX} || {{ rm -f {' '.join(staged)}; fail install {p}; }}")
    swaps = [f"mv -f {shlex.quote(c.path)}{NEW_SUFFIX} {shlex.quote(c.path)}" if c.new is not None
             else f"rm -f {shlex.quote(c.path)}" for c in changes]
    for i, swap in enumerate(swaps):
        lines.append(swap)
        if hold and i == 0 and len(swaps) > 1:
            lines.append(f"if [ -e {TEST_HOLD} ]; then : > {TEST_HOLD}.reached; i=0; "
                         f"while [ -e {TEST_HOLD} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; fi")
    for svc, run in services.items():
        if not run:
            lines.append(f"out=$(systemctl stop {svc} 2>&1 9>&-) || fail stop {svc}: $out")
            continue
        # 9>&-: a daemon started from here must not inherit (and so hold forever) the flock.
        reload = ("reload_haproxy" if svc == "haproxy" else
                  f"out=$(systemctl reload {svc} 2>&1 9>&-) || fail reload {svc}: $out")
        lines.append(f"systemctl enable {svc} >/dev/null 2>&1 9>&-; if systemctl is-active --quiet {svc}; then "
                     f"{reload}; "
                     f"else out=$(systemctl start {svc} 2>&1 9>&-) || fail start {svc}: $out; fi")
    lines.append("echo COMMITTED")
    return "\n".join(lines) + "\n"


async def commit(plan: NodePlan, changes: list[FileChange], source: str | None, services: dict[str, bool],
                 hold: bool = False) -> None:
    res = await plan.conn.run(f"sh -c {shlex.quote(commit_script(changes, source, services, hold))}",
                              check=False, timeout=COMMIT_TIMEOUT, label="the file swap")
    out = str(res.stdout or "")
    if "COMMITTED" not in out:
        failure = next((ln[7:] for ln in out.splitlines() if ln.startswith("FAILED ")), None)
        raise DeployError(f"{plan.name}: the file swap did not complete: "
                          f"{failure or _last_line(res.stderr) or f'exit {res.exit_status}'}")
