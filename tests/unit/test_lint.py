"""Lint: every seed defect is named; the election simulator finds unsafe weights."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.configs import lint, render
from k8s_ha_tui.model import election, profiles
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.wizard import SEED_DEFAULTS, defaults_topology

SEED = Path(__file__).parent.parent / "fixtures" / "seed"


def seed_findings() -> list[lint.Finding]:
    return lint.lint_configs((SEED / "keepalived.conf").read_text(), (SEED / "haproxy.cfg").read_text(),
                             (SEED / "check_apiserver.sh").read_text())


def test_every_seed_defect_is_named():
    codes = {f.code: f for f in seed_findings()}
    expected = {
        "H201": "HTTP mode",          # mode http in defaults leaks into the backend
        "H202": "port 6443",          # binds the apiserver's own port
        "H203": "no HTTP check",      # option tcp-check overrides httpchk (so /healthz is not asked either)
        "K101": "enable_script_security",
        "K102": "weight -2",          # negative weight never speeds VRRP up
        "K103": "= 30 s",             # interval 3 × fall 10
    }
    for code, text in expected.items():
        assert code in codes, f"{code} missing"
        assert text in codes[code].message
    assert lint.has_errors(list(codes.values()))
    assert all(f.fix for f in codes.values())
    assert "/readyz" in codes["H203"].fix and "H204" not in codes  # one finding for the one check that runs
    # its check curls the VIP only `if ip addr | grep -q VIP`: on the holder, its own HAProxy
    assert "K104" not in codes


def test_a_check_of_the_vip_on_every_node_is_an_error_and_a_guarded_one_is_not():
    conf = ("vrrp_script chk {\n script /etc/keepalived/check.sh\n weight 0\n}\n"
            "vrrp_instance V {\n virtual_ipaddress {\n 192.0.2.10/24\n }\n track_script {\n chk\n }\n}\n")
    every_node = "#!/bin/sh\ncurl -sk --max-time 2 https://192.0.2.10:8443/healthz\n"
    guarded = "#!/bin/sh\nif ip addr | grep -q 192.0.2.10; then\n  curl -sk https://192.0.2.10:8443/\nfi\n"
    assert "K104" in {f.code for f in lint.lint_keepalived(conf, every_node)}
    assert "K104" not in {f.code for f in lint.lint_keepalived(conf, guarded)}
    assert "K104" in {f.code for f in lint.lint_keepalived(conf.replace("/etc/keepalived/check.sh",
                                                                        '"/usr/bin/curl -sk https://192.0.2.10:8443/"'))}


def test_auth_pass_truncation_and_v3_auth():
    conf = "vrrp_instance X {\n authentication {\n auth_type PASS\n auth_pass longer-than-8\n }\n}\n"
    assert [f.code for f in lint.lint_keepalived(conf, "")].count("K105") == 1
    conf3 = "global_defs {\n vrrp_version 3\n}\n" + conf.replace("longer-than-8", "short")
    assert {"K113"} <= {f.code for f in lint.lint_keepalived(conf3, "")} and "K105" not in {
        f.code for f in lint.lint_keepalived(conf3, "")}


def test_cli_lint_of_seed_exits_1_and_json_lists_findings():
    args = [sys.executable, "-m", "k8s_ha_tui", "lint", "--keepalived", str(SEED / "keepalived.conf"),
            "--haproxy", str(SEED / "haproxy.cfg"), "--check-script", str(SEED / "check_apiserver.sh")]
    text = subprocess.run(args, capture_output=True, text=True)
    assert text.returncode == 1 and "error H201" in text.stdout
    js = subprocess.run(args + ["--json"], capture_output=True, text=True)
    assert js.returncode == 1
    items = json.loads(js.stdout)
    assert {"code", "level", "message", "fix", "where"} <= set(items[0])


def test_cli_lint_unreadable_input_exits_2(tmp_path):
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lint", "--haproxy", str(tmp_path / "missing.cfg")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_cli_lint_of_good_topology_exits_0(example_path):
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lint", "-t", str(example_path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_slow_and_unsafe_topology_is_an_error():
    data = copy.deepcopy(SEED_DEFAULTS)
    data["check"] = {"interval": 3, "fall": 10, "weight": -2}  # the seed's settings
    data["vrrp"] = {"router_id": 51, "version": 2, "advert_int": 1}
    findings = lint.lint_topology(tp.topology_from_dict(data))
    codes = {f.code: f for f in findings}
    assert codes["T001"].level == "error" and "30 s" in codes["T001"].message
    assert "T002" in codes
    assert "T007" in codes and "~3.6 s" in codes["T007"].message  # 3 × 1 s + skew (priority 100)
    # 150/140/130 with weight -2: a failed master-01 (148) still beats master-02 (140).
    assert codes["T003"].level == "error" and "k8s-master-01 keeps the VIP" in codes["T003"].message


@pytest.mark.parametrize("sixes, apart", [((11, 12, 13), False), ((13, 12, 11), True)])
def test_dual_stack_elections_are_simulated_per_family(sixes, apart):
    """With weight -10, a failed master-01 (140) ties master-02: IPv4 gives it to the higher
    address (master-02), IPv6 too unless its addresses run the other way."""
    data = copy.deepcopy(SEED_DEFAULTS)
    data["vrrp"] = {"router_id": 51, "version": 3, "advert_int": 0.3}
    data["check"] = {"weight": -10}
    data["vip6"] = "fd00::10"
    for m, six in zip(data["masters"], sixes):
        m["address6"] = f"fd00::{six}"
    codes = {f.code: f for f in lint.lint_topology(tp.topology_from_dict(data))}
    assert ("T009" in codes) == apart
    if apart:
        assert codes["T009"].level == "error"
        assert "IPv4 elects k8s-master-02 and IPv6 elects k8s-master-01" in codes["T009"].message


def test_measured_defaults_lint_clean_and_name_their_profile():
    findings = lint.lint_topology(defaults_topology())
    assert [(f.code, f.level) for f in findings] == [("T008", "info")]
    assert findings[0].message.startswith("speed profile default:")


def test_fast_adverts_with_the_rfc_count_warn_and_more_missed_adverts_do_not():
    """0.1 s × 3: a 250 ms freeze of the holder can move the VIP; 0.1 s × 5 (fast) rides it out."""
    data = copy.deepcopy(SEED_DEFAULTS)
    data["vrrp"] = {"router_id": 51, "version": 3, "advert_int": 0.1}
    codes = {f.code for f in lint.lint_topology(tp.topology_from_dict(data))}
    assert codes == {"T006"}
    data["vrrp"]["down_adverts"] = 5
    named = [f for f in lint.lint_topology(tp.topology_from_dict(data)) if f.level != "info"]
    assert named == []


@pytest.mark.parametrize("name", list(profiles.PROFILES))
def test_lint_names_the_profile_of_a_topology_and_of_its_rendered_keepalived_conf(name):
    topo = tp.topology_from_dict(profiles.apply(copy.deepcopy(SEED_DEFAULTS), name))
    assert [f.message.split(":")[0] for f in lint.lint_topology(topo)] == [f"speed profile {name}"]
    conf = render.render_node(topo, topo.masters[0])[0]
    assert conf.path.endswith("keepalived.conf")
    found = [f for f in lint.lint_keepalived(conf.text, None) if f.code == "K111"]
    assert len(found) == 1 and f"speed profile {name}:" in found[0].message
    # Another check (fall 3) is no longer that profile.
    other = conf.text.replace(f"fall {topo.check.fall}", "fall 3")
    assert not [f for f in lint.lint_keepalived(other, None) if f.code == "K111"]


def test_simulator_counterexample_is_real():
    c = [election.Candidate("a", "10.0.0.1", 150), election.Candidate("b", "10.0.0.2", 140)]
    bad = election.unsafe_combinations(c, weight=-2)
    assert bad and bad[0].winner == "a" and bad[0].health["a"] is election.Health.CHECK_FAILED
    assert election.unsafe_combinations(c, weight=-20) == []
    assert election.unsafe_combinations(c, weight=0) == []


def test_tie_goes_to_higher_address():
    c = [election.Candidate("low", "10.0.0.1", 100), election.Candidate("high", "10.0.0.9", 100)]
    health = {"low": election.Health.HEALTHY, "high": election.Health.HEALTHY}
    assert election.elect(c, health, 0) == "high"


@settings(max_examples=60, deadline=None)
@given(prios=st.lists(st.integers(1, 254), min_size=1, max_size=6, unique=True),
       weight=st.integers(-253, 253))
def test_simulator_agrees_with_the_rule(prios, weight):
    """weight 0 is always safe; a negative weight is safe exactly when it exceeds every gap
    between the priorities (so any failed node drops below every healthy one)."""
    c = [election.Candidate(f"n{i}", f"10.0.0.{i + 1}", p) for i, p in enumerate(prios)]
    unsafe = bool(election.unsafe_combinations(c, weight))
    if weight == 0:
        assert not unsafe
    elif weight > 0 and len(prios) > 1:
        assert unsafe  # a failed node gets a higher priority than it had: it keeps winning
    elif weight < 0:
        # Every failed priority is below every healthy one (a tie goes to the higher address).
        safe = all(
            max(1, pf + weight) < ph or (max(1, pf + weight) == ph and i < j)
            for i, pf in enumerate(prios) for j, ph in enumerate(prios) if i != j
        ) if len(prios) > 1 else True
        assert unsafe == (not safe)


# --- configs read as HAProxy and keepalived read them (small cases, each a false or missed finding once) ---

BACKEND = "frontend f\n  bind :8443\n  mode tcp\n  default_backend b\nbackend b\n  mode tcp\n"


def haproxy_codes(text: str, **kw) -> set[str]:
    return {f.code for f in lint.lint_haproxy(text, "h.cfg", **kw)}


@pytest.mark.parametrize("server", ["2001:db8::11:6443", "ipv6@2001:db8::11:6443", "[2001:db8::11]:6443"])
def test_ipv6_servers_in_every_form_haproxy_takes_are_judged(server):
    assert "H200" not in haproxy_codes(BACKEND + f"  server a {server} check\n")
    assert "H206" in haproxy_codes(BACKEND + f"  server a {server} check\n")


@pytest.mark.parametrize("send", ['tcp-check send "GET /readyz HTTP/1.0\\r\\n\\r\\n"',
                                  "tcp-check send GET\\ /readyz\\ HTTP/1.0\\r\\n\\r\\n"])
def test_an_http_check_written_with_tcp_check_is_an_http_check(send):
    text = ("defaults\n  option httpchk\n" + BACKEND + "  option tcp-check\n  tcp-check connect ssl\n"
            f"  {send}\n  tcp-check expect string ok\n  server a 192.0.2.11:6443 check\n")
    found = haproxy_codes(text)
    assert not ({"H203", "H205", "H206"} & found), found
    assert "H204" in haproxy_codes(text.replace("/readyz", "/healthz"))


def test_h205_counts_no_check_ssl_mixed_servers_and_checks_on_another_port():
    base = BACKEND + "  option httpchk GET /readyz\n  default-server check check-ssl verify none\n"
    assert "H205" not in haproxy_codes(base + "  server a 192.0.2.11:6443\n")
    mixed = base + "  server a 192.0.2.11:6443\n  server b 192.0.2.12:6443 no-check-ssl\n"
    one = [f for f in lint.lint_haproxy(mixed, "h.cfg") if f.code == "H205"]
    assert len(one) == 1 and one[0].level == "warning" and "b" in one[0].message and one[0].where == "h.cfg:10"
    plain = BACKEND + "  option httpchk GET /readyz\n  server a 192.0.2.11:6443 check\n"
    assert [f.level for f in lint.lint_haproxy(plain) if f.code == "H205"] == ["error"]
    assert "H205" not in haproxy_codes(plain.replace(" check\n", " check port 80\n"))
    assert "H205" in haproxy_codes(plain.replace(" check\n", " check port 6443\n"))  # the same port: the apiserver
    assert "H205" not in haproxy_codes(plain.replace("  server", "  http-check connect port 80\n  server"))


def test_h204_points_at_the_line_that_sets_each_path():
    text = ("defaults\n  mode tcp\n  option httpchk GET /healthz\n"
            "frontend f\n  bind :8443\n  use_backend a if TRUE\n  default_backend b\n"
            "backend a\n  server a 192.0.2.11:6443 check check-ssl verify none\n"
            "backend b\n  http-check send meth GET uri /\n  server b 192.0.2.12:6443 check check-ssl verify none\n")
    assert sorted(f.where for f in lint.lint_haproxy(text, "h.cfg") if f.code == "H204") == ["h.cfg:11", "h.cfg:3"]


def test_no_check_at_all_is_h208_alone_and_a_file_without_apiserver_backends_gets_no_h207():
    assert {"H208"} & haproxy_codes(BACKEND + "  server a 192.0.2.11:6443\n") and \
        "H206" not in haproxy_codes(BACKEND + "  server a 192.0.2.11:6443\n")
    web = "frontend w\n  bind :80\n  default_backend w\nbackend w\n  server a 192.0.2.31:80 check\n"
    assert haproxy_codes(web) == {"H200"}


def keepalived_codes(text: str) -> set[str]:
    return {f.code for f in lint.lint_keepalived(text, None)}


SCRIPT = "vrrp_script chk {\n  script \"/usr/bin/killall -0 haproxy\"\n  weight 0\n}\n"
INSTANCE = "vrrp_instance V {\n  interface eth0\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n{track}}}\n"


def test_a_sync_group_that_tracks_for_its_instances_is_tracking():
    group = "vrrp_sync_group G {\n  group {\n    V\n  }\n  track_script {\n    chk\n  }\n}\n"
    assert "K108" not in keepalived_codes(SCRIPT + INSTANCE.replace("{track}", "") + group)
    assert "K108" in keepalived_codes(SCRIPT + INSTANCE.replace("{track}", "  track_script {\n  }\n"))


def test_k102_follows_the_weight_that_applies():
    override = SCRIPT + INSTANCE.replace("{track}", "  track_script {\n    chk weight -20\n  }\n")
    assert [f.where for f in lint.lint_keepalived(override, None, "k.conf") if f.code == "K102"] == ["k.conf:11"]
    undone = override.replace("weight 0", "weight -20").replace("chk weight -20", "chk weight 0")
    assert "K102" not in keepalived_codes(undone)


def test_a_vip_named_in_a_comment_is_not_a_check_of_the_vip():
    conf = SCRIPT.replace("/usr/bin/killall -0 haproxy", "/etc/keepalived/check.sh") + \
        INSTANCE.replace("{track}", "  track_script {\n    chk\n  }\n")
    assert "K104" not in {f.code for f in lint.lint_keepalived(conf, "# VIP 192.0.2.10\ncurl -k https://localhost:8443/\n")}
    assert "K104" in {f.code for f in lint.lint_keepalived(conf, "VIP=192.0.2.10\ncurl -k https://$VIP:8443/\n")}
