"""Small parsers for configs someone already runs, so lint can read them (the on-call case).

They understand structure, not every keyword: keepalived's nested blocks and HAProxy's sections.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field


# --- keepalived ------------------------------------------------------------------------------

@dataclass
class KBlock:
    """A keepalived statement: `keyword args...` and, for blocks, the statements inside."""

    keyword: str
    args: list[str]
    line: int
    children: list[KBlock] = field(default_factory=list)

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


def _keepalived_tokens(text: str):
    """(line number, tokens) for every line, with comments gone and braces split off."""
    for n, raw in enumerate(text.splitlines(), start=1):
        line = re.split(r"(?<!\S)[!#]", raw, maxsplit=1)[0]
        line = line.replace("{", " { ").replace("}", " } ")
        try:
            tokens = shlex.split(line, comments=False, posix=True)
        except ValueError:
            tokens = line.split()
        if tokens:
            yield n, tokens


def parse_keepalived(text: str) -> KBlock:
    """The whole file as a root block. Unbalanced braces are tolerated (lint reports them)."""
    root = KBlock("<root>", [], 0)
    stack = [root]
    for n, tokens in _keepalived_tokens(text):
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
            stmt = KBlock(tok, tokens[i + 1:j], n)
            stack[-1].children.append(stmt)
            if j < len(tokens) and tokens[j] == "{":
                stack.append(stmt)
                j += 1
            i = j
    return root


def vrrp_version(root: KBlock) -> int:
    """The VRRP version a parsed keepalived.conf speaks (global_defs vrrp_version; 2 by default)."""
    gdefs = root.first("global_defs")
    text = gdefs.value("vrrp_version") if gdefs else None
    return 3 if text == "3" else 2


# --- HAProxy ---------------------------------------------------------------------------------

SECTION_KEYWORDS = ("global", "defaults", "frontend", "backend", "listen", "peers", "resolvers",
                    "userlist", "program", "http-errors", "ring", "cache", "mailers")


@dataclass
class HSection:
    kind: str
    name: str
    line: int
    lines: list[tuple[int, list[str]]] = field(default_factory=list)
    # The `defaults` section in force where this one starts (HAProxy inherits from the last one).
    defaults: HSection | None = None

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


def parse_haproxy(text: str) -> list[HSection]:
    sections: list[HSection] = []
    current_defaults: HSection | None = None
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        tokens = line.split()
        if tokens[0].lower() in SECTION_KEYWORDS:
            sec = HSection(tokens[0].lower(), tokens[1] if len(tokens) > 1 else "", n,
                           defaults=current_defaults)
            sections.append(sec)
            if sec.kind == "defaults":
                current_defaults = sec
            continue
        if sections:
            sections[-1].lines.append((n, tokens))
    return sections


def parse_timeout(value: str) -> float | None:
    """HAProxy time: '20s', '5000' (ms), '1m', '1h' → seconds."""
    m = re.fullmatch(r"(\d+)(us|ms|s|m|h|d)?", value)
    if not m:
        return None
    scale = {"us": 1e-6, "ms": 1e-3, None: 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return int(m.group(1)) * scale
