"""How fast VRRP timing can go before it moves the VIP by mistake: false moves under packet loss
and pauses, against the model, and the client-visible gap on real faults (lab).

For each setting (advert interval A, adverts N a backup misses before it takes over; N = 3 is
the RFC, N > 3 is keepalived's down_timer_adverts), deployed with `k8s-ha-tui deploy`:
  idle     10 s with no fault: keepalived's CPU on the holder, and no VIP move expected;
  loss     VRRP loss p on the holder (`lab fault vrrp-loss`, in and out) for --loss-seconds, p
           chosen so the model expects ~8 false moves: a false move is a backup adding the VIP
           while the holder is fine. Model (vrrp_timing.py): (1 - p) p^N per advert interval.
           Printed: measured / expected, and whether they agree (outside both 0.5 % Poisson tails);
           then the model's false moves a day at 0.1 % and 1 % loss (too rare to wait for);
  pause    the holder's keepalived frozen (`lab fault pause`) for a ladder of lengths,
           --tries times each at a random phase: the longest pause that never moved the VIP,
           and whether 250 ms did; one pause of a backup past its timer (does it claim the
           VIP when it thaws, before it reads the adverts queued meanwhile?);
  gap      holder offline, keepalived killed on the holder, controlled failover: the 20 req/s
           TLS client loop through the VIP (bench/failover.py's runs), --runs times, median.
Every phase is bounded; the whole run prints its own time (default settings: ~26 min, --quick ~12).

usage: sudo .venv/bin/python bench/flap.py [--settings 0.05x3,0.1x5,...] [--loss-seconds 60]
       [--tries 3] [--runs 3] [--quick] [--json]
       .venv/bin/python bench/flap.py --table RUN.json
Leaves the 3+3 lab up with the plain defaults deployed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from benchlib import VipWatch, deploy
from failover import Config, run_once, settled_holder

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.model import topology
from k8s_ha_tui.model.profiles import FIRST_BACKUP_PRIORITY
from k8s_ha_tui.model.vrrp_timing import (
    false_moves_per_day,
    master_down_seconds,
    pause_always_survived,
    pause_never_survived,
)

DEFAULT_SETTINGS = "0.05x3,0.1x3,0.2x3,0.5x3,1x3,0.05x8,0.1x5,0.5x6"
GAP_SCENARIOS = {"offline": "holder offline", "keepalived-down": "keepalived killed", "failover": "failover"}
EXPECTED_IN_LOSS_RUN = 8
MAX_LOSS = 0.8
PAUSE_LADDER_S = (0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
TARGET_PAUSE_S = 0.25
IDLE_S = 10


@dataclass(frozen=True)
class Setting:
    advert: float
    adverts: int

    @property
    def label(self) -> str:
        return f"{self.advert:g}x{self.adverts}"

    @classmethod
    def parse(cls, text: str) -> Setting:
        advert, _, adverts = text.partition("x")
        return cls(float(advert), int(adverts or 3))

    def down_s(self) -> float:
        return master_down_seconds(self.advert, FIRST_BACKUP_PRIORITY, self.adverts)


def loss_for(setting: Setting, seconds: float) -> float:
    """The loss at which the model expects EXPECTED_IN_LOSS_RUN false moves in `seconds`."""
    lo, hi = 0.0, MAX_LOSS
    for _ in range(40):
        mid = (lo + hi) / 2
        per_s = false_moves_per_day(mid, setting.advert, setting.adverts) / 86_400
        lo, hi = (mid, hi) if per_s * seconds < EXPECTED_IN_LOSS_RUN else (lo, mid)
    return round(hi, 3)


def poisson_cdf(k: int, mean: float) -> float:
    term = total = math.exp(-mean)
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return total


def poisson_agrees(measured: int, expected: float) -> bool:
    """A count of rare independent events agrees with the model unless it is in either 0.5 % tail."""
    below = poisson_cdf(measured, expected)
    above = 1 - poisson_cdf(measured - 1, expected) if measured > 0 else 1.0
    return below > 0.005 and above > 0.005


def backup_takeovers(watch: VipWatch, holder: str, since: float, until: float) -> int:
    """How many times some node other than `holder` began to hold the VIP in [since, until]."""
    others: set[str] = set()
    count = 0
    for t, node, added in sorted(watch.events):
        if node == holder:
            continue
        before = bool(others)
        (others.add if added else others.discard)(node)
        if since <= t <= until and not before and others:
            count += 1
    return count


def keepalived_cpu_s(node: str) -> float:
    """CPU seconds used so far by the node's keepalived processes (its /proc, through its init)."""
    state = cluster.LabState.load(cluster.lab_paths())
    assert state is not None
    root = Path(f"/proc/{state.init(node)}/root/proc")
    total = 0
    for stat in root.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(keepalived)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def idle_phase(config: Config, masters: list[str]) -> dict:
    holder = settled_holder(config)
    watch = VipWatch(masters)
    cpu0, t0 = keepalived_cpu_s(holder), time.monotonic()
    time.sleep(IDLE_S)  # the measurement window itself, not a wait for anything
    cpu = (keepalived_cpu_s(holder) - cpu0) / (time.monotonic() - t0)
    moves = backup_takeovers(watch, holder, t0, time.monotonic())
    watch.close()
    return {"keepalived_cpu_pct": round(cpu * 100, 2), "idle_moves": moves}


