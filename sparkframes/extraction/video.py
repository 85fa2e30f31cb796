"""Every frame of a whole video at a small size, for scene-cut models (TransNetV2 takes 27x48).

Front-to-back decode with no index, so memory stays flat however long the video is; frames come
out in presentation order in bounded batches. Rows have ``policy = "all"``, ``target_fps`` null
and ``frame_index`` = the frame's position in the video; the "clip" is the whole video.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

from sparkframes.convert.columns import FrameRow
from sparkframes.decoding.backends import PYNVC, DecoderChoice, open_decoder
from sparkframes.decoding.prefetch import overlapped
from sparkframes.decoding.protocol import Decoder
from sparkframes.decoding.source import scan_extent
from sparkframes.errors import DecodeError
from sparkframes.extraction.base import Extraction, ExtractOptions, Output
from sparkframes.sampling.spans import derive_clip_id
from sparkframes.sampling.specs import (
    DEFAULT_OUTPUT_HW,
    SCENE_PURPOSE,
    check_purpose,
    check_target_res,
)

ALL_FRAMES_POLICY = "all"
#: Scene frames are tiny and many: smaller batches keep memory flat (a 64 MiB batch would be
#: ten minutes of 27x48 frames held at once).
SCENE_BATCH_BYTES = 8 << 20


class VideoFrameExtraction(Extraction):
    """All frames of one video at ``output_hw`` = (height, width), exactly as given."""

    def __init__(
        self,
        video_path: str,
        output_hw: tuple[int, int] = DEFAULT_OUTPUT_HW,
        *,
        purpose: str = SCENE_PURPOSE,
        options: ExtractOptions | None = None,
    ) -> None:
        super().__init__(video_path, options)
        self.output_hw = check_target_res(output_hw)
        self.purpose = check_purpose(purpose)

    @property
    def batch_bytes(self) -> int:
        return min(self.options.batch_bytes, SCENE_BATCH_BYTES)

    def _run(self, choice: DecoderChoice, output: Output) -> Iterator:
        opts = self.options
        with self.open(choice, index=False) as src:
            origin, end_pts, count = scan_extent(src)
            time_base = Fraction(src.stream.time_base)
            end_s = (end_pts - origin) * time_base
            clip_id = derive_clip_id(self.video_path, Fraction(0), end_s)
            self.report.clips = 1

            def row(index: int, pts: int) -> FrameRow:
                return FrameRow(
                    self.video_path,
                    clip_id,
                    Fraction(0),
                    end_s,
                    self.purpose,
                    ALL_FRAMES_POLICY,
                    None,
                    index,
                    (pts - origin) * time_base,
                )

            decoder = open_decoder(
                choice, src, frame_count=count, skip_unneeded=False, batch_size=opts.batch_size
            )
            self.report.decode = decoder.stats
            index = untimed = 0
            for picture in overlapped(decoder.every(), opts.threads):
                if picture.pts is None:  # nothing says when it is shown: leave it out
                    untimed += 1
                    continue
                image = picture.rgb(self.output_hw, opts.resize_filter)
                yield from output.add(row(index, picture.pts), image)
                index += 1
            self.report.errors.extend(
                _decode_errors(self.video_path, decoder, index, untimed, count, origin, time_base)
            )
            yield from output.flush()


def _decode_errors(
    video_path: str,
    decoder: Decoder,
    kept: int,
    untimed: int,
    count: int,
    origin: int,
    time_base: Fraction,
) -> list[DecodeError]:
    """What went wrong in a front-to-back decode that kept ``kept`` of ``count`` frames."""
    errors = []
    if untimed:
        errors.append(
            DecodeError(
                video_path,
                f"{untimed} decoded frame(s) had no presentation timestamp and were left out; "
                f"{kept} frames kept",
            )
        )
    if kept == 0 and not decoder.failures:
        errors.append(DecodeError(video_path, "the decoder produced no frame at all"))
    if decoder.failures:
        failure = decoder.failures[0]
        at = (
            ""
            if failure.pts is None
            else f" at t = {float((failure.pts - origin) * time_base):.3f} s"
        )
        errors.append(
            DecodeError(
                video_path,
                f"decode failed{at} ({failure.message}); {len(decoder.failures)} packet(s) "
                f"rejected, {kept} frames kept",
            )
        )
    # NVDEC drops frames silently (repeated pts, frames before the first keyframe), so its count
    # is checked against the demuxer's. FFmpeg reports what it rejects (above), and its count
    # may differ from the packets' for good reasons (field-coded pictures).
    if decoder.mode == PYNVC and kept != count:
        errors.append(
            DecodeError(video_path, f"NVDEC delivered {kept} of the {count} frames in the file")
        )
    return errors


def extract_video_frames(
    video_path: str,
    output_hw: tuple[int, int] = DEFAULT_OUTPUT_HW,
    *,
    purpose: str = SCENE_PURPOSE,
    options: ExtractOptions | None = None,
) -> VideoFrameExtraction:
    """Every frame of ``video_path`` at ``output_hw`` (height, width), streamed in batches."""
    return VideoFrameExtraction(video_path, output_hw, purpose=purpose, options=options)
