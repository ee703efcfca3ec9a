"""Small parsers for configs someone already runs, so lint can read them (the on-call case).

They understand structure, not every keyword: keepalived's nested blocks and HAProxy's sections.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from k8s_ha_tui.model.vrrp_timing import RFC_DOWN_ADVERTS

# --- keepalived ------------------------------------------------------------------------------

@dataclass
class KBlock:
    """A keepalived statement: `keyword args...` and, for blocks, the statements inside; `source`
    is the file it came from (an `include`d file names itself)."""

    keyword: str
    args: list[str]
    line: int
    children: list[KBlock] = field(default_factory=list)
    source: str = ""

    def all(self, keyword: str) -> list[KBlock]:
        return [c for c in self.children if c.keyword == keyword]

    def first(self, keyword: str) -> KBlock | None:
        found = self.all(keyword)
        return found[0] if found else None

    def value(self, keyword: str) -> str | None:
        b = self.first(keyword)
        return b.args[0] if b and b.args else None

    def words(self) -> list[str]:
        """The bare entries of a list block such as virtual_ipaddress or track_script."""
        return [c.keyword for c in self.children]

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


MAX_INCLUDE_DEPTH = 8  # keepalived's own limit is similar; it stops include loops too
_COMMENT = re.compile(r"[!#]")
_KEEPALIVED_TOKEN = re.compile(r'"([^"]*)"?|([^\s"]+)')  # an unterminated quote runs to the end of the line
_BRACES = re.compile(r"[{}]|[^{}]+")
_CONDITION = re.compile(r"@\^?\S+$")  # `@node1 priority 150`: a line for one host only


def decomment(raw: str) -> str:
    """A line as keepalived's own decomment() leaves it: '!' or '#' outside double quotes starts a
    comment wherever it stands (`auth_pass ab#cd` is `ab`), a backslash before either is the
    character itself. A trailing backslash stays, glued to the word before it (keepalived joins
    lines only inside `$NAME=` definitions: elsewhere `24 \\` reads as `24\\`)."""
    if '"' not in raw and "\\" not in raw:
        return _COMMENT.split(raw, maxsplit=1)[0].strip()
    out: list[str] = []
    quote, i = False, 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\":
            if i + 1 == len(raw):
                return "".join(out).strip() + "\\"
            nxt = raw[i + 1]
            out.append(nxt if not quote and nxt in "#!" else ch + nxt)
            i += 2
            continue
        if ch == '"':
            quote = not quote
        elif not quote and ch in "!#":
            break
        out.append(ch)
        i += 1
    return "".join(out).strip()


def _line_tokens(line: str) -> list[str]:
    """A decommented line's tokens as keepalived sees them: white space splits, double quotes
    group, braces outside quotes stand alone, a leading `@host` condition is dropped (lint reads
    the file for every host). Linear in the line (shlex was quadratic with a stray quote)."""
    if '"' not in line:
        tokens = line.replace("{", " { ").replace("}", " } ").split()
    else:
        tokens = []
        for m in _KEEPALIVED_TOKEN.finditer(line):
            if m.group(2) is None:
                tokens.append(m.group(1))
            elif "{" in m.group(2) or "}" in m.group(2):
                tokens += _BRACES.findall(m.group(2))
            else:
                tokens.append(m.group(2))
    if tokens and _CONDITION.match(tokens[0]):
        tokens = tokens[1:]
    return tokens


def _keepalived_tokens(text: str, source: str, files: Mapping[str, str] | None, depth: int = 0):
    """(source, line number, tokens) for every line; `include PATTERN` lines are replaced by
    the lines of the files in `files` that match (absolute, or relative to the including file)."""
    for n, raw in enumerate(text.splitlines(), start=1):
        tokens = _line_tokens(decomment(raw))
        if not tokens:
            continue
        if tokens[0] == "include" and len(tokens) > 1 and files is not None and depth < MAX_INCLUDE_DEPTH:
            for path in include_matches(resolve_include(tokens[1], source), files):
                yield from _keepalived_tokens(files[path], path, files, depth + 1)
            continue
        yield source, n, tokens


def resolve_include(pattern: str, including: str) -> str:
    """An include pattern as an absolute path (relative ones start at the including file's folder)."""
    return pattern if pattern.startswith("/") else posixpath.join(posixpath.dirname(including) or "/", pattern)


def include_matches(pattern: str, files: Mapping[str, str]) -> list[str]:
    """Which of `files` an include pattern takes, in the sorted order glob(3) gives."""
    return sorted(p for p in files if fnmatch.fnmatchcase(p, pattern))


def include_patterns(text: str, source: str) -> list[str]:
    """The absolute include patterns one file names (for fetching them from a node)."""
    return [resolve_include(t[1], source) for _, _, t in _keepalived_tokens(text, source, None)
            if t[0] == "include" and len(t) > 1]


def parse_keepalived(text: str, source: str = "keepalived.conf", files: Mapping[str, str] | None = None) -> KBlock:
    """The whole config as a root block, includes followed through `files` (path → text).
    Unbalanced braces are tolerated (lint reports what it can); unknown keywords are kept."""
    root = KBlock("<root>", [], 0, source=source)
    stack = [root]
    for src, n, tokens in _keepalived_tokens(text, source, files):
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if tok == "}":
                if len(stack) > 1:
                    stack.pop()
                i += 1
                continue
            if tok == "{":  # a brace on a line of its own opens the previous statement
                if stack[-1].children:
                    stack.append(stack[-1].children[-1])
                i += 1
                continue
            j = i + 1
            while j < len(tokens) and tokens[j] not in ("{", "}"):
                j += 1
            stmt = KBlock(tok, tokens[i + 1:j], n, source=src)
            stack[-1].children.append(stmt)
            if j < len(tokens) and tokens[j] == "{":
                stack.append(stmt)
                j += 1
            i = j
    return root


def vrrp_version(root: KBlock, instance: KBlock | None = None) -> int:
    """The VRRP version a parsed keepalived.conf speaks: the instance's own `version`, else
    global_defs vrrp_version, else 2."""
    own = instance.value("version") if instance else None
    if own in ("2", "3"):
        return int(own)
    gdefs = root.first("global_defs")
    text = gdefs.value("vrrp_version") if gdefs else None
    return 3 if text == "3" else 2


def down_adverts(root: KBlock, instance: KBlock) -> int:
    """Adverts a backup of this instance misses before it takes over: the instance's
    down_timer_adverts, else global_defs vrrp_down_timer_adverts, else the RFC's 3."""
    gdefs = root.first("global_defs")
    for text in (instance.value("down_timer_adverts"), gdefs.value("vrrp_down_timer_adverts") if gdefs else None):
        if text is not None and text.isdigit() and 1 <= int(text) <= 100:
            return int(text)
    return RFC_DOWN_ADVERTS


# --- HAProxy ---------------------------------------------------------------------------------

SECTION_KEYWORDS = ("global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
                    "userlist", "program", "http-errors", "ring", "cache", "mailers")


@dataclass
class HSection:
    kind: str
    name: str
    line: int
    lines: list[tuple[int, list[str]]] = field(default_factory=list)
    # The `defaults` section in force where this one starts (HAProxy inherits from the last one,
    # or from the one named by `from NAME`).
    defaults: HSection | None = None
    source: str = "haproxy.cfg"

    def directives(self, *words: str) -> list[tuple[int, list[str]]]:
        """Lines whose first words are `words`, e.g. directives('option', 'httpchk')."""
        k = len(words)
        return [(n, t) for n, t in self.lines if [w.lower() for w in t[:k]] == list(words)]

    def own_mode(self) -> str | None:
        modes = self.directives("mode")
        return modes[-1][1][1].lower() if modes and len(modes[-1][1]) > 1 else None

    def mode(self) -> str:
        """The effective mode: its own, else the last defaults section's, else HAProxy's tcp."""
        return self.own_mode() or (self.defaults.own_mode() if self.defaults else None) or "tcp"

    def inherited(self, *words: str) -> list[tuple[int, list[str]]]:
        """Directives from the defaults in force followed by its own (last one wins)."""
        own = self.directives(*words)
        base = self.defaults.directives(*words) if self.defaults else []
        return base + own

    def servers(self) -> list[Server]:
        """`server` and `server-template` lines: each with the address and port it sends to."""
        out = []
        for n, t in self.lines:
            word = t[0].lower()
            if word == "server" and len(t) > 2:
                out.append(Server(n, t[1], *split_address(t[2]), t))
            elif word == "server-template" and len(t) > 3:
                out.append(Server(n, f"{t[1]}1-{t[2]}", *split_address(t[3]), t))
        return out

    def where(self, line: int) -> str:
        return f"{self.source}:{line}" if line else self.source


@dataclass(frozen=True)
class Server:
    line: int
    name: str
    host: str
    port: int | None
    tokens: list[str]


def split_address(spec: str) -> tuple[str, int | None]:
    """'10.0.0.1:6443', '[fd00::1]:6443', 'fd00::1:6443', 'name:6443', 'ipv4@10.0.0.1:6443' → (host, port)."""
    spec = spec.split("@", 1)[-1]
    host, sep, port = spec.rpartition(":")
    if spec.startswith("[") and not host.endswith("]"):
        return spec.strip("[]"), None  # a bracketed IPv6 address without a port
    if not sep or not port.isdigit():
        return spec.strip("[]"), None
    return host.strip("[]"), int(port)  # as HAProxy reads it: the last colon starts the port, also in 2001:db8::1:6443


_HAPROXY_TOKEN = re.compile(r'"([^"]*)"?|\'([^\']*)\'?|([^\s"\']+)')


def _haproxy_words(raw: str) -> list[str]:
    """A line's words without its comment ('#' not inside quotes or after a backslash), in one
    linear pass."""
    if '"' not in raw and "'" not in raw and "\\" not in raw:
        return raw.split("#", 1)[0].split()
    quote, escaped, end = "", False, len(raw)
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            end = i
            break
    return [next(g for g in m.groups() if g is not None) for m in _HAPROXY_TOKEN.finditer(raw[:end])]


def parse_haproxy(text: str, source: str = "haproxy.cfg", state: dict | None = None) -> list[HSection]:
    """Sections in order. `state` carries the defaults in force from one file into the next, as
    HAProxy does with several -f files (see parse_haproxy_files)."""
    state = state if state is not None else {}
    sections: list[HSection] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        tokens = _haproxy_words(raw)
        if not tokens:
            continue
        if tokens[0].lower() in SECTION_KEYWORDS:
            named = tokens[tokens.index("from") + 1] if "from" in tokens[1:-1] else None
            base = state.get("named", {}).get(named) if named else state.get("current")
            name = tokens[1] if len(tokens) > 1 and tokens[1] != "from" else ""
            sec = HSection(tokens[0].lower(), name, n, defaults=base, source=source)
            sections.append(sec)
            if sec.kind == "defaults":
                state["current"] = sec
                if sec.name:
                    state.setdefault("named", {})[sec.name] = sec
            continue
        if sections:
            sections[-1].lines.append((n, tokens))
    return sections


def parse_haproxy_files(files: list[tuple[str, str]]) -> list[HSection]:
    """Several config files read as one, in order (HAProxy's `-f a -f b`, or a conf.d folder)."""
    state: dict = {}
    return [sec for path, text in files for sec in parse_haproxy(text, path, state)]


def parse_timeout(value: str) -> float | None:
    """HAProxy time: '20s', '5000' (ms), '1m', '1h' → seconds."""
    m = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value)
    if not m:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, None: 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * scale
