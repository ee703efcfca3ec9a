"""Every VRRP router heard on a master's segment: tcpdump on the node's VRRP interface, one line
per advertisement, kept as a census per virtual router id.

Why tcpdump: keepalived says nothing of routers on other router ids (and of ones on its own only
with `log_unknown_vrids`), a node has no Python, and tcpdump is on most servers (a small Debian
package). It runs for as long as the collector watches (one process per master, sleeping between
packets: adverts are a few per second) or for a bounded time (`status`, `doctor`, `deploy`).
PASS passwords, which tcpdump prints, are dropped here and never stored.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass

_ADVERT = re.compile(
    r"(?P<src>\d+\.\d+\.\d+\.\d+) > (?P<dst>\d+\.\d+\.\d+\.\d+): VRRPv(?P<version>[23]), Advertisement, "
    r"vrid (?P<vrid>\d+), prio (?P<prio>\d+),(?: authtype (?P<auth>[\w-]+),)? intvl (?P<intvl>\d+)(?P<unit>c?s)"
    r"(?:, length \d+)?(?:, (?:\(bad vrrp cksum \w+\) )?addrs(?:\(\d+\))?: (?P<addrs>[\d.,]+))?")
FORGET_S = 60.0  # a router not heard for this long leaves the census
LISTEN_S = 1.5  # a bounded listen (status, doctor, deploy): a router advertising every 1 s is heard
NO_TCPDUMP = "NO-TCPDUMP"


def listen_command(interface: str, seconds: float | None = None) -> str:
    """tcpdump on the VRRP interface, line-buffered, VRRP over IPv4 only; bounded by `seconds`."""
    bound = f"timeout {seconds:g} " if seconds else "exec "
    return (f"command -v tcpdump >/dev/null || {{ echo {NO_TCPDUMP}; exit 0; }}; "
            f"{bound}tcpdump -i {shlex.quote(interface)} -nn -l -t -v 'ip proto 112' 2>/dev/null")


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
    m = _ADVERT.search(line)
    if m is None:
        return None
    interval = int(m["intvl"]) / (100 if m["unit"] == "cs" else 1)
    vips = tuple(a for a in (m["addrs"] or "").split(",") if a)
    return Heard(m["src"], int(m["vrid"]), int(m["prio"]), interval, vips, int(m["version"]))


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


class Census:
    """What the masters heard, merged: one entry per (router id, advertiser)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, str], Advertiser] = {}

    def hear(self, node: str, heard: Heard, when: float | None = None) -> None:
        when = time.time() if when is None else when
        key = (heard.vrid, heard.address)
        old = self._seen.get(key)
        by = tuple(sorted({node, *(old.heard_by if old else ())}))
        self._seen[key] = Advertiser(heard.vrid, heard.address, heard.priority, heard.interval, heard.vips,
                                     heard.version, when, by)

    def feed(self, node: str, output: str, when: float | None = None) -> None:
        for line in output.splitlines():
            heard = parse_line(line)
            if heard is not None:
                self.hear(node, heard, when)

    def advertisers(self, now: float | None = None) -> tuple[Advertiser, ...]:
        now = time.time() if now is None else now
        for key in [k for k, a in self._seen.items() if now - a.last_heard > FORGET_S]:
            del self._seen[key]
        return tuple(sorted(self._seen.values(), key=lambda a: (a.vrid, a.address)))


def foreign(advertisers: tuple[Advertiser, ...], router_id: int, masters: set[str], vip: str) -> list[Advertiser]:
    """Routers on this cluster's router id that are not its masters, or that advertise other
    VIPs: each breaks the cluster's election (the higher priority owns the VRID)."""
    return [a for a in advertisers if a.vrid == router_id
            and (a.address not in masters or (a.vips and vip not in a.vips))]


def free_router_id(advertisers: tuple[Advertiser, ...], prefer: int) -> int:
    """A router id nobody on the segment advertises: `prefer` if free, else the next one up (1-255)."""
    used = {a.vrid for a in advertisers}
    for rid in [*range(prefer, 256), *range(1, prefer)]:
        if rid not in used:
            return rid
    return prefer
