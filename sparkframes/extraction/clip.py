"""Clip frames for one video: open, plan, decode once, resize, stream out in bounded batches.

This is the library entry point that the Spark jobs call per video. No Spark here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np

from sparkframes.convert.columns import FrameRow
from sparkframes.decoding.backends import DecoderChoice, open_decoder
from sparkframes.decoding.prefetch import overlapped
from sparkframes.decoding.protocol import Decoder
from sparkframes.errors import DecodeError, FrameExtractionError
from sparkframes.extraction.base import (
    Extraction,
    ExtractionReport,
    ExtractOptions,
    Output,
)
from sparkframes.sampling.plan import FrameRequest, VideoPlan, plan_video, resolve_clips
from sparkframes.sampling.spans import ClipSpan, FixedStride
from sparkframes.sampling.specs import ExtractionSpec, Policy
from sparkframes.sampling.timeline import VideoTimeline

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

    def _run(self, choice: DecoderChoice, output: Output) -> Iterator:
        opts = self.options
        with self.open(choice, index=True) as src:
            timeline = src.timeline
            assert timeline is not None
            clips = resolve_clips(timeline.end_s, self.clips, self.stride)
            plan = plan_video(self.video_path, timeline, clips, self.specs)
            if all(s.policy is Policy.KEYFRAMES for s in self.specs):
                # Each keyframe decodes alone and is drained: frame threads have nothing to
                # overlap, slice threads split the one frame (as the keyframe previews do).
                src.stream.codec_context.thread_type = "SLICE"
            decoder = open_decoder(
                choice,
                src,
                frame_count=len(timeline),
                skip_unneeded=opts.skip_unneeded,
                batch_size=opts.batch_size,
            )
            self.report.clips = len(plan.clips)
            self.report.errors.extend(plan.errors)
            self.report.decode = decoder.stats
            for position, picture in overlapped(decoder.chosen(plan.positions), opts.threads):
                pts_s = timeline.seconds(timeline.pts[position])
                images: dict[tuple[int, int], np.ndarray] = {}  # one conversion per size
                for req in plan.requests[position]:
                    size = req.spec.target_res
                    if size not in images:
                        images[size] = picture.rgb(size, opts.resize_filter)
                    yield from output.add(_row(self.video_path, req, pts_s), images[size])
            yield from output.flush()
            self.report.errors.extend(_decode_errors(self.video_path, decoder, plan, timeline))


def _row(video_path: str, req: FrameRequest, pts_s: Fraction) -> FrameRow:
    return FrameRow(
        video_path=video_path,
        clip_id=req.clip.clip_id,
        clip_start_s=req.clip.start_s,
        clip_end_s=req.clip.end_s,
        purpose=req.spec.purpose,
        policy=req.spec.policy.value,
        target_fps=req.target_fps,
        frame_index=req.frame_index,
        pts_s=pts_s,
    )


def _decode_errors(
    video_path: str, decoder: Decoder, plan: VideoPlan, timeline: VideoTimeline
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
