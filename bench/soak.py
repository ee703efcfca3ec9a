"""Hours of watching under churn (lab): does what the collector, the exporter and the monitor
show stay true, and does anything they hold grow?

Against the 3+3 lab with the defaults deployed, for --minutes: the collector the monitor uses
(in this process), the exporter (a child process, scraped every SAMPLE_S) and the monitor itself
(in a real terminal: tmux, its screen read every SAMPLE_S), all at a 1 s interval, while a seeded
churn injects one fault every 10-30 s and heals it: a node offline, keepalived or HAProxy killed
and started again, every SSH session on a node dropped (lab fault ssh-drop: what an sshd
restart with KillMode=control-group does), the holder's keepalived paused past its timer,
a VRRP loss burst on the holder, a split brain (a backup cut off from VRRP) and its heal, a
failover by the tool (the old holder out of maintenance again after a while). Ground truth:
the kernel's VIP events on every master (`ip monitor address`), without masters that are off
the network (nobody can reach a VIP there), and which nodes are off the network.

Reported: for each view, the share of seconds in which what it showed agreed with the truth
(holders; for the collector and the exporter also the split-brain flag and each node's
reachability), a second
within 2 intervals of a change in the truth excused and the time each change took to show
(p50/p99); what a view showed that was never true in the 5 s before; the time from each fault
to the first alarm naming its node (per kind); SSH connections the collector opened; RSS, open
file descriptors (and, in this process, asyncio tasks and SSH channels) at the start and every
--sample-minutes, as growth per hour; exporter scrape times.

usage: sudo .venv/bin/python bench/soak.py [--minutes 60] [--quick] [--seed 1] [--json]
       .venv/bin/python bench/soak.py --table RUN.json
Leaves the 3+3 lab up with the defaults deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from benchlib import VipWatch, cli, deploy, tool, vip_holders

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status import poll

INTERVAL = 1.0  # every view's
# how often the exporter's page and the monitor's screen are read: once a second added half a
# second on average to what they were measured to show late (a change between two reads)
SAMPLE_S = 0.25
EXCUSE_S = 2 * INTERVAL
NEVER_TRUE_WINDOW_S = 5.0
TRUTH_SKEW_S = 0.3  # the kernel's events reach this process's threads up to this late (a view was seen ahead of them)
MAX_MINUTES = 24 * 60
CHURN_GAP_S = (10, 30)
KINDS = ("offline", "keepalived-down", "haproxy-down", "ssh-drop", "pause", "vrrp-loss", "split-brain", "failover")
ALARMED = {"offline", "keepalived-down", "haproxy-down", "split-brain"}  # an alarm should name the node
SESSION = "k8s-ha-soak"
HOLDER_LINE = re.compile(r"VIP \S+\s+→\s+(.+?)\s+\[")


class Timeline:
    """(when, value) observations of one view, in time order; the value shown at a moment."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.values: list = []

    def add(self, when: float, value) -> None:
        if self.values and self.values[-1] == value:
            return
        self.times.append(when)
        self.values.append(value)

    def at(self, when: float):
        i = bisect.bisect_right(self.times, when) - 1
        return self.values[i] if i >= 0 else None


class Recorded:
    """The kernel's VIP events of an earlier run (its JSON's raw part), in VipWatch's place."""

    def __init__(self, initial: list[str], events: list[list]):
        self.initial, self.events = initial, [(t, n, a) for t, n, a in events]

    def close(self) -> None:
        pass


