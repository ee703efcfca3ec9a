"""The lab's fault arguments and the busy apiserver's delay, without a lab (tests/lab acts them out)."""

from __future__ import annotations

import pytest

from k8s_ha_tui.lab import apiserver, faults
from k8s_ha_tui.lab.proc import LabError


@pytest.mark.parametrize(("kind", "value", "every", "message"), [
    ("apiserver-busy", None, None, r"apiserver-busy needs MS \(1-5000\)"),
    ("apiserver-busy", 0, None, "MS must be a whole number 1-5000"),
    ("apiserver-busy", 20.5, None, "MS must be a whole number 1-5000"),
    ("apiserver-busy", 20, 5, "--every applies to pause only"),
    ("priority", 255, None, "PRIORITY must be a whole number 1-254"),
    ("vrrp-loss", 150, None, r"PERCENT must be 0.01-100$"),
    ("apiserver-hang", 5, None, "apiserver-hang takes no value"),
    ("pause", 2000, 1, "must be longer than the pause"),
])
def test_a_fault_value_out_of_its_range_is_refused_in_one_line(kind, value, every, message):
    with pytest.raises(LabError, match=message):
        faults.check_value(kind, value, every)


@pytest.mark.parametrize(("kind", "value"), [("apiserver-busy", 1), ("apiserver-busy", 5000), ("vrrp-loss", 0.5),
                                             ("apiserver-down", None)])
def test_values_in_range_pass(kind, value):
    faults.check_value(kind, value, None)


def test_every_fault_with_a_value_is_in_the_help_and_busy_is_master_only():
    assert set(faults.VALUES) <= set(faults.KINDS) and "apiserver-busy" in faults.MASTER_ONLY


@pytest.mark.parametrize(("content", "seconds"), [
    (None, 0.0), ("", 0.0), ("20\n", 0.02), ("250", 0.25), ("-5", 0.0), ("lots", 0.0), ("999999", 10.0)])
def test_the_stand_in_reads_its_delay_from_the_file_the_fault_writes(tmp_path, monkeypatch, content, seconds):
    path = tmp_path / "busy"
    if content is not None:
        path.write_text(content)
    monkeypatch.setattr(apiserver, "BUSY_FILE", str(path))
    assert apiserver.busy_seconds() == pytest.approx(seconds)
