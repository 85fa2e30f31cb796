"""A decoded frame to RGB at the target size, as a player shows it.

One swscale call converts from the stream's pixel format (YUV, 8 or 10 bit) straight to ``rgb24``
at the target size, so no full-size RGB frame is ever made. The interpolation is bicubic
(``SWS_BICUBIC``, the FFmpeg CLI's default scaler); swscale widens the filter when downscaling, so
large reductions (1080p to 27x48) average rather than alias. ``(h, w)`` is a stretch to exactly
that size, no crop. Rotation metadata is applied after scaling, on the small image.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from sparkframes.sampling.specs import NATIVE

#: The scalers a run may ask for (``--resize-filter``). ``bicubic`` is the FFmpeg CLI's default
#: and ours. ``area`` averages the source pixels under each output pixel: about 3x cheaper for
#: large reductions (1080p to 27x48: 0.5 against 1.5 ms a frame) with pixels a few levels off
#: bicubic's (bench/scene_bench.py measures both against the CLI).
RESIZE_FILTERS: dict[str, Interpolation] = {
    "bicubic": Interpolation.BICUBIC,
    "area": Interpolation.AREA,
}
DEFAULT_RESIZE_FILTER = "bicubic"
#: Below this an image is copied out of its picture when kept on its own (``FrameLists``): a
#: view would hold the whole picture (6.5 KB a row instead of 3.9 KB for 27x48 scene frames).
SMALL_IMAGE_BYTES = 256 << 10


def quarter_turns(frame: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns (0-3) a player applies to show ``frame``.

    PyAV's ``frame.rotation`` is FFmpeg's display-matrix angle in degrees, counter-clockwise
    (FFmpeg's autorotate shows ``np.rot90(decoded, k=rotation // 90)``). Angles that are not a
    multiple of 90 are rounded to the nearest one.
    """
    return round(frame.rotation / 90) % 4


def displayed_size(frame: av.VideoFrame) -> tuple[int, int]:
    """``(height, width)`` of the frame as shown, after rotation."""
    if quarter_turns(frame) % 2:
        return frame.width, frame.height
    return frame.height, frame.width


def to_rgb(
    frame: av.VideoFrame,
    target_res: tuple[int, int] = NATIVE,
    turns: int | None = None,
    resize_filter: str = DEFAULT_RESIZE_FILTER,
) -> np.ndarray:
    """``frame`` as an ``(H, W, 3)`` uint8 RGB array at ``target_res`` (or native), rotated: a
    view of swscale's output picture (strided when rotated), which it keeps alive.

    ``turns`` overrides the frame's own rotation (for frames rebuilt from another decoder's RGB);
    ``resize_filter`` is one of ``RESIZE_FILTERS``.
    """
    turns = quarter_turns(frame) if turns is None else turns
    if tuple(target_res) == NATIVE:
        height, width = frame.height, frame.width
    elif turns % 2:  # scale in the coded orientation to the size the rotated target needs
        width, height = target_res
    else:
        height, width = target_res
    # One swscale thread: the decoder's threads already have the task's cores, and for
    # downscales swscale's own threading costs more than it saves (1080p to 27x48: 1.0 ms
    # with one thread, 2.2 ms with its default). Output is identical either way.
    native = (width, height) == (frame.width, frame.height)
    rgb = (
        _reformatter(width, height)
        .reformat(
            frame,
            width=width,
            height=height,
            format="rgb24",
            interpolation=RESIZE_FILTERS[resize_filter],
            threads=None if native else 1,
        )
        .to_ndarray()
    )
    # A view, not a copy: the caller copies it once, where it is stored (``columns.py``).
    return np.rot90(rgb, k=turns) if turns else rgb


_REFORMATTERS: dict[tuple[int, int], VideoReformatter] = {}


def _reformatter(width: int, height: int) -> VideoReformatter:
    """One reformatter per output size, kept across frames: it keeps its swscale context, which
    ``frame.reformat`` would build anew for every frame (measured: 0.2-0.7 ms saved of about
    1.5 ms per 1080p-to-27x48 conversion)."""
    reformatter = _REFORMATTERS.get((width, height))
    if reformatter is None:
        if len(_REFORMATTERS) >= 16:
            _REFORMATTERS.clear()
        reformatter = _REFORMATTERS[(width, height)] = VideoReformatter()
    return reformatter
