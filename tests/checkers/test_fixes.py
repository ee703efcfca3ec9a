"""Every finding's fix works when applied: the corpus file with the fix lints without the finding,
and the daemons' own check takes the fixed file with no new complaint (`haproxy -c` still
accepts it; `keepalived -t` says nothing it did not say before). The findings whose consequence
the lab shows are fixed the same way in tests/lab/test_lint_proven.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from test_corpus_verdicts import keepalived_t

from k8s_ha_tui.configs import lint

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"


def _track_file(text: str) -> str:
    switch = "vrrp_track_file maint {\n    file /etc/keepalived/maintenance\n    weight 0\n}\n"
    text = text.replace("vrrp_instance", switch + "vrrp_instance", 1)
    return re.sub(r"(\n\s*track_script \{)", r"\n    track_file {\n        maint\n    }\1", text, count=1)


def _move_track_file_up(text: str) -> str:
    block = re.search(r"vrrp_track_file maint \{.*?\n\}\n?", text, re.S)
    assert block
    return text.replace(block.group(0), "").replace("vrrp_instance", block.group(0) + "vrrp_instance", 1)


HAPROXY_FIXES = {
    "H207": ("kubespray.haproxy.cfg",
             lambda t: t.replace("global\n", "global\n  stats socket /run/haproxy/admin.sock mode 660 level admin\n", 1)),
    "H208": ("kubeadm-guide-2024.haproxy.cfg", None),  # a server cut without `check`, then given it back
    "H209": ("kubeadm-guide-2024.haproxy.cfg", lambda t: t.replace("35s", "1h")),
}
KEEPALIVED_FIXES = {
    "K102": ("opsnull.keepalived.conf", lambda t: t.replace("weight -30", "weight 0")),
    "K103": ("cookeem-kubeadm-ha.keepalived.conf", lambda t: t.replace("interval 5", "interval 1")),
    "K106": ("opsnull.keepalived.conf", lambda t: t.replace("192.0.2.10\n", "192.0.2.10/24 dev eth0\n")),
    "K107": ("k3s-docs.keepalived.conf", lambda t: t.replace("global_defs {", "global_defs {\n    router_id cp-1", 1)),
    "K109": ("opsnull.keepalived.conf", _track_file),
    "K115": ("ipv6.keepalived.conf", _move_track_file_up),
}


@pytest.mark.parametrize("code", sorted(HAPROXY_FIXES))
def test_an_haproxy_fix_takes_the_finding_away_and_haproxy_still_takes_the_file(tmp_path, code):
    name, fix = HAPROXY_FIXES[code]
    text = (CORPUS / name).read_text()
    if code == "H208":
        text = text.replace("192.0.2.13:6443 check verify none", "192.0.2.13:6443 verify none")
        fix = lambda t: t.replace("192.0.2.13:6443 verify none", "192.0.2.13:6443 check verify none")  # noqa: E731
    assert fix is not None
    fixed = fix(text)
    assert code in {f.code for f in lint.lint_haproxy(text)}
    assert code not in {f.code for f in lint.lint_haproxy(fixed)}
    path = tmp_path / "haproxy.cfg"
    path.write_text(fixed)
    assert subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, timeout=30).returncode == 0


@pytest.mark.parametrize("code", sorted(KEEPALIVED_FIXES))
def test_a_keepalived_fix_takes_the_finding_away_and_keepalived_says_nothing_new(checkers, tmp_path, code):
    name, fix = KEEPALIVED_FIXES[code]
    text = (CORPUS / name).read_text()
    fixed = fix(text)
    assert code in {f.code for f in lint.lint_keepalived(text, None)}
    assert code not in {f.code for f in lint.lint_keepalived(fixed, None)}
    _, before = keepalived_t(checkers, tmp_path, text)
    _, after = keepalived_t(checkers, tmp_path, fixed)
    new = {re.sub(r"Line \d+", "Line N", ln) for ln in after.splitlines()} - \
        {re.sub(r"Line \d+", "Line N", ln) for ln in before.splitlines()}
    assert not new, f"keepalived -t says, after the fix: {new}"
    if code == "K115":
        assert "not found, ignoring" in before and "not found, ignoring" not in after
