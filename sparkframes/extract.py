"""Clip frames for one video: open, plan, decode once, resize, stream out in bounded batches.

This is the library entry point that the Spark jobs call per video. No Spark here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from sparkframes.decoding.pyav_decoder import DecodeStats, PyAVDecoder
from sparkframes.decoding.resize import to_rgb
from sparkframes.decoding.source import DEFAULT_MAX_PIXELS, open_video
from sparkframes.errors import DecodeError, FrameExtractionError
from sparkframes.planning import FrameRequest, VideoPlan, plan_video, resolve_clips
from sparkframes.spans import ClipSpan, FixedStride
from sparkframes.specs import ExtractionSpec
from sparkframes.timeline import VideoTimeline

#: Frames are handed out in batches of about this many bytes of pixels, so memory stays bounded
#: whatever the video's length (and Spark's Arrow batches stay far below their 2 GB limit).
DEFAULT_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class ExtractedFrame:
    """One output row: a frame and everything that says where it came from."""

    video_path: str
    clip_id: str
    clip_start_s: Fraction
    clip_end_s: Fraction
    purpose: str
    policy: str
    target_fps: Fraction | None
    frame_index: int
    pts_s: Fraction
    image: np.ndarray  # (H, W, 3) uint8 RGB, as a player shows it


@dataclass
class ExtractionReport:
    """How one video went: counts for the run summary and the errors to record."""

    video_path: str
    clips: int = 0
    frames_output: int = 0
    errors: list[FrameExtractionError] = field(default_factory=list)
    decode: DecodeStats = field(default_factory=DecodeStats)
    seconds: float = 0.0
    decoder: str = "ffmpeg_cpu"


@dataclass
class ExtractOptions:
    """How to decode: threads (= the Spark task's cpus), size guard, batch size."""

    threads: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_bytes: int = DEFAULT_BATCH_BYTES
    skip_unneeded: bool = True


class ClipFrameExtraction:
    """Iterate to get batches of ``ExtractedFrame``; ``report`` is complete once exhausted.

    Errors never escape the iteration: a video that cannot be opened yields no batch and one
    error in ``report.errors``; a clip with no frame yields an error for that clip only; a
    stream damaged part-way keeps the frames decoded before the damage.
    """

    def __init__(
        self,
        video_path: str,
        specs: Sequence[ExtractionSpec],
        clips: Sequence[ClipSpan] | None = None,
        *,
        stride: FixedStride | None = None,
        options: ExtractOptions | None = None,
    ) -> None:
        if not specs:
            raise ValueError("at least one ExtractionSpec is needed")
        self.video_path = video_path
        self.specs = list(specs)
        self.clips = list(clips) if clips else None
        self.stride = stride
        self.options = options or ExtractOptions()
        self.report = ExtractionReport(video_path)

    def __iter__(self) -> Iterator[list[ExtractedFrame]]:
        started = time.perf_counter()
        try:
            yield from self._run()
        except FrameExtractionError as exc:
            self.report.errors.append(exc)
        finally:
            self.report.seconds = time.perf_counter() - started

    def _run(self) -> Iterator[list[ExtractedFrame]]:
        opts = self.options
        with open_video(self.video_path, threads=opts.threads, max_pixels=opts.max_pixels) as src:
            timeline = src.timeline
            clips = resolve_clips(timeline.end_s, self.clips, self.stride)
            plan = plan_video(self.video_path, timeline, clips, self.specs)
            self.report.clips = len(plan.clips)
            self.report.errors.extend(plan.errors)
            decoder = PyAVDecoder(src, skip_unneeded=opts.skip_unneeded)
            self.report.decode = decoder.stats
            batch: list[ExtractedFrame] = []
            batch_bytes = 0
            for position, frame in decoder.frames(plan.positions):
                pts_s = timeline.seconds(frame.pts)
                for row in _rows(self.video_path, plan.requests[position], frame, pts_s):
                    batch.append(row)
                    batch_bytes += row.image.nbytes
                if batch_bytes >= opts.batch_bytes:
                    self.report.frames_output += len(batch)
                    yield batch
                    batch, batch_bytes = [], 0
            if batch:
                self.report.frames_output += len(batch)
                yield batch
            self.report.errors.extend(_decode_errors(self.video_path, decoder, plan, timeline))


def _rows(
    video_path: str, requests: list[FrameRequest], frame: av.VideoFrame, pts_s: Fraction
) -> Iterator[ExtractedFrame]:
    images: dict[tuple[int, int], np.ndarray] = {}  # one conversion per distinct size
    for req in requests:
        size = req.spec.target_res
        if size not in images:
            images[size] = to_rgb(frame, size)
        yield ExtractedFrame(
            video_path=video_path,
            clip_id=req.clip.clip_id,
            clip_start_s=req.clip.start_s,
            clip_end_s=req.clip.end_s,
            purpose=req.spec.purpose,
            policy=req.spec.policy.value,
            target_fps=req.target_fps,
            frame_index=req.frame_index,
            pts_s=pts_s,
            image=images[size],
        )


def _decode_errors(
    video_path: str, decoder: PyAVDecoder, plan: VideoPlan, timeline: VideoTimeline
) -> list[FrameExtractionError]:
    """One error per clip that lost frames, saying from which presentation time."""
    if not decoder.missing and not decoder.failures:
        return []
    errors: list[FrameExtractionError] = []
    lost_by_clip: dict[str, list[int]] = {}
    for position in decoder.missing:
        for req in plan.requests[position]:
            lost_by_clip.setdefault(req.clip.clip_id, []).append(position)
    first_failure = next((f for f in decoder.failures if f.pts is not None), None)
    cause = f" ({decoder.failures[0].message})" if decoder.failures else ""
    for clip_id, positions in lost_by_clip.items():
        t = float(timeline.seconds(timeline.pts[min(positions)]))
        errors.append(
            DecodeError(
                video_path,
                f"decode failed at t = {t:.3f} s: {len(set(positions))} frame(s) of this clip "
                f"could not be decoded{cause}",
                clip_id=clip_id,
            )
        )
    if not lost_by_clip and first_failure is not None:
        t = float(timeline.seconds(first_failure.pts))  # type: ignore[arg-type]
        errors.append(
            DecodeError(
                video_path,
                f"decoder rejected data at t = {t:.3f} s ({first_failure.message}); "
                "every requested frame was still decoded",
            )
        )
    return errors


def extract_clip_frames(
    video_path: str,
    specs: Sequence[ExtractionSpec],
    clips: Sequence[ClipSpan] | None = None,
    *,
    stride: FixedStride | None = None,
    options: ExtractOptions | None = None,
) -> ClipFrameExtraction:
    """Frames of ``video_path`` for every clip and spec, decoded in one pass.

    >>> ex = extract_clip_frames("v.mp4", [ExtractionSpec("embeddings", target_fps=(1, 2))])
    >>> for batch in ex: ...   # lists of ExtractedFrame
    >>> ex.report.errors       # typed errors, one per failed video or clip
    """
    return ClipFrameExtraction(video_path, specs, clips, stride=stride, options=options)
