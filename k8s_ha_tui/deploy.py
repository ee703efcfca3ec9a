"""Make rendered configs live on every master, the way a careful operator would.

Per master: connect (host keys checked) → make sure the packages are there → upload to a
staging folder → validate there with the node's own `keepalived -t` and `haproxy -c` → show
the diff → back up → move into place atomically → reload → verify. Masters that do not hold
the VIP go first, the holder last, each verified before the next. A failed verification
restores the backup, reloads, verifies again and stops the rollout.
"""

from __future__ import annotations

import asyncio
import difflib
import re
import shlex
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Awaitable, Callable

from . import render
from .collector.ssh import HostKeyPolicy, NodeConnection, connect_all
from .confparse import parse_keepalived, vrrp_version
from .errors import UserError
from .render import PATHS
from .topology import Master, Topology

STAGING = "/run/k8s-ha-tui/staging"  # root-only, and gone after a reboot
BACKUPS = "/var/backups/k8s-ha-tui"
MANIFEST = "MANIFEST"
NEW_SUFFIX = ".k8s-ha-tui-new"
PACKAGES = {"keepalived": "/usr/sbin/keepalived", "haproxy": "/usr/sbin/haproxy", "curl": "/usr/bin/curl"}
# What deploy installs: the system-service files (static pod manifests are for `render` users).
DEPLOYED = (PATHS.keepalived_conf, PATHS.check_script, PATHS.notify_script, PATHS.haproxy_cfg)
SERVICE_FILES = {
    "haproxy": (PATHS.haproxy_cfg,),
    "keepalived": (PATHS.keepalived_conf, PATHS.check_script, PATHS.notify_script),
}
VERIFY_TIMEOUT = 30.0


class DeployError(UserError):
    """The rollout stopped; the message says on which node and why. `plans` (when known) says
    what happened on every node, for the summary."""

    def __init__(self, message: str, plans: list | None = None):
        super().__init__(message, code=1)
        self.plans = plans or []


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


@dataclass
class NodeState:
    """What was found on a master before anything changed."""

    holds_vip: bool
    active: dict[str, bool]
    haproxy_version: str | None
    keepalived_version: str | None
    missing: list[str]


@dataclass
class NodePlan:
    conn: NodeConnection
    state: NodeState
    changes: list[FileChange] = field(default_factory=list)
    stage: str | None = None
    backup: str | None = None
    result: str = "pending"
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return self.conn.name

    @property
    def changed(self) -> list[FileChange]:
        return [c for c in self.changes if c.changed]

    def services_touched(self) -> list[str]:
        paths = {c.path for c in self.changed}
        return [s for s, files in SERVICE_FILES.items() if paths & set(files)]

    def configured_after(self, service: str) -> bool:
        """Whether the service's main config exists once the changes are in (a rollback to
        the time before the first deploy removes it)."""
        main = SERVICE_FILES[service][0]
        change = next((c for c in self.changes if c.path == main), None)
        return change.new is not None if change else True


# --- looking at a node -----------------------------------------------------------------------

def _version(text: str) -> str | None:
    m = re.search(r"(?:HAProxy|Keepalived) v?(?:ersion )?(\d+\.\d+(?:\.\d+)?)", text)
    return m.group(1) if m else None


