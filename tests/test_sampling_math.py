"""Property tests of the pure sampling math against direct, brute-force definitions."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from sparkframes.sampling.frame_choice import frames_in_span, nearest_frame, policy_frame
from sparkframes.sampling.specs import Policy
from sparkframes.sampling.time_grid import (
    build_grid,
    lcm_rate,
    rate_for_min_frames,
    sample_count,
    sample_times,
)

rates_st = st.fractions(min_value=Fraction(1, 4), max_value=Fraction(60), max_denominator=6)
times_st = st.fractions(min_value=0, max_value=20, max_denominator=1000)


@given(st.lists(rates_st, min_size=1, max_size=4, unique=True), times_st, times_st)
@settings(max_examples=200, deadline=None)
def test_grid_gives_each_rate_exactly_its_own_samples(rates, a, b):
    start, end = min(a, b), max(a, b)
    grid = build_grid(start, end, rates)
    for rate in rates:
        via_grid = [grid.time(j) for j in grid.grid_indices(rate)]
        assert via_grid == sample_times(start, end, rate)


@given(st.lists(rates_st, min_size=1, max_size=4))
def test_lcm_rate_is_a_whole_multiple_of_every_rate(rates):
    grid_rate = lcm_rate(rates)
    for rate in rates:
        assert (grid_rate / rate).denominator == 1


@given(times_st, rates_st)
def test_sample_count_matches_the_definition(duration, rate):
    n = sample_count(duration, rate)
    assert all(Fraction(k) / rate < duration for k in range(n))
    assert duration <= 0 or Fraction(n) / rate >= duration


@given(st.fractions(min_value=Fraction(1, 100), max_value=30), rates_st, st.integers(0, 64))
def test_min_frames_gives_exactly_n_when_raised(duration, rate, n):
    used = rate_for_min_frames(duration, rate, n)
    if sample_count(duration, rate) >= n:
        assert used == rate
    else:
        assert sample_count(duration, used) == n


sorted_times = st.lists(st.integers(0, 500), min_size=1, max_size=40).map(sorted)


@given(sorted_times, st.integers(-10, 510), st.integers(0, 520), st.fractions(-10, 520))
@settings(max_examples=300)
def test_nearest_frame_is_the_nearest_in_span_with_ties_to_the_earlier(times, a, b, target):
    start, end = Fraction(min(a, b)), Fraction(max(a, b))
    span = frames_in_span(times, start, end)
    assert list(span) == [i for i, t in enumerate(times) if start <= t < end]
    if not span:
        return
    got = nearest_frame(times, span, target)
    best = min(span, key=lambda i: (abs(times[i] - target), times[i], i))
    assert times[got] == times[best]


def test_tie_goes_to_the_earlier_frame():
    times = [0, 10, 20]
    assert nearest_frame(times, range(3), Fraction(5)) == 0
    assert nearest_frame(times, range(3), Fraction(15)) == 1
    assert nearest_frame(times, range(1, 3), Fraction(0)) == 1  # span excludes frame 0


def test_policies_pick_first_middle_last():
    span = range(3, 9)  # six frames
    assert policy_frame(span, Policy.FIRST) == 3
    assert policy_frame(span, Policy.MIDDLE) == 3 + (6 - 1) // 2
    assert policy_frame(span, Policy.LAST) == 8
