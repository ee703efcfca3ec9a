"""Who may do what on the masters: `access grant watch|operate USER`, `access revoke USER` and
`access show`. Granting and revoking change every master under the cluster lock, audited, and
need the deploy role; show reports what each node says (its groups, its sudo rules), never
what the tool assumes.

A grant sets exactly the role asked (granting watch to an operate user takes operate away).
The sudoers drop-in is checked by the node's own `visudo -cf` before it is moved into place.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from k8s_ha_tui.errors import Refused, UserError
from k8s_ha_tui.operations import guard
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote import answers, node_ops, roles
from k8s_ha_tui.remote.ssh import NodeConnection

GRANTABLE = ("watch", "operate")
Log = Callable[[str], None]


def check_user(user: str) -> str:
    """A login name the roles can be given to (one-line error otherwise)."""
    if not roles.USER_NAME.fullmatch(user):
        raise UserError(f"{user!r} is not a login name (lower-case letters, digits, _ and -, at most 32)", code=2)
    if user == "root":
        raise UserError("root has every right already: roles are for logins without root", code=2)
    return user


def dropin(user: str) -> str:
    return f"{PATHS.sudoers_prefix}{user}"


def _groups(add: tuple[str, ...], user: str) -> str:
    u = shlex.quote(user)
    return "; ".join([f"gpasswd -a {u} {g} >/dev/null" if g in add else f"gpasswd -d {u} {g} >/dev/null 2>&1"
                      for g in roles.ROLE_GROUPS] + ["true"])


def grant_script(role: str, user: str) -> str:
    """Everything a grant does on one master (as root). The helper and the drop-in travel on
    stdin, in that order, each ended by a line of its own; the drop-in goes into place only
    once `visudo -cf` passes it (a name with a dot is one sudo never reads)."""
    target, new = dropin(user), f"{dropin(user)}.new"
    if role == "watch":
        return (f"{roles.ENSURE_GROUPS} && rm -f {target} && {_groups((PATHS.watch_group,), user)}")
    helper = PATHS.op_helper
    return (f"set -e; {roles.ENSURE_GROUPS}; umask 022; t=$(mktemp); trap 'rm -f \"$t\"' EXIT; cat > \"$t\"; "
            f"sed -n '1,/^@@END-HELPER$/p' \"$t\" | sed '$d' > {helper}.new; "
            f"sed '1,/^@@END-HELPER$/d' \"$t\" > {new}; "
            f"chmod 755 {helper}.new; chown root:root {helper}.new; mv -f {helper}.new {helper}; "
            f"chmod 440 {new}; chown root:root {new}; "
            f"if ! out=$(visudo -cf {new} 2>&1); then rm -f {new}; echo \"visudo: $out\" >&2; exit 1; fi; "
            f"mv -f {new} {target}; {_groups(roles.ROLE_GROUPS, user)}")


def revoke_script(user: str) -> str:
    """Both groups and the drop-in gone; the helper too once no drop-in names it."""
    prefix = PATHS.sudoers_prefix
    return (f"rm -f {dropin(user)}; {_groups((), user)}; "
            f"ls {prefix}* >/dev/null 2>&1 || rm -f {PATHS.op_helper}; true")


@dataclass(frozen=True)
class Holder:
    """One user's rights on one master, as the node says."""

    master: str
    user: str
    groups: tuple[str, ...]
    sudo: str  # "none", "N k8s-ha-tui operations", "ALL", or the rules as sudo lists them
    exact: bool  # sudo's rules are exactly the operate role's, no more

    @property
    def role(self) -> str:
        return roles.role_of(self.sudo == "ALL", self.groups, None if self.sudo == UNLISTED else self.exact)


# Only root may list another user's sudo rules: a watch login's `access show` says so.
UNLISTED = "unknown (only root may list them)"

SHOW_SCRIPT = "; ".join([
    "echo @@uid; id -u",
    *(f"echo @@group:{g}; getent group {g} | cut -d: -f4" for g in roles.ROLE_GROUPS),
    f"echo @@dropins; for f in {PATHS.sudoers_prefix}*; do case $f in *.*) ;; *) [ -e \"$f\" ] && "
    f"echo \"${{f#{PATHS.sudoers_prefix}}}\";; esac; done",
    f"echo @@helper; [ -f {PATHS.op_helper} ] && sha256sum < {PATHS.op_helper} | cut -d' ' -f1",
    f"echo @@sockets; stat -c '%n %G' {PATHS.watch_socket} {PATHS.stats_socket} 2>/dev/null",
    # who: the groups' members and the drop-ins' users; what sudo lets each run, in sudo's words
    f"users=$( {{ {'; '.join(f'getent group {g} | cut -d: -f4' for g in roles.ROLE_GROUPS)}; "
    f"for f in {PATHS.sudoers_prefix}*; do case $f in *.*) ;; *) [ -e \"$f\" ] && "
    f"echo \"${{f#{PATHS.sudoers_prefix}}}\";; esac; done; }} | tr ',' '\\n' | grep . | sort -u)",
    "for u in $users; do echo \"@@sudo:$u\"; sudo -n -l -U \"$u\" 2>&1 | sed -n '/may run the following/,$p' "
    "| tail -n +2; done",
])