async def probe(conn: NodeConnection, topo: Topology) -> NodeState:
    """One round trip: packages, versions, service states and whether the node holds the VIP."""
    script = "; ".join([
        *(f"[ -x {path} ] || echo MISSING {pkg}" for pkg, path in PACKAGES.items()),
        "echo UID $(id -u)",
        f"{PACKAGES['haproxy']} -v 2>&1 | head -n 1 | sed 's/^/VERSION /'",
        f"{PACKAGES['keepalived']} -v 2>&1 | head -n 1 | sed 's/^/VERSION /'",
        *(f"echo ACTIVE {s} $(systemctl is-active {s} 2>/dev/null)" for s in SERVICE_FILES),
        "ip -o -4 addr show | awk '{print \"ADDR\", $4}'",
        "true",
    ])
    out = (await conn.run(script)).stdout or ""
    missing, active, versions, holds = [], {}, [], False
    for line in str(out).splitlines():
        word, _, rest = line.partition(" ")
        if word == "MISSING":
            missing.append(rest.strip())
        elif word == "VERSION":
            versions.append(rest)
        elif word == "ACTIVE":
            svc, _, state = rest.partition(" ")
            active[svc] = state.strip() == "active"
        elif word == "ADDR" and rest.split("/")[0] == topo.vip:
            holds = True
        elif word == "UID" and rest.strip() != "0":
            raise DeployError(f"{conn.name}: commands run as {topo.ssh.user}, not root; "
                              "set ssh.become: sudo (with passwordless sudo) or log in as root")
    hv = next((_version(v) for v in versions if "HAProxy" in v), None)
    kv = next((_version(v) for v in versions if "Keepalived" in v), None)
    return NodeState(holds, active, hv, kv, missing)


async def ensure_packages(plan: NodePlan, topo: Topology, allow_install: bool, log: Log) -> None:
    missing = plan.state.missing
    if not missing:
        return
    if not allow_install:
        raise DeployError(f"{plan.name}: {', '.join(missing)} not installed (and --no-install was given)")
    log(f"{plan.name}: installing {' '.join(missing)}")
    await plan.conn.run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q " + " ".join(missing), timeout=600)
    plan.state = await probe(plan.conn, topo)


async def read_files(conn: NodeConnection, paths: list[str]) -> dict[str, str | None]:
    """Current contents (None where a file does not exist), in one round trip."""
    marker = "@@k8s-ha-tui-file@@"
    script = "; ".join(f"echo '{marker} {p}'; if [ -f {shlex.quote(p)} ]; then echo PRESENT; cat {shlex.quote(p)}; "
                       f"else echo ABSENT; fi" for p in paths)
    out = str((await conn.run(script)).stdout or "")
    result: dict[str, str | None] = {}
    for chunk in out.split(f"{marker} ")[1:]:
        path, _, rest = chunk.partition("\n")
        flag, _, body = rest.partition("\n")
        result[path] = body if flag == "PRESENT" else None
    return result


# --- staging and validation -------------------------------------------------------------------

