"""Clip frames for one video: open, plan, decode once, resize, stream out in bounded batches.

This is the library entry point that the Spark jobs call per video. No Spark here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from fractions import Fraction

import av
import numpy as np

from sparkframes.decoding.backends import PYNVC, DecoderChoice
from sparkframes.decoding.prefetch import overlapped
from sparkframes.decoding.pyav_decoder import PyAVDecoder
from sparkframes.decoding.pynvc_decoder import NvdecRefusedError, PyNvcDecoder, nvdec_refusal
from sparkframes.decoding.resize import rgb_to_rgb, to_rgb
from sparkframes.decoding.source import VideoSource, first_frame_turns, open_video
from sparkframes.errors import DecodeError, FrameExtractionError
from sparkframes.extraction import (
    Batcher,
    ExtractedFrame,
    Extraction,
    ExtractionReport,
    ExtractOptions,
    cuda_hwaccel,
)
from sparkframes.planning import FrameRequest, VideoPlan, plan_video, resolve_clips
from sparkframes.spans import ClipSpan, FixedStride
from sparkframes.specs import ExtractionSpec
from sparkframes.timeline import VideoTimeline

__all__ = ["ClipFrameExtraction", "ExtractOptions", "ExtractionReport", "extract_clip_frames"]


class ClipFrameExtraction(Extraction):
    """Frames of every clip and spec of one video. A clip with no frame costs an error for that
    clip only; a stream damaged part-way keeps the frames decoded before the damage."""

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
        super().__init__(video_path, options)
        self.specs = list(specs)
        self.clips = list(clips) if clips else None
        self.stride = stride

    def _run(self, choice: DecoderChoice) -> Iterator[list[ExtractedFrame]]:
        opts = self.options
        hwaccel = cuda_hwaccel(choice)
        with open_video(
            self.video_path,
            threads=opts.threads,
            max_pixels=opts.max_pixels,
            hwaccel=hwaccel,
            skip_loop_filter=opts.skip_loop_filter,
            local_copy=self.local_copy,
            allow_playlists=opts.allow_playlists,
        ) as src:
            timeline = src.timeline
            assert timeline is not None
            clips = resolve_clips(timeline.end_s, self.clips, self.stride)
            plan = plan_video(self.video_path, timeline, clips, self.specs)
            self.report.clips = len(plan.clips)
            self.report.errors.extend(plan.errors)
            batcher = Batcher(opts.batch_bytes, self.report)
            if choice.mode == PYNVC:
                yield from self._decode_pynvc(src, plan, choice, batcher)
                return
            decoder = PyAVDecoder(
                src, skip_unneeded=opts.skip_unneeded, fail_fast=hwaccel is not None
            )
            self.report.decode = decoder.stats
            for position, frame in overlapped(decoder.frames(plan.positions), opts.threads):
                pts_s = timeline.seconds(frame.pts)
                for row in _rows(self.video_path, plan.requests[position], frame, pts_s):
                    if batch := batcher.add(row):
                        yield batch
            if batch := batcher.flush():
                yield batch
            self.report.errors.extend(_decode_errors(self.video_path, decoder, plan, timeline))

    def _decode_pynvc(
        self, src: VideoSource, plan: VideoPlan, choice: DecoderChoice, batcher: Batcher
    ) -> Iterator[list[ExtractedFrame]]:
        """NVDEC decodes every frame in order; the planned ones are kept (by pts)."""
        timeline = src.timeline
        assert timeline is not None
        if refusal := nvdec_refusal(src.stream.frames, len(timeline), src.is_playlist):
            raise NvdecRefusedError(refusal)  # no path: one warning per cause
        turns = first_frame_turns(src)
        wanted = {timeline.pts[p]: p for p in plan.positions}
        decoder = PyNvcDecoder(src.readable_path, choice.gpu_id, self.options.batch_size)
        for pts, rgb in decoder.frames():
            position = wanted.pop(pts, None)
            if position is None:
                continue
            images: dict[tuple[int, int], np.ndarray] = {}
            for req in plan.requests[position]:
                size = req.spec.target_res
                if size not in images:
                    images[size] = rgb_to_rgb(rgb, size, turns)
                if batch := batcher.add(
                    _row(self.video_path, req, timeline.seconds(pts), images[size])
                ):
                    yield batch
        self.report.decode.frames_decoded = decoder.frames_decoded
        if batch := batcher.flush():
            yield batch
        # As on the CPU: one error per clip that lost frames, at the first one it lost.
        lost_by_clip: dict[str, set[int]] = defaultdict(set)
        for pts, position in wanted.items():
            for req in plan.requests[position]:
                lost_by_clip[req.clip.clip_id].add(pts)
        for clip_id, lost in lost_by_clip.items():
            self.report.errors.append(
                DecodeError(
                    self.video_path,
                    f"decode failed at t = {float(timeline.seconds(min(lost))):.3f} s: "
                    f"{len(lost)} frame(s) of this clip never came out of NVDEC",
                    clip_id=clip_id,
                )
            )


def _row(video_path: str, req: FrameRequest, pts_s: Fraction, image: np.ndarray) -> ExtractedFrame:
    return ExtractedFrame(
        video_path=video_path,
        clip_id=req.clip.clip_id,
        clip_start_s=req.clip.start_s,
        clip_end_s=req.clip.end_s,
        purpose=req.spec.purpose,
        policy=req.spec.policy.value,
        target_fps=req.target_fps,
        frame_index=req.frame_index,
        pts_s=pts_s,
        image=image,
    )


def _rows(
    video_path: str, requests: list[FrameRequest], frame: av.VideoFrame, pts_s: Fraction
) -> Iterator[ExtractedFrame]:
    images: dict[tuple[int, int], np.ndarray] = {}  # one conversion per distinct size
    for req in requests:
        size = req.spec.target_res
        if size not in images:
            images[size] = to_rgb(frame, size)
        yield _row(video_path, req, pts_s, images[size])


def _decode_errors(
    video_path: str, decoder: PyAVDecoder, plan: VideoPlan, timeline: VideoTimeline
) -> list[FrameExtractionError]:
    """One error per clip that lost frames, saying from which presentation time."""
    if not decoder.missing and not decoder.failures:
        return []
    errors: list[FrameExtractionError] = []
    lost_by_clip: dict[str, list[int]] = defaultdict(list)
    for position in decoder.missing:
        for req in plan.requests[position]:
            lost_by_clip[req.clip.clip_id].append(position)
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
    first_failure = next((f for f in decoder.failures if f.pts is not None), None)
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
