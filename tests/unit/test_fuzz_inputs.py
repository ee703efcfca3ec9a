"""Garbage into every parser of a node's answer and every file input: never a traceback, only
the documented outcome (a value, 'unknown', or a one-line UserError). More examples with
K8S_HA_TUI_FUZZ=N (default 150 each)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k8s_ha_tui.clusters import nodeconfig
from k8s_ha_tui.configs import lint
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model import topology
from k8s_ha_tui.remote import answers, auditlog, keepalived, lockfile, nodefiles
from k8s_ha_tui.rollouts import backups, deploy_steps, deploy_verify
from k8s_ha_tui.status import parse
from k8s_ha_tui.wizard import defaults_topology

EXAMPLES = int(os.environ.get("K8S_HA_TUI_FUZZ", "150"))
ROOT = Path(__file__).resolve().parents[2]
fuzz = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOPO = defaults_topology()
# Garbage with the shapes parsers look for: section markers, separators, numbers, quotes, NULs.
ANSWER = st.lists(st.one_of(st.text(max_size=40), st.sampled_from([
    "@@data", "@@addr", "@@services", "@@lock", "@@audit", "@@0", "PRESENT", "ABSENT", "VRRP Instance = X",
    "------< VRRP Topology >------", "State = MASTER", "Priority = 999999999999999999999", " = ", ":", "{", "}",
    '"', "#", "\x00", "VRRP Instance: VI_1", "  Advertisements:", "    Received: x", "ACTIVE active active",
    "# pxname,svname,status,addr", "a,b,UP,1.2.3.4:5", "MAINT 1", "UID 0", "2: eth0 inet 10.0.0.1/24 scope"])),
    max_size=30).map("\n".join)


@fuzz
@given(ANSWER)
def test_node_answers_never_raise(text):
    answers.sections(text)
    parse.show_stat(text)
    parse.active_servers(text)
    parse.notify_state(text)
    answers.flag_file(text)
    answers.holds_address(text, "10.0.0.1")
    keepalived.running_keepalived(text).instance_for("10.0.0.1")
    keepalived.keepalived_data(text, "10.0.0.1")
    keepalived.keepalived_stats(text)
    nodeconfig.parse_facts(text)
    deploy_steps.parse_probe(text, TOPO.vip)
    deploy_verify.verify_failure(text, TOPO, maintenance=False)
    lockfile.parse_probe(text)
    auditlog.parse_lines(text)
    backups.parse_listing(text)
    try:
        nodefiles.parse_files(text, ["/a", "/b"])
    except UserError:
        pass  # documented: an answer that does not decode is an error, one line


YAML_BITS = st.sampled_from([
    "name: x\n", "vip: 10.0.3.10\n", "masters:\n", "- {name: a, address: 10.0.3.11}\n", "vrrp: {version: 2}\n",
    "a: &x [*x]\n", "b: !!python/object:os.system {}\n", "  - - - - - - 1\n", "check: {interval: 1e999}\n",
    "ssh: 7\n", "\x00\x01", "---\n", "...\n", "key: 'unterminated\n", "[" * 50, "{a: " * 30, "vip: [1, 2]\n",
    "masters: [{name: a, address: 10.0.3.11, priority: 300}]\n", "workers: null\n", "\ufeff", "prefix: true\n"])


@fuzz
@given(st.lists(st.one_of(YAML_BITS, st.text(max_size=30)), max_size=20).map("".join))
def test_topology_files_load_or_say_why_in_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("t") / "topology.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        topology.load_topology(path)
    except UserError as exc:
        assert "\n" not in str(exc) and str(exc).startswith(str(path))


@fuzz
@given(st.binary(max_size=2000))
def test_binary_topology_files_are_one_line_errors(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("b") / "topology.yaml"
    path.write_bytes(data)
    with pytest.raises(UserError) as info:
        topology.load_topology(path)
    assert "\n" not in str(info.value)


CONFIG_BITS = st.sampled_from([
    "vrrp_instance X {\n", "}\n", "{", "include /nonexistent/*.conf\n", "include conf.d/*\n", 'script "a\n',
    "virtual_ipaddress {\n 10.0.0.1\n fe80::1/64\n}\n", "auth_pass 123456789\n", "global_defs {\n",
    "frontend f\n bind *:6443\n default_backend b\n", "backend b from nowhere\n server s 1.2.3.4:6443\n",
    "server-template s 3 host\n", "defaults d\n mode http\n", "listen l\n", "# c\n", "! c\n", "\x00", "\t\t"])


@fuzz
@given(st.lists(st.one_of(CONFIG_BITS, st.text(max_size=30)), max_size=30).map("".join))
def test_config_files_lint_without_a_traceback(text):
    lint.lint_configs(text, text, text, keepalived_files={"/etc/keepalived/conf.d/x": text})


# Offline commands only: generated arguments must never make a command connect anywhere, and an
# output always lands in a temporary folder (or under a regular file, where nothing can be written).
INPUTS = [str(ROOT / "examples/sungup.yaml"), str(ROOT / "tests/fixtures/seed/keepalived.conf"),
          str(ROOT / "tests/fixtures/seed/haproxy.cfg"), "/", "/nonexistent", "/etc/passwd", "/etc/passwd/x",
          "/dev/zero", "/dev/null", "TMP/fifo", "TMP/dir", "TMP/file", ""]
OUTPUTS = ["TMP/new", "TMP/new/deeper", "TMP/dir", "TMP/file", "TMP/fifo", "TMP", "/etc/passwd/x", ""]
OPTIONS = {
    "render": {"-t": INPUTS, "-o": OUTPUTS, "--haproxy-version": ["2.0", "2.6", "9.9", "x", "", "-1"]},
    "lint": {"-t": INPUTS, "--keepalived": INPUTS, "--haproxy": INPUTS, "--check-script": INPUTS, "--json": None},
    "wizard": {"-o": OUTPUTS, "--from": INPUTS, "--render-dir": OUTPUTS, "--defaults": None,
               "--profile": ["safe", "default", "fast", "turbo", ""]},
}
GARBAGE = ["x", "--", "-", "--no-such-option", "-t", "--json", "--defaults"]


@st.composite
def command_lines(draw):
    command = draw(st.sampled_from(sorted(OPTIONS)))
    options = OPTIONS[command]
    argv = [command]
    for option in draw(st.lists(st.sampled_from(sorted(options)), max_size=5)):
        argv.append(option)
        if options[option] is not None:
            argv.append(draw(st.sampled_from(options[option])))
    argv += draw(st.lists(st.sampled_from(GARBAGE), max_size=1))
    return argv


def tree(folder: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@fuzz
@given(command_lines())
def test_offline_commands_never_trace_back(tmp_path_factory, argv):
    """Exit 0, 1 or 2, never a traceback; when refused (2), not one file written or changed."""
    from k8s_ha_tui import cli

    tmp = tmp_path_factory.mktemp("o")
    os.mkfifo(tmp / "fifo")  # read whole, a FIFO blocks forever: every input must refuse it
    (tmp / "dir").mkdir()
    (tmp / "file").write_text("x")
    argv = [a.replace("TMP", str(tmp)) for a in argv]
    if argv[0] == "wizard" and "--defaults" not in argv:
        argv.append("--defaults")  # the interactive wizard needs a terminal (tested elsewhere)
    before = tree(tmp)
    here = os.getcwd()
    os.chdir(tmp)  # a default output (wizard's topology.yaml) lands in the tmp folder too
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse: a usage error is exit 2
        code = exc.code
    finally:
        os.chdir(here)
    assert code in (0, 1, 2), argv
    if code == 2:
        assert tree(tmp) == before, argv