class Truth:
    """The kernel's VIP holders on the network, and who is off it."""

    def __init__(self, masters: list[str], nodes: list[str], watch: VipWatch | Recorded | None = None):
        self.masters, self.nodes = masters, nodes
        self.watch = watch or VipWatch(masters)
        self.offline: list[tuple[str, float, float]] = []  # (node, from, until: inf while off)

    def finish(self) -> None:
        """Stop listening; the kernel's holders as a timeline, for the comparisons."""
        self.watch.close()
        self.kernel = Timeline()
        held = set(self.watch.initial)
        self.kernel.add(float("-inf"), frozenset(held))
        for when, node, added in sorted(self.watch.events):
            (held.add if added else held.discard)(node)
            self.kernel.add(when, frozenset(held))

    def off_at(self, node: str, t: float) -> bool:
        return any(n == node and a <= t < b for n, a, b in self.offline)

    def holders_at(self, t: float) -> tuple[str, ...]:
        return tuple(sorted(n for n in self.kernel.at(t) if not self.off_at(n, t)))

    def reachable_at(self, t: float) -> dict[str, bool]:
        return {n: not self.off_at(n, t) for n in self.nodes}

    def changes(self) -> list[float]:
        """Every moment the truth may have changed."""
        marks = [when for when, _, _ in self.watch.events]
        marks += [t for _, a, b in self.offline for t in (a, b) if t != float("inf")]
        return sorted(marks)


def compare(view: Timeline, truth: Callable[[float], object], changes: list[float], start: float, end: float) -> dict:
    """Seconds agreeing (excused: within EXCUSE_S after a change), each change's time to show, and
    what the view showed that was not true at any moment in the NEVER_TRUE_WINDOW_S before (or
    TRUTH_SKEW_S after: the truth is recorded by threads of this busy process)."""
    changes = [c for c in changes if truth(c - 1e-6) != truth(c)]  # only what changes this view's truth
    agree = counted = excused = 0
    t = start
    while t < end:
        shown = view.at(t)
        if shown is not None:
            if shown == truth(t):
                agree += 1
                counted += 1
            elif any(0 <= t - c <= EXCUSE_S for c in changes[bisect.bisect_left(changes, t - EXCUSE_S):]
                     if c <= t):
                excused += 1
            else:
                counted += 1
        t += 1.0
    lags = []
    for i, c in enumerate(changes):
        if not start <= c < end or (i + 1 < len(changes) and changes[i + 1] - c < EXCUSE_S):
            continue
        wanted = truth(c + 0.05)
        j = bisect.bisect_left(view.times, c - 1.0)
        seen = c if view.at(c) == wanted else next(  # shown already (a change this view saw first)
            (view.times[k] for k in range(j, len(view.times)) if view.values[k] == wanted), None)
        if seen is not None and (i + 1 >= len(changes) or seen <= changes[i + 1]):
            lags.append(max(0.0, seen - c))
    false = []
    for when, value in zip(view.times, view.values):
        if not start <= when < end:
            continue
        probes = [when - NEVER_TRUE_WINDOW_S, when] + [c + 0.01 for c in changes
                                                       if when - NEVER_TRUE_WINDOW_S <= c <= when + TRUTH_SKEW_S]
        if all(truth(p) != value for p in probes):
            false.append({"at_s": round(when - start, 1), "shown": value, "truth": truth(when)})
    return {"agree_pct": round(100 * agree / counted, 3) if counted else None, "seconds": counted,
            "excused": excused, "lag_p50_s": quantile(lags, 0.5), "lag_p99_s": quantile(lags, 0.99),
            "changes_timed": len(lags), "never_true": false}


def judge(shown: dict[str, Timeline], truth: Truth, start: float, end: float) -> dict:
    """Every view against the truth it shows: holders, split brain (two holders), reachability."""
    changes = truth.changes()
    what = {"holders": truth.holders_at, "split brain": lambda t: len(truth.holders_at(t)) > 1,
            "reachability": truth.reachable_at}
    return {name: compare(view, what[name.split(": ")[1]], changes, start, end) for name, view in shown.items()}


