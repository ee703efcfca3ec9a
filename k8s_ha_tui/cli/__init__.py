"""Command line: argument parsing and one small function per command, no logic of its own.

The commands live by what they are for: configs.py (wizard, render, lint), rollouts.py (deploy,
rollback), operate.py (status, monitor, failover, maintenance, backend, restart), clusters.py (discover,
doctor, exporter), drill.py (drill); common.py has the options they share.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib.metadata import PackageNotFoundError, version

from k8s_ha_tui.cli import access, clusters, configs, drill, operate, rollouts
from k8s_ha_tui.cli.common import parents
from k8s_ha_tui.errors import UserError


def _version() -> str:
    try:
        return version("k8s-ha-tui")
    except PackageNotFoundError:  # running from a source tree
        return "0+source"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="k8s-ha-tui",
        description="Set up, deploy and watch keepalived + HAProxy in front of kube-apiservers.",
    )
    p.add_argument("--version", action="version", version=f"k8s-ha-tui {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    shared = parents()
    for module in (configs, rollouts, clusters, operate, drill, access):
        module.add_parsers(sub, shared)

    from k8s_ha_tui.cli.lab import add_lab_commands

    add_lab_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is still caught below
        if code == 0 and getattr(args, "then", None):  # a command that hands over to another (wizard → deploy)
            return main(args.then)
        return code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        # Commands that change nodes handle Ctrl-C themselves and say what they did; the rest
        # change nothing, or say here what an interruption can leave (`on_interrupt`).
        print(f"\ninterrupted; {getattr(args, 'on_interrupt', 'nothing was changed')}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): say nothing more, as other Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
