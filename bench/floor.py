"""The last half second of failover: what HAProxy's connect timeout costs clients after the VIP
moves, and what a shorter one costs on a busy apiserver (lab).

When the holder drops off the network, the new holder's HAProxy still counts the vanished
master's apiserver as up until a check or a client's connect to it fails; until then a client
sent there waits out `timeout connect` before HAProxy retries it elsewhere. Each cell of --cells
is a connect timeout in ms, and `/shared` where the checks share it: with `timeout check` set
(as this tool rendered before), HAProxy bounds a check's connect *and TLS handshake* by
min(timeout connect, inter); without it (today's template) a check has `inter` for all of it,
so the clients' connect timeout can be short while a slow handshake still passes its check.
For each cell:
  busy     every apiserver overloaded (`lab fault NODE apiserver-busy MS`: MS to accept each
           connection and MS more to answer, a 16-deep listen queue) while --threads clients
           open fresh TLS connections through the VIP for --busy-seconds, each allowed
           CLIENT_TIMEOUT_S for its answer: requests sent and failed. Failures beyond those of
           the first cell (the old 500ms/shared) are the ones the change caused: this must be 0
           for a cell to be chosen;
  offline  for each profile in --profiles (its VRRP and check values, deployed with
           `k8s-ha-tui deploy`): the holder drops off the network while two 20 req/s client loops
           run through the VIP (bench/failover.py's run), --runs times: the time to a new holder
           and the longest gap without an answer, median and spread. One client gives up a
           connect after 50 ms (its gap is within 50 ms of the API's), the other after 0.25 s as
           in the other benches (its gap rounds up to quarter seconds).

usage: sudo .venv/bin/python bench/floor.py [--cells 500/shared,100/shared,500,200,100]
       [--profiles fast,default] [--set vrrp.advert_int=0.05 ...] [--runs 5] [--busy-ms 20] [--json]
       .venv/bin/python bench/floor.py --table RUN.json
Leaves the 3+3 lab up with the plain defaults deployed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import deploy
from failover import Config, make_configs, run_once, settled_holder

from k8s_ha_tui.configs.render import templates_dir
from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model import profiles
from k8s_ha_tui.remote.apiserver import readyz_from_here

CLIENT_TIMEOUT_S = 5.0  # a client's patience for one answer (client-go's is longer still)
MAX_BUSY_S = 120
DEFAULT_CELLS = "500/shared,100/shared,500,200,100"
# What `timeout check` was before the checks got their own budget: the check interval.
SHARED_LINE = "    timeout check {{ topo.check.interval }}s\n"


@dataclass(frozen=True)
class Cell:
    timeout_ms: int
    shared: bool  # `timeout check` set: a check's connect and handshake get min(timeout connect, inter)

    @property
    def label(self) -> str:
        return f"{self.timeout_ms}ms{'/shared' if self.shared else ''}"

    @classmethod
    def parse(cls, text: str) -> Cell:
        ms, _, mode = text.partition("/")
        if not ms.isdigit() or mode not in ("", "shared"):
            raise SystemExit(f"cell {text!r}: MS or MS/shared, e.g. 100 or 500/shared")
        return cls(int(ms), mode == "shared")


def shared_templates(workdir: Path) -> Path:
    """The templates with `timeout check` set again, as before: checks share the connect timeout."""
    out = workdir / "shared-templates"
    shutil.copytree(templates_dir(), out)
    cfg = out / "haproxy.cfg.j2"
    text = cfg.read_text()
    anchor = next(line for line in text.splitlines(keepends=True) if line.strip().startswith("timeout connect"))
    cfg.write_text(text.replace(anchor, anchor + SHARED_LINE, 1))
    return out


def profile_overrides(name: str, timeout_ms: int, extra: list[str]) -> list[str]:
    """`--set` items for failover.make_configs: the profile's values, the timeout, then `extra`."""
    values = profiles.get(name).values()
    items = [f"{section}.{key}={value}" for section, keys in values.items() for key, value in keys.items()]
    return [*items, f"check.connect_timeout_ms={timeout_ms}", *extra]