def rejudge(run: dict) -> dict:
    """An earlier run judged again from its raw timelines (times are seconds since its start)."""
    raw = run["raw"]
    masters = sorted({n for _, n, _ in raw["kernel"]["events"]} | set(raw["kernel"]["initial"]))
    nodes = sorted(next(iter(v for _, v in raw["views"]["collector: reachability"])).keys())
    truth = Truth(masters, nodes, Recorded(raw["kernel"]["initial"], raw["kernel"]["events"]))
    truth.offline = [(n, a, float("inf") if b is None else b) for n, a, b in raw["offline"]]
    truth.finish()
    shown = {}
    for name, points in raw["views"].items():
        shown[name] = Timeline()
        for t, v in points:
            shown[name].add(t, tuple(v) if isinstance(v, list) else v)
    views = judge(shown, truth, 0.0, run["minutes"] * 60)
    log = [{"at": e["at_s"], "kind": e["kind"], "node": e["node"]} for e in run["churn"]]
    for v in views.values():
        for item in v["never_true"]:
            item["after"] = last_fault(log, item["at_s"], 0.0)
    return {**run, "views": views}


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


# --- the views ---------------------------------------------------------------------------------

def proc_sample(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1), "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": int(status["Threads"])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    """The exporter as a child process, scraped every SAMPLE_S: holders, split brain, reachability,
    scrape time."""

    def __init__(self, topo_path: Path):
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.proc = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "exporter", "-t", str(topo_path),
                                      "--listen", f"127.0.0.1:{port}", "--interval", f"{INTERVAL:g}"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.holders, self.split, self.reach = Timeline(), Timeline(), Timeline()
        self.scrape_ms: list[float] = []
        self.failed = 0

    def scrape(self) -> None:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(self.url, timeout=5) as r:
                body = r.read().decode()
        except OSError:
            self.failed += 1
            return
        now = time.monotonic()
        self.scrape_ms.append((now - started) * 1000)
        if "k8s_ha_last_collect_timestamp_seconds{" not in body:
            return  # nothing collected yet: it shows nothing
        held = tuple(sorted(m.group(1) for m in re.finditer(r'k8s_ha_vip_holder\{[^}]*node="([^"]+)"[^}]*\} 1', body)))
        self.holders.add(now, held)
        split = re.search(r"k8s_ha_split_brain\{[^}]*\} (\S+)", body)
        if split:
            self.split.add(now, float(split.group(1)) > 0)
        reach = {m.group(1): float(m.group(2)) > 0 for m in re.finditer(
            r'k8s_ha_node_reachable\{[^}]*node="([^"]+)"[^}]*\} (\S+)', body)}
        if reach:
            self.reach.add(now, reach)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


class Monitor:
    """The monitor in tmux at 120x40; the holders its banner shows, read every SAMPLE_S."""

    def __init__(self, topo_path: Path):
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        exe = Path(sys.executable).parent / "k8s-ha-tui"
        subprocess.run(["tmux", "new-session", "-d", "-s", SESSION, "-x", "120", "-y", "40",
                        f"exec {shlex.quote(str(exe))} monitor -t {shlex.quote(str(topo_path))} --interval {INTERVAL:g}"],
                       check=True)
        self.pid = int(subprocess.run(["tmux", "list-panes", "-t", SESSION, "-F", "#{pane_pid}"],
                                      capture_output=True, text=True, check=True).stdout.split()[0])
        self.holders = Timeline()

    def read(self) -> None:
        screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", SESSION], capture_output=True, text=True).stdout
        now = time.monotonic()
        m = HOLDER_LINE.search(screen)
        if m:
            text = m.group(1).strip()
            self.holders.add(now, () if text == "NOBODY" else tuple(sorted(text.split(", "))))

    def stop(self) -> None:
        subprocess.run(["tmux", "send-keys", "-t", SESSION, "q"], capture_output=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.2)
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)


# --- the churn ---------------------------------------------------------------------------------

