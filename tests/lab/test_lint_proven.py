"""HAProxy findings proven on the lab's real HAProxy and apiserver stand-ins (the differential
oracle): each case is a corpus config (or a small case cut from one) that lint gives the finding;
run on a lab node, it shows the behaviour the finding claims; the same config with the
finding's fix applied lints without the finding and, run the same way, does not show it.

The only change the oracle makes to a config is its addresses: the corpus's masters
192.0.2.11-13 become the lab's masters, any other 192.0.2.x the node it runs on. It runs on
k8s-node-01, a node without an apiserver (a dedicated load balancer), except where the claim is
about a master. Requests are made from that node with curl, as a client there would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labtools import wait_for

from k8s_ha_tui.configs import lint
from k8s_ha_tui.lab import cluster

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
LB = "k8s-node-01"
MASTER = "k8s-master-01"


def corpus(name: str) -> str:
    return (CORPUS / name).read_text()


def for_node(text: str, address: str) -> str:
    text = re.sub(r"\b192\.0\.2\.(1[123])\b", r"198.18.0.\1", text)
    return re.sub(r"\b192\.0\.2\.\d+\b", address, text)


def settle_seconds(text: str) -> float:
    """How long HAProxy's checks take to call every server (the config's own inter × fall/rise)."""
    inter = [int(v) / (1000 if not u else 1) for v, u in re.findall(r"\binter (\d+)(s?)\b", text)] or [2]
    counts = [int(v) for v in re.findall(r"\b(?:fall|rise) (\d+)\b", text)] or [3]
    return max(inter) * max(counts) + 3


def run_haproxy(lab, node: str, text: str) -> bool:
    """Install the config on `node` and (re)start HAProxy there; whether it started."""
    lab.ssh(node, "mkdir -p /etc/haproxy && cat > /etc/haproxy/haproxy.cfg", input=text)
    return lab.ssh(node, "systemctl restart haproxy", check=False).returncode == 0


def get(lab, port: int, path: str = "/readyz", host: str = "127.0.0.1") -> str:
    """The HTTP status a TLS client on the load balancer gets through the frontend ('000': none)."""
    res = lab.ssh(LB, f"curl -sk --max-time 2 -o /dev/null -w '%{{http_code}}' https://{host}:{port}{path}",
                  check=False, timeout=10)
    return res.stdout.strip() or "000"


def watch(lab, port: int, seconds: float) -> list[str]:
    """What clients get through the frontend over `seconds` (a bounded observation, 2 per second)."""
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        seen.append(get(lab, port))
        time.sleep(0.5)
    return seen


def codes(text: str, **kw) -> set[str]:
    return {f.code for f in lint.lint_haproxy(text, "case.cfg", **kw)}


def differential(code: str, bad: str, fixed: str) -> tuple[str, str]:
    """Both variants, checked by lint first: the finding on the one and not on the other."""
    assert code in codes(bad), f"the case does not give {code}"
    assert fixed != bad and code not in codes(fixed), f"the fix does not take {code} away"
    return bad, fixed


@pytest.fixture
def lb(lab):
    """HAProxy on the load balancer stopped again after each case; apiservers healthy."""
    yield lab
    lab.ssh(LB, "systemctl stop haproxy", check=False)
    for m in ("k8s-master-01", "k8s-master-02", "k8s-master-03"):
        cluster.heal(m)


GUIDE = corpus("kubeadm-guide-2024.haproxy.cfg")
WITH_CHECK_SSL = lambda t: t.replace("check verify none", "check check-ssl verify none")  # noqa: E731


# code: (the config with the finding, the same with the fix applied)
TLS_FAILS = {
    # the seed's defect: the backend takes the defaults' mode http behind a TCP frontend
    "H201": (GUIDE.replace("    mode tcp\n    balance", "    balance"), GUIDE),
    # a check in plain HTTP to the TLS apiserver (the guide without `http-check connect ssl`)
    "H205": (GUIDE.replace("    http-check connect ssl\n", ""),
             WITH_CHECK_SSL(GUIDE.replace("    http-check connect ssl\n", ""))),
    # HTTP mode end to end (both `mode tcp` lines gone: the defaults' mode http everywhere)
    "H210": (GUIDE.replace("    mode tcp\n", ""),
             GUIDE.replace("    mode tcp\n", "").replace("defaults\n    mode                    http",
                                                        "defaults\n    mode                    tcp")),
}


@pytest.mark.parametrize("code", sorted(TLS_FAILS))
def test_tls_through_the_frontend_fails_exactly_where_lint_says(lb, code):
    bad, fixed = differential(code, *TLS_FAILS[code])
    for text, fails in ((bad, True), (fixed, False)):
        assert run_haproxy(lb, LB, for_node(text, "198.18.0.21"))
        seen = watch(lb, 8443, settle_seconds(text))
        assert (seen[-1] != "200") == fails and (seen[-2] != "200") == fails, f"{code} fails={fails}: {seen}"


UNREADY_IN_ROTATION = {
    # the seed's order: `option tcp-check` after `option httpchk` wins (the guide, cut so)
    "H203": (GUIDE.replace("    mode tcp\n    balance", "    option tcp-check\n    mode tcp\n    balance"), GUIDE.replace(
        "uri /healthz", "uri /readyz")),
    "H204": (GUIDE, GUIDE.replace("uri /healthz", "uri /readyz")),
    "H206": (corpus("opsnull.haproxy.cfg").replace("    nbproc 1\n", ""),  # HAProxy ≥ 2.5 refuses nbproc
             corpus("opsnull.haproxy.cfg").replace("    nbproc 1\n", "").replace(
                 "    balance source\n", "    balance source\n    option httpchk GET /readyz\n").replace(
                 " check inter", " check check-ssl verify none inter")),
}


@pytest.mark.parametrize("code", sorted(UNREADY_IN_ROTATION))
def test_not_ready_apiservers_stay_in_rotation_exactly_where_lint_says(lb, code):
    bad, fixed = differential(code, *UNREADY_IN_ROTATION[code])
    port = 8443
    for m in ("k8s-master-01", "k8s-master-02", "k8s-master-03"):
        cluster.fault(m, "apiserver-unready")
    for text, stays in ((bad, True), (fixed, False)):
        assert run_haproxy(lb, LB, for_node(text, "198.18.0.21"))
        seen = watch(lb, port, settle_seconds(text))
        # "500": an apiserver that is not ready answered; "000": HAProxy had no server to send to
        assert (seen[-1] == "500") == stays and (seen[-2] == "500") == stays, f"{code} stays={stays}: {seen}"


def test_the_apiserver_port_collides_on_a_master_and_not_on_a_load_balancer(lb):
    """H202 by where the file runs: HAProxy cannot start beside kube-apiserver (it listens on
    every address), starts on a load balancer, and starts on the master once on its own port."""
    text = corpus("openshift-upi.haproxy.cfg")
    assert "H202" in codes(text, on="master") and "H202" not in codes(text, on="lb")
    fixed = text.replace("bind *:6443", "bind *:8443")
    assert "H202" not in codes(fixed, on="master")
    try:
        assert not run_haproxy(lb, MASTER, for_node(text, "198.18.0.11"))
        assert "cannot bind socket" in lb.ssh(MASTER, "tail -n 20 /var/log/haproxy.log", check=False).stdout + \
            lb.ssh(MASTER, "haproxy -f /etc/haproxy/haproxy.cfg -c; haproxy -f /etc/haproxy/haproxy.cfg -D -p /tmp/x.pid "
                           "2>&1; true", check=False).stdout
        assert run_haproxy(lb, LB, for_node(text, "198.18.0.21"))
        wait_for(lambda: get(lb, 6443) == "200", 10, "an answer through the load balancer's :6443")
        assert run_haproxy(lb, MASTER, for_node(fixed, "198.18.0.11"))
    finally:
        lb.ssh(MASTER, "systemctl stop haproxy", check=False)


def test_a_short_timeout_cuts_a_quiet_connection_and_the_fix_keeps_it(lb):
    """H209: a TLS connection through HAProxy that says nothing (a watch with no events) is cut
    after the short timeout; with `timeout client/server 1h` it is still open then."""
    cut = GUIDE.replace("35s", "3s")  # the guide's 35 s, shortened to keep the test short
    bad, fixed = differential("H209", cut, cut.replace("timeout client          3s", "timeout client          1h")
                              .replace("timeout server          3s", "timeout server          1h"))
    for text, closes in ((bad, True), (fixed, False)):
        assert run_haproxy(lb, LB, for_node(text, "198.18.0.21"))
        wait_for(lambda: get(lb, 8443) == "200", 10, "the servers up")
        # openssl holds a TLS session open and quiet (stdin stays open for 8 s); it reports how
        # long the session itself lasted, bounded to 9 s in any case
        res = lb.ssh(LB, "sleep 8 | { start=$(date +%s); timeout 9 openssl s_client -quiet -connect 127.0.0.1:8443 "
                         ">/dev/null 2>&1; echo $(( $(date +%s) - start )); }", check=False, timeout=20)
        lasted = int(res.stdout.strip().splitlines()[-1])
        assert (lasted <= 5) == closes, f"H209 closes={closes}: the quiet connection lasted {lasted} s"


# --- keepalived: does the VIP leave a holder whose HAProxy dies? --------------------------------
# Each case is the kubeadm guide's keepalived.conf and check script, run on the three lab masters
# (HAProxy deployed on each), the first as written and the others as the guide says (state
# BACKUP, priority 100 and 99); checks every 1 s with fall 2 instead of the guide's 3 × 10 (that
# slowness is K103's business). HAProxy on the holder is killed; the VIP either reaches a master
# whose HAProxy answers, or stays.

MASTERS = ["k8s-master-01", "k8s-master-02", "k8s-master-03"]
GUIDE_KEEPALIVED = corpus("kubeadm-guide.keepalived.conf").replace("interval 3", "interval 1").replace(
    "fall 10", "fall 2").replace("192.168.0.40", "198.18.0.10")
GUIDE_CHECK = corpus("kubeadm-guide.check.sh").replace("192.168.0.40", "198.18.0.10")
VIP_ONLY_CHECK = "#!/bin/sh\ncurl --silent --max-time 2 --insecure https://198.18.0.10:8443/ -o /dev/null\n"
LOCAL_CHECK = "#!/bin/sh\ncurl --silent --max-time 2 --insecure https://localhost:8443/ -o /dev/null\n"


def per_node(text: str, i: int) -> str:
    if i == 0:
        return text
    return re.sub(r"priority \d+", f"priority {101 - i}", text.replace("state MASTER", "state BACKUP"))


def run_keepalived(lab, conf: str, script: str, priorities: tuple[int, ...] | None = None) -> None:
    for i, m in enumerate(MASTERS):
        text = per_node(conf, i)
        text = text if priorities is None else re.sub(r"priority \d+", f"priority {priorities[i]}", text)
        lab.ssh(m, "cat > /etc/keepalived/check_apiserver.sh && chmod 755 /etc/keepalived/check_apiserver.sh",
                input=script)
        lab.ssh(m, "cat > /etc/keepalived/keepalived.conf && systemctl restart keepalived", input=text)


def vip_follows_haproxy(lab) -> bool:
    """Kill HAProxy on the holder: whether the VIP then reaches a master whose HAProxy answers
    (within 10 s: checks notice in 2 s, a backup takes over in ~3.5 s)."""
    holder = wait_for(lambda: lab.holders()[0] if len(lab.holders()) == 1 else None, 15, "one VIP holder")
    wait_for(lambda: cluster.apiserver_ready("198.18.0.10", 8443, timeout=1), 10, "the API through the VIP")
    cluster.fault(holder, "haproxy-down")
    try:
        def moved() -> bool:  # one look at the holders: the VIP may be in transit between two looks
            now = lab.holders()
            return bool(now) and now[0] != holder and cluster.apiserver_ready("198.18.0.10", 8443, timeout=1)
        wait_for(moved, 10, "the VIP on a working HAProxy")
        return True
    except AssertionError:
        return False
    finally:
        cluster.heal(holder)


@pytest.fixture
def deployed(lab):
    lab.deploy()
    yield lab
    lab.heal_all()


def lint_guide(conf: str, script: str) -> set[str]:
    return {f.code for f in lint.lint_keepalived(conf, script)}


def test_the_guides_guarded_vip_check_is_no_defect_and_the_vip_follows_haproxy(deployed):
    """The guide (and the seed) curls the VIP only `if ip addr | grep -q VIP`: on the holder, its
    own HAProxy. lint does not call it K104 — and the VIP does move."""
    assert "K104" not in lint_guide(GUIDE_KEEPALIVED, GUIDE_CHECK)
    run_keepalived(deployed, GUIDE_KEEPALIVED, GUIDE_CHECK)
    assert vip_follows_haproxy(deployed)


KEEPALIVED_CASES = {
    # the VIP tested on every node: when the holder's HAProxy dies, every check fails at once
    "K104": ((GUIDE_KEEPALIVED, VIP_ONLY_CHECK), (GUIDE_KEEPALIVED, LOCAL_CHECK)),
    # nothing tracked
    "K108": ((re.sub(r"\s*track_script \{\s*check_apiserver\s*\}", "", GUIDE_KEEPALIVED), GUIDE_CHECK),
             (GUIDE_KEEPALIVED, GUIDE_CHECK)),
    # priority 255 with a weighted script: keepalived ignores the script
    "K112": ((GUIDE_KEEPALIVED.replace("priority 101", "priority 255"), GUIDE_CHECK),
             (GUIDE_KEEPALIVED.replace("priority 101", "priority 255").replace("weight -2", "weight 0"), GUIDE_CHECK)),
}


@pytest.mark.parametrize("code", sorted(KEEPALIVED_CASES))
def test_the_vip_stays_on_a_dead_haproxy_exactly_where_lint_says(deployed, code):
    (bad_conf, bad_script), (fixed_conf, fixed_script) = KEEPALIVED_CASES[code]
    assert code in lint_guide(bad_conf, bad_script)
    assert code not in lint_guide(fixed_conf, fixed_script)
    for conf, script, follows in ((bad_conf, bad_script, False), (fixed_conf, fixed_script, True)):
        run_keepalived(deployed, conf, script)
        assert vip_follows_haproxy(deployed) == follows, f"{code}: the VIP follows HAProxy: {not follows}"


def test_doctor_sees_priorities_a_weight_cannot_overcome_and_the_vip_stays(deployed):
    """D312: weight -2 with priorities 150/100/99 (each file fine alone): a failed check leaves
    the holder at 148. doctor says so from the live files; the lab shows the VIP staying; with
    weight 0 doctor is silent and the VIP moves."""
    for conf, d312 in ((GUIDE_KEEPALIVED, True), (GUIDE_KEEPALIVED.replace("weight -2", "weight 0"), False)):
        run_keepalived(deployed, conf, GUIDE_CHECK, priorities=(150, 100, 99))
        res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "doctor", "-t", str(deployed.topology_path), "--json"],
                             capture_output=True, text=True, timeout=60)
        assert ("D312" in {f["code"] for f in json.loads(res.stdout)}) == d312, res.stdout[-2000:]
        assert vip_follows_haproxy(deployed) == (not d312)
