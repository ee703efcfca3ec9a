"""The wizard's flow with scripted answers; each answer goes through the model's own checks."""

from __future__ import annotations

import subprocess
import sys

import pytest

from k8s_ha_tui import cli, wizard
from k8s_ha_tui.model import topology as tp


class ScriptedPrompter:
    """Answers questions from a script; None means 'take the default'. A rejected answer is
    recorded and the next scripted answer is tried, as a person would type again."""

    def __init__(self, answers: dict[str, list] | None = None, confirm_write: bool = True):
        self.answers = {k: list(v) for k, v in (answers or {}).items()}
        self.rejected: list[tuple[str, str]] = []
        self.asked: list[str] = []
        self.shown: list[str] = []
        self.confirm_write = confirm_write

    def _next(self, message: str):
        for key, queue in self.answers.items():
            if key in message and queue:
                return queue.pop(0)
        return None

    def text(self, message, default, validate):
        self.asked.append(message)
        while True:
            scripted = self._next(message)
            answer = default if scripted is None else scripted
            problem = validate(answer)
            if problem is None:
                return answer
            self.rejected.append((message, problem))
            if scripted is None:
                raise AssertionError(f"the default for {message!r} is refused: {problem}")

    def password(self, message, validate):
        return self.text(message, "", validate)

    def confirm(self, message, default):
        self.asked.append(message)
        if message.startswith("Write"):
            return self.confirm_write
        answer = self._next(message)
        return default if answer is None else answer

    def select(self, message, choices, default):
        self.asked.append(message)
        answer = self._next(message)
        return default if answer is None else answer

    def show(self, text):
        self.shown.append(text)


def test_all_defaults_give_the_seed_cluster():
    t = wizard.ask_topology(ScriptedPrompter())
    assert t == wizard.defaults_topology()
    assert t.vip == "10.0.3.10" and len(t.masters) == 3 and len(t.workers) == 3


def test_bad_answers_are_refused_as_typed_then_corrected():
    p = ScriptedPrompter({
        "Virtual IP": ["10.0.3.300", "10.0.3.10"],
        "VRRP virtual router id": ["300", "52"],
        "master 2 name": ["k8s-master-01", "cp-2"],
        "cp-2 address": ["10.0.9.12", "10.0.3.10", "10.0.3.11", "10.0.3.12"],
        "kube-apiserver port": ["8443", "6443"],
        "Speed profile": ["custom"],
        "Failed checks before": ["0", "2"],
        "VRRP version": ["2"],
        "advert interval": ["0.5", "1"],
    })
    t = wizard.ask_topology(p)
    reasons = [r for _, r in p.rejected]
    assert any("'10.0.3.300' is not an IP address" in r for r in reasons)
    assert any("300 is not a VRRP router id" in r for r in reasons)
    assert any("k8s-master-01 is already master 1's name" in r for r in reasons)
    assert any("not in the VIP's subnet" in r for r in reasons)
    assert any("is the VIP" in r or "already the VIP's" in r for r in reasons)
    assert any("already k8s-master-01's address" in r for r in reasons)
    assert any("8443 is already HAProxy's port" in r for r in reasons)
    assert any("0: input should be greater than or equal to 1" in r for r in reasons)
    assert any("0.5 must be whole seconds" in r for r in reasons)
    assert t.vrrp.router_id == 52 and t.masters[1].name == "cp-2"


def test_a_dual_stack_cluster_asks_each_masters_ipv6_address_in_the_ipv6_vips_subnet():
    p = ScriptedPrompter({
        "IPv6 VIP beside it": ["10.0.3.9", "fd00::10"],
        "k8s-master-01 IPv6 address": ["fd01::11", "fd00::10", "fd00::11"],
        "k8s-master-02 IPv6 address": ["fd00::11", "fd00::12"],
        "k8s-master-03 IPv6 address": ["fd00::13"],
        "Speed profile": ["custom"],
    })
    t = wizard.ask_topology(p)
    reasons = [r for _, r in p.rejected]
    assert any("'10.0.3.9' is IPv4" in r for r in reasons)
    assert any("fd01::11 is not in the VIP's subnet fd00::/64" in r for r in reasons)
    assert any("is the VIP" in r or "already the VIP's" in r for r in reasons)
    assert any("fd00::11 is already k8s-master-01's address" in r for r in reasons)
    assert (t.vip6, t.prefix6, [m.address6 for m in t.masters]) == ("fd00::10", 64, ["fd00::11", "fd00::12", "fd00::13"])
    assert t.vrrp.version == 3 and not any("VRRP version" in q for q in p.asked)  # IPv6 VRRP is v3 only
    assert not any("IPv6 address" in q for q in p.asked if q.startswith("k8s-node"))  # workers: their address alone


def test_an_ipv6_only_cluster_takes_ipv6_addresses_and_a_64_by_default():
    answers = {f"k8s-{role}-0{i} address": [f"fd00::{n}{i}"] for role, n in (("master", 1), ("node", 2)) for i in (1, 2, 3)}
    answers["k8s-master-01 address"] = ["10.0.3.11", "fd00::11"]  # the seed's, refused, then typed again
    p = ScriptedPrompter({"Virtual IP": ["fd00::10"], **answers})
    t = wizard.ask_topology(p)
    assert (t.family, t.prefix, t.vip6) == (6, 64, None)
    assert [n.address for n in (*t.masters, *t.workers)] == [f"fd00::{n}{i}" for n in (1, 2) for i in (1, 2, 3)]
    assert any("'10.0.3.11' is IPv4" in r for _, r in p.rejected)
    assert not any("IPv6 VIP beside it" in q for q in p.asked)


