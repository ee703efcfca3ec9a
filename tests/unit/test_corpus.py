"""lint on configs shaped like the ones people run (tests/fixtures/corpus/README.md): the findings
each must give, the ones it must not (no finding where the config has no such defect), and no
traceback on any of them cut short anywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.configs import lint

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
FILES = {str(p): p.read_text() for p in CORPUS.rglob("*.conf")}

# file: (codes it must give, codes it must not give)
KEEPALIVED = {
    "kubeadm-guide.keepalived.conf": ({"K101", "K102", "K103", "K104", "K106", "K107", "K109"}, {"K105", "K108", "K110"}),
    "sync-group.keepalived.conf": ({"K101", "K108", "K109"}, {"K102", "K103", "K104", "K105", "K106"}),
    "lvs.keepalived.conf": ({"K108", "K109"}, {"K101", "K105", "K106", "K107"}),
    "ipv6.keepalived.conf": (set(), {"K101", "K106", "K107", "K108", "K109", "K110"}),
    "include-main.keepalived.conf": ({"K103", "K109", "K110"}, {"K101", "K107", "K108"}),
    "quoted.keepalived.conf": ({"K109"}, {"K101", "K106", "K107", "K108", "K110"}),
}
HAPROXY = {
    "kubeadm-guide.haproxy.cfg": ({"H203", "H204", "H207", "H209"}, {"H201", "H202", "H205", "H208"}),
    # `from tcp_defaults` keeps the backend in TCP mode although the last defaults say http
    "named-defaults.haproxy.cfg": ({"H206"}, {"H201", "H202", "H207", "H208", "H209"}),
}


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
