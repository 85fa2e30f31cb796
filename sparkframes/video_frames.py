"""Every frame of a whole video at a small size, for scene-cut models (TransNetV2 takes 27x48).

Front-to-back decode with no index, so memory stays flat however long the video is; frames come
out in presentation order in bounded batches. Rows have ``policy = "all"``, ``target_fps`` null
and ``frame_index`` = the frame's position in the video; the "clip" is the whole video.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from sparkframes.decoding.backends import PYNVC, DecoderChoice
from sparkframes.decoding.prefetch import overlapped
from sparkframes.decoding.pyav_decoder import PyAVDecoder
from sparkframes.decoding.pynvc_decoder import NvdecRefusedError, PyNvcDecoder, nvdec_refusal
from sparkframes.decoding.resize import rgb_to_rgb, to_rgb
from sparkframes.decoding.source import first_frame_turns, open_video, scan_extent
from sparkframes.errors import DecodeError
from sparkframes.extraction import Batcher, ExtractedFrame, Extraction, ExtractOptions, cuda_hwaccel
from sparkframes.spans import derive_clip_id
from sparkframes.specs import SCENE_PURPOSE, check_purpose, check_target_res

DEFAULT_OUTPUT_HW = (27, 48)
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

    def _run(self, choice: DecoderChoice) -> Iterator[list[ExtractedFrame]]:
        opts = self.options
        with open_video(
            self.video_path,
            threads=opts.threads,
            max_pixels=opts.max_pixels,
            hwaccel=cuda_hwaccel(choice),
            index=False,
            skip_loop_filter=opts.skip_loop_filter,
            local_copy=self.local_copy,
            allow_playlists=opts.allow_playlists,
        ) as src:
            origin, end_pts, count = scan_extent(src)
            time_base = Fraction(src.stream.time_base)
            end_s = (end_pts - origin) * time_base
            clip_id = derive_clip_id(self.video_path, Fraction(0), end_s)
            self.report.clips = 1
            batcher = Batcher(min(opts.batch_bytes, SCENE_BATCH_BYTES), self.report)

            def row(index: int, pts: int, image: np.ndarray) -> ExtractedFrame:
                return ExtractedFrame(
                    self.video_path,
                    clip_id,
                    Fraction(0),
                    end_s,
                    self.purpose,
                    ALL_FRAMES_POLICY,
                    None,
                    index,
                    (pts - origin) * time_base,
                    image,
                )

            index = 0
            if choice.mode == PYNVC:
                if refusal := nvdec_refusal(src.stream.frames, count, src.is_playlist):
                    raise NvdecRefusedError(refusal)  # no path: one warning per cause
                turns = first_frame_turns(src)
                nv = PyNvcDecoder(src.readable_path, choice.gpu_id, opts.batch_size)
                for pts, rgb in nv.frames():
                    if batch := batcher.add(
                        row(index, pts, rgb_to_rgb(rgb, self.output_hw, turns))
                    ):
                        yield batch
                    index += 1
                self.report.decode.frames_decoded = nv.frames_decoded
                if index != count:  # repeated pts, frames before the first keyframe
                    self.report.errors.append(
                        DecodeError(
                            self.video_path,
                            f"NVDEC delivered {index} of the {count} frames in the file",
                        )
                    )
            else:
                decoder = PyAVDecoder(
                    src, skip_unneeded=False, fail_fast=choice.mode != "ffmpeg_cpu"
                )
                self.report.decode = decoder.stats
                untimed = 0
                for frame in overlapped(decoder.all_frames(), opts.threads):
                    if frame.pts is None:  # nothing says when it is shown: leave it out
                        untimed += 1
                        continue
                    if batch := batcher.add(row(index, frame.pts, to_rgb(frame, self.output_hw))):
                        yield batch
                    index += 1
                if untimed:
                    self.report.errors.append(
                        DecodeError(
                            self.video_path,
                            f"{untimed} decoded frame(s) had no presentation timestamp and "
                            f"were left out; {index} frames kept",
                        )
                    )
                if index == 0 and not decoder.failures:
                    self.report.errors.append(
                        DecodeError(self.video_path, "the decoder produced no frame at all")
                    )
                if decoder.failures:
                    failure = decoder.failures[0]
                    at = (
                        ""
                        if failure.pts is None
                        else (f" at t = {float((failure.pts - origin) * time_base):.3f} s")
                    )
                    self.report.errors.append(
                        DecodeError(
                            self.video_path,
                            f"decode failed{at} ({failure.message}); {len(decoder.failures)} "
                            f"packet(s) rejected, {index} frames kept",
                        )
                    )
            if batch := batcher.flush():
                yield batch


def extract_video_frames(
    video_path: str,
    output_hw: tuple[int, int] = DEFAULT_OUTPUT_HW,
    *,
    purpose: str = SCENE_PURPOSE,
    options: ExtractOptions | None = None,
) -> VideoFrameExtraction:
    """Every frame of ``video_path`` at ``output_hw`` (height, width), streamed in batches."""
    return VideoFrameExtraction(video_path, output_hw, purpose=purpose, options=options)
