"""What runs on a master, read over SSH for `discover` and `doctor`: the config files the
daemons were started with (keepalived's `include`s followed), what the running keepalived has
in force (its DATA dump), when HAProxy last loaded its config, the addresses, and who owns the
scripts keepalived runs.

As in status/poll.py, talking to the node is kept apart from understanding its answer:
`parse_facts` and the confparse helpers are pure and unit-tested with garbage.
"""

from __future__ import annotations

import asyncio
import posixpath
import shlex
from dataclasses import dataclass, field

from k8s_ha_tui.configs.confparse import include_matches, include_patterns, parse_keepalived
from k8s_ha_tui.configs.lint import NOTIFY_KEYWORDS, SYSTEM_BINARIES
from k8s_ha_tui.remote.answers import sections
from k8s_ha_tui.remote.haproxy import HAPROXY_LOADED
from k8s_ha_tui.remote.keepalived import KEEPALIVED_DUMP, KeepalivedData, running_keepalived
from k8s_ha_tui.remote.nodefiles import read_files
from k8s_ha_tui.remote.ssh import NodeConnection
from k8s_ha_tui.remote.vrrp_census import Census, listen
from k8s_ha_tui.status.vrrpview import VrrpView, file_views, from_running

KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
MAX_FILES = 64  # includes and conf.d files read from one node, at most
MAX_ROUNDS = 8  # include depth

def facts_script() -> str:
    return "; ".join([
        "echo @@hostname; hostname",
        "echo @@uid; id -u",
        "echo @@keepalived_cmd; [ -s /run/keepalived.pid ] && tr '\\0' '\\n' < /proc/$(cat /run/keepalived.pid)/cmdline",
        "echo @@haproxy_cmd; [ -s /run/haproxy.pid ] && tr '\\0' '\\n' < /proc/$(head -n 1 /run/haproxy.pid)/cmdline",
        f"echo @@haproxy_loaded; {HAPROXY_LOADED}",
        "echo @@addr; ip -o addr show",
        f"echo @@data; {KEEPALIVED_DUMP}",
        "true",
    ])


@dataclass
class Facts:
    """One probe's answer, understood."""

    hostname: str = ""
    uid: str = "?"
    keepalived_running: bool = False
    keepalived_conf: str = KEEPALIVED_CONF
    haproxy_running: bool = False
    haproxy_configs: list[str] = field(default_factory=lambda: [HAPROXY_CFG])
    haproxy_loaded_at: float | None = None
    addresses: list[tuple[str, str, int]] = field(default_factory=list)  # (interface, address, prefix)
    running: KeepalivedData = field(default_factory=KeepalivedData)


def _option_values(argv: list[str], short: str, long: str) -> list[str]:
    """Every value of `-f X`, `-fX`, `--long X` and `--long=X` in a command line."""
    out = []
    for i, word in enumerate(argv):
        if word in (short, long) and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif word.startswith(f"{long}="):
            out.append(word.split("=", 1)[1])
        elif word.startswith(short) and len(word) > len(short) and not word.startswith("--"):
            out.append(word[len(short):])
    return out


def parse_addresses(text: str) -> list[tuple[str, str, int]]:
    """`ip -o addr show` → (interface, address, prefix) for IPv4 and IPv6."""
    out = []
    for line in text.splitlines():
        words = line.split()
        for i, w in enumerate(words[:-1]):
            if w in ("inet", "inet6") and "/" in words[i + 1] and len(words) > 1:
                addr, _, prefix = words[i + 1].partition("/")
                if prefix.isdigit():
                    out.append((words[1].rstrip(":").split("@")[0], addr, int(prefix)))
    return out


def parse_facts(out: str) -> Facts:
    s = sections(out)
    kcmd = [w for w in s.get("keepalived_cmd", "").splitlines() if w]
    hcmd = [w for w in s.get("haproxy_cmd", "").splitlines() if w]
    loaded = s.get("haproxy_loaded", "").strip()
    return Facts(
        hostname=s.get("hostname", "").strip(),
        uid=s.get("uid", "?").strip(),
        keepalived_running=bool(kcmd),
        keepalived_conf=(_option_values(kcmd, "-f", "--use-file") or [KEEPALIVED_CONF])[-1],
        haproxy_running=bool(hcmd),
        haproxy_configs=_option_values(hcmd, "-f", "--config") or [HAPROXY_CFG],
        haproxy_loaded_at=float(loaded) if loaded.isdigit() else None,
        addresses=parse_addresses(s.get("addr", "")),
        running=running_keepalived(s.get("data", "")),
    )


