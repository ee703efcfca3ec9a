"""What the commands share: parent parsers for the options every command spells the same way,
bounded number arguments, the lock options, and tables printed through Rich."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from k8s_ha_tui.errors import UserError


@dataclass(frozen=True)
class Parents:
    """argparse parent parsers: `sub.add_parser(..., parents=[p.topology, p.json])`."""

    topology: argparse.ArgumentParser
    json: argparse.ArgumentParser
    lock: argparse.ArgumentParser  # --yes, --wait, --break-stale-lock: every command that changes nodes


def parents() -> Parents:
    topology = argparse.ArgumentParser(add_help=False)
    topology.add_argument("-t", "--topology", required=True, metavar="FILE", help="the cluster's topology file")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of text")
    lock = argparse.ArgumentParser(add_help=False)
    lock_arguments(lock)
    return Parents(topology, as_json, lock)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns two spaces apart, no borders; wraps cells on a narrow terminal, never in a pipe."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, show_edge=False, pad_edge=False, padding=(0, 1), header_style="bold")
    for title in header:
        table.add_column(title)
    for row in rows:
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 10_000, highlight=False, soft_wrap=False).print(table)


MAX_CONFIG_BYTES = 16 << 20  # keepalived.conf, haproxy.cfg, a check script: real ones are a few KB


def read_text(path: str) -> str:
    from k8s_ha_tui.files import read_input

    return read_input(path, MAX_CONFIG_BYTES, "config file", strict=False)


def lock_options(args: argparse.Namespace):
    from k8s_ha_tui.operations.guard import LockOptions

    return LockOptions(wait=args.wait, break_stale=args.break_stale_lock)


def lock_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="do not ask before changing the nodes")
    p.add_argument("--wait", type=bounded(float, 0, 3600, " seconds"), nargs="?", const=600.0, default=0.0,
                   metavar="SECONDS",
                   help="if another operator holds the cluster lock, queue for it this long, 0-3600 "
                        "(default: refuse at once; --wait alone: 600)")
    p.add_argument("--break-stale-lock", action="store_true",
                   help="also remove a lock that is old only by its holder's own record (not renewed for 120 s) "
                        "when the node's clock does not prove it; a lock whose holder is proven gone is taken "
                        "over without this flag, and a live holder's lock is never taken")


def bounded(kind: type, low: float, high: float, unit: str = ""):
    """An argparse type: a number of `kind` within [low, high], else a one-line error."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {'whole ' if kind is int else ''}number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value:g} is outside {low:g}–{high:g}{unit}")
        return value
    return parse


def print_findings(findings, as_json: bool) -> None:
    if as_json:
        print(json.dumps([f.as_dict() for f in findings], indent=2))
        return
    for f in findings:
        print(f.text())
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    print(f"{errors} error(s), {warnings} warning(s)")


async def go_ahead(yes: bool, verb: str) -> bool:
    """The one confirmation every changing command asks (after saying what it will do): --yes
    answers it; without a terminal nobody can, so it refuses rather than guess."""
    from k8s_ha_tui.operations.interrupts import ask

    if yes:
        return True
    if not sys.stdin.isatty():
        raise UserError(f"not confirmed: run with --yes to {verb} without a terminal")
    return (await ask("Go ahead? [y/N] ")).strip().lower() in ("y", "yes")
