"""The commands that connect, fuzzed on the lab only.

The lab's topology is mutated in every field but the addresses — so no generated value can point
a connection anywhere but the lab's own 198.18.0.0/24 — and each command gets generated
arguments, never --yes (so no change is ever confirmed). The property: no traceback, an exit code
from the documented set, a bounded time, and afterwards the nodes exactly as before.
K8S_HA_TUI_FUZZ=N runs N/10 examples (default 15).
"""

from __future__ import annotations

import copy
import hashlib
import io
import ipaddress
import os
import signal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from labtools import wait_for

from k8s_ha_tui import cli
from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.paths import PATHS

EXAMPLES = max(5, int(os.environ.get("K8S_HA_TUI_FUZZ", "150")) // 10)
COMMAND_SECONDS = 60  # any one command, however odd its input
EXIT_CODES = {0, 1, 2, 3}  # ok, degraded or failed check, bad input or critical, refused by an interlock
WATCHED = (PATHS.keepalived_conf, PATHS.haproxy_cfg, PATHS.maintenance_file, PATHS.boost_file)

ODD_TEXT = st.sampled_from(["", " ", "x" * 300, "ünï", "a/b", "-", "--", "$(id)", "`id`", "a b", "\x00", "k8s-master-01"])
NUMBERS = st.one_of(st.integers(-5, 70_000), st.sampled_from([0.0, -1.5, 1e308, float("nan"), "3", "x", None, True]))


def valid_or_odd(valid: list, odd=NUMBERS):
    """Half the time a value the model accepts (so the command gets as far as the nodes), half not."""
    return st.one_of(st.sampled_from(valid), odd)


PORTS = valid_or_odd([8443, 6443, 8404, 9000, 2222])
FIELD_VALUES = {
    ("name",): valid_or_odd(["lab2", "other"], ODD_TEXT),
    ("frontend_port",): PORTS, ("apiserver_port",): PORTS, ("health_port",): PORTS,
    ("vrrp", "router_id"): valid_or_odd([1, 52, 255]), ("vrrp", "version"): valid_or_odd([2, 3]),
    ("vrrp", "advert_int"): valid_or_odd([0.1, 1, 2]), ("vrrp", "down_adverts"): valid_or_odd([2, 5, 20]),
    ("vrrp", "unicast"): st.sampled_from([True, False, "yes", 1, None]),
    ("check", "interval"): valid_or_odd([1, 5]), ("check", "fall"): valid_or_odd([1, 3]),
    ("check", "weight"): valid_or_odd([0, -20, 50]),
    ("ssh", "user"): valid_or_odd(["root", "operator", "nobody"], ODD_TEXT), ("ssh", "port"): valid_or_odd([22, 2222]),
    ("ssh", "identity_file"): st.sampled_from(["/nonexistent", "/dev/null", "/dev/zero", "/", "", None]),
    ("ssh", "known_hosts"): st.sampled_from(["/nonexistent", "/dev/null", "/dev/zero", "/", ""]),
    ("ssh", "become"): st.sampled_from(["none", "sudo", "doas", ""]),
    ("masters", 1, "name"): valid_or_odd(["cp-2", "k8s-master-03"], ODD_TEXT),
    ("masters", 1, "priority"): valid_or_odd([200, 100, 150]),
    ("masters", 2, "interface"): valid_or_odd(["eth1", "ens3"], ODD_TEXT), ("workers",): st.sampled_from([[], None, "x"]),
    ("surprise",): ODD_TEXT,
}
COMMANDS = st.sampled_from([["status"], ["status", "--json"], ["doctor"], ["deploy", "--dry-run"], ["failover"],
                            ["maintenance", "k8s-master-02", "on"], ["backend", "k8s-master-03", "drain"],
                            ["rollback"]])
# Half the command lines as written, half with odd words added (most end in a usage error).
EXTRA = st.one_of(st.just([]), st.lists(st.sampled_from([
    "--json", "--to", "k8s-master-02", "nosuch", "--method", "stop", "boost", "--wait", "0", "-1", "--verify-timeout",
    "0", "--keep-backups", "1", "off", "--accept-new-host-keys", "--no-install", "--break-stale-lock", "--list", "--"]),
    min_size=1, max_size=3))


def set_field(data: dict, path: tuple, value) -> None:
    *parents, leaf = path
    for key in parents:
        data = data[key] if isinstance(key, int) else data.setdefault(key, {})
    data[leaf] = value


def node_files() -> dict[str, str]:
    """Every master's watched files, hashed, read through its init's root (no SSH)."""
    state = cluster.LabState.load(cluster.lab_paths())
    assert state is not None
    out = {}
    for n in state.nodes():
        if n.is_master:
            for path in WATCHED:
                f = Path(f"/proc/{state.init(n.name)}/root{path}")
                out[f"{n.name}{path}"] = hashlib.sha256(f.read_bytes()).hexdigest() if f.exists() else "-"
    return out


@pytest.fixture(scope="module")
def settled(lab):
    lab.deploy()
    wait_for(lambda: lab.holders() == ["k8s-master-01"], 20, "master-01 to hold the VIP")
    return lab


def _alarm(_sig, _frame):
    raise TimeoutError(f"a command ran longer than {COMMAND_SECONDS} s")


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=st.dictionaries(st.sampled_from(list(FIELD_VALUES)), st.just(None), max_size=2).flatmap(
           lambda keys: st.fixed_dictionaries({k: FIELD_VALUES[k] for k in keys})),
       command=COMMANDS, extra=EXTRA)
def test_connecting_commands_on_a_mutated_lab_topology(settled, tmp_path_factory, monkeypatch, capsys,
                                                       mutations, command, extra):
    data = yaml.safe_load(settled.topology_path.read_text())
    mutated = copy.deepcopy(data)
    for path, value in mutations.items():
        set_field(mutated, path, value)
    lab_net = ipaddress.ip_network(layout.SUBNET)
    assert all(ipaddress.ip_address(n["address"]) in lab_net for n in mutated["masters"] + (data["workers"] or []))
    assert mutated["vip"] == data["vip"]  # the harness never points anything outside the lab
    path = tmp_path_factory.mktemp("t") / "topology.yaml"
    path.write_text(yaml.safe_dump(mutated, allow_unicode=True))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # no terminal: nobody can confirm anything
    before = node_files()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(COMMAND_SECONDS)
    try:
        code = cli.main([command[0], "-t", str(path), *command[1:], *extra])
    except SystemExit as exc:  # argparse: a usage error is exit 2
        code = exc.code
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    err = capsys.readouterr().err
    event(f"{command[0]} exit {code}" + (f": {err.split(':')[-1].strip()[:40]}" if err.startswith("error") else ""))
    assert code in EXIT_CODES, (command, extra, mutations, err)
    assert "Traceback" not in err
    assert node_files() == before, (command, extra, mutations)


def test_after_the_fuzz_the_cluster_is_as_it_was(settled):
    """No lock left behind, the VIP where it was, the API answering."""
    res = cli.main(["status", "-t", str(settled.topology_path)])
    assert res == 0 and settled.holders() == ["k8s-master-01"]
