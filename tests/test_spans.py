"""Clip spans: fixed stride, clamping, invalid spans."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from sparkframes.sampling.spans import (
    ClipSpan,
    FixedStride,
    clamp_span,
    fixed_stride_spans,
    validate_span,
)


def spans(end, **kw):
    return [(s.start_s, s.end_s) for s in fixed_stride_spans(F(end), FixedStride(**kw))]


def test_fixed_stride_cuts_while_start_is_before_the_end():
    assert spans(25, clip_len_s=F(10), stride_s=F(10)) == [(0, 10), (10, 20), (20, 25)]


def test_fixed_stride_overlapping_and_min_length_and_limit():
    assert spans(10, clip_len_s=F(4), stride_s=F(3)) == [(0, 4), (3, 7), (6, 10), (9, 10)]
    assert spans(10, clip_len_s=F(4), stride_s=F(3), min_clip_len_s=F(2)) == [
        (0, 4),
        (3, 7),
        (6, 10),
    ]
    assert spans(10, clip_len_s=F(4), stride_s=F(3), limit_clips=2) == [(0, 4), (3, 7)]


def test_fixed_stride_rejects_non_positive_lengths():
    with pytest.raises(ValueError):
        FixedStride(clip_len_s=F(0), stride_s=F(1))


def test_clamp_and_derived_ids_are_deterministic():
    a = clamp_span(ClipSpan(F(-1), F(100)), "v.mp4", F(12))
    b = clamp_span(ClipSpan(F(-1), F(100)), "v.mp4", F(12))
    assert (a.start_s, a.end_s) == (0, 12)
    assert a.clip_id == b.clip_id
    assert a.clip_id != clamp_span(ClipSpan(F(1), None), "v.mp4", F(12)).clip_id
    assert clamp_span(ClipSpan(F(1), F(2), "mine"), "v.mp4", F(12)).clip_id == "mine"


def test_invalid_spans_are_explained():
    assert "not before its end" in validate_span(ClipSpan(F(3), F(3)))
    assert "before the video start" in validate_span(ClipSpan(F(-5), F(-1)))
    assert validate_span(ClipSpan(F(-1), F(2))) is None