@dataclass
class LiveNode:
    """Everything discover and doctor know about one master."""

    name: str
    address: str
    facts: Facts
    keepalived_files: dict[str, str]  # path → text, the main file and every include
    haproxy_files: list[tuple[str, str]]  # in the order HAProxy reads them
    mtimes: dict[str, float]
    scripts: dict[str, tuple[str, str] | None]  # script path → (owner, octal mode), None: missing
    script_texts: dict[str, str] = field(default_factory=dict)  # the ones that are text files
    # The daemons' own verdict on the files, run on the node: "haproxy" / "keepalived" →
    # (exit code of `haproxy -c` / `keepalived -t`, what they said); absent where not installed.
    verdicts: dict[str, tuple[int, str]] = field(default_factory=dict)

    @property
    def keepalived_text(self) -> str | None:
        return self.keepalived_files.get(self.facts.keepalived_conf)

    def keepalived_root(self):
        return parse_keepalived(self.keepalived_text or "", self.facts.keepalived_conf, self.keepalived_files)

    def vrrp_view(self, vip: str | None, first_if_none: bool = False) -> VrrpView | None:
        """The instance that carries `vip` as it runs (keepalived's dump) where keepalived runs,
        else as the files say it (there, with `first_if_none`, the first instance when none does)."""
        running = self.facts.running.instance_for(vip) if self.facts.keepalived_running else None
        if running is not None:
            return from_running(running)
        files = file_views(self.keepalived_root())
        return next((v for v in files if vip and v.has_vip(vip)), files[0] if files and first_if_none else None)


def _listing_script(folders: list[str]) -> str:
    return "; ".join(f"echo '@@{i}'; [ -d {shlex.quote(d)} ] && ls -1A -- {shlex.quote(d)}"
                     for i, d in enumerate(folders)) + "; true"


def _stat_script(paths: list[str]) -> str:
    return "; ".join(f"echo '@@{i}'; stat -L -c '%Y %U %a' -- {shlex.quote(p)} 2>/dev/null"
                     for i, p in enumerate(paths)) + "; true"


async def _list(conn: NodeConnection, folders: list[str]) -> dict[str, list[str]]:
    if not folders:
        return {}
    found = sections(str((await conn.run(_listing_script(folders))).stdout or ""))
    return {d: [posixpath.join(d, f) for f in found.get(str(i), "").splitlines() if f and "/" not in f]
            for i, d in enumerate(folders)}


async def _stat(conn: NodeConnection, paths: list[str]) -> dict[str, list[str] | None]:
    if not paths:
        return {}
    found = sections(str((await conn.run(_stat_script(paths))).stdout or ""))
    return {p: (found.get(str(i), "").split() or None) for i, p in enumerate(paths)}


async def keepalived_files(conn: NodeConnection, main: str, text: str | None = None) -> dict[str, str]:
    """The main file (or `text` standing for it: a config about to be installed) and, round by
    round, every file of the node's its includes match (bounded)."""
    files: dict[str, str] = {} if text is None else {main: text}
    todo = [main] if text is None else []
    patterns = include_patterns(text, main) if text is not None else []
    for _ in range(MAX_ROUNDS):
        if todo:
            wanted = [p for p in dict.fromkeys(todo) if p not in files][:MAX_FILES - len(files)]
            got = await read_files(conn, wanted)
            files.update({p: t for p, t in got.items() if t is not None})
            patterns = [pat for p in wanted if got.get(p) is not None for pat in include_patterns(got[p] or "", p)]
        if not patterns:
            break
        listed = await _list(conn, sorted({posixpath.dirname(pat) for pat in patterns}))
        todo = [f for pat in patterns
                for f in include_matches(pat, dict.fromkeys(listed.get(posixpath.dirname(pat), []), ""))]
        patterns = []
        if not todo:
            break
    return files


