"""Speed profiles: named starting points for VRRP and check timing, each with what the lab
measured for it. A profile is written into the topology as plain values (nothing hidden); lint
names the profile a topology or keepalived.conf matches.

The numbers come from the lab (docs/speed.md, "Choosing a speed profile"): the gap is what a
client through the VIP saw when the holder dropped off the network (bench/floor.py, median of 5,
a client that gives up a connect after 50 ms), the pause is the longest freeze of the holder's
keepalived that never moved the VIP (bench/flap.py). False moves are the model's
(vrrp_timing.py), which bench/flap.py checked against measured counts. `safe` was measured
before checks got their own timeout (2026-11-29); that change can only shorten its gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model.vrrp_timing import RFC_DOWN_ADVERTS, false_moves_per_day, master_down_seconds

MEASURED_ON = "bench/flap.py and bench/floor.py, 2026-12-02, Debian 12, keepalived 2.2.7"
FIRST_BACKUP_PRIORITY = 140  # the takeover quoted is the default priorities' first backup (150/140/130)


@dataclass(frozen=True)
class Profile:
    name: str
    advert_int: float
    down_adverts: int
    check_fall: int
    check_rise: int
    use_when: str
    connect_timeout_ms: int  # HAProxy's, for clients: a vanished apiserver costs a client this once
    offline_gap_s: float  # measured
    pause_ok_s: float  # measured
    check_interval: int = 1

    @property
    def needs_new_keepalived(self) -> bool:
        """down_timer_adverts other than 3 exists from keepalived 2.2 (not Ubuntu 20.04's 2.0)."""
        return self.down_adverts != RFC_DOWN_ADVERTS

    def takeover_s(self) -> float:
        return master_down_seconds(self.advert_int, FIRST_BACKUP_PRIORITY, self.down_adverts)

    def false_moves_per_day(self, loss: float) -> float:
        return false_moves_per_day(loss, self.advert_int, self.down_adverts)

    def values(self) -> dict:
        """The topology keys this profile sets, as they are written into the file."""
        return {"vrrp": {"version": 3, "advert_int": self.advert_int, "down_adverts": self.down_adverts},
                "check": {"interval": self.check_interval, "fall": self.check_fall, "rise": self.check_rise,
                          "weight": 0, "connect_timeout_ms": self.connect_timeout_ms}}

    def matches(self, version: int, advert: float, adverts: int, check: tuple[int, int, int] | None) -> bool:
        """Same VRRP timing, and the same (interval, fall, rise) where the check is known."""
        same_vrrp = (version, adverts) == (3, self.down_adverts) and abs(advert - self.advert_int) < 1e-9
        return same_vrrp and (check is None or check == (self.check_interval, self.check_fall, self.check_rise))

    def describe(self) -> str:
        """One line with the numbers, as the wizard and lint show them."""
        return (f"{self.name}: adverts every {self.advert_int:g} s, takeover after {self.down_adverts} missed; "
                f"holder offline → API back in {self.offline_gap_s:.2f} s (measured); pauses up to "
                f"{self.pause_ok_s * 1000:.0f} ms ride through; expected false moves at 1 % VRRP loss: "
                f"{per_month(self.false_moves_per_day(0.01))}"
                + ("; needs keepalived 2.2+" if self.needs_new_keepalived else ""))


def per_month(per_day: float) -> str:
    month = per_day * 30
    if month >= 0.1:
        return f"{month:.1f} a month"
    years = 1 / (per_day * 365) if per_day > 0 else float("inf")
    return f"one in {years:,.0f} years" if years < 1000 else "under one in 1,000 years"


PROFILES = {p.name: p for p in (
    Profile("safe", 0.5, 6, 2, 2, "VMs that stall or migrate, busy links; one bad check moves nothing",
            connect_timeout_ms=500, offline_gap_s=3.21, pause_ok_s=2.5),
    Profile("default", 0.3, 3, 1, 2, "most clusters; every keepalived (Ubuntu 20.04's 2.0 too)",
            connect_timeout_ms=200, offline_gap_s=1.01, pause_ok_s=0.75),
    Profile("fast", 0.05, 6, 1, 2, "dedicated hosts, quiet network; 20 adverts/s (0.5 % of a core)",
            connect_timeout_ms=200, offline_gap_s=0.30, pause_ok_s=0.25),
)}


def get(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UserError(f"no speed profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def apply(data: dict, name: str) -> dict:
    """A topology dict with the profile's values in place (VRRPv3 has no PASS authentication)."""
    out = {**data, **{k: {**data.get(k, {}), **v} for k, v in get(name).values().items()}}
    out["vrrp"].pop("auth_pass", None)
    return out


def matching(version: int, advert: float, adverts: int, check: tuple[int, int, int] | None) -> Profile | None:
    return next((p for p in PROFILES.values() if p.matches(version, advert, adverts, check)), None)
