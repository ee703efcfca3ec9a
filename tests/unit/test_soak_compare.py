"""bench/soak.py's judge: a view that follows the truth within the excuse agrees 100 % and shows
nothing false; a view that lags longer, or shows what never was, is caught."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from soak import EXCUSE_S, Timeline, compare  # noqa: E402

# A truth: (seconds since the start, holders) steps at least 4 s apart (more than the lag tested), over 120 s.
steps = st.lists(st.tuples(st.floats(4, 10), st.sampled_from(["a", "b", "c", "", "ab"])), min_size=1, max_size=12)


def timelines(gaps, lag: float) -> tuple[Timeline, Timeline, list[float]]:
    truth, view, changes, t = Timeline(), Timeline(), [], 0.0
    truth.add(-1e9, "a")
    view.add(-1e9, "a")
    for gap, value in gaps:
        t += gap
        truth.add(t, value)
        view.add(t + lag, value)
        changes.append(t)
    return truth, view, changes


@settings(max_examples=60, deadline=None)
@given(steps, st.floats(0, EXCUSE_S * 0.9))
def test_a_view_within_the_excuse_agrees_fully_and_shows_nothing_false(gaps, lag):
    truth, view, changes = timelines(gaps, lag)
    r = compare(view, truth.at, changes, 0.0, 120.0)
    assert r["agree_pct"] == 100.0 and r["never_true"] == []
    assert r["lag_p99_s"] is None or r["lag_p99_s"] <= round(lag, 2) + 0.01


@settings(max_examples=60, deadline=None)
@given(steps)
def test_a_view_that_lags_longer_than_the_excuse_disagrees(gaps):
    truth, view, changes = timelines(gaps, EXCUSE_S + 1.5)
    moved = [c for c, (_, v), before in zip(changes, gaps, ["a"] + [v for _, v in gaps])
             if v != before and c < 120 - EXCUSE_S - 1]  # a move the view shows too late inside the run
    r = compare(view, truth.at, changes, 0.0, 120.0)
    assert (r["agree_pct"] < 100.0) == bool(moved)


def test_a_value_that_never_was_is_reported_with_when():
    truth, view, changes = timelines([(10.0, "b")], 0.2)
    view.add(30.0, "zz")
    view.add(31.0, "b")
    r = compare(view, truth.at, changes, 0.0, 60.0)
    assert [(x["at_s"], x["shown"], x["truth"]) for x in r["never_true"]] == [(30.0, "zz", "b")]
    assert r["agree_pct"] < 100.0
