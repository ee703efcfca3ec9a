"""`access`: who may do what on the masters (grant, revoke, show)."""

from __future__ import annotations

import argparse
import json
import sys

from k8s_ha_tui.cli.common import Parents, go_ahead, lock_options, print_table
from k8s_ha_tui.errors import UserError

ROLES_HELP = """\
roles:
  watch    status, monitor, exporter: group k8s-ha-watch, no sudo at all
  operate  also failover, maintenance, backend, restart, drill: group k8s-ha-operate and
           exact sudo rules for /usr/local/sbin/k8s-ha-tui-op (data on stdin, checked there)
  deploy   deploy, rollback, discover, access grant/revoke: root, or sudo for everything
"""


def cmd_access(args: argparse.Namespace) -> int:

    from k8s_ha_tui.model import topology
    from k8s_ha_tui.operations import access
    from k8s_ha_tui.operations.interrupts import Interrupted, Interrupts
    from k8s_ha_tui.remote.ssh import connect_all, policy_for

    grant = args.role if args.verb == "grant" else None
    user = access.check_user(args.user) if args.verb != "show" else None
    topo = topology.load_topology(args.topology)
    policy = policy_for(topo)

    async def confirm(question: str) -> bool:
        print(question, flush=True)
        return await go_ahead(args.yes, "change the roles")

    async def main():
        conns = await connect_all(topo, topo.masters, policy)
        try:
            if user is None:
                return await access.show(conns)
            return await access.change_role(conns, len(topo.masters), topo.name, grant, user, confirm,
                                            lock_options(args), lambda line: print(line, flush=True))
        finally:
            for c in conns:
                c.close()

    try:
        result = Interrupts().run(main)
    except Interrupted:
        raise UserError("interrupted: the masters listed above were changed, the others not; run it again "
                        "(it is safe to repeat) or see `access show`", code=130) from None
    if user is not None:
        print(result)
        return 0
    _print_show(result, args.json)
    return 0


def _print_show(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"master": name, "note": note,
                           "users": [{"user": h.user, "role": h.role, "groups": list(h.groups), "sudo": h.sudo}
                                     for h in holders]} for name, holders, note in result], indent=2))
        return
    rows = []
    for name, holders, note in result:
        rows += [[name, h.user, h.role, ",".join(h.groups) or "-", h.sudo] for h in holders]
        if not holders:
            rows.append([name, "-", "-", "-", "no user holds a role"])
        if note:
            rows.append([name, "", "", "", f"note: {note}"])
    print_table(("master", "user", "role", "groups", "sudo (as the node lists it)"), rows)
    sys.stdout.flush()


def add_parsers(sub, p: Parents) -> None:
    ac = sub.add_parser("access", help="who may do what on the masters: grant, revoke, show roles",
                        description="Grant or revoke the watch and operate roles on every master (under the "
                                    "cluster lock, audited; needs root or sudo for everything), or show what "
                                    "every user may do there, as the nodes say.",
                        epilog=ROLES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = ac.add_subparsers(dest="verb", metavar="VERB", required=True)
    gr = verbs.add_parser("grant", parents=[p.topology, p.lock], help="give USER a role on every master",
                          description="Give USER exactly this role on every master (a grant of watch to an "
                                      "operate user takes operate away). USER must exist on every master.")
    gr.add_argument("role", choices=["watch", "operate"], help="the role")
    gr.add_argument("user", metavar="USER", help="the login on the masters")
    rv = verbs.add_parser("revoke", parents=[p.topology, p.lock], help="take every role from USER",
                          description="Take USER out of both role groups and remove its sudo rules on every "
                                      "master (the operate helper goes with the last operate user).")
    rv.add_argument("user", metavar="USER", help="the login on the masters")
    sh = verbs.add_parser("show", parents=[p.topology, p.json], help="what every user may do, per master",
                          description="Per master: each user in a role group or with k8s-ha-tui sudo rules, "
                                      "its role, groups and sudo rules as `sudo -l -U` lists them.")
    for parser in (gr, rv, sh):
        parser.set_defaults(func=cmd_access)
