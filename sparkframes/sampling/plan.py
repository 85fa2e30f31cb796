"""The per-video plan: which timeline frames serve which (clip, purpose, rate, sample).

Pure logic: given the timeline, the clips and the specs, it decides every output row before
anything is decoded, so the decoder can fetch each needed frame exactly once.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from sparkframes.errors import SpanError
from sparkframes.sampling.frame_choice import frames_in_span, nearest_frame, policy_frame
from sparkframes.sampling.spans import (
    ClampedSpan,
    ClipSpan,
    FixedStride,
    clamp_span,
    fixed_stride_spans,
    is_whole_video,
    to_fraction,
    validate_span,
)
from sparkframes.sampling.specs import ExtractionSpec, Policy
from sparkframes.sampling.time_grid import build_grid, rate_for_min_frames
from sparkframes.sampling.timeline import VideoTimeline


@dataclass(frozen=True)
class FrameRequest:
    """One output row waiting for its frame."""

    clip: ClampedSpan
    spec: ExtractionSpec
    target_fps: Fraction | None
    frame_index: int


@dataclass
class VideoPlan:
    """All rows of one video, keyed by the timeline position of the frame they need."""

    requests: dict[int, list[FrameRequest]] = field(default_factory=lambda: defaultdict(list))
    clips: list[ClampedSpan] = field(default_factory=list)
    errors: list[SpanError] = field(default_factory=list)

    @property
    def positions(self) -> list[int]:
        return sorted(self.requests)

    @property
    def row_count(self) -> int:
        return sum(len(r) for r in self.requests.values())


def resolve_clips(
    video_end_s: Fraction,
    clips: Sequence[ClipSpan] | None,
    stride: FixedStride | None,
) -> list[ClipSpan]:
    """The clips to sample: explicit spans as given; otherwise fixed stride, or the whole video.

    A span-less clip (``is_whole_video``) is replaced by fixed-stride clips when a stride is
    configured; an id given with it prefixes theirs (``<id>-00000``, ``<id>-00001``, …).
    """
    if not clips:
        clips = [ClipSpan(Fraction(0), None)]
    resolved: list[ClipSpan] = []
    for clip in clips:
        if is_whole_video(clip) and stride is not None:
            resolved.extend(
                ClipSpan(s.start_s, s.end_s, _stride_id(clip.clip_id, i))
                for i, s in enumerate(fixed_stride_spans(video_end_s, stride))
            )
        else:
            resolved.append(clip)
    return resolved


def _stride_id(parent: str | None, index: int) -> str | None:
    return None if parent is None else f"{parent}-{index:05d}"


def plan_video(
    video_path: str,
    timeline: VideoTimeline,
    clips: Sequence[ClipSpan],
    specs: Sequence[ExtractionSpec],
) -> VideoPlan:
    """Choose the frame for every (clip, spec, rate, sample) of one video."""
    plan = VideoPlan()
    video_end = timeline.end_s
    for requested in clips:
        problem = validate_span(requested)
        if problem:
            plan.errors.append(SpanError(video_path, problem, clip_id=requested.clip_id))
            continue
        clip = clamp_span(requested, video_path, video_end)
        span = (
            frames_in_span(timeline.pts, timeline.to_pts(clip.start_s), timeline.to_pts(clip.end_s))
            if clip.end_s > clip.start_s
            else range(0)
        )
        if not span:
            plan.errors.append(
                SpanError(
                    video_path,
                    f"span [{float(clip.start_s):.6g}, {float(clip.end_s):.6g}) s holds no frame "
                    f"(video is [0, {float(video_end):.6g}) s)",
                    clip_id=clip.clip_id,
                )
            )
            continue
        plan.clips.append(clip)
        for spec in specs:
            _plan_clip(plan, video_path, timeline, clip, span, spec)
    return plan


def _plan_clip(
    plan: VideoPlan,
    video_path: str,
    timeline: VideoTimeline,
    clip: ClampedSpan,
    span: range,
    spec: ExtractionSpec,
) -> None:
    if spec.policy is Policy.UNIFORM:
        # N equal parts of the clamped span, each sampled at its centre: t_k = start +
        # (k + 1/2) D / N; a clip with fewer than N frames repeats some (a model gets N).
        n, length = spec.num_frames, clip.duration_s
        for k in range(n):
            t = clip.start_s + (2 * k + 1) * length / (2 * n)
            position = nearest_frame(timeline.pts, span, timeline.to_pts(t))
            plan.requests[position].append(FrameRequest(clip, spec, n / length, k))
        return
    if spec.policy is Policy.TIMESTAMPS:
        _plan_timestamps(plan, video_path, timeline, clip, spec)
        return
    if spec.policy is Policy.KEYFRAMES:
        # Only these frames are asked of the decoder, and a keyframe decodes on its own.
        keys = [p for p in timeline.keyframe_positions() if p in span]
        for index, position in enumerate(keys):
            plan.requests[position].append(FrameRequest(clip, spec, None, index))
        return
    if spec.policy is not Policy.SEQUENCE:
        position = policy_frame(span, spec.policy)
        plan.requests[position].append(FrameRequest(clip, spec, None, 0))
        return
    # min_frames may raise a rate; two rates raised to the same value are sampled once.
    rates = list(
        dict.fromkeys(rate_for_min_frames(clip.duration_s, r, spec.min_frames) for r in spec.rates)
    )
    grid = build_grid(clip.start_s, clip.end_s, rates)
    chosen: dict[int, int] = {}  # grid point -> timeline position, shared by all rates
    for rate in rates:
        for k, j in enumerate(grid.grid_indices(rate)):
            if j not in chosen:
                chosen[j] = nearest_frame(timeline.pts, span, timeline.to_pts(grid.time(j)))
            plan.requests[chosen[j]].append(FrameRequest(clip, spec, rate, k))


def _plan_timestamps(
    plan: VideoPlan,
    video_path: str,
    timeline: VideoTimeline,
    clip: ClampedSpan,
    spec: ExtractionSpec,
) -> None:
    """The frame shown at each asked time: the last frame presented at or before it. A time
    outside the video (or the row's span) costs an error for that time; the others still come.
    ``frame_index`` is the time's place in the row's list."""
    if clip.timestamps_s is None:
        plan.errors.append(
            SpanError(
                video_path, "--policy timestamps: the row has no timestamps_s", clip_id=clip.clip_id
            )
        )
        return
    for index, seconds in enumerate(clip.timestamps_s):
        t = to_fraction(seconds) if math.isfinite(seconds) else None
        if t is None or not (clip.start_s <= t < clip.end_s):
            plan.errors.append(
                SpanError(
                    video_path,
                    f"timestamps_s[{index}] = {seconds:.6g} s is outside the clip "
                    f"[{float(clip.start_s):.6g}, {float(clip.end_s):.6g}) s",
                    clip_id=clip.clip_id,
                )
            )
            continue
        position = bisect_right(timeline.pts, timeline.to_pts(t)) - 1
        plan.requests[position].append(FrameRequest(clip, spec, None, index))