async def stage(plan: NodePlan, stamp: str) -> None:
    """Upload the new files into a staging tree (root-only) that mirrors their final paths."""
    plan.stage = f"{STAGING}/{stamp}"
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
        res = await plan.conn.run(
            f"unshare --mount --propagation private sh -c "
            f"{shlex.quote(f'mount --bind {s}/etc/keepalived /etc/keepalived && exec keepalived -t -l -f {PATHS.keepalived_conf}')}"
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
        await plan.conn.run(f"rm -rf {shlex.quote(plan.stage)}", check=False)


# --- the diff -----------------------------------------------------------------------------------

_SECRET = re.compile(r"(auth_pass\s+)\S+")


def masked(text: str) -> str:
    return _SECRET.sub(r"\1********", text)


def diff_text(plan: NodePlan) -> str:
    out = []
    for c in plan.changed:
        old = masked(c.old).splitlines(keepends=True) if c.old is not None else []
        new = masked(c.new).splitlines(keepends=True) if c.new is not None else []
        out += difflib.unified_diff(old, new, f"{plan.name}:{c.path} (live)", f"{plan.name}:{c.path} (new)")
        if old != new and c.old is not None and c.new is not None and masked(c.old) == masked(c.new):
            out.append(f"~~~ {plan.name}:{c.path}: auth_pass changes (not shown)\n")
    return "".join(out)


# --- making it live -------------------------------------------------------------------------------

async def backup(plan: NodePlan, stamp: str) -> None:
    """Copy every managed file as it is now, and note which ones do not exist, for rollback."""
    plan.backup = f"{BACKUPS}/{stamp}"
    b = shlex.quote(plan.backup)
    lines = []
    for c in plan.changes:
        lines.append(f"{'present' if c.old is not None else 'absent'} {c.path}")
    present = " ".join(shlex.quote(c.path) for c in plan.changes if c.old is not None)
    copy = f"(cd / && cp -a --parents {present} {b}/) && " if present else ""
    await plan.conn.run(f"umask 077; mkdir -p {b} && chmod 700 {shlex.quote(BACKUPS)} {b} && {copy}"
                        f"cat > {b}/{MANIFEST}", input="\n".join(lines) + "\n")


async def install(plan: NodePlan, changes: list[FileChange], source: str | None) -> None:
    """Each file moved into place atomically (install to a sibling, then rename)."""
    cmds = []
    for c in changes:
        p = shlex.quote(c.path)
        if c.new is None:
            cmds.append(f"rm -f {p}")
        else:
            src = shlex.quote(f"{source}{c.path}")
            cmds.append(f"mkdir -p {shlex.quote(str(Path(c.path).parent))} && "
                        f"install -m {c.mode:o} -o root -g root {src} {p}{NEW_SUFFIX} && mv -f {p}{NEW_SUFFIX} {p}")
    if cmds:
        await plan.conn.run(" && ".join(cmds))


async def activate(plan: NodePlan, services: list[str], wanted_active: dict[str, bool] | None = None) -> None:
    """Reload what runs (HAProxy hands its sockets over: no dropped connections), start what does
    not; stop a service that is left without its config, or (`wanted_active`, when restoring a
    backup) that was not running before."""
    for svc in services:
        keep = plan.configured_after(svc) if wanted_active is None else wanted_active.get(svc, False)
        if not keep:
            await plan.conn.run(f"systemctl stop {svc}", check=False)
            continue
        await plan.conn.run(f"systemctl enable {svc} >/dev/null 2>&1; "
                            f"if systemctl is-active --quiet {svc}; then systemctl reload {svc}; "
                            f"else systemctl start {svc}; fi")


def settle_seconds(topo: Topology) -> float:
    """How long every check must keep passing before a node counts as verified: long enough for
    HAProxy to mark a bad backend down (interval × fall) — right after a reload the old worker
    may still answer for the new one."""
    return topo.check.interval * topo.check.fall + 1.0


async def verify(plan: NodePlan, topo: Topology, timeout: float) -> None:
    """Services active, this node's HAProxy serves /readyz, VRRP settled, the API answers through
    the VIP — all of it without a break for settle_seconds. Polled until the deadline; the last
    failing check is the reason."""
    fe = topo.frontend_port
    script = "; ".join([
        "echo ACTIVE $(systemctl is-active haproxy) $(systemctl is-active keepalived)",
        f"echo LOCAL $(curl -sk --max-time 2 -o /dev/null -w '%{{http_code}}' https://127.0.0.1:{fe}/readyz)",
        f"echo VRRP $(cut -d' ' -f4 {PATHS.state_file} 2>/dev/null)",
        f"echo VIP $(curl -sk --max-time 2 -o /dev/null -w '%{{http_code}}' https://{topo.vip}:{fe}/readyz)",
    ])
    deadline = time.monotonic() + max(timeout, settle_seconds(topo) + 1)
    reason = "not checked"
    passing_since: float | None = None
    while True:
        out = str((await plan.conn.run(script, check=False)).stdout or "")
        facts = {line.split(" ", 1)[0]: line.split(" ", 1)[1].strip() for line in out.splitlines() if " " in line}
        if facts.get("ACTIVE") != "active active":
            reason = f"services: haproxy/keepalived are {facts.get('ACTIVE', '?')}"
        elif facts.get("LOCAL") != "200":
            reason = f"this node's HAProxy does not serve /readyz (HTTP {facts.get('LOCAL', '?')})"
        elif facts.get("VRRP") not in ("MASTER", "BACKUP"):
            reason = f"VRRP state is {facts.get('VRRP') or 'unknown'}"
        elif facts.get("VIP") != "200":
            reason = f"the API does not answer through the VIP {topo.vip}:{fe} (HTTP {facts.get('VIP', '?')})"
        else:
            passing_since = passing_since or time.monotonic()
            if time.monotonic() - passing_since >= settle_seconds(topo):
                return
            reason = "it did not keep passing"
            await asyncio.sleep(0.5)
            continue
        passing_since = None
        if time.monotonic() >= deadline:
            raise DeployError(f"{plan.name}: verification failed after {timeout:g} s: {reason}")
        await asyncio.sleep(0.5)


# --- the rollout ------------------------------------------------------------------------------------

@dataclass
class Options:
    dry_run: bool = False
    allow_install: bool = True
    verify_timeout: float = VERIFY_TIMEOUT
    template_dir: Path | None = None


def rollout_order(plans: list[NodePlan]) -> list[NodePlan]:
    """Masters without the VIP first (in topology order), the holder(s) last."""
    return sorted(plans, key=lambda p: p.state.holds_vip)


def now_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


async def prepare(topo: Topology, policy: HostKeyPolicy, options: Options, log: Log,
                  desired: Callable[[NodePlan, Master], Awaitable[list[FileChange]]]) -> list[NodePlan]:
    """Connect, probe and plan every master in parallel; nothing on a node changes here."""
    conns = await connect_all(topo, topo.masters, policy)
    try:
        states = await asyncio.gather(*(probe(c, topo) for c in conns))
        plans = [NodePlan(c, s) for c, s in zip(conns, states)]
        for p in plans:
            log(f"{p.name}: connected; HAProxy {p.state.haproxy_version or '-'}, "
                f"keepalived {p.state.keepalived_version or '-'}{'; holds the VIP' if p.state.holds_vip else ''}")
        for p in plans:
            await ensure_packages(p, topo, options.allow_install, log)
        for p, m in zip(plans, topo.masters):
            p.changes = await desired(p, m)
        return plans
    except BaseException:
        for c in conns:
            c.close()
        raise


async def stage_and_validate(plans: list[NodePlan], stamp: str, log: Log) -> None:
    async def one(p: NodePlan) -> None:
        if not p.changed:
            return
        await stage(p, stamp)
        await validate(p)
        log(f"{p.name}: new files validated on the node ({len(p.changed)} changed)")

    results = await asyncio.gather(*(one(p) for p in plans), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        await asyncio.gather(*(clean_stage(p) for p in plans))
        raise errors[0]


async def apply_node(p: NodePlan, topo: Topology, stamp: str, options: Options, log: Log) -> None:
    started = time.monotonic()
    if not p.changed:
        p.result = "unchanged"
        log(f"{p.name}: no change")
        return
    services = p.services_touched()
    await backup(p, stamp)
    await install(p, p.changed, p.stage)
    await activate(p, services)
    log(f"{p.name}: installed {len(p.changed)} file(s), backup in {p.backup}; {', '.join(services)} reloaded; verifying")
    try:
        if all(p.configured_after(s) for s in SERVICE_FILES):
            await verify(p, topo, options.verify_timeout)
    except DeployError as failure:
        log(f"{failure}; restoring the backup")
        restore = [FileChange(c.path, c.new, c.old, c.mode) for c in p.changed]
        await install(p, restore, p.backup)
        await activate(p, services, wanted_active=p.state.active)
        if all(p.state.active.get(s) for s in ("haproxy", "keepalived")):
            await verify(p, topo, options.verify_timeout)
        p.result = "rolled back"
        p.seconds = time.monotonic() - started
        raise DeployError(f"rollout stopped: {failure} (the node was restored from {p.backup})") from None
    p.result = "deployed"
    p.seconds = time.monotonic() - started
    log(f"{p.name}: verified in {p.seconds:.1f} s")


def vrrp_version_of(keepalived_conf: str | None) -> int | None:
    return None if keepalived_conf is None else vrrp_version(parse_keepalived(keepalived_conf))


def version_change_warning(plans: list[NodePlan]) -> str | None:
    """Masters on VRRP v2 and v3 ignore each other's adverts: during such a rollout two of them
    hold the VIP for a while (seen in the lab). Say so before anyone confirms."""
    for p in plans:
        for c in p.changed:
            old, new = vrrp_version_of(c.old), vrrp_version_of(c.new)
            if c.path == PATHS.keepalived_conf and old and new and old != new:
                return (f"warning: VRRP version {old} → {new}: masters on different versions do not hear "
                        "each other, so until the last one is done two may hold the VIP (the API still "
                        "answers through either: every HAProxy reaches every apiserver)")
    return None


async def run_rollout(topo: Topology, plans: list[NodePlan], stamp: str, options: Options,
                      confirm: Callable[[list[NodePlan]], bool], log: Log) -> list[NodePlan]:
    try:
        await stage_and_validate(plans, stamp, log)
        warning = version_change_warning(plans)
        if warning:
            log(warning)
        if options.dry_run or not any(p.changed for p in plans):
            for p in plans:
                p.result = "would change" if p.changed else "unchanged"
            return plans
        if not confirm(plans):
            for p in plans:
                p.result = "skipped"
            raise DeployError("nothing was changed (not confirmed)")
        for p in rollout_order(plans):
            await apply_node(p, topo, stamp, options, log)
        return plans
    except DeployError as exc:
        exc.plans = plans
        raise
    finally:
        for p in plans:
            await clean_stage(p)
            p.conn.close()


async def deploy(topo: Topology, policy: HostKeyPolicy, options: Options,
                 confirm: Callable[[list[NodePlan]], bool], log: Log) -> list[NodePlan]:
    async def desired(plan: NodePlan, master: Master) -> list[FileChange]:
        files = {f.path: f for f in render.render_node(topo, master, plan.state.haproxy_version,
                                                       options.template_dir) if f.path in DEPLOYED}
        live = await read_files(plan.conn, list(files))
        return [FileChange(path, live[path], f.text, f.mode) for path, f in files.items()]

    plans = await prepare(topo, policy, options, log, desired)
    return await run_rollout(topo, plans, now_stamp(), options, confirm, log)


async def list_backups(conn: NodeConnection) -> list[str]:
    out = await conn.run(f"ls -1 {BACKUPS} 2>/dev/null || true")
    return sorted(x for x in str(out.stdout or "").split() if re.fullmatch(r"\d{8}T\d{6}Z", x))


async def rollback(topo: Topology, policy: HostKeyPolicy, options: Options, to: str | None,
                   confirm: Callable[[list[NodePlan]], bool], log: Log) -> list[NodePlan]:
    """Put a backup back the same careful way (validated, itself backed up, rolling, verified)."""
    async def desired(plan: NodePlan, master: Master) -> list[FileChange]:
        stamps = await list_backups(plan.conn)
        chosen = to or (stamps[-1] if stamps else None)
        if chosen is None or chosen not in stamps:
            raise DeployError(f"{plan.name}: no backup {to or ''} in {BACKUPS}".replace("  ", " "))
        base = f"{BACKUPS}/{chosen}"
        manifest = (await read_files(plan.conn, [f"{base}/{MANIFEST}"]))[f"{base}/{MANIFEST}"] or ""
        entries = [line.split(" ", 1) for line in manifest.splitlines() if " " in line]
        saved = await read_files(plan.conn, [f"{base}{path}" for kind, path in entries if kind == "present"])
        live = await read_files(plan.conn, [path for _, path in entries])
        modes = {f.path: f.mode for f in render.render_node(topo, master)}
        log(f"{plan.name}: restoring backup {chosen}")
        return [FileChange(path, live[path], saved.get(f"{base}{path}") if kind == "present" else None,
                           modes.get(path, 0o644)) for kind, path in entries]

    plans = await prepare(topo, policy, options, log, desired)
    return await run_rollout(topo, plans, now_stamp(), options, confirm, log)


def summary_rows(plans: list[NodePlan]) -> list[tuple[str, str, str, str, str]]:
    return [(p.name, p.result, ", ".join(Path(c.path).name for c in p.changed) or "-",
             p.backup or "-", f"{p.seconds:.1f} s" if p.seconds else "-") for p in plans]

