"""How lint's config parsers scale with their input: they must be linear (a 2 MB line is a bad
file, not a reason to hang). Prints the time to lint keepalived and HAProxy configs made of one
long line, with and without stray quotes and comment characters, at 0.2 and 2 MB, and the ratio
(about 10 for a linear parser, about 100 for a quadratic one).

usage: .venv/bin/python bench/parsers.py     (no root, no lab; a few seconds)
"""

from __future__ import annotations

import sys
import time

from k8s_ha_tui.configs import lint

CASES = {
    "keepalived, plain words": lambda n: "global_defs {\n router_id " + "a " * (n // 2) + "\n}\n",
    "keepalived, a stray quote": lambda n: 'x "' + "a " * (n // 2) + "\n",
    "keepalived, braces": lambda n: "x " + "{ a } " * (n // 6) + "\n",
    "haproxy, plain words": lambda n: "global\n log " + "a " * (n // 2) + "\n",
    "haproxy, quotes and #": lambda n: 'global\n log "' + "a #" * (n // 3) + "\n",
}


def seconds(text: str, kind: str) -> float:
    started = time.perf_counter()
    (lint.lint_keepalived if kind == "keepalived" else lint.lint_haproxy)(text)
    return time.perf_counter() - started


def main() -> int:
    print(f"{'input':<28} {'0.2 MB':>9} {'2 MB':>9} {'ratio':>6}")
    for name, make in CASES.items():
        kind = name.split(",")[0]
        small, big = seconds(make(200_000), kind), seconds(make(2_000_000), kind)
        print(f"{name:<28} {small * 1000:>7.0f}ms {big * 1000:>7.0f}ms {big / max(small, 1e-9):>6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