def busy_load(threads: int, seconds: float) -> dict:
    """Fresh TLS requests through the VIP from `threads` clients, each as fast as it is answered."""
    seconds = min(seconds, MAX_BUSY_S)
    outcomes: list[bool] = []
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < end:
            took = readyz_from_here(layout.VIP, 8443, timeout=CLIENT_TIMEOUT_S, connect_timeout=CLIENT_TIMEOUT_S)
            with lock:
                outcomes.append(took is not None)
                if took is not None:
                    latencies.append(took)

    workers = [threading.Thread(target=client, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=seconds + CLIENT_TIMEOUT_S + 5)
    latencies.sort()
    return {"sent": len(outcomes), "failed": outcomes.count(False),
            "p50_ms": round(1000 * latencies[len(latencies) // 2]) if latencies else None,
            "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)]) if latencies else None}


def busy_phase(config: Config, busy_ms: int, threads: int, seconds: float) -> dict:
    settled_holder(config)
    masters = [m.name for m in config.topo.masters]
    try:
        for m in masters:
            cluster.fault(m, "apiserver-busy", busy_ms)
        return busy_load(threads, seconds)
    finally:
        for m in masters:
            cluster.heal(m, "apiserver-busy")


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    return f"{med:.2f} ({min(values):.2f}-{max(values):.2f})" if len(values) > 1 else f"{med:.2f}"


def after_move(r: dict) -> list[float]:
    """How much of each fine gap came after the VIP had moved: what HAProxy added."""
    return [g / 1000 - h for g, h in zip(r["fine_gap_ms"], r["new_holder_s"]) if h is not None]


def table(results: list[dict]) -> str:
    busy = [r for r in results if r["phase"] == "busy"]
    first = busy[0] if busy else None
    beyond = f"beyond {first['cell']}" if first else ""
    head = f"{'cell':<14} {'busy: sent':>10} {'failed':>7} {beyond:>22} {'answer p50/p99 (ms)':>20}"
    lines = [head, "-" * len(head)]
    for r in busy:
        assert first is not None
        lines.append(f"{r['cell']:<14} {r['sent']:>10} {r['failed']:>7} {max(0, r['failed'] - first['failed']):>22} "
                     f"{r['p50_ms']!s:>10}/{r['p99_ms']!s:<9}")
    head = (f"{'cell':<14} {'profile':<8} {'new holder (s)':>18} {'gap, 50 ms client':>18} "
            f"{'gap - new holder':>18} {'gap, 0.25 s client':>19} {'failed':>7}")
    lines += ["", head, "-" * len(head)]
    for r in (r for r in results if r["phase"] == "offline"):
        lines.append(f"{r['cell']:<14} {r['profile']:<8} {spread([h for h in r['new_holder_s'] if h is not None]):>18} "
                     f"{spread([g / 1000 for g in r['fine_gap_ms']]):>18} {spread(after_move(r)):>18} "
                     f"{spread([g / 1000 for g in r['gap_ms']]):>19} {sum(r['failed']):>7}")
    return "\n".join(lines)


def run(args: argparse.Namespace, cells: list[Cell], names: list[str]) -> list[dict]:
    base = cluster.up(3, 3, log=lambda _m: None)
    results: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="k8s-ha-floor-") as tmp:
        shared = shared_templates(Path(tmp))
        for cell in cells:
            for i, name in enumerate(names):
                workdir = Path(tmp) / f"{name}-{cell.timeout_ms}-{cell.shared}"
                workdir.mkdir()
                config = make_configs(base, workdir, profile_overrides(name, cell.timeout_ms, args.set))["ours"]
                deploy(config.topology, shared if cell.shared else None)
                if i == 0:
                    busy = busy_phase(config, args.busy_ms, args.threads, args.busy_seconds)
                    results.append({"phase": "busy", "cell": cell.label, **busy})
                    print(f"{cell.label} busy: {busy}", file=sys.stderr)
                runs = [run_once(config, "offline", 45, fine=True) for _ in range(args.runs)]
                for r in runs:
                    print(f"{cell.label} {name} offline: new holder {r['new_holder_s']} s, {r['failed']}/{r['sent']} "
                          f"failed, gap {r['longest_gap_ms']} ms (fine {r['fine_gap_ms']} ms)", file=sys.stderr)
                results.append({"phase": "offline", "cell": cell.label, "profile": name,
                                "new_holder_s": [r["new_holder_s"] for r in runs],
                                "gap_ms": [r["longest_gap_ms"] for r in runs],
                                "fine_gap_ms": [r["fine_gap_ms"] for r in runs], "failed": [r["failed"] for r in runs]})
        (Path(tmp) / "plain").mkdir()
        deploy(make_configs(base, Path(tmp) / "plain", [])["defaults"].topology)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", default=DEFAULT_CELLS,
                    help="connect timeouts in ms, /shared where checks share it (default %(default)s)")
    ap.add_argument("--profiles", default="fast,default", help="speed profiles for the offline runs")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="another topology value on top of each profile, e.g. vrrp.advert_int=0.05 (repeatable)")
    ap.add_argument("--runs", type=int, default=5, help="offline runs per cell and profile (1-20; default 5)")
    ap.add_argument("--busy-ms", type=int, default=20, help="the busy apiservers' accept and answer delay (ms)")
    ap.add_argument("--threads", type=int, default=12, help="clients in the busy phase (1-64; default 12)")
    ap.add_argument("--busy-seconds", type=float, default=20, help=f"length of the busy phase (s, at most {MAX_BUSY_S})")
    ap.add_argument("--json", action="store_true", help="every result as JSON instead of the table")
    ap.add_argument("--table", metavar="FILE", help="print the table of an earlier --json run and stop")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())["results"]))
        return 0
    if not (1 <= args.runs <= 20 and 1 <= args.threads <= 64 and 1 <= args.busy_ms <= 5000):
        raise SystemExit("--runs 1-20, --threads 1-64, --busy-ms 1-5000")
    cells = [Cell.parse(c) for c in args.cells.split(",")]
    names = args.profiles.split(",")
    for name in names:
        profiles.get(name)
    started = time.monotonic()
    results = run(args, cells, names)
    print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
    if args.json:
        print(json.dumps({"when": time.strftime("%Y-%m-%d"), "args": vars(args), "results": results}, indent=2))
    else:
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
