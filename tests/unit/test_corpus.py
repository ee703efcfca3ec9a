"""lint on configs shaped like the ones people run (tests/fixtures/corpus/README.md): the findings
each must give, the ones it must not (no finding where the config has no such defect), and no
traceback on any of them cut short anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.configs import confparse, lint

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
FILES = {str(p): p.read_text() for p in CORPUS.rglob("*.conf")}

# file: (codes it must give, codes it must not give). The "must not" are the false findings a
# reader of the file would call out: what the daemons accept or what is not an apiserver's.
KEEPALIVED = {
    # its check curls the VIP only where it is held (`ip addr | grep`): that node's own HAProxy, no K104
    "kubeadm-guide.keepalived.conf": ({"K101", "K102", "K103", "K106", "K107", "K109"}, {"K104", "K105", "K108", "K110"}),
    "sync-group.keepalived.conf": ({"K101", "K108", "K109"}, {"K102", "K103", "K104", "K105", "K106"}),
    # keepalived balances by itself (virtual_server): no HAProxy whose death it should track
    "lvs.keepalived.conf": ({"K109"}, {"K101", "K105", "K106", "K107", "K108"}),
    "lvs-dr-apiserver.keepalived.conf": ({"K106", "K107"}, {"K101", "K108", "K110"}),
    # its vrrp_track_file comes after the instance that tracks it: keepalived ignores the switch
    "ipv6.keepalived.conf": ({"K115"}, {"K101", "K106", "K107", "K108", "K109", "K110"}),
    "include-main.keepalived.conf": ({"K103", "K109", "K110"}, {"K101", "K107", "K108"}),
    # script security with no script_user: keepalived removes the script where keepalived_script does not exist
    "quoted.keepalived.conf": ({"K109", "K116"}, {"K101", "K106", "K107", "K108", "K110"}),
    "cookeem-kubeadm-ha.keepalived.conf": ({"K101", "K102", "K103", "K105", "K106", "K107"}, {"K108", "K113"}),
    "icebluey.keepalived.conf": ({"K102", "K103", "K106", "K114"}, {"K105", "K108", "K110"}),  # 8 characters exactly
    "k3s-docs.keepalived.conf": ({"K107", "K109"}, {"K101", "K108", "K110"}),  # 'killall -0 haproxy' says all
    "keepalived-sample-localcheck.keepalived.conf": ({"K101", "K102", "K107", "K108"}, {"K106", "K110"}),
    "keepalived-sample-track-interface.keepalived.conf": ({"K106", "K107", "K108"}, {"K101", "K110"}),
    "kube-keepalived-vip.keepalived.conf": ({"K101", "K106", "K110"}, {"K105", "K108", "K113"}),
    "opsnull.keepalived.conf": ({"K101", "K102", "K103", "K106"}, {"K108", "K110"}),
    "raspbernetes.keepalived.conf": ({"K105", "K106", "K108"}, {"K101", "K110", "K113", "K114"}),
    "sempernow-halb.keepalived.conf": ({"K112"}, {"K101", "K108", "K114"}),
}
HAPROXY = {
    # ssl-hello-chk after httpchk wins: the /healthz check never runs, so H203 and not H204
    "kubeadm-guide.haproxy.cfg": ({"H203", "H207", "H209"}, {"H201", "H202", "H204", "H205", "H208", "H210"}),
    # `http-check connect ssl` makes the check TLS without check-ssl on the servers
    "kubeadm-guide-2024.haproxy.cfg": ({"H204", "H207", "H209"}, {"H201", "H202", "H205", "H206", "H208"}),
    # `from tcp_defaults` keeps the backend in TCP mode although the last defaults say http
    "named-defaults.haproxy.cfg": ({"H206"}, {"H201", "H202", "H207", "H208", "H209"}),
    "kubespray.haproxy.cfg": ({"H202", "H204", "H207"}, {"H201", "H205", "H206", "H209", "H210"}),
    "k0s-issue.haproxy.cfg": ({"H202", "H204"}, {"H203", "H205", "H206", "H209"}),  # check-ssl with a ca-file
    # the check goes to `port 80`, an nginx in front of the apiserver: plain HTTP is right there
    "k8s-vbox-hard-way.haproxy.cfg": ({"H202", "H204"}, {"H205", "H206", "H209"}),
    # a web frontend on :80/:443 in the same file is not judged as an apiserver's
    "lb-with-web.haproxy.cfg": ({"H202", "H206", "H209"}, {"H201", "H204", "H205", "H210"}),
    "haproxy-example-edge.haproxy.cfg": ({"H202"}, {"H204", "H205", "H206", "H207", "H208", "H209"}),
    "openshift-upi.haproxy.cfg": ({"H202", "H207"}, {"H201", "H205", "H206", "H208", "H210"}),
    "openshift-upi-rootless.haproxy.cfg": ({"H202", "H206"}, {"H201", "H205", "H210"}),
    "opsnull.haproxy.cfg": ({"H206"}, {"H202", "H209"}),
    "zhangjiong.haproxy.cfg": ({"H206", "H209"}, {"H202", "H201"}),
}
# Files written for a dedicated load balancer (and bind the apiserver's port there): H202 is a
# condition without --on, an error with --on master, nothing with --on lb.
ON_A_LOAD_BALANCER = ["haproxy-example-edge.haproxy.cfg", "lb-with-web.haproxy.cfg", "openshift-upi.haproxy.cfg",
                      "openshift-upi-rootless.haproxy.cfg", "k8s-vbox-hard-way.haproxy.cfg", "kubespray.haproxy.cfg",
                      "k0s-issue.haproxy.cfg"]


def check_script(name: str) -> str | None:
    return (CORPUS / "kubeadm-guide.check.sh").read_text() if name.startswith("kubeadm") else None


@pytest.mark.parametrize("name", sorted(KEEPALIVED))
def test_keepalived_corpus(name):
    path = CORPUS / name
    found = {f.code for f in lint.lint_keepalived(path.read_text(), check_script(name), str(path), FILES)}
    must, must_not = KEEPALIVED[name]
    assert must <= found, f"missing {must - found}"
    assert not (must_not & found), f"unexpected {must_not & found}"


@pytest.mark.parametrize("name", sorted(HAPROXY))
def test_haproxy_corpus(name):
    found = {f.code for f in lint.lint_haproxy((CORPUS / name).read_text(), name)}
    must, must_not = HAPROXY[name]
    assert must <= found, f"missing {must - found}"
    assert not (must_not & found), f"unexpected {must_not & found}"


@pytest.mark.parametrize("name", ON_A_LOAD_BALANCER)
def test_where_the_file_runs_decides_the_port_collision(name):
    text = (CORPUS / name).read_text()
    unknown = [f for f in lint.lint_haproxy(text, name) if f.code == "H202"]
    assert unknown and all(f.level == "warning" and "if this file runs on a master" in f.message for f in unknown)
    master = [f for f in lint.lint_haproxy(text, name, on="master") if f.code == "H202"]
    assert master and all(f.level == "error" and "if " not in f.message.split(":")[0] for f in master)
    assert "H202" not in {f.code for f in lint.lint_haproxy(text, name, on="lb")}


def test_a_defaults_setting_is_one_finding_at_its_line():
    """kubeadm-guide's 20 s timeouts sit in defaults: one finding per line, not one per frontend."""
    text = "defaults\n  mode tcp\n  timeout client 20s\n  timeout server 20s\n" + "".join(
        f"frontend f{i}\n  bind :{8440 + i}\n  default_backend b\n" for i in range(3)) + \
        "backend b\n  server s 192.0.2.11:6443 check\n"
    h209 = [f.where for f in lint.lint_haproxy(text, "h.cfg") if f.code == "H209"]
    assert sorted(h209) == ["h.cfg:3", "h.cfg:4"]