def loss_phase(config: Config, setting: Setting, masters: list[str], seconds: float) -> dict:
    holder = settled_holder(config)
    loss = loss_for(setting, seconds)
    watch = VipWatch(masters)
    t0 = time.monotonic()
    cluster.fault(holder, "vrrp-loss", loss * 100)
    try:
        time.sleep(seconds)  # the measurement window
    finally:
        cluster.heal(holder, "vrrp-loss")
    t1 = time.monotonic()
    measured = backup_takeovers(watch, holder, t0, t1)
    watch.close()
    expected = false_moves_per_day(loss, setting.advert, setting.adverts) / 86_400 * (t1 - t0)
    return {"loss": loss, "loss_seconds": round(t1 - t0, 1), "false_moves": measured,
            "expected": round(expected, 2), "agrees": poisson_agrees(measured, expected)}


def pause_phase(config: Config, setting: Setting, masters: list[str], tries: int) -> dict:
    """Pauses of the holder from about half the always-survived length to past the timer."""
    low = pause_always_survived(setting.advert, FIRST_BACKUP_PRIORITY, setting.adverts) / 2
    high = pause_never_survived(setting.advert, FIRST_BACKUP_PRIORITY, setting.adverts) * 1.3
    ladder = sorted({p for p in PAUSE_LADDER_S if low <= p <= high} | {TARGET_PAUSE_S})
    moved_at: dict[float, int] = {}
    for pause in ladder:
        moved_at[pause] = 0
        for _ in range(tries):
            holder = settled_holder(config)
            watch = VipWatch(masters)
            time.sleep(random.uniform(0, setting.advert))  # a random phase against the adverts
            t0 = time.monotonic()
            cluster.fault(holder, "pause", pause * 1000)
            # A move, if any, shows within one master-down interval of the thaw.
            time.sleep(max(0.0, t0 + pause + setting.down_s() + 0.2 - time.monotonic()))
            moved_at[pause] += backup_takeovers(watch, holder, t0, time.monotonic()) > 0
            watch.close()
    survived = [p for p in ladder if moved_at[p] == 0]
    longest = max((p for p in survived if all(moved_at[q] == 0 for q in ladder if q < p)), default=None)
    # A backup frozen past its timer: does it claim the VIP when it thaws?
    holder = settled_holder(config)
    watch = VipWatch(masters)
    backup = masters[1]
    t0 = time.monotonic()
    cluster.fault(backup, "pause", setting.down_s() * 1.5 * 1000)
    time.sleep(max(0.0, t0 + setting.down_s() * 2.5 + 0.3 - time.monotonic()))
    backup_claims = backup_takeovers(watch, holder, t0, time.monotonic())
    watch.close()
    return {"pauses": {f"{p:g}": f"{moved_at[p]}/{tries}" for p in ladder},
            "longest_pause_survived_s": longest, "survives_250ms": moved_at[TARGET_PAUSE_S] == 0,
            "model_always_survived_s": round(pause_always_survived(setting.advert, FIRST_BACKUP_PRIORITY,
                                                                   setting.adverts), 3),
            "backup_thaw_claims": backup_claims}


def gap_phase(config: Config, runs: int) -> dict:
    out = {}
    for scenario in GAP_SCENARIOS:
        gaps = [run_once(config, scenario, window=30)["longest_gap_ms"] for _ in range(runs)]
        out[scenario] = {"median_ms": statistics.median(gaps), "runs_ms": gaps}
    return out


def make_config(base: Path, workdir: Path, setting: Setting) -> Config:
    data = yaml.safe_load(base.read_text())
    data["vrrp"] = {"router_id": data["vrrp"]["router_id"], "version": 3, "advert_int": setting.advert,
                    "down_adverts": setting.adverts}
    data.pop("check", None)
    topo = topology.topology_from_dict(data, setting.label)
    path = workdir / f"{setting.label}.yaml"
    topology.save_topology(topo, path)
    return Config(setting.label, path, topo, None)


# --- the table ---------------------------------------------------------------------------------

