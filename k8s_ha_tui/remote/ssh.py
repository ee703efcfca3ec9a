"""SSH to the nodes with asyncssh: host keys always checked, timeouts and keepalive always set.

Host keys come from the topology's known_hosts file. An unknown key stops the connection unless
trust on first use was asked for (then it is recorded); a changed key always stops it.
~/.ssh/config and ssh-agent are honoured as OpenSSH would.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.files import require_regular
from k8s_ha_tui.model.topology import Node, Ssh, Topology

CONNECT_TIMEOUT = 5
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT_MAX = 3
COMMAND_TIMEOUT = 60


class SshError(UserError):
    """A node could not be reached or refused us; the message names the node."""


class SshUnreachable(SshError):
    """No SSH connection could be made (no route, no answer, refused port): the network's
    doing, not a refusal of our key or its host key, so trying again soon bothers nobody."""


class SshLost(SshError):
    """A connection that worked went away under a command (sshd restarted, the node rebooted):
    unlike a command that got no answer in time, worth a new connection at once."""


@dataclass
class HostKeyPolicy:
    """What to do with host keys not in known_hosts; what happened is collected for the report."""

    known_hosts: Path
    accept_new: bool = False
    recorded: list[str] = field(default_factory=list)

    def has_entries(self, host: str, port: int) -> bool:
        if not self.known_hosts.exists():
            return False
        try:
            known = asyncssh.read_known_hosts(str(self.known_hosts))
        except (OSError, ValueError):
            return False
        keys, cas, *_ = known.match(host, host, port if port != 22 else None)
        return bool(keys or cas)

    def record(self, host: str, port: int, key: asyncssh.SSHKey) -> None:
        name = host if port == 22 else f"[{host}]:{port}"
        alg, blob = key.export_public_key("openssh").decode().split()[:2]
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.known_hosts, "a", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(f"{name} {alg} {blob}\n")
        self.recorded.append(f"{name} {key.get_fingerprint()}")


def _client_factory(policy: HostKeyPolicy, host: str, port: int, outcome: dict):
    class Client(asyncssh.SSHClient):
        def validate_host_public_key(self, _host, _addr, _port, key) -> bool:
            # Called only for a key that is not in known_hosts.
            if policy.has_entries(host, port):
                outcome["problem"] = (f"HOST KEY CHANGED for {host} (now {key.get_fingerprint()}); "
                                      "refusing to connect. If the node was rebuilt, remove its old key "
                                      f"from {policy.known_hosts}")
                return False
            if policy.accept_new:
                policy.record(host, port, key)
                return True
            outcome["problem"] = (f"unknown host key for {host} ({key.get_fingerprint()}); verify it, then "
                                  f"add it to {policy.known_hosts} or run with --accept-new-host-keys")
            return False

    return Client


def while_channel_open(command: str) -> str:
    """A streaming command that ends with its SSH channel: without a PTY the node sends no
    SIGHUP, so a stream whose reader went away (a monitor closed, a connection dropped) would
    live on until its next write fails, which for `ip monitor` can be days (the soak found them
    piling up). Its stdin closing is the sign to stop; and a stream that ends by itself ends the
    channel, so its reader notices (a tcpdump that stopped is a notice, not silence)."""
    return (f"exec 3<&0; {command} & stream=$!; "
            "{ cat <&3 >/dev/null; kill $stream; } >/dev/null 2>&1 & wait $stream")


def _head(command: str) -> str:
    """A command as an error message names it: its first line, cut short."""
    first = command.strip().splitlines()[0] if command.strip() else ""
    return first[:60] + ("…" if len(first) > 60 or "\n" in command.strip() else "")


@dataclass
class NodeConnection:
    """One open SSH connection to a node, running commands as root (directly or with sudo)."""

    node: Node
    conn: asyncssh.SSHClientConnection
    become: str
    # No root here (a watch or operate login): commands run as the login itself, and what
    # needs root goes through the operate role's exact sudo rules (node_ops).
    limited: bool = False

    @property
    def name(self) -> str:
        return self.node.name

    def wrap(self, command: str) -> str:
        """The command line to send: as root directly, or through non-interactive sudo."""
        if self.become == "sudo" and not self.limited:
            return f"sudo -n -- sh -c {shlex.quote(command)}"
        return command

    async def run(self, command: str, input: str | None = None, timeout: float = COMMAND_TIMEOUT,
                  check: bool = True, label: str | None = None, as_login: bool = False) -> asyncssh.SSHCompletedProcess:
        """Run as root (`as_login`: as the login itself, never through sudo); `label` names a
        long command in errors."""
        try:
            # errors="replace": a node's file may hold bytes that are not UTF-8 (a Latin-1 comment
            # in keepalived.conf): they must not end a poll with a UnicodeDecodeError.
            res = await asyncio.wait_for(self.conn.run(command if as_login else self.wrap(command), input=input, check=False,
                                                       errors="replace"), timeout)
        except TimeoutError:
            raise SshError(f"{self.name}: no answer within {timeout:g} s to: {label or _head(command)}") from None
        except (asyncssh.Error, OSError) as exc:
            raise SshLost(f"{self.name}: SSH failed: {exc}") from None
        if check and res.exit_status != 0:
            detail = (str(res.stderr or "") or str(res.stdout or "")).strip().splitlines()
            raise SshError(f"{self.name}: `{label or _head(command)}` failed: "
                           f"{detail[-1] if detail else f'exit {res.exit_status}'}")
        return res

    async def probe(self, command: str, timeout: float, silent_for: float, label: str,
                    heard_at: float | None = None) -> str:
        """A command's output within `timeout`, and never `silent_for` seconds without a byte of
        it: a probe that prints as it goes shows a node gone from the network in seconds, not
        at the end of a probe that may rightly take long (a busy keepalived, a slow apiserver).
        `heard_at` (monotonic): when the node last said anything. The silence counts from then,
        so a node that drops between two probes is lost `silent_for` after its last word rather
        than after the next probe's start (soak: 3 s, where 2 intervals are excused); the
        first byte still gets at least half of `silent_for`."""
        started = time.monotonic()
        deadline = started + timeout
        quiet_until = max(started + silent_for / 2, (started if heard_at is None else heard_at) + silent_for)
        proc = None
        chunks: list[str] = []

        def left() -> float:
            return max(0.0, min(quiet_until, deadline) - time.monotonic())
        try:
            proc = await asyncio.wait_for(self.conn.create_process(self.wrap(command), errors="replace",
                                                                   stderr=asyncssh.DEVNULL), left())
            while chunk := await asyncio.wait_for(proc.stdout.read(65536), left()):
                chunks.append(str(chunk))
                quiet_until = time.monotonic() + silent_for
            return "".join(chunks)
        except TimeoutError:
            if time.monotonic() < deadline:  # the node fell silent before the probe's time was up
                raise SshError(f"{self.name}: nothing for {silent_for:g} s from: {label}") from None
            raise SshError(f"{self.name}: no answer within {timeout:g} s to: {label}") from None
        except (asyncssh.Error, OSError) as exc:
            raise SshLost(f"{self.name}: SSH failed: {exc}") from None
        finally:
            if proc is not None:
                proc.close()

    async def haproxy(self, socket_path: str, command: str, timeout: float = COMMAND_TIMEOUT) -> str:
        """One command to the node's HAProxy runtime API, over asyncssh's UNIX-socket forwarding
        (no socat on the node); HAProxy answers and closes."""
        reader, writer = await asyncio.wait_for(self.conn.open_unix_connection(socket_path), timeout)
        try:
            writer.write(f"{command}\n".encode())
            data = await asyncio.wait_for(reader.read(), timeout)
        finally:
            writer.close()
        return data.decode(errors="replace")

    def close(self) -> None:
        self.conn.close()


async def connect(topo: Topology, node: Node, policy: HostKeyPolicy) -> NodeConnection:
    return await connect_as(topo.ssh, node, policy)


async def connect_as(ssh: Ssh, node: Node, policy: HostKeyPolicy) -> NodeConnection:
    """`connect` before there is a topology (discover): the SSH settings alone."""
    outcome: dict = {}
    identity = Path(ssh.identity_file).expanduser() if ssh.identity_file else None
    options = dict(
        port=ssh.port,
        username=ssh.user,
        known_hosts=str(policy.known_hosts) if policy.known_hosts.exists() else b"",
        client_factory=_client_factory(policy, node.address, ssh.port, outcome),
        connect_timeout=CONNECT_TIMEOUT,
        keepalive_interval=KEEPALIVE_INTERVAL,
        keepalive_count_max=KEEPALIVE_COUNT_MAX,
    )
    if identity and identity.exists():
        options["client_keys"] = [str(identity)]
    try:
        conn = await asyncssh.connect(node.address, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise SshError(f"{node.name}: {outcome.get('problem', exc)}") from None
    except asyncssh.PermissionDenied:
        raise SshError(f"{node.name}: {ssh.user}@{node.address} refused our key "
                       f"({identity or 'ssh-agent / default keys'})") from None
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        # No route, no answer, a refused port, a dropped link: the network's. A failed key
        # exchange or sshd's "too many connections" is the node's answer: not retried as eagerly.
        kind = SshUnreachable if isinstance(exc, (TimeoutError, OSError, asyncssh.ConnectionLost)) else SshError
        raise kind(f"{node.name}: cannot reach {node.address}:{ssh.port}: {reason}") from None
    made = NodeConnection(node, conn, ssh.become)
    if ssh.user != "root" or ssh.become == "sudo":
        made.limited = not await _has_root(made)
    return made


async def _has_root(conn: NodeConnection) -> bool:
    """Whether this login is root, or sudo runs anything for it without a password."""
    test = "sudo -n true" if conn.become == "sudo" else '[ "$(id -u)" = 0 ]'
    try:
        res = await asyncio.wait_for(conn.conn.run(f"{test} >/dev/null 2>&1", check=False), CONNECT_TIMEOUT)
    except (TimeoutError, asyncssh.Error, OSError) as exc:
        conn.close()
        raise SshError(f"{conn.name}: SSH failed: {exc}") from None
    return res.exit_status == 0


async def connect_all(topo: Topology, nodes: Sequence[Node], policy: HostKeyPolicy) -> list[NodeConnection]:
    """Connect to every node in parallel; if any fails, close the others and raise the first error."""
    return await connect_all_as(topo.ssh, nodes, policy)


async def connect_all_as(ssh: Ssh, nodes: Sequence[Node], policy: HostKeyPolicy) -> list[NodeConnection]:
    results = await asyncio.gather(*(connect_as(ssh, n, policy) for n in nodes), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        for r in results:
            if isinstance(r, NodeConnection):
                r.close()
        raise errors[0]
    return [r for r in results if isinstance(r, NodeConnection)]


async def connect_reachable(topo: Topology, nodes: Sequence[Node], policy: HostKeyPolicy
                            ) -> tuple[list[NodeConnection], dict[str, str]]:
    """Connect to every node in parallel: the connections made, and why the others failed."""
    results = await asyncio.gather(*(connect(topo, n, policy) for n in nodes), return_exceptions=True)
    conns = [r for r in results if isinstance(r, NodeConnection)]
    errors = {n.name: str(r) for n, r in zip(nodes, results) if isinstance(r, BaseException)}
    return conns, errors


async def reconnect(conn: NodeConnection, topo: Topology, policy: HostKeyPolicy) -> None:
    """Replace a lost link in place, so everyone holding this NodeConnection uses the new one."""
    fresh = await connect(topo, conn.node, policy)
    conn.conn.close()
    conn.conn = fresh.conn


def check_ssh_files(ssh: Ssh) -> None:
    """known_hosts and the key must be regular files where they exist (asyncssh would read a
    device such as /dev/zero forever): a one-line error before any connection."""
    for what, name in (("ssh.known_hosts", ssh.known_hosts), ("ssh.identity_file", ssh.identity_file)):
        if name:
            require_regular(Path(name).expanduser(), what)


def policy_for(topo: Topology, accept_new: bool = False) -> HostKeyPolicy:
    check_ssh_files(topo.ssh)
    return HostKeyPolicy(Path(topo.ssh.known_hosts).expanduser(), accept_new)