class Churn(threading.Thread):
    """One fault at a time, every CHURN_GAP_S, each healed before the next; bounded by `until`."""

    def __init__(self, rng: random.Random, truth: Truth, topo_path: Path, until: float, masters: list[str],
                 workers: list[str]):
        super().__init__(daemon=True)
        self.rng, self.truth, self.topo_path, self.until = rng, truth, topo_path, until
        self.masters, self.workers = masters, workers
        self.log: list[dict] = []
        self.error: str | None = None

    def run(self) -> None:
        try:
            while time.monotonic() + CHURN_GAP_S[1] + 20 < self.until:
                time.sleep(self.rng.uniform(*CHURN_GAP_S))
                self.one(self.rng.choice(KINDS))
        except (Exception, SystemExit) as exc:  # the report says the churn stopped, and why
            self.error = f"{type(exc).__name__}: {exc}"
            state = cluster.LabState.load(cluster.lab_paths())
            for node in [n for n, kinds in (state.faults.items() if state else []) if kinds]:
                cluster.heal(node)  # nothing left behind

    def one(self, kind: str) -> None:
        holders = vip_holders(self.masters)
        holder = holders[0] if holders else self.masters[0]
        backups = [m for m in self.masters if m != holder]
        hold = self.rng.uniform(4, 12)
        if kind == "offline":
            node = self.rng.choice(self.masters + self.workers)
            cluster.fault(node, "offline")
            began = time.monotonic()
            self.truth.offline.append((node, began, float("inf")))
            time.sleep(hold)
            cluster.heal(node, "offline")
            self.truth.offline[-1] = (node, began, time.monotonic())
        elif kind in ("keepalived-down", "haproxy-down"):
            node = self.rng.choice(self.masters)
            cluster.fault(node, kind)
            began = time.monotonic()
            time.sleep(hold)
            cluster.heal(node, kind)
        elif kind == "ssh-drop":
            node = self.rng.choice(self.masters + self.workers)
            began = time.monotonic()
            cluster.fault(node, "ssh-drop")
        elif kind == "pause":
            node = holder
            began = time.monotonic()
            cluster.fault(node, "pause", 2000)  # past the default's ~1 s timer: the VIP moves
        elif kind == "vrrp-loss":
            node = holder
            cluster.fault(node, "vrrp-loss", 30)
            began = time.monotonic()
            time.sleep(hold)
            cluster.heal(node, "vrrp-loss")
        elif kind == "split-brain":
            node = self.rng.choice(backups)
            cluster.fault(node, "vrrp-drop")
            began = time.monotonic()
            time.sleep(hold)
            cluster.heal(node, "vrrp-drop")
        else:
            node = holder
            began = time.monotonic()
            if cli("failover", "-t", str(self.topo_path), "--yes", timeout=60).returncode == 3:
                kind = "failover-refused"  # the interlocks said no (the log says so; the churn goes on)
            else:  # the planned work done (or a failover that failed half-way): the old holder back in service
                time.sleep(hold)
                tool("maintenance", "-t", str(self.topo_path), node, "off", "--yes", timeout=60)
        self.log.append({"kind": kind, "node": node, "at": began})


def detections(log: list[dict], alarms: Timeline, end: float) -> dict:
    """Per fault kind that should raise an alarm naming its node: seconds until one did."""
    out: dict[str, list] = {}
    for event in log:
        if event["kind"] not in ALARMED:
            continue
        j = bisect.bisect_left(alarms.times, event["at"])
        seen = next((alarms.times[k] for k in range(j, len(alarms.times))
                     if alarms.times[k] < min(end, event["at"] + 30) and any(event["node"] in a for a in alarms.values[k])),
                    None)
        out.setdefault(event["kind"], []).append(None if seen is None else round(seen - event["at"], 2))
    return {k: {"faults": len(v), "missed": v.count(None), "p50_s": quantile([x for x in v if x is not None], 0.5),
                "max_s": max((x for x in v if x is not None), default=None)} for k, v in out.items()}


# --- the run -----------------------------------------------------------------------------------

