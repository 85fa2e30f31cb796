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
from av.video.reformatter import Interpolation

from sparkframes.specs import NATIVE

INTERPOLATION = Interpolation.BICUBIC


def display_rotation(frame: av.VideoFrame) -> int:
    """Clockwise rotation in degrees (0, 90, 180, 270) a player applies to show ``frame``.

    PyAV's ``frame.rotation`` is FFmpeg's display-matrix angle, counter-clockwise; players rotate
    by its opposite. Angles that are not a multiple of 90 are rounded to the nearest one.
    """
    return (-round(frame.rotation / 90) * 90) % 360


def displayed_size(frame: av.VideoFrame) -> tuple[int, int]:
    """``(height, width)`` of the frame as shown, after rotation."""
    if display_rotation(frame) in (90, 270):
        return frame.width, frame.height
    return frame.height, frame.width


def to_rgb(frame: av.VideoFrame, target_res: tuple[int, int] = NATIVE) -> np.ndarray:
    """``frame`` as an ``(H, W, 3)`` uint8 RGB array at ``target_res`` (or native), rotated."""
    rotation = display_rotation(frame)
    if tuple(target_res) == NATIVE:
        height, width = frame.height, frame.width
    elif rotation in (90, 270):  # scale in source orientation to the rotated target
        width, height = target_res
    else:
        height, width = target_res
    rgb = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=INTERPOLATION)
    if rotation:
        # np.rot90 turns counter-clockwise for positive k; a clockwise turn is k = -rotation/90.
        rgb = np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90))
    return rgb
