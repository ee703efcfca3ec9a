"""How long the Kubernetes API is gone through the VIP when something breaks: seed vs ours (lab).

Two configurations rendered from the lab's topology and deployed in turn:
- seed: the seed script's settings — check interval 3, fall 10, rise 2, weight -2, VRRPv2 with
  1 s adverts and PASS auth, priorities 149/148/147, its check script (local apiserver + the VIP)
  and its HAProxy settings (bench/seed_templates; only its two fatal defects repaired);
- ours: the topology model's defaults and the packaged templates (`--set` tries other values).
For each scenario, on the VIP holder, --runs times: a client loop opens a fresh TLS connection to
https://VIP:8443/readyz 20 times a second; the fault is injected (or the tool's own `failover`
runs); the kernel's address events say when another master gets the VIP. Printed per cell: time
to a new holder, requests failed, longest gap without a success — median and spread — and the
ratio seed/ours. A run ends when the configuration's own detection time has passed and the API
has answered for 3 s (or after --window seconds); the fault is healed and the cluster must be
healthy again (`k8s-ha-tui status`) before the next run.

The last scenario injects nothing but keeps every core busy for 15 s: a setting that flaps
would move the VIP there.

usage: sudo .venv/bin/python bench/failover.py [--runs 3] [--configs seed,ours]
       [--scenarios haproxy-down,...] [--set vrrp.advert_int=0.3 ...] [--json]
       .venv/bin/python bench/failover.py --table RUN.json [MORE.json ...]
Leaves the 3+3 lab up with the plain defaults deployed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml
from benchlib import FINE_CONNECT_TIMEOUT, Client, VipWatch, deploy, tool, top_holder, wait_for

from k8s_ha_tui.configs.render import templates_dir
from k8s_ha_tui.lab import cluster
from k8s_ha_tui.model import topology
from k8s_ha_tui.model.vrrp_timing import master_down_seconds

BENCH = Path(__file__).resolve().parent
SEED_CHANGES = {
    "check": {"interval": 3, "fall": 10, "rise": 2, "weight": -2},
    "vrrp": {"version": 2, "advert_int": 1, "auth_pass": "k8s-test"},
}
SEED_PRIORITIES = (149, 148, 147)  # BASE_PRIORITY 150 minus the last octet's distance from the VIP's
SCENARIOS = {
    "haproxy-down": "holder's HAProxy dies",
    "apiserver-down": "holder's apiserver dies",
    "apiserver-hang": "holder's apiserver hangs",
    "keepalived-down": "keepalived dies on the holder",
    "offline": "holder drops off the network",
    "failover": "controlled failover (k8s-ha-tui failover)",
    "cpu-busy": "no fault, every core busy (flapping?)",
}
# HAProxy routes around a bad apiserver, and a busy machine is no reason: the VIP should stay.
STAYS = {"apiserver-down", "apiserver-hang", "cpu-busy"}
BUSY_S = 15  # how long the busy loops run (they stop by themselves)
BUSY_LOOP = "import time\nend = time.monotonic() + {s}\nwhile time.monotonic() < end: pass"
_busy: list[subprocess.Popen] = []
QUIET_S = 3.0  # a run ends once the API has answered this long after the detection time


@dataclass
class Config:
    name: str
    topology: Path  # the file, for the CLI
    topo: topology.Topology
    templates: Path | None

    def detection_s(self) -> float:
        """The longest this configuration may take to act on a fault: check, then VRRP."""
        t = self.topo
        return t.check.interval * (t.check.fall + 1) + master_down_seconds(t.vrrp.advert_int, adverts=t.vrrp.down_adverts)


def set_path(data: dict, dotted: str, text: str) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        data = data.setdefault(p, {})
    data[leaf] = yaml.safe_load(text)


def make_configs(base: Path, workdir: Path, overrides: list[str]) -> dict[str, Config]:
    data = yaml.safe_load(base.read_text())
    seed = json.loads(json.dumps(data))
    for section, values in SEED_CHANGES.items():
        seed.setdefault(section, {}).update(values)
    for master, prio in zip(seed["masters"], SEED_PRIORITIES):
        master["priority"] = prio
    defaults = {k: v for k, v in data.items() if k not in ("vrrp", "check")}  # the model's own
    defaults["vrrp"] = {"router_id": data["vrrp"]["router_id"]}
    ours = json.loads(json.dumps(defaults))
    for item in overrides:
        key, _, value = item.partition("=")
        set_path(ours, key, value)
    templates = workdir / "seed-templates"
    shutil.copytree(templates_dir(), templates)
    for f in (BENCH / "seed_templates").glob("*.j2"):
        shutil.copy(f, templates / f.name)
    configs = {}
    for name, d, tpl in (("seed", seed, templates), ("ours", ours, None), ("defaults", defaults, None)):
        path = workdir / f"{name}.yaml"
        topo = topology.topology_from_dict(d, name)
        topology.save_topology(topo, path)
        configs[name] = Config(name, path, topo, tpl)
    return configs


def cause(scenario: str, holder: str, config: Config) -> None:
    if scenario == "cpu-busy":  # two busy loops per core, on the machine every node shares
        _busy.extend(subprocess.Popen([sys.executable, "-c", BUSY_LOOP.format(s=BUSY_S)])
                     for _ in range(2 * (os.cpu_count() or 1)))
    elif scenario == "failover":
        tool("failover", "-t", str(config.topology), "--yes")
    else:
        cluster.fault(holder, scenario)


def heal(scenario: str, holder: str, config: Config) -> None:
    if scenario == "cpu-busy":
        for proc in _busy:
            proc.terminate()
            proc.wait(timeout=10)
        _busy.clear()
    elif scenario == "failover":
        tool("maintenance", "-t", str(config.topology), "--yes", holder, "off")
    else:
        cluster.heal(holder)


def settled_holder(config: Config) -> str:
    """The top master, once the cluster is healthy and it holds the VIP."""
    return wait_for(lambda: top_holder(config.topology, config.topo.masters[0].name), 90,
                    f"a healthy cluster ({config.name})", step=0.5)


def run_once(config: Config, scenario: str, window: float, fine: bool = False) -> dict:
    """One fault on the holder while the client loop runs; `fine`: a second client alongside,
    with a connect timeout of one request interval, whose gap is `fine_gap_ms`."""
    holder = settled_holder(config)
    masters = [m.name for m in config.topo.masters]
    watch = VipWatch(masters)
    client = Client()
    client.start()
    fine_client = Client(connect_timeout=FINE_CONNECT_TIMEOUT) if fine else None
    if fine_client:
        fine_client.start()
    try:
        wait_for(lambda: client.ok_for(1.0), 10, "the API answering through the VIP before the fault")
        t0 = time.monotonic()
        cause(scenario, holder, config)
        calm_after = t0 + max(config.detection_s(), BUSY_S if scenario == "cpu-busy" else 0)
        while time.monotonic() < t0 + window:
            moved = watch.first_added(t0, other_than=holder) is not None
            settled = moved or scenario in STAYS or time.monotonic() >= calm_after
            if settled and time.monotonic() >= calm_after and client.ok_for(QUIET_S):
                break
            time.sleep(0.1)
    finally:
        client.finish()
        if fine_client:
            fine_client.finish()
        watch.close()
    heal(scenario, holder, config)
    moved_at = watch.first_added(t0, other_than=holder)
    fine_gap = {"fine_gap_ms": fine_client.report(since=t0)["longest_gap_ms"]} if fine_client else {}
    return {"config": config.name, "scenario": scenario,
            "new_holder_s": round(moved_at - t0, 3) if moved_at else None, **client.report(since=t0), **fine_gap}


# --- the table ---------------------------------------------------------------------------------------

def summary(values: list[float | None]) -> tuple[float | None, float | None, float | None]:
    """median, min, max of the runs that had a value (None when none had)."""
    got = [v for v in values if v is not None]
    if not got:
        return None, None, None
    return statistics.median(got), min(got), max(got)


def cell(values: list, unit: str = "", scale: float = 1.0, digits: int = 1) -> str:
    med, lo, hi = summary(values)
    if med is None:
        return "-"
    fmt = f"{{:.{digits}f}}"
    text = fmt.format(med * scale) + unit
    if lo != hi:
        text += f" ({fmt.format(lo * scale)}-{fmt.format(hi * scale)})"
    missing = sum(v is None for v in values)
    return text + (f" [{missing} none]" if missing else "")


def ratio(seed: list, ours: list) -> str:
    s, _, _ = summary(seed)
    o, _, _ = summary(ours)
    if s is None or o is None:
        return "-"
    if o == 0:
        return "inf" if s > 0 else "="
    return f"{s / o:.0f}x" if s / o >= 10 else f"{s / o:.1f}x"


def table(results: list[dict], configs: list[str]) -> str:
    head = f"{'scenario':<42} {'config':<5} {'new holder (s)':>22} {'failed':>14} {'longest gap (s)':>22}"
    lines = [head, "-" * len(head)]
    for scenario, text in SCENARIOS.items():
        runs = {c: [r for r in results if r["scenario"] == scenario and r["config"] == c] for c in configs}
        if not any(runs.values()):
            continue
        for c in configs:
            rs = runs[c]
            if not rs:
                continue
            lines.append(f"{text:<42} {c:<5} {cell([r['new_holder_s'] for r in rs], digits=2):>22} "
                         f"{cell([r['failed'] for r in rs], digits=0):>14} "
                         f"{cell([r['longest_gap_ms'] for r in rs], scale=0.001, digits=2):>22}")
            text = ""
        if len(configs) == 2 and all(runs.values()):
            seed, ours = runs["seed"], runs["ours"]
            moved = ratio([r['new_holder_s'] for r in seed], [r['new_holder_s'] for r in ours])
            lines.append(f"{'':<42} {'ratio':<5} {moved:>22} "
                         f"{ratio([r['failed'] for r in seed], [r['failed'] for r in ours]):>14} "
                         f"{ratio([r['longest_gap_ms'] for r in seed], [r['longest_gap_ms'] for r in ours]):>22}")
    return "\n".join(lines)


def merged(runs: list[list[dict]]) -> list[dict]:
    """Results of several --json files; a (config, scenario) cell measured again replaces the old."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for results in runs:
        fresh: dict[tuple[str, str], list[dict]] = {}
        for r in results:
            fresh.setdefault((r["config"], r["scenario"]), []).append(r)
        cells.update(fresh)
    return [r for rs in cells.values() for r in rs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per cell (default 3)")
    ap.add_argument("--configs", default="seed,ours", help="seed, ours or both (default seed,ours)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="try another value for ours, e.g. vrrp.advert_int=0.3 (repeatable)")
    ap.add_argument("--window", type=float, default=45, help="longest a run watches after the fault (s)")
    ap.add_argument("--json", action="store_true", help="every run as JSON instead of the table")
    ap.add_argument("--table", metavar="FILE", nargs="+",
                    help="print the table of earlier --json runs and stop (a later file's cells replace an earlier's)")
    args = ap.parse_args()
    if args.table:
        results = merged([json.loads(Path(f).read_text())["results"] for f in args.table])
        print(table(results, [n for n in ("seed", "ours") if any(r["config"] == n for r in results)]))
        return 0
    names = sorted(args.configs.split(","), key=lambda n: n == "ours")  # ours last
    scenarios = args.scenarios.split(",")
    if not set(names) <= {"seed", "ours"} or not set(scenarios) <= set(SCENARIOS):
        ap.error(f"configs: seed, ours; scenarios: {', '.join(SCENARIOS)}")

    base = cluster.up(3, 3, log=lambda _m: None)
    results = []
    with tempfile.TemporaryDirectory(prefix="k8s-ha-bench-") as tmp:
        configs = make_configs(base, Path(tmp), args.set)
        for name in names:
            config = configs[name]
            seconds = deploy(config.topology, config.templates)
            print(f"{name}: deployed in {seconds:.0f} s", file=sys.stderr)
            for scenario in scenarios:
                for i in range(args.runs):
                    r = run_once(config, scenario, args.window)
                    print(f"  {name} {scenario} run {i + 1}: new holder {r['new_holder_s']} s, "
                          f"{r['failed']}/{r['sent']} failed, longest gap {r['longest_gap_ms']} ms", file=sys.stderr)
                    results.append(r)
        if args.set or names[-1:] != ["ours"]:  # leave the lab with the plain defaults
            deploy(configs["defaults"].topology)
    if args.json:
        print(json.dumps({"when": time.strftime("%Y-%m-%d"), "runs": args.runs, "set": args.set,
                          "results": results}, indent=2))
    else:
        print(table(results, [n for n in ("seed", "ours") if n in names]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
