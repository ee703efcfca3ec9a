"""A drill's report: per client what it saw, the timeline, the verdict — as a table, JSON, a
Markdown page and an SVG picture, kept in a folder per drill (pure: tested without a cluster).

The longest gap is the longest time a client went without a successful answer, from the start
of its loop to its end: what a user of the API would have felt. The verdict compares the worst
client's longest gap with --max-gap.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from html import escape
from pathlib import Path

from k8s_ha_tui.drills.clients import Client
from k8s_ha_tui.paths import local_state_dir

FILES = ("drill.json", "report.md", "timeline.svg")


@dataclass(frozen=True)
class ClientFigures:
    name: str
    requests: int
    failed: int
    longest_gap_s: float
    p50_ms: float | None
    p99_ms: float | None
    note: str = ""
    scored: bool = True  # False: no answer before the drill began, so its gaps say nothing of the drill


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def figures(client: Client, start: float, end: float, scored: bool = True) -> ClientFigures:
    """What one client saw between `start` and `end` (epoch seconds). A loop that ended early
    (its link dropped) is judged up to its last answer: what came after was not seen."""
    if client.ended and client.samples:
        end = min(end, max(s.at for s in client.samples))
    seen = [s for s in client.samples if start <= s.at <= end]
    oks = sorted(s.at for s in seen if s.ok)  # concurrent requests end out of order
    edges = [start, *oks, end]
    gap = max((b - a for a, b in zip(edges, edges[1:])), default=0.0)
    latencies = [s.latency * 1000 for s in seen if s.ok]
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    return ClientFigures(client.name, len(seen), sum(not s.ok for s in seen), round(gap, 3),
                         None if p50 is None else round(p50, 1), None if p99 is None else round(p99, 1), client.note,
                         scored)


@dataclass
class Drill:
    """Everything a drill leaves behind; times are seconds from `started_at`."""

    id: str
    cluster: str
    scenario: str
    target: str
    plan: str  # what was asked, in the words the question used
    started_at: float  # epoch
    rate: float
    max_gap_s: float
    abort_after_s: float
    hold_s: float
    steps: list[tuple[float, str]] = field(default_factory=list)
    holders: list[tuple[float, list[str]]] = field(default_factory=list)  # the VIP's holders as they changed
    events: list[tuple[float, str]] = field(default_factory=list)  # what the collector saw (VRRP, daemons)
    clients: list[ClientFigures] = field(default_factory=list)
    samples: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)  # per client, for the picture
    ended_at: float = 0.0
    aborted: str = ""  # why the deadman stopped the scenario, or why the drill stopped early
    restored: list[str] = field(default_factory=list)  # what is not as it was found ([] = all of it)
    final_holders: list[str] = field(default_factory=list)

    @property
    def measured(self) -> list[ClientFigures]:
        return [c for c in self.clients if c.requests and c.scored]

    @property
    def worst_gap_s(self) -> float | None:
        return max((c.longest_gap_s for c in self.measured), default=None)

    @property
    def passed(self) -> bool:
        worst = self.worst_gap_s
        return not self.aborted and not self.restored and worst is not None and worst <= self.max_gap_s

    @property
    def verdict(self) -> str:
        worst = self.worst_gap_s
        worst_text = "no client measured anything" if worst is None else f"longest gap {worst:.2f} s"
        if self.aborted:
            return f"FAIL: aborted ({self.aborted}); {worst_text}"
        if self.restored:
            return f"FAIL: not restored ({'; '.join(self.restored)}); {worst_text}"
        if worst is None:
            return f"FAIL: {worst_text}"
        # plain ASCII: the verdict also goes into audit logs, which show only printable ASCII
        if worst <= self.max_gap_s:
            return f"PASS: {worst_text}, within the {self.max_gap_s:g} s allowed"
        return f"FAIL: {worst_text}, over the {self.max_gap_s:g} s allowed"

    def step(self, text: str, now: float | None = None) -> None:
        self.steps.append((round((now or time.time()) - self.started_at, 3), text))

    def document(self) -> dict:
        out = asdict(self)
        out.update(verdict=self.verdict, passed=self.passed, worst_gap_s=self.worst_gap_s)
        return out

    @classmethod
    def from_document(cls, doc: dict) -> Drill:
        keep = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        keep["clients"] = [ClientFigures(**c) for c in doc.get("clients", [])]
        keep["steps"] = [tuple(s) for s in doc.get("steps", [])]
        keep["holders"] = [tuple(h) for h in doc.get("holders", [])]
        keep["events"] = [tuple(e) for e in doc.get("events", [])]
        return cls(**keep)


def table_rows(drill: Drill) -> list[list[str]]:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:g}"
    return [[c.name, str(c.requests), str(c.failed), f"{c.longest_gap_s:.2f}", ms(c.p50_ms), ms(c.p99_ms),
             c.note] for c in drill.clients]


TABLE_HEADER = ("client", "requests", "failed", "longest gap s", "p50 ms", "p99 ms", "note")


def _cell(text: str) -> str:
    """Text in a Markdown table cell: a pipe would end the cell, a < start HTML."""
    return text.replace("|", "&#124;").replace("<", "&lt;")


def markdown(drill: Drill) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(drill.started_at))
    lines = [f"# Drill {drill.scenario} on {drill.cluster}: {'PASS' if drill.passed else 'FAIL'}", "",
             f"{when}, {drill.ended_at - drill.started_at:.1f} s. {drill.verdict}.", "",
             f"**What was done:** {drill.plan}", "",
             f"Clients asked `/readyz` through the VIP {drill.rate:g} times a second each, a fresh TLS "
             f"connection every time; deadman after {drill.abort_after_s:g} s without answers.", "",
             "| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    lines += ["| " + " | ".join(_cell(cell) or " " for cell in row) + " |" for row in table_rows(drill)]
    lines += ["", "![timeline](timeline.svg)", "", "## Timeline", "", "| s | what |", "|---|---|"]
    story = sorted([*drill.steps, *drill.events, *((t, f"VIP on {', '.join(h) or 'NOBODY'}") for t, h in drill.holders)],
                   key=lambda entry: entry[0])  # by time only: what came first at the same moment stays first
    lines += [f"| {t:.2f} | {_cell(text)} |" for t, text in story]
    restored = ("everything as it was found" if not drill.restored else "NOT as found: " + "; ".join(drill.restored))
    lines += ["", f"**Afterwards:** {restored}; VIP on {', '.join(drill.final_holders) or 'nobody'}.", ""]
    return "\n".join(lines)


COLOURS = ("#4878d0", "#ee854a", "#6acc64", "#956cb4", "#8c613c", "#dc7ec0")


def _tick_every(span: float) -> float:
    return next(step for step in (0.5, 1, 2, 5, 10, 30, 60, 300) if span / step <= 15)


def svg(drill: Drill, width: int = 960) -> str:
    """One row per client (a tick per request: green answered, red not), a row for the VIP's
    holder (one colour per master), a time axis, and the scenario's steps: dashed lines, numbered,
    listed underneath one a line."""
    left, right, row_h, top = 150, 20, 22, 40
    span = max(drill.ended_at - drill.started_at, 0.001)
    names = list(drill.samples)
    vip_y = top + len(names) * row_h
    axis_y = vip_y + row_h + 14
    legend_y = axis_y + 24
    steps_y = legend_y + 22
    height = steps_y + 16 * len(drill.steps) + 8

    def x(t: float) -> float:
        return left + (width - left - right) * max(0.0, min(t, span)) / span
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="10" y="18" font-size="14" font-weight="bold">{escape(drill.scenario)} on '
           f'{escape(drill.cluster)}: {escape(drill.verdict)}</text>']
    for i, name in enumerate(names):
        y = top + i * row_h
        out.append(f'<text x="10" y="{y + 14}">{escape(name)}</text>')
        for t, ok in drill.samples[name]:
            out.append(f'<rect x="{x(t):.1f}" y="{y + 3}" width="2" height="{row_h - 6}" '
                       f'fill="{"#2ca02c" if ok else "#d62728"}"/>')
    out.append(f'<text x="10" y="{vip_y + 14}">VIP holder</text>')
    masters = sorted({m for _, h in drill.holders for m in h})
    spans = [*drill.holders, (span, [])]
    for (t0, holders), (t1, _) in zip(spans, spans[1:]):
        for k, m in enumerate(holders):
            colour = COLOURS[masters.index(m) % len(COLOURS)]
            out.append(f'<rect x="{x(t0):.1f}" y="{vip_y + 3 + k * 4}" width="{max(1.0, x(t1) - x(t0)):.1f}" '
                       f'height="{row_h - 6 - k * 4}" fill="{colour}"><title>{escape(m)}</title></rect>')
    every = _tick_every(span)
    out.append(f'<line x1="{left}" y1="{axis_y - 10}" x2="{width - right}" y2="{axis_y - 10}" stroke="#999"/>')
    for k in range(int(span / every) + 1):
        t = k * every
        out.append(f'<line x1="{x(t):.1f}" y1="{axis_y - 13}" x2="{x(t):.1f}" y2="{axis_y - 7}" stroke="#999"/>'
                   f'<text x="{x(t):.1f}" y="{axis_y + 4}" text-anchor="middle" fill="#555">{t:g} s</text>')
    for k, m in enumerate(masters):
        out.append(f'<rect x="{left + k * 160}" y="{legend_y - 10}" width="12" height="12" '
                   f'fill="{COLOURS[k % len(COLOURS)]}"/><text x="{left + k * 160 + 16}" y="{legend_y}">{escape(m)}</text>')
    for n, (t, text) in enumerate(drill.steps):
        out.append(f'<line x1="{x(t):.1f}" y1="{top - 4}" x2="{x(t):.1f}" y2="{vip_y + row_h}" stroke="#555" '
                   f'stroke-dasharray="3,3"><title>{escape(text)}</title></line>'
                   f'<text x="{x(t) + 2:.1f}" y="{top - 6}" fill="#333">{n + 1}</text>'
                   f'<text x="10" y="{steps_y + 16 * n}" fill="#333">{n + 1}  {t:6.2f} s  {escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def drills_dir() -> Path:
    return local_state_dir() / "drills"


def save(drill: Drill) -> Path:
    """The drill's folder (0700, as are the folders above it that it makes; its files 0600):
    JSON, Markdown and the picture, each written whole (a temporary file, then renamed)."""
    for folder in (local_state_dir(), drills_dir(), drills_dir() / drill.id):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = drills_dir() / drill.id
    for name, text in zip(FILES, (json.dumps(drill.document(), indent=2), markdown(drill), svg(drill))):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")  # 0600
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, folder / name)
    return folder


def past() -> list[Drill]:
    """Every kept drill, oldest first (a folder that does not read is skipped)."""
    out = []
    base = drills_dir()
    for doc_path in sorted(base.glob("*/drill.json")) if base.is_dir() else []:
        try:
            out.append(Drill.from_document(json.loads(doc_path.read_text())))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return sorted(out, key=lambda d: d.started_at)