def script_paths(node_root) -> list[str]:
    """The programs keepalived runs: vrrp_script `script` and notify* lines (first word)."""
    out = []
    for block in node_root.all("vrrp_script"):
        cmd = block.first("script")
        if cmd and cmd.args:
            out.append(cmd.args[0].split()[0])
    for inst in node_root.all("vrrp_instance"):
        for key in NOTIFY_KEYWORDS:
            cmd = inst.first(key)
            if cmd and cmd.args:
                out.append(cmd.args[0].split()[0])
    return [p for p in dict.fromkeys(out) if p.startswith("/")]


async def read_facts(conn: NodeConnection) -> LiveNode:
    """The facts alone (a worker: its hostname is what discover needs)."""
    facts = parse_facts(str((await conn.run(facts_script(), timeout=15)).stdout or ""))
    return LiveNode(conn.name, conn.node.address, facts, {}, [], {}, {})


def checker_commands(keepalived_conf: str, haproxy_paths: list[str]) -> dict[str, str]:
    """The daemons' own config checks, as the node runs them (its interfaces, its script owners)."""
    files = " ".join(f"-f {shlex.quote(p)}" for p in haproxy_paths)
    return {"haproxy": f"haproxy -c {files}",
            "keepalived": f"keepalived -t -l -f {shlex.quote(keepalived_conf)}"}


async def _verdicts(conn: NodeConnection, commands: dict[str, str]) -> dict[str, tuple[int, str]]:
    out = {}
    for daemon, command in commands.items():
        res = await conn.run(f"command -v {daemon} >/dev/null || exit 127; {command} 2>&1", timeout=20, check=False,
                             label=command.split(" -f")[0])
        if res.exit_status is not None and res.exit_status != 127:  # None: killed, no verdict
            out[daemon] = (res.exit_status, str(res.stdout or "").strip())
    return out


async def read_node(conn: NodeConnection, census: tuple[Census, str] | None = None) -> LiveNode:
    """The node's config and its daemons' verdicts on it; with (census, VRRP interface), what VRRP
    routers it hears for a moment goes into that census, all at once."""
    if census is None:
        return await _read_node(conn)
    node, _ = await asyncio.gather(_read_node(conn), listen(census[0], conn, conn.name, census[1]))
    return node


async def _read_node(conn: NodeConnection) -> LiveNode:
    """Three to a few round trips: facts, config files (includes followed), stat of scripts."""
    facts = parse_facts(str((await conn.run(facts_script(), timeout=15)).stdout or ""))
    kfiles = await keepalived_files(conn, facts.keepalived_conf)
    folders = await _list(conn, facts.haproxy_configs)
    hpaths = [p for c in facts.haproxy_configs
              for p in (sorted(x for x in folders.get(c, []) if x.endswith(".cfg")) or [c])]
    hread = await read_files(conn, hpaths[:MAX_FILES])
    node = LiveNode(conn.name, conn.node.address, facts, kfiles,
                    [(p, t) for p, t in hread.items() if t is not None], {}, {})
    scripts = script_paths(node.keepalived_root())
    stats = await _stat(conn, [*kfiles, *(p for p, _ in node.haproxy_files), *scripts])
    for path, st in stats.items():
        if st and st[0].isdigit():
            node.mtimes[path] = float(st[0])
    node.scripts = {p: (st[1], st[2]) if (st := stats.get(p)) and len(st) == 3 else None for p in scripts}
    texts = await read_files(conn, [p for p in scripts if node.scripts.get(p) and not p.startswith(SYSTEM_BINARIES)])
    node.script_texts = {p: t for p, t in texts.items() if t is not None and "\0" not in t[:4096]}
    commands = checker_commands(facts.keepalived_conf, [p for p, _ in node.haproxy_files])
    node.verdicts = await _verdicts(conn, {daemon: cmd for daemon, cmd in commands.items()
                                           if (kfiles if daemon == "keepalived" else node.haproxy_files)})
    return node
