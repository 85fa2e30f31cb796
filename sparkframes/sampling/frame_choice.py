"""Which frame serves a sample time: the nearest in-span frame, ties to the earlier one.

Pure logic over a sorted sequence of frame presentation times. Times may be ints (stream pts) or
Fractions; targets are Fractions in the same unit, so every comparison is exact.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from fractions import Fraction

from sparkframes.sampling.specs import Policy


def frames_in_span(times: Sequence[int | Fraction], start: Fraction, end: Fraction) -> range:
    """Positions ``i`` with ``start <= times[i] < end`` (``times`` sorted ascending)."""
    return range(bisect_left(times, start), bisect_left(times, end))


def nearest_frame(times: Sequence[int | Fraction], span: range, target: Fraction) -> int:
    """Position in ``span`` whose time is nearest ``target``; on a tie, the earlier frame.

    ``span`` must be non-empty. The answer is one of the two frames around ``target``.
    """
    lo, hi = span.start, span.stop
    i = bisect_left(times, target, lo, hi)  # first frame at or after target
    if i == lo:
        return lo
    if i == hi:
        return hi - 1
    before, after = times[i - 1], times[i]
    # Tie (equal distance) goes to the earlier frame, hence <=.
    return i - 1 if target - before <= after - target else i


def policy_frame(span: range, policy: Policy) -> int:
    """The single frame a one-per-clip policy picks from a non-empty span."""
    if policy is Policy.FIRST:
        return span.start
    if policy is Policy.MIDDLE:
        return span.start + (len(span) - 1) // 2
    if policy is Policy.LAST:
        return span.stop - 1
    raise ValueError(f"{policy} is not a one-frame policy")