def test_keepalived_reads_comments_and_backslashes_as_keepalived_does():
    conf = ("vrrp_instance V {\n  priority 90#no space before the comment\n"
            "  authentication {\n    auth_type PASS\n    auth_pass abc\\#defghij\n  }\n"
            "  virtual_ipaddress {\n    192.0.2.10/24 \\\n      dev eth0\n  }\n  @node2 priority 80\n}\n")
    root = confparse.parse_keepalived(conf)
    inst = root.first("vrrp_instance")
    assert inst.value("priority") == "90"
    assert inst.first("authentication").value("auth_pass") == "abc#defghij"  # escaped: not a comment
    # no continuation outside $NAME= definitions: keepalived reads `192.0.2.10/24\\` and then `dev eth0`
    # (keepalived -t: "invalid number '24\\'", "VRRP parsed invalid IP dev")
    assert inst.first("virtual_ipaddress").words() == ["192.0.2.10/24\\", "dev"]
    assert [c.args for c in inst.all("priority")] == [["90"], ["80"]]  # the @host line is read too


def test_findings_in_an_included_file_name_that_file_and_line():
    main = CORPUS / "include-main.keepalived.conf"
    k103 = next(f for f in lint.lint_keepalived(main.read_text(), None, str(main), FILES) if f.code == "K103")
    assert k103.where == f"{CORPUS}/conf.d/10-check.conf:1"


def test_include_loops_end():
    loop = {"/a.conf": "include /b.conf\n", "/b.conf": "include /a.conf\nvrrp_instance X {\n}\n"}
    findings = lint.lint_keepalived(loop["/a.conf"], None, "/a.conf", loop)  # it returned: the loop ended
    assert {"K108", "K109"} <= {f.code for f in findings if f.where.startswith("/b.conf")}  # X was read, once
    assert len([f for f in findings if f.code == "K109"]) == 1


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted([*KEEPALIVED, *HAPROXY])), st.floats(0, 1), st.text(max_size=40))
def test_any_cut_or_garbled_corpus_file_lints_without_a_traceback(name, where, junk):
    text = (CORPUS / name).read_text()
    cut = int(len(text) * where)
    garbled = text[:cut] + junk + text[cut:cut + 200]
    lint.lint_configs(garbled, garbled, garbled)
    lint.lint_keepalived(text[:cut], None, name, FILES)