def _sudo_summary(text: str) -> tuple[str, bool]:
    """sudo -l's rules for a user → (a short summary, whether they are exactly the operate role's)."""
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("("):
            continue
        spec = line.split(")", 1)[1]
        for tag in ("NOPASSWD:", "PASSWD:", "SETENV:", "NOSETENV:"):
            spec = spec.replace(tag, "")
        commands += [c.strip() for c in spec.split(",") if c.strip()]
    if not commands:
        return "none", False
    if "ALL" in commands:
        return "ALL", False
    ours = {f"{PATHS.op_helper} {name}" for name in node_ops.OPERATIONS}
    if set(commands) == ours:
        return f"{len(commands)} k8s-ha-tui operations, exact arguments", True
    return ", ".join(commands), False


def parse_show(master: str, text: str) -> tuple[list[Holder], str | None, str]:
    """SHOW_SCRIPT's answer → (every user's rights, the helper's digest, the sockets' groups)."""
    s = answers.sections(text)
    members: dict[str, list[str]] = {}
    for g in roles.ROLE_GROUPS:
        for u in (s.get(f"group:{g}") or "").replace(",", " ").split():
            members.setdefault(u, []).append(g)
    users = set(members) | set((s.get("dropins") or "").split()) | \
        {k.split(":", 1)[1] for k in s if k.startswith("sudo:")}
    holders = []
    listed = (s.get("uid") or "").strip() == "0"
    for u in sorted(users):
        summary, exact = _sudo_summary(s.get(f"sudo:{u}", "")) if listed else (UNLISTED, False)
        holders.append(Holder(master, u, tuple(members.get(u, ())), summary, exact))
    helper = (s.get("helper") or "").strip() or None
    return holders, helper, " ".join((s.get("sockets") or "").split())


async def show(conns: list[NodeConnection]) -> list[tuple[str, list[Holder], str]]:
    """Per master: its users' rights, and a note on its helper and sockets."""
    results = await asyncio.gather(*(c.run(SHOW_SCRIPT, check=False, timeout=15) for c in conns))
    out = []
    for c, r in zip(conns, results):
        holders, helper, sockets = parse_show(c.name, str(r.stdout or ""))
        notes = []
        operators = [h.user for h in holders if PATHS.operate_group in h.groups]
        if helper is None and operators:
            notes.append(f"no operate helper for {', '.join(operators)}: grant operate again")
        elif helper is not None and helper != node_ops.helper_digest():
            notes.append("the operate helper is from another version: grant operate again")
        if f"{PATHS.watch_socket} {PATHS.watch_group}" not in sockets:
            notes.append("HAProxy has no watch socket for the watch group yet: deploy this version")
        out.append((c.name, holders, "; ".join(notes)))
    return out


async def change_role(conns: list[NodeConnection], total: int, cluster: str, grant: str | None, user: str,
                      confirm: Callable[[str], Awaitable[bool]], lock: guard.LockOptions, log: Log) -> str:
    """Grant `grant` (watch or operate) to `user`, or revoke every role (grant None), on every master."""
    action = f"access {'grant ' + grant if grant else 'revoke'}"
    async with guard.change(conns, total, cluster, action, user, lock, log, needs="deploy") as op:
        exists = await asyncio.gather(*(c.run(f"id -u {shlex.quote(user)}", check=False) for c in conns))
        missing = [c.name for c, r in zip(conns, exists) if r.exit_status != 0]
        if missing and grant:
            raise Refused(f"there is no login {user} on {', '.join(missing)}: create it there first; nothing was changed")
        if grant == "watch":
            question = (f"Grant the watch role to {user} on {', '.join(c.name for c in conns)}: group "
                        f"{PATHS.watch_group} (reads the state, the lock, the audit trail and HAProxy's level-user "
                        "socket); no sudo rule, and any operate rights taken away.")
        elif grant == "operate":
            question = (f"Grant the operate role to {user} on {', '.join(c.name for c in conns)}: groups "
                        f"{PATHS.watch_group} and {PATHS.operate_group} (HAProxy's admin socket), the helper "
                        f"{PATHS.op_helper}, and {dropin(user)} with {len(node_ops.OPERATIONS)} exact sudo rules "
                        "(checked by visudo -cf first).")
        else:
            question = (f"Revoke every role of {user} on {', '.join(c.name for c in conns)}: groups "
                        f"{PATHS.watch_group} and {PATHS.operate_group}, and {dropin(user)}.")
        if not await confirm(question):
            raise Refused("not confirmed; nothing was changed")
        done: list[str] = []
        payload = node_ops.helper_script() + "@@END-HELPER\n" + node_ops.sudo_rules(user) if grant == "operate" else None
        for c in conns:
            try:
                await op.ensure_held(f"{c.name} (and the masters after it)")
                if grant is None:
                    await c.run(revoke_script(user), label=f"revoke {user}")
                else:
                    await c.run(grant_script(grant, user), input=payload, label=f"grant {grant} to {user}")
            except UserError as exc:
                left = [x.name for x in conns if x.name not in done]
                raise UserError(f"{exc}; changed on: {', '.join(done) or 'none'}; not changed on: "
                                f"{', '.join(left)}", code=exc.code) from None
            done.append(c.name)
            log(f"{c.name}: {'revoked' if grant is None else grant} {user}")
        result = f"{user}: {'no role' if grant is None else grant} on {', '.join(done)}"
        op.result = f"ok: {result}"
        return result
