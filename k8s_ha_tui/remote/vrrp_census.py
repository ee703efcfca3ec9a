"""Every VRRP router heard on a master's segment: tcpdump on the node's VRRP interface, one line
per advertisement, kept as a census per virtual router id.

Why tcpdump: keepalived says nothing of routers on other router ids (and of ones on its own only
as bogus or mismatched adverts in its log), a node has no Python, and tcpdump is on most servers
(a small Debian package). It runs with -p (the interface is not put in promiscuous mode: the
VRRP group's multicast and unicast to the node arrive anyway), for as long as the collector
watches (one process per master, ended when its SSH channel closes) or for a bounded time
(`status`, `doctor`, `deploy`, `wizard --census`). Only parsed fields are kept: the PASS
passwords tcpdump prints are never stored.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass

from k8s_ha_tui.remote.ssh import NodeConnection, while_channel_open

_HEAD = re.compile(r"(?P<src>\d+\.\d+\.\d+\.\d+) > \S+?: VRRPv(?P<version>[23]), Advertisement\b")
_VRID = re.compile(r"\bvrid (\d+)")
_PRIO = re.compile(r"\bprio (\d+)")
_INTVL = re.compile(r"\bintvl (\d+)(c?s)\b")
_ADDRS = re.compile(r"\baddrs(?:\(\d+\))?: ([\d.,]+)")
STALE_ADVERTS = 3  # a router not heard for this many of its intervals is gone...
STALE_MIN_S = 5.0  # ...but never sooner: a colliding router flaps (BACKUP, then MASTER again ~2 s later)
LISTEN_S = 2.5  # a bounded listen (status, doctor, deploy): a 1 s router twice, a flapping one once
NO_TCPDUMP = "NO-TCPDUMP"


def _tcpdump(interface: str) -> str:
    return f"tcpdump -p -i {shlex.quote(interface)} -nn -l -t -v 'ip proto 112' 2>/dev/null"


def listen_command(interface: str, seconds: float | None = None) -> str:
    """tcpdump on the VRRP interface, line-buffered, VRRP over IPv4 only. Bounded by `seconds`;
    else for as long as the SSH channel's stdin stays open (no PTY means no SIGHUP on the node:
    closing stdin is how the collector ends it)."""
    # Capturing needs root: a login without it (the watch role) says so instead of hearing nothing.
    missing = f"command -v tcpdump >/dev/null && [ \"$(id -u)\" = 0 ] || {{ echo {NO_TCPDUMP}; exit 0; }}; "
    if seconds:
        return f"{missing}timeout {seconds:g} {_tcpdump(interface)}"
    return missing + while_channel_open(_tcpdump(interface))


@dataclass(frozen=True)
class Heard:
    """One advertisement."""

    address: str
    vrid: int
    priority: int
    interval: float  # seconds
    vips: tuple[str, ...]
    version: int


def parse_line(line: str) -> Heard | None:
    """An advert line of `tcpdump -v` (fields found by name: tcpdump inserts a checksum or TTL
    remark between them for odd packets)."""
    head = _HEAD.search(line)
    vrid, prio, intvl = _VRID.search(line), _PRIO.search(line), _INTVL.search(line)
    if head is None or vrid is None or prio is None or intvl is None:
        return None
    addrs = _ADDRS.search(line)
    vips = tuple(a for a in (addrs.group(1) if addrs else "").split(",") if a)
    interval = int(intvl.group(1)) / (100 if intvl.group(2) == "cs" else 1)
    return Heard(head["src"], int(vrid.group(1)), int(prio.group(1)), interval, vips, int(head["version"]))


@dataclass(frozen=True)
class Advertiser:
    """A router on the segment as the census last heard it."""

    vrid: int
    address: str
    priority: int
    interval: float
    vips: tuple[str, ...]
    version: int
    last_heard: float  # epoch seconds
    heard_by: tuple[str, ...]  # the masters that heard it

    def describe(self) -> str:
        return (f"{self.address} advertises router id {self.vrid} with VIP {', '.join(self.vips) or 'none'}, "
                f"priority {self.priority}, every {self.interval:g} s")


class Census:
    """What the masters heard, merged: one entry per (router id, advertiser)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, str], Advertiser] = {}
        self.missing: set[str] = set()  # masters that cannot listen (no tcpdump)

    def hear(self, node: str, heard: Heard, when: float | None = None) -> None:
        key = (heard.vrid, heard.address)
        if heard.priority == 0:  # a router leaving (stopping, or in FAULT): it is not there any more
            self._seen.pop(key, None)
            return
        when = time.time() if when is None else when
        old = self._seen.get(key)
        by = tuple(sorted({node, *(old.heard_by if old else ())}))
        self._seen[key] = Advertiser(heard.vrid, heard.address, heard.priority, heard.interval, heard.vips,
                                     heard.version, when, by)

    def feed(self, node: str, output: str, when: float | None = None) -> None:
        if NO_TCPDUMP in output:
            self.missing.add(node)
        for line in output.splitlines():
            heard = parse_line(line)
            if heard is not None:
                self.hear(node, heard, when)

    def advertisers(self, now: float | None = None) -> tuple[Advertiser, ...]:
        """The routers heard recently: within STALE_ADVERTS of their own intervals, STALE_MIN_S at least."""
        now = time.time() if now is None else now
        for key in [k for k, a in self._seen.items() if now - a.last_heard > max(STALE_ADVERTS * a.interval, STALE_MIN_S)]:
            del self._seen[key]
        return tuple(sorted(self._seen.values(), key=lambda a: (a.vrid, a.address)))


async def listen(census: Census, conn: NodeConnection, node: str, interface: str, seconds: float = LISTEN_S) -> None:
    """A bounded listen from one node into `census` (only the parsed fields are kept)."""
    res = await conn.run(listen_command(interface, seconds), check=False, timeout=seconds + 5, label="tcpdump")
    census.feed(node, str(res.stdout or ""))


def foreign(advertisers: tuple[Advertiser, ...], router_id: int, masters: set[str], vip: str) -> list[Advertiser]:
    """Routers on this cluster's router id that are not its masters, or that advertise other
    VIPs: the two elections interfere (keepalived discards the other's adverts as mismatched, so
    both sides may claim the router id; other VRRP routers let the higher priority own it)."""
    return [a for a in advertisers if a.vrid == router_id
            and (a.address not in masters or (a.vips and vip not in a.vips))]


def free_router_id(advertisers: tuple[Advertiser, ...], prefer: int) -> int:
    """A router id nobody on the segment advertises: `prefer` if free, else the next one up (1-255)."""
    used = {a.vrid for a in advertisers}
    for rid in [*range(prefer, 256), *range(1, prefer)]:
        if rid not in used:
            return rid
    return prefer