async def soak(args: argparse.Namespace) -> dict:
    topo_path = cluster.up(3, 3, log=lambda _m: None)
    deploy(topo_path)
    topo = topology.load_topology(topo_path)
    masters = [m.name for m in topo.masters]
    workers = [w.name for w in topo.workers]
    truth = Truth(masters, masters + workers)
    connects = [0]
    real_connect = poll.connect

    async def counting_connect(*a, **kw):
        connects[0] += 1
        return await real_connect(*a, **kw)

    poll.connect = counting_connect
    holders, split, reach, alarms = Timeline(), Timeline(), Timeline(), Timeline()

    def on_snapshot(snap) -> None:
        now = time.monotonic()
        holders.add(now, tuple(sorted(snap.holders)))
        split.add(now, snap.split_brain)
        reach.add(now, {n.name: n.reachable for n in (*snap.masters, *snap.workers)})
        alarms.add(now, tuple(snap.alarms))

    collector = poll.Collector(topo, policy_for(topo), interval=INTERVAL, on_snapshot=on_snapshot)
    task = asyncio.ensure_future(collector.run())
    exporter, monitor = Exporter(topo_path), Monitor(topo_path)
    await asyncio.sleep(10)  # everyone connected and showing
    start = time.monotonic()
    end = start + args.minutes * 60
    churn = Churn(random.Random(args.seed), truth, topo_path, end, masters, workers)
    churn.start()
    samples: list[dict] = []

    def sample() -> None:
        channels = sum(len(getattr(s.conn.conn, "_channels", {})) for s in collector.sessions if s.conn is not None)
        samples.append({"at_min": round((time.monotonic() - start) / 60, 1),
                        "collector": {**proc_sample(os.getpid()), "tasks": len(asyncio.all_tasks()),
                                      "ssh_channels": channels},
                        "exporter": proc_sample(exporter.proc.pid), "monitor": proc_sample(monitor.pid)})

    sample()
    next_sample = start + args.sample_minutes * 60
    try:
        while time.monotonic() < end:
            began = time.monotonic()
            await asyncio.to_thread(exporter.scrape)
            await asyncio.to_thread(monitor.read)
            if time.monotonic() >= next_sample:
                sample()
                next_sample += args.sample_minutes * 60
            await asyncio.sleep(max(0.0, SAMPLE_S - (time.monotonic() - began)))
        sample()
    finally:
        churn.join(timeout=300)  # a fault under way is healed first
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        collector.close()
        exporter.stop()
        monitor.stop()
        truth.finish()
        poll.connect = real_connect
    shown = {"collector: holders": holders, "collector: split brain": split, "collector: reachability": reach,
             "exporter: holders": exporter.holders, "exporter: split brain": exporter.split,
             "exporter: reachability": exporter.reach,
             "monitor: holders": monitor.holders}
    views = judge(shown, truth, start, end)
    growth = growth_per_hour(samples)
    raw = {"views": {name: [[round(t - start, 3), v] for t, v in zip(tl.times, tl.values) if t > float("-inf")]
                     for name, tl in shown.items()},
           "kernel": {"initial": sorted(truth.watch.initial),
                      "events": [[round(t - start, 3), n, a] for t, n, a in sorted(truth.watch.events)]},
           "offline": [[n, round(a - start, 3), None if b == float("inf") else round(b - start, 3)]
                       for n, a, b in truth.offline]}  # to judge the run again with another rule
    for v in views.values():
        for item in v["never_true"]:
            item["after"] = last_fault(churn.log, start + item["at_s"], start)
    kinds: dict[str, int] = {}
    for e in churn.log:
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    return {"when": time.strftime("%Y-%m-%d"), "minutes": args.minutes, "seed": args.seed,
            "faults": kinds, "churn_error": churn.error, "views": views,
            "churn": [{"at_s": round(e["at"] - start, 1), "kind": e["kind"], "node": e["node"]} for e in churn.log],
            "detection": detections(churn.log, alarms, end), "ssh_connects": connects[0],
            "samples": samples, "growth_per_hour": growth, "raw": raw,
            "scrape_ms": {"p50": quantile(exporter.scrape_ms, 0.5), "p99": quantile(exporter.scrape_ms, 0.99),
                          "max": round(max(exporter.scrape_ms), 1) if exporter.scrape_ms else None,
                          "failed": exporter.failed}}


def growth_per_hour(samples: list[dict]) -> dict:
    """Per process and resource: the change per hour after the first sample period (caches
    and connections fill during it), or over the whole run where there is no later sample."""
    first = samples[1] if len(samples) > 2 else samples[0]
    hours = max((samples[-1]["at_min"] - first["at_min"]) / 60, 1e-9)
    return {who: {k: round((samples[-1][who][k] - first[who][k]) / hours, 1) for k in first[who]}
            for who in first if who != "at_min"}


