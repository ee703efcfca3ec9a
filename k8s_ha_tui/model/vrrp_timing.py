"""VRRP timing arithmetic: how soon a backup takes over, and how often it does so by mistake.

A backup restarts its master-down timer on every advert it hears and takes the VIP when the
timer runs out: `adverts` × advert interval + skew, skew = (256 − priority) / 256 × interval
(RFC 5798: three adverts; keepalived ≥ 2.2 lets `down_timer_adverts` set the count). Since the
skew is under one interval, a backup takes over by mistake exactly when that many adverts in a
row are lost, and a frozen holder keeps the VIP as long as its silence stays under the timer.
bench/flap.py measures both in the lab against these formulas.
"""

from __future__ import annotations

RFC_DOWN_ADVERTS = 3
SECONDS_PER_DAY = 86_400


def master_down_seconds(advert: float, priority: int = 100, adverts: int = RFC_DOWN_ADVERTS) -> float:
    """How long a backup of `priority` waits, after the last advert it heard, to take the VIP."""
    return adverts * advert + (256 - priority) / 256 * advert


def false_moves_per_day(loss: float, advert: float, adverts: int = RFC_DOWN_ADVERTS) -> float:
    """Expected takeovers a day with no real fault, when each advert is lost with probability
    `loss` (0-1, independently): one for every heard advert followed by `adverts` lost ones."""
    return SECONDS_PER_DAY / advert * (1 - loss) * loss ** adverts


def pause_always_survived(advert: float, priority: int = 100, adverts: int = RFC_DOWN_ADVERTS) -> float:
    """The longest freeze of the holder (s) that never moves the VIP, whenever it starts: the
    holder's last advert may be up to one interval older than the freeze."""
    return master_down_seconds(advert, priority, adverts) - advert


def pause_never_survived(advert: float, priority: int = 100, adverts: int = RFC_DOWN_ADVERTS) -> float:
    """A freeze of the holder longer than this (s) always moves the VIP."""
    return master_down_seconds(advert, priority, adverts)
