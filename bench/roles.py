"""What the watch and operate logins see, next to root's, through a sequence of real changes on
the lab; and what one status round costs each of them.

The lab is deployed; k8sha-watch is granted watch and k8sha-ops operate (`become: sudo`). Then,
for each state (steady; master-03 in maintenance; master-02's apiserver drained on every
HAProxy; master-03 boosted by 5; the VIP failed over to master-02; the cluster locked by a
drill; all undone), the three logins take one status snapshot each, root's before and after the
others' (a state that moved in between is taken again). Every field the monitor shows is
compared with root's, master by master.

usage: sudo .venv/bin/python bench/roles.py [--rounds N] [--json]   (N: 1-10, default 3; ~40 s a round)
Needs the lab up (`k8s-ha-tui lab up`); leaves the defaults deployed and both roles granted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

from benchlib import cli, deploy, tool, wait_for

from k8s_ha_tui.lab import cluster
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.remote.ssh import policy_for
from k8s_ha_tui.status.poll import Collector

FIELDS = ("holds_vip", "vrrp_state", "effective_priority", "maintenance", "keepalived", "haproxy", "apiserver",
          "backends", "lock", "audit", "check", "hears", "reload_pending", "tracks_maintenance")
LOGINS = (("root", "none"), ("k8sha-watch", "none"), ("k8sha-ops", "sudo"))


def topo_as(user: str, become: str) -> tp.Topology:
    topo = tp.load_topology(cluster.lab_paths().topology)
    return topo.model_copy(update={"ssh": topo.ssh.model_copy(update={"user": user, "become": become})})


async def one_round(topo: tp.Topology) -> tuple[dict, float]:
    """A status round (no census: it needs root by design), and the slowest node's poll seconds."""
    c = Collector(topo, policy_for(topo), watch_vip=False, census=False)
    try:
        started = time.monotonic()
        snap = await c.poll_once()
        took = time.monotonic() - started
    finally:
        c.close()
    view = {m.name: {f: _plain(f, getattr(m, f)) for f in FIELDS} for m in snap.masters}
    return view, took


def _plain(name: str, value) -> str:
    """A field as compared: backends by server and state (not their check timings), the lock
    without its renewal time (it moves every few seconds)."""
    if name == "backends":
        return json.dumps(sorted((b.server, b.master, b.status) for b in value))
    if name == "lock":
        return json.dumps(None if value is None else [value.id, value.who, value.what, value.since])
    if isinstance(value, tuple):
        return json.dumps([getattr(v, "__dict__", str(v)) for v in value], sort_keys=True, default=str)
    return json.dumps(value, default=str)


def views_of(topo: tp.Topology) -> str:
    """The locks root's round finds, as JSON (for waiting on a drill's lock)."""
    view, _ = asyncio.run(one_round(topo))
    return json.dumps([json.loads(m["lock"]) for m in view.values() if m["lock"] != "null"])


def snapshots(topos: dict) -> tuple[dict, dict]:
    for _attempt in range(5):
        root_before, t0 = asyncio.run(one_round(topos["root"]))
        others = {u: asyncio.run(one_round(t)) for u, t in topos.items() if u != "root"}
        root_after, t1 = asyncio.run(one_round(topos["root"]))
        if root_before == root_after:
            return ({"root": root_before, **{u: v for u, (v, _) in others.items()}},
                    {"root": (t0 + t1) / 2, **{u: t for u, (_, t) in others.items()}})
    raise SystemExit("the lab did not hold still for three snapshots in 5 tries")


def states():
    """(name, change, undo): each a CLI call as root, or None."""
    lab = str(cluster.lab_paths().topology)
    return [
        ("steady", None, None),
        ("master-03 in maintenance", ("maintenance", "k8s-master-03", "on"), ("maintenance", "k8s-master-03", "off")),
        ("master-02 drained", ("backend", "k8s-master-02", "drain"), ("backend", "k8s-master-02", "ready")),
        ("master-03 boosted by 5", f"echo 5 > {PATHS.boost_file}", f"echo 0 > {PATHS.boost_file}"),
        ("VIP on master-02", ("failover", "--to", "k8s-master-02"), ("maintenance", "k8s-master-01", "off")),
        ("locked by a drill", "drill", "drill"),
    ], lab


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, choices=range(1, 11), default=3, metavar="N")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    paths = cluster.lab_paths()
    deploy(paths.topology)
    for role, user in (("watch", "k8sha-watch"), ("operate", "k8sha-ops")):
        tool("access", "grant", role, user, "-t", str(paths.topology), "--yes")
    topos = {u: topo_as(u, b) for u, b in LOGINS}
    same = {u: dict.fromkeys(FIELDS, 0) for u, _ in LOGINS[1:]}
    took: dict[str, list[float]] = {u: [] for u, _ in LOGINS}
    compared = 0
    drill: subprocess.Popen | None = None
    sequence, lab = states()
    for _ in range(args.rounds):
        for _name, change, undo in sequence:
            for step in (change, undo) if change else (None,):
                if isinstance(step, tuple):
                    res = cli(*step, "-t", lab, "--yes", timeout=60)
                    if res.returncode != 0:
                        raise SystemExit(f"{' '.join(step)}: {res.stderr.strip()}")
                elif step == "drill" and drill is None:  # the lock is held while the drill runs
                    drill = subprocess.Popen([sys.executable, "-m", "k8s_ha_tui", "drill", "apiserver-drain", "-t", lab,
                                              "--hold", "12", "--yes", "--json"], stdout=subprocess.DEVNULL,
                                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
                    wait_for(lambda: any(json.loads(views_of(topos["root"]))), 20, "the drill's lock")
                elif step == "drill" and drill is not None:
                    drill.wait(120)
                    drill = None
                elif isinstance(step, str):
                    subprocess.run(["ssh", "-i", str(paths.client_key), "-o", f"UserKnownHostsFile={paths.known_hosts}",
                                    "-o", "BatchMode=yes", "-F", "/dev/null",
                                    f"root@{topos['root'].master('k8s-master-03').address}", step],
                                   check=True, timeout=30, capture_output=True)
                wait_for(lambda: len(asyncio.run(one_round(topos["root"]))[0]) == 3, 10, "the masters to answer")
                time.sleep(1.5)  # settle: the state file and HAProxy's checks follow within a second
                views, seconds = snapshots(topos)
                for u in took:
                    took[u].append(seconds[u])
                for u in same:
                    for f in FIELDS:
                        same[u][f] += all(views[u][m][f] == views["root"][m][f] for m in views["root"])
                compared += 1
    poll = {u: round(statistics.median(v), 3) for u, v in took.items()}
    result = {"states_compared": compared, "same_as_root": same, "poll_seconds_median": poll}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{compared} states compared (each: root before and after, watch and operate between)\n")
    print("| field | watch = root | operate = root |")
    print("|---|---|---|")
    for f in FIELDS:
        print(f"| {f} | {same['k8sha-watch'][f]}/{compared} | {same['k8sha-ops'][f]}/{compared} |")
    print("\n| login | one status round, median |")
    print("|---|---|")
    for u, v in poll.items():
        print(f"| {u} | {v * 1000:.0f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
