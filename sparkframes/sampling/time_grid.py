"""Sample times for one or more rates, and the shared LCM grid that lets one decode serve all.

For a rate ``f`` on a clip starting at ``s`` the sample times are ``s + k/f`` while below the clip
end. For several rates the union of their sample times lies on the grid of rate
``F = lcm(rates)`` (for rationals: lcm of numerators over gcd of denominators); rate ``f`` takes
every ``F/f``-th grid point, so sampling on the grid and sampling each rate alone agree exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction


def sample_count(duration_s: Fraction, rate: Fraction) -> int:
    """Number of ``k >= 0`` with ``k / rate < duration_s`` (0 for an empty clip)."""
    if duration_s <= 0:
        return 0
    return math.ceil(duration_s * rate)


def rate_for_min_frames(duration_s: Fraction, rate: Fraction, min_frames: int) -> Fraction:
    """The rate to use so a clip gets at least ``min_frames`` samples.

    If ``rate`` already gives enough, it is kept; otherwise ``min_frames / duration`` gives exactly
    ``min_frames`` samples (``k / rate < D`` for ``k < N``).
    """
    if min_frames <= 0 or duration_s <= 0 or sample_count(duration_s, rate) >= min_frames:
        return rate
    return Fraction(min_frames) / duration_s


def lcm_rate(rates: Iterable[Fraction]) -> Fraction:
    """Smallest rate of which every given rate is an integer fraction (every k-th sample)."""
    rates = [Fraction(r) for r in rates]
    if not rates:
        raise ValueError("no rates")
    num = math.lcm(*(r.numerator for r in rates))
    den = math.gcd(*(r.denominator for r in rates))
    return Fraction(num, den)


@dataclass(frozen=True)
class SampleGrid:
    """The shared grid of a clip: ``start + j / grid_rate`` for ``j < size``.

    ``steps[rate]`` is how many grid points separate two samples of ``rate``.
    """

    start_s: Fraction
    end_s: Fraction
    grid_rate: Fraction
    steps: dict[Fraction, int]

    @property
    def size(self) -> int:
        return sample_count(self.end_s - self.start_s, self.grid_rate)

    def time(self, j: int) -> Fraction:
        return self.start_s + Fraction(j) / self.grid_rate

    def grid_indices(self, rate: Fraction) -> range:
        """Grid points used by ``rate``, in sample order (sample k is grid point k * step)."""
        step = self.steps[rate]
        return range(0, self.size, step)


def build_grid(start_s: Fraction, end_s: Fraction, rates: Sequence[Fraction]) -> SampleGrid:
    """The LCM grid for ``rates`` on ``[start_s, end_s)``."""
    grid_rate = lcm_rate(rates)
    steps = {Fraction(r): int(grid_rate / Fraction(r)) for r in rates}
    return SampleGrid(start_s, end_s, grid_rate, steps)


def sample_times(start_s: Fraction, end_s: Fraction, rate: Fraction) -> list[Fraction]:
    """The contract's sample times for one rate, computed directly (no grid)."""
    return [start_s + Fraction(k) / rate for k in range(sample_count(end_s - start_s, rate))]