def last_fault(log: list[dict], when: float, start: float) -> str:
    """The fault before `when`, for a line of the report: "offline k8s-node-01 3.2 s before"."""
    before = [e for e in log if e["at"] <= when]
    return f"{before[-1]['kind']} {before[-1]['node']} {when - before[-1]['at']:.1f} s before" if before \
        else f"{when - start:.1f} s after the start, no fault yet"


def table(r: dict) -> str:
    lines = [f"{r['minutes']:g} min, seed {r['seed']}, faults: "
             + ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()))
             + (f"; the churn stopped: {r['churn_error']}" if r.get("churn_error") else ""), ""]
    head = f"{'view':<26} {'agree %':>8} {'seconds':>8} {'excused':>8} {'change shown p50/p99 (s)':>25} {'never true':>10}"
    lines += [head, "-" * len(head)]
    for name, v in r["views"].items():
        lines.append(f"{name:<26} {v['agree_pct']!s:>8} {v['seconds']:>8} {v['excused']:>8} "
                     f"{v['lag_p50_s']!s:>12}/{v['lag_p99_s']!s:<12} {len(v['never_true']):>10}")
    lines += ["", "alarm naming the node after the fault: " + "; ".join(
        f"{k} {d['p50_s']} s p50, {d['max_s']} s max ({d['faults']} faults, {d['missed']} missed)"
        for k, d in sorted(r["detection"].items())),
        f"SSH connections the collector opened: {r['ssh_connects']}; exporter scrapes: p50 {r['scrape_ms']['p50']} ms, "
        f"p99 {r['scrape_ms']['p99']} ms, max {r['scrape_ms']['max']} ms, {r['scrape_ms']['failed']} failed", ""]
    first, last = r["samples"][0], r["samples"][-1]
    if len(r["samples"]) > 2:
        lines.append(f"resources at the start -> the end (growth per hour from the "
                     f"{r['samples'][1]['at_min']:g}-minute sample on):")
    for who in ("collector", "exporter", "monitor"):
        lines.append(f"{who:<10} " + ", ".join(f"{k} {first[who][k]} -> {last[who][k]} ({r['growth_per_hour'][who][k]:+}/h)"
                                              for k in first[who]))
    for name, v in r["views"].items():
        for item in v["never_true"][:5]:
            lines.append(f"never true: {name} at {item['at_s']} s showed {item['shown']} (truth {item['truth']}; "
                         f"{item.get('after', '?')})")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60, help=f"length of the churn (1-{MAX_MINUTES}; default 60)")
    ap.add_argument("--quick", action="store_true", help="--minutes 8 --sample-minutes 2")
    ap.add_argument("--sample-minutes", type=float, default=10, help="resources sampled this often (default 10)")
    ap.add_argument("--seed", type=int, default=1, help="the churn's random seed (default 1)")
    ap.add_argument("--json", action="store_true", help="the results as JSON instead of the table")
    ap.add_argument("--table", metavar="FILE", help="print the table of an earlier --json run and stop")
    ap.add_argument("--rejudge", metavar="FILE", help="judge an earlier --json run again from its raw timelines")
    args = ap.parse_args()
    if args.table or args.rejudge:
        run = json.loads(Path(args.table or args.rejudge).read_text())
        run = rejudge(run) if args.rejudge else run
        print(json.dumps(run, indent=2) if args.json else table(run))
        return 0
    if args.quick:
        args.minutes, args.sample_minutes = 8, 2
    if not 1 <= args.minutes <= MAX_MINUTES or not 0.5 <= args.sample_minutes <= args.minutes:
        raise SystemExit(f"--minutes 1-{MAX_MINUTES}, --sample-minutes 0.5 up to --minutes")
    result = asyncio.run(soak(args))
    print(json.dumps(result, indent=2) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
