"""The node side of the roles (watch, operate, deploy): the groups that carry them, the shared
folders they read, and what a login may do on a node, as the node says it.

watch    reads the state file, the lock, the audit trail and HAProxy's level-user socket:
         group PATHS.watch_group, no sudo at all;
operate  also HAProxy's admin socket: group PATHS.operate_group (and watch's);
deploy   root, or sudo for everything: deploy, rollback, discover, and changing the roles.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from dataclasses import dataclass

from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import answers
from k8s_ha_tui.remote.ssh import NodeConnection

ROLES = ("watch", "operate", "deploy")
ROLE_GROUPS = (PATHS.watch_group, PATHS.operate_group)
# A login name as useradd takes it by default (NAME_REGEX): nothing a shell or sudoers reads.
USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")

# Made by deploy (before HAProxy, which names them, checks its config) and by `access grant`.
ENSURE_GROUPS = " && ".join(f"groupadd -r -f {g}" for g in ROLE_GROUPS)


def shared_dir(path: str) -> str:
    """Make `path` a folder the watch role reads: setgid, so what is written inside belongs to
    the group too. Without the group (a node not deployed since), it stays root's."""
    p = shlex.quote(path)
    return f"mkdir -p {p} && {{ chgrp {PATHS.watch_group} {p} 2>/dev/null && chmod 2750 {p}; true; }}"


@dataclass(frozen=True)
class Login:
    """Who the tool is on a node, as the node says: the uid, the groups, whether sudo runs
    anything without a password."""

    user: str
    uid: int | None
    groups: tuple[str, ...]
    full_sudo: bool
    op_rules: bool = False  # sudo runs the operate role's helper for it

    @property
    def role(self) -> str:
        """The strongest role this login holds on the node."""
        return role_of(self.uid == 0 or self.full_sudo, self.groups, self.op_rules)


def role_of(root: bool, groups: tuple[str, ...] | list[str], op_rules: bool | None) -> str:
    """The one rule for a role: root (or sudo for everything) is deploy; the operate group with
    the helper's sudo rules is operate (`op_rules` None: the rules could not be listed, the group
    says it); the watch group is watch."""
    if root:
        return "deploy"
    if PATHS.operate_group in groups and op_rules is not False:
        return "operate"
    return "watch" if PATHS.watch_group in groups else "none"


def login_probe(become: str) -> str:
    """What the login is (run as the login itself, never through sudo's shell)."""
    sudo = ("sudo -n true 2>/dev/null && echo yes || echo no" if become == "sudo" else "echo no")
    rules = f"sudo -n -l {PATHS.op_helper} lock-acquire >/dev/null 2>&1 && echo yes || echo no"
    return (f"echo @@user; id -un; echo @@uid; id -u; echo @@groups; id -Gn; echo @@sudo; {sudo}; "
            f"echo @@oprules; {rules}")


def parse_login(text: str) -> Login:
    """The login probe's answer (pure: garbage gives a login with no role)."""
    s = answers.sections(text)
    return Login(user=(s.get("user") or "?").strip() or "?", uid=answers.int_or_none(s.get("uid")),
                 groups=tuple((s.get("groups") or "").split()), full_sudo=(s.get("sudo") or "").strip() == "yes",
                 op_rules=(s.get("oprules") or "").strip() == "yes")


def probe_role(text: str) -> str:
    """The role from a probe's `id -u; id -Gn` (run as root where the login may become root):
    root is deploy; else the role groups say (the operate group's sudo rules are `access show`'s
    to check)."""
    lines = text.strip().splitlines()
    groups = lines[1].split() if len(lines) > 1 else []
    return role_of(bool(lines) and lines[0].strip() == "0", groups, None)


def ranks(role: str, needed: str) -> bool:
    """Whether `role` includes `needed` (deploy includes operate, which includes watch)."""
    order = ("none", *ROLES)
    return order.index(role) >= order.index(needed)


async def logins(conns: list[NodeConnection]) -> dict[str, Login]:
    """What the login is on each node, as each node says (one round trip each, in parallel)."""
    results = await asyncio.gather(*(c.run(login_probe(c.become), check=False, timeout=10, as_login=True)
                                     for c in conns))
    return {c.name: parse_login(str(r.stdout or "")) for c, r in zip(conns, results)}


def lacking(found: dict[str, Login], needed: str, what: str) -> str | None:
    """One line naming the role `what` needs and where the login lacks it; None when it has it."""
    short = {name: login for name, login in found.items() if not ranks(login.role, needed)}
    if not short:
        return None
    how = {"deploy": "root, or ssh.become: sudo with sudo for everything"}.get(needed, f"`access grant {needed}`")
    held: dict[tuple[str, str], list[str]] = {}
    for name, login in sorted(short.items()):
        held.setdefault((login.user, login.role), []).append(name)
    where = "; ".join(f"{user} has {'no role' if role == 'none' else f'the {role} role'} on {', '.join(names)}"
                      for (user, role), names in held.items())
    return f"{what} needs the {needed} role ({how}): {where}"