def test_v2_password_is_checked_and_v3_skips_it():
    p = ScriptedPrompter({"Speed profile": ["custom"], "VRRP version": ["2"], "auth_pass": ["far-too-long", "ok-pass"]})
    assert wizard.ask_topology(p).vrrp.auth_pass == "ok-pass"
    assert any("longer than 8" in r for _, r in p.rejected)
    p3 = ScriptedPrompter({"Speed profile": ["custom"], "advert interval": ["0.005", "0.2"]})  # v3: the default
    t3 = wizard.ask_topology(p3)
    assert t3.vrrp.version == 3 and t3.vrrp.advert_int == 0.2 and t3.vrrp.auth_pass is None
    assert not any("auth_pass" in q for q in p3.asked)


def test_starting_from_a_file_keeps_its_values(example_path):
    t = wizard.ask_topology(ScriptedPrompter({"auth_pass": ["k8s-test"]}), wizard.start_from(str(example_path)))
    assert t == tp.load_topology(example_path)


def test_summary_masks_the_password():
    t = wizard.ask_topology(ScriptedPrompter({"Speed profile": ["custom"], "VRRP version": ["2"],
                                              "auth_pass": ["s3cret"]}))
    assert "s3cret" not in wizard.summary(t) and "********" in wizard.summary(t)


def test_declining_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(wizard, "QuestionaryPrompter", lambda: ScriptedPrompter(confirm_write=False))
    out = tmp_path / "t.yaml"
    assert cli.main(["wizard", "-o", str(out), "--render-dir", str(tmp_path / "r")]) == 1
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_writes_nothing(tmp_path, monkeypatch, capsys):
    class Interrupted(ScriptedPrompter):
        def text(self, message, default, validate):
            if "workers" in message:
                raise KeyboardInterrupt
            return super().text(message, default, validate)

    monkeypatch.setattr(wizard, "QuestionaryPrompter", Interrupted)
    assert cli.main(["wizard", "-o", str(tmp_path / "t.yaml"), "--render-dir", str(tmp_path / "r")]) == 130
    assert list(tmp_path.iterdir()) == []
    assert "nothing was written" in capsys.readouterr().err


def test_confirmed_wizard_writes_topology_and_renders(tmp_path, monkeypatch):
    monkeypatch.setattr(wizard, "QuestionaryPrompter", ScriptedPrompter)
    out = tmp_path / "t.yaml"
    assert cli.main(["wizard", "-o", str(out), "--render-dir", str(tmp_path / "r")]) == 0
    assert tp.load_topology(out) == wizard.defaults_topology()
    assert (tmp_path / "r/k8s-master-03/etc/haproxy/haproxy.cfg").exists()


def test_defaults_flag_writes_without_asking(tmp_path):
    out = tmp_path / "t.yaml"
    res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "wizard", "--defaults", "-o", str(out)],
                         capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    assert tp.load_topology(out) == wizard.defaults_topology()
    assert out.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("key", ["Cluster name", "VIP prefix length", "How many masters", "SSH port"])
def test_every_topic_is_asked(key):
    p = ScriptedPrompter()
    wizard.ask_topology(p)
    assert any(key in q for q in p.asked)


def test_a_profile_is_shown_with_its_numbers_and_written_as_plain_values():
    p = ScriptedPrompter({"Speed profile": ["fast"]})
    t = wizard.ask_topology(p)
    shown = "\n".join(p.shown)
    assert "fast     0.05 s × 6 0.30 s    0.25 s  under one in 1,000 years" in shown and "bench/flap.py" in shown
    assert (t.vrrp.version, t.vrrp.advert_int, t.vrrp.down_adverts) == (3, 0.05, 6)
    assert t.check.connect_timeout_ms == 200
    assert not any("advert interval" in q or "Seconds between health checks" in q for q in p.asked)
    assert "down_adverts: 6" in tp.topology_yaml(t) and "connect_timeout_ms: 200" in tp.topology_yaml(t)


def test_custom_asks_for_missed_adverts_and_the_start_file_sets_the_default_choice():
    p = ScriptedPrompter({"Speed profile": ["custom"], "Adverts a backup misses": ["1", "4"]})
    t = wizard.ask_topology(p)
    assert t.vrrp.down_adverts == 4 and any("greater than or equal to 2" in r for _, r in p.rejected)
    again = ScriptedPrompter()
    assert wizard.ask_topology(again, tp.topology_to_dict(t)) == t  # "custom" stays the default


def test_defaults_with_a_profile_writes_its_values(tmp_path):
    out = tmp_path / "t.yaml"
    assert cli.main(["wizard", "--defaults", "--profile", "safe", "-o", str(out)]) == 0
    t = tp.load_topology(out)
    assert (t.vrrp.advert_int, t.vrrp.down_adverts, t.check.fall, t.check.connect_timeout_ms) == (0.5, 6, 2, 500)
