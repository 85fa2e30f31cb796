"""Clip spans on the presentation timeline: given spans, the whole video, or fixed-stride clips.

Pure logic. Times are exact ``Fraction`` seconds with 0 at the first frame's presentation time;
``video_end`` is the last frame's presentation time plus its duration (see ``timeline.py``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class ClipSpan:
    """A half-open span ``[start_s, end_s)`` of one video, as the caller asked for it.

    ``end_s=None`` means "to the end of the video"; ``clip_id=None`` gets a derived id.
    ``invalid`` says why the input row's span is unusable (a NaN or infinite time); such a
    clip becomes an error row, and the video's other clips go on. ``timestamps_s`` are the times
    whose shown frames ``--policy timestamps`` asks for (None: the row gave none).
    """

    start_s: Fraction
    end_s: Fraction | None
    clip_id: str | None = None
    invalid: str | None = None
    timestamps_s: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ClampedSpan:
    """A span clamped to the video, with the id it will carry in the output."""

    clip_id: str
    start_s: Fraction
    end_s: Fraction
    timestamps_s: tuple[float, ...] | None = None

    @property
    def duration_s(self) -> Fraction:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class FixedStride:
    """Cut a video into ``[k*stride, min(k*stride + clip_len, end))`` while ``k*stride < end``.

    Clips shorter than ``min_clip_len_s`` are dropped; at most ``limit_clips`` are kept (0 = all).
    """

    clip_len_s: Fraction
    stride_s: Fraction
    min_clip_len_s: Fraction = Fraction(0)
    limit_clips: int = 0

    def __post_init__(self) -> None:
        if self.clip_len_s <= 0 or self.stride_s <= 0:
            raise ValueError("clip length and stride must be > 0")
        if self.min_clip_len_s < 0 or self.limit_clips < 0:
            raise ValueError("min clip length and clip limit must be >= 0")


def to_fraction(seconds: float | int | str | Fraction) -> Fraction:
    """Exact seconds from user input; floats go through their shortest repr (0.1 -> 1/10)."""
    if isinstance(seconds, float):
        return Fraction(repr(seconds))
    return Fraction(seconds)


def derive_clip_id(video_path: str, start_s: Fraction, end_s: Fraction) -> str:
    """A deterministic id from video and span, so re-runs produce the same ids."""
    key = f"{video_path}|{start_s}|{end_s}"  # Fraction str is exact: "3/2"
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return f"{float(start_s):.3f}-{float(end_s):.3f}-{digest}"


def fixed_stride_spans(video_end_s: Fraction, stride: FixedStride) -> list[ClipSpan]:
    """Spans cut at a fixed stride over ``[0, video_end_s)``."""
    spans: list[ClipSpan] = []
    k = 0
    while k * stride.stride_s < video_end_s:
        start = k * stride.stride_s
        end = min(start + stride.clip_len_s, video_end_s)
        if end - start >= stride.min_clip_len_s and end > start:
            spans.append(ClipSpan(start, end))
            if stride.limit_clips and len(spans) >= stride.limit_clips:
                break
        k += 1
    return spans


def is_whole_video(span: ClipSpan) -> bool:
    """An input row without a span (an id alone at most): the whole video, or fixed-stride
    clips when a stride is configured."""
    return (
        span.start_s == 0
        and span.end_s is None
        and span.invalid is None
        and span.timestamps_s is None
    )


def validate_span(span: ClipSpan) -> str | None:
    """Why a requested span can never hold a frame (unusable, negative or inverted), or None."""
    if span.invalid is not None:
        return span.invalid
    if span.start_s < 0 and (span.end_s is None or span.end_s <= 0):
        return f"span [{float(span.start_s)}, {_fmt_end(span.end_s)}) lies before the video start"
    if span.end_s is not None and span.start_s >= span.end_s:
        return f"span start {float(span.start_s)} s is not before its end {float(span.end_s)} s"
    return None


def clamp_span(span: ClipSpan, video_path: str, video_end_s: Fraction) -> ClampedSpan:
    """Clamp ``span`` to ``[0, video_end_s)``; the result may be empty (start >= end)."""
    start = max(span.start_s, Fraction(0))
    end = video_end_s if span.end_s is None else min(span.end_s, video_end_s)
    clip_id = span.clip_id if span.clip_id is not None else derive_clip_id(video_path, start, end)
    return ClampedSpan(clip_id, start, end, span.timestamps_s)


def _fmt_end(end_s: Fraction | None) -> str:
    return "end" if end_s is None else f"{float(end_s)}"


#: An input row without a span.
WHOLE_VIDEO = ClipSpan(Fraction(0), None)


def span_of_row(
    start: float | None,
    end: float | None,
    clip_id: str | None,
    timestamps: Iterable[float | None] | None = None,
) -> ClipSpan:
    """One input row's span; no span at all is the whole-video marker. A NaN or infinite time
    makes the span ``invalid`` (an error row for that clip, not the run). ``timestamps`` are
    kept as given (a bad one costs an error row for that time only)."""
    times = (
        None
        if timestamps is None
        else tuple(float("nan") if t is None else float(t) for t in timestamps)
    )
    bad = [
        f"{name} is {value}"
        for name, value in (("start_s", start), ("end_s", end))
        if value is not None and not math.isfinite(float(value))
    ]
    if bad:
        return ClipSpan(
            Fraction(0),
            None,
            clip_id,
            invalid=f"unusable span: {', '.join(bad)}",
            timestamps_s=times,
        )
    return ClipSpan(
        to_fraction(float(start)) if start is not None else Fraction(0),
        to_fraction(float(end)) if end is not None else None,
        clip_id,
        timestamps_s=times,
    )


def clips_of_rows(spans: Iterable[ClipSpan]) -> tuple[ClipSpan, ...] | None:
    """A video's distinct spans (in the order given), or None when every row was span-less:
    the whole video, or fixed-stride clips. Where rows with and without a span are mixed, the
    whole-video marker stays among the spans."""
    distinct = tuple(dict.fromkeys(spans))
    return None if distinct in ((), (WHOLE_VIDEO,)) else distinct