def per_day(value: float) -> str:
    return f"{value:.2f}" if value >= 0.01 else f"{value:.0e}"


def table(results: list[dict]) -> str:
    head = (f"{'setting':<8} {'takeover':>8} {'test loss':>9} {'false moves':>13} {'agree':>5} {'/day@0.1%':>10} "
            f"{'/day@1%':>10} {'pause ok':>9} {'250ms':>5} {'backup':>6} {'cpu%':>5} "
            f"{'offline':>8} {'ka kill':>8} {'failover':>8}")
    lines = [head, "-" * len(head)]
    for r in results:
        s = Setting.parse(r["setting"])
        lo, pa, gp = r["loss"], r["pause"], r["gap"]
        agrees = poisson_agrees(lo["false_moves"], lo["expected"])
        lines.append(
            f"{r['setting']:<8} {s.down_s():>7.2f}s {lo['loss'] * 100:>8.1f}% "
            f"{lo['false_moves']:>5}/{lo['expected']:<7.1f} {'yes' if agrees else 'NO':>5} "
            f"{per_day(false_moves_per_day(0.001, s.advert, s.adverts)):>10} "
            f"{per_day(false_moves_per_day(0.01, s.advert, s.adverts)):>10} "
            f"{(pa['longest_pause_survived_s'] or 0) * 1000:>7.0f}ms {'yes' if pa['survives_250ms'] else 'no':>5} "
            f"{'claims' if pa['backup_thaw_claims'] else 'ok':>6} {r['idle']['keepalived_cpu_pct']:>5.1f} "
            + " ".join(f"{gp[k]['median_ms'] / 1000:>7.2f}s" for k in GAP_SCENARIOS))
    measured = sum(r["loss"]["false_moves"] for r in results)
    expected = sum(r["loss"]["expected"] for r in results)
    lines.append(f"false moves under loss, all settings: {measured} measured, {expected:.1f} expected by the model "
                 f"({'agree' if poisson_agrees(measured, expected) else 'DISAGREE'}: Poisson, 99 %)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--settings", default=DEFAULT_SETTINGS, help="ADVERTxN, comma-separated (default %(default)s)")
    ap.add_argument("--loss-seconds", type=float, default=60, help="each loss run (s, 10-600; default 60)")
    ap.add_argument("--tries", type=int, default=3, help="pauses of each length (1-10; default 3)")
    ap.add_argument("--runs", type=int, default=3, help="runs of each real fault (1-10; default 3)")
    ap.add_argument("--quick", action="store_true", help="--loss-seconds 30 --tries 1 --runs 1")
    ap.add_argument("--json", action="store_true", help="the results as JSON instead of the table")
    ap.add_argument("--table", metavar="FILE", help="print the table of an earlier --json run and stop")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["results"]))
        return 0
    if args.quick:
        args.loss_seconds, args.tries, args.runs = 30, 1, 1
    try:
        settings = [Setting.parse(s) for s in args.settings.split(",")]
    except ValueError:
        ap.error("--settings: ADVERTxN, e.g. 0.1x5")
    if not (10 <= args.loss_seconds <= 600 and 1 <= args.tries <= 10 and 1 <= args.runs <= 10):
        ap.error("--loss-seconds 10-600, --tries 1-10, --runs 1-10")

    started = time.monotonic()
    base = cluster.up(3, 3, log=lambda _m: None)
    masters = [m.name for m in topology.load_topology(base).masters]
    results = []
    with tempfile.TemporaryDirectory(prefix="k8s-ha-flap-") as tmp:
        for setting in settings:
            config = make_config(base, Path(tmp), setting)
            seconds = deploy(config.topology)
            print(f"{setting.label}: deployed in {seconds:.0f} s", file=sys.stderr)
            r = {"setting": setting.label, "idle": idle_phase(config, masters)}
            r["loss"] = loss_phase(config, setting, masters, args.loss_seconds)
            print(f"  loss {r['loss']}", file=sys.stderr)
            r["pause"] = pause_phase(config, setting, masters, args.tries)
            print(f"  pause {r['pause']}", file=sys.stderr)
            r["gap"] = gap_phase(config, args.runs)
            print(f"  gap {r['gap']}", file=sys.stderr)
            results.append(r)
        deploy(base)  # leave the lab with the plain defaults
    took = time.monotonic() - started
    if args.json:
        print(json.dumps({"when": time.strftime("%Y-%m-%d"), "machine": f"{os.cpu_count()} cores",
                          "seconds": round(took), "loss_seconds": args.loss_seconds, "tries": args.tries,
                          "runs": args.runs, "results": results}, indent=2))
    else:
        print(table(results))
        print(f"whole run: {took / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
