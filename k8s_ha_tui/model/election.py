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
        failed = [n for n, h in self.health.items() if h is Health.CHECK_FAILED]
        dead = [n for n, h in self.health.items() if h is Health.DEAD]
        parts = [f"check failed on {', '.join(failed)}"]
        if dead:
            parts.append(f"{', '.join(dead)} down")
        return f"when {' and '.join(parts)}, {self.winner} keeps the VIP although a healthy master exists"


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


def combinations_count(n: int) -> int:
    return 3 ** n
