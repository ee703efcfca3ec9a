"""The daemons' own verdict on every corpus file, and on the findings keepalived reports itself.

Syntax: a corpus file that `haproxy -c` accepts never gets H100 from `lint` (and lint reads it:
no exit 2), one it refuses always does (a warning: the node's HAProxy may differ from this one).
A keepalived.conf that `keepalived -t` refuses is never called clean, and not only by the
findings almost every file gets (K107 router_id, K109 no maintenance switch).

Claims: for each finding whose consequence keepalived states in its own log, the corpus file
with the finding makes keepalived say it, and the same file with the finding's fix applied lints
without the finding and makes keepalived say nothing of it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from k8s_ha_tui.configs import lint

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"


def lint_cli(*args: str) -> tuple[int, set[str]]:
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "lint", "--json", *args],
                         capture_output=True, text=True, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, {f["code"] for f in json.loads(res.stdout or "[]")}


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.haproxy.cfg")), ids=lambda p: p.name)
def test_lint_and_haproxy_c_agree_on_every_corpus_file(path):
    verdict = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    code, found = lint_cli("--haproxy", str(path))
    assert code != 2, "lint could not read a file HAProxy reads"
    if verdict.returncode == 0:
        assert "H100" not in found
    else:
        assert "H100" in found, f"haproxy -c refuses {path.name}; lint called it {found}"


def keepalived_t(checkers, tmp_path: Path, text: str) -> tuple[int, str]:
    """`keepalived -t` in the checkers' namespace, with the interfaces the file names."""
    tree = tmp_path / "node"
    (tree / "etc/keepalived").mkdir(parents=True, exist_ok=True)
    (tree / "etc/haproxy").mkdir(parents=True, exist_ok=True)
    (tree / "etc/keepalived/keepalived.conf").write_text(text)
    interfaces = sorted(set(re.findall(r"^\s*(?:interface|default_interface)\s+(\S+)", text, re.M)) | {"eth0"})
    res = checkers.keepalived(tree, interfaces)
    return res.returncode, res.output


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.keepalived.conf")), ids=lambda p: p.name)
def test_a_keepalived_conf_keepalived_refuses_is_never_called_clean(checkers, tmp_path, path):
    code, said = keepalived_t(checkers, tmp_path, path.read_text())
    findings = lint.lint_keepalived(path.read_text(), None, str(path))
    if code != 0:
        telling = [f.code for f in findings if f.level != "info" and f.code not in ("K107", "K109")]
        assert telling, f"keepalived -t: {said}; lint: {[f.code for f in findings]}"


def _global(text: str, line: str) -> str:
    if "global_defs" in text:
        return re.sub(r"global_defs\s*\{", "global_defs {\n    " + line, text, count=1)
    return "global_defs {\n    " + line + "\n}\n" + text


# code: (corpus file or text, what keepalived says, the fix as the finding states it)
CLAIMS = {
    "K101": ("opsnull.keepalived.conf", "SECURITY VIOLATION",
             lambda t: _global(t, "enable_script_security\n    script_user root")),
    "K105": ("raspbernetes.keepalived.conf", "Truncating auth_pass",
             lambda t: t.replace("auth_pass kubernetes", "auth_pass kubernet")),
    "K112": ("sempernow-halb.keepalived.conf", "with weights due to address_owner",
             lambda t: t.replace("weight -10", "weight 0")),  # the fix K112 gives
    "K113": ("kube-keepalived-vip.keepalived.conf", "does not support authentication",
             lambda t: t.replace("    authentication { auth_type PASS auth_pass s3cret }\n", "")),
    "K116": ("quoted.keepalived.conf", "Unable to set default user",
             lambda t: t.replace("enable_script_security", "enable_script_security\n    script_user root")),
    "K114": ("icebluey.keepalived.conf", "nopreempt will not work with initial state MASTER",
             lambda t: t.replace("state MASTER", "state BACKUP")),
}


def _claim_text(code: str) -> str:
    text = (CORPUS / CLAIMS[code][0]).read_text()
    if code == "K113":  # VRRPv3 in the corpus never carries auth: add the block people add by habit
        block = r"\1    authentication { auth_type PASS auth_pass s3cret }\n"
        text = re.sub(r"(vrrp_instance \S+ \{\n)", block, text, count=1)
    return text


@pytest.mark.parametrize("code", sorted(CLAIMS))
def test_keepalived_itself_says_what_the_finding_claims_and_the_fix_silences_it(checkers, tmp_path, code):
    _, said_as_written, fix = CLAIMS[code]
    text = _claim_text(code)
    assert code in {f.code for f in lint.lint_keepalived(text, None)}
    _, before = keepalived_t(checkers, tmp_path, text)
    assert said_as_written in before, before
    fixed = fix(text)
    assert fixed != text and code not in {f.code for f in lint.lint_keepalived(fixed, None)}
    _, after = keepalived_t(checkers, tmp_path, fixed)
    assert said_as_written not in after, after
