"""A model of the VRRP election, to prove a topology's priorities and check weight are safe.

VRRP (RFC 3768/5798, as keepalived does it, with preemption): among the nodes that are alive
and not in FAULT, the highest effective priority holds the VIP; on a tie the higher primary
address wins. A failed check with weight 0 puts the node in FAULT; with a weight w it changes
the priority by w, clamped to 1..254.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from enum import Enum


class Health(Enum):
    HEALTHY = "healthy"
    CHECK_FAILED = "check failed"
    DEAD = "dead"


@dataclass(frozen=True)
class Candidate:
    name: str
    address: str
    priority: int


@dataclass(frozen=True)
class Counterexample:
    """A combination of node health in which the VIP rests on a node whose check fails."""

    health: dict[str, Health]
    winner: str

    def describe(self) -> str:
        return f"when {describe_health(self.health)}, {self.winner} keeps the VIP although a healthy master exists"


def describe_health(health: dict[str, Health]) -> str:
    """'check failed on a and b down', or 'all healthy'."""
    failed = [n for n, h in health.items() if h is Health.CHECK_FAILED]
    dead = [n for n, h in health.items() if h is Health.DEAD]
    parts = ([f"check failed on {', '.join(failed)}"] if failed else []) + ([f"{', '.join(dead)} down"] if dead else [])
    return " and ".join(parts) or "all healthy"


def effective_priority(base: int, health: Health, weight: int) -> int | None:
    """None when the node takes no part in the election (dead, or FAULT)."""
    if health is Health.DEAD:
        return None
    if health is Health.CHECK_FAILED:
        if weight == 0:
            return None
        return min(254, max(1, base + weight))
    return base


def elect(candidates: list[Candidate], health: dict[str, Health], weight: int) -> str | None:
    """The node that holds the VIP once the election settles, or None if no one can."""
    best: tuple[int, int] | None = None
    winner = None
    for c in candidates:
        p = effective_priority(c.priority, health[c.name], weight)
        if p is None:
            continue
        key = (p, int(ipaddress.ip_address(c.address)))
        if best is None or key > best:
            best, winner = key, c.name
    return winner


def unsafe_combinations(candidates: list[Candidate], weight: int,
                        limit: int = 1) -> list[Counterexample]:
    """Every health combination (3^n, n ≤ 9) in which a failed node holds the VIP while a healthy
    one is alive; stops after `limit` counterexamples."""
    found: list[Counterexample] = []
    names = [c.name for c in candidates]
    for states in itertools.product(tuple(Health), repeat=len(candidates)):
        if Health.HEALTHY not in states:
            continue
        health = dict(zip(names, states))
        winner = elect(candidates, health, weight)
        if winner is not None and health[winner] is not Health.HEALTHY:
            found.append(Counterexample(health, winner))
            if len(found) >= limit:
                break
    return found


def families_apart(v4: list[Candidate], v6: list[Candidate], weight: int) -> str | None:
    """A dual-stack cluster elects once per family (one VRRP instance each); the two elections
    agree unless a check's weight makes priorities tie, which each family breaks by its own
    addresses. The first health combination where they would pick different masters, described,
    or None. (keepalived's sync group then drags one instance along, but which one it follows is
    a race.)"""
    names = [c.name for c in v4]
    for states in itertools.product(tuple(Health), repeat=len(v4)):
        health = dict(zip(names, states))
        four, six = elect(v4, health, weight), elect(v6, health, weight)
        if four != six:
            return (f"when {describe_health(health)}, IPv4 elects {four} and IPv6 elects {six} "
                    "(a priority tie broken by each family's addresses)")
    return None


def combinations_count(n: int) -> int:
    return 3 ** n
