"""The one interface every decoder offers the extraction loops (``clip_frames``, ``video_frames``).

A decoder is opened on one video (``open_decoder`` in ``backends.py``) and answers two
questions: the pictures at chosen timeline positions (``chosen``), or every picture front to
back (``every``). A picture is the decoded frame before any conversion; the loops ask it for RGB
at each size their rows need, so a frame no row wants is never converted.

What a decoder guarantees, whichever it is:

* **Exact frames.** A picture is identified by its decoded presentation timestamp, never by a
  frame count; ``chosen`` yields each wanted position at most once and lists the ones that never
  came out in ``missing`` after the iteration (a damaged stream, or frames NVDEC dropped).
* **Refusal before output.** A decoder that cannot take the video here (no GPU, no CUDA decoder
  for the codec, a container NVDEC would read short) raises ``DecoderRefusedError`` before it
  yields anything. That exception, and only that one, makes the extraction fall back to the CPU;
  any other exception is a fault of the file or a bug, and is reported as such.
* **Damage is recorded, not raised.** A packet the decoder rejects goes to ``failures`` and
  decoding goes on, so a stream damaged part-way keeps the frames before the damage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import av
import numpy as np

from sparkframes.convert.resize import DEFAULT_RESIZE_FILTER, to_rgb


@dataclass
class DecodeStats:
    """What a pass cost: the benchmark reports frames decoded against frames output.

    ``restarts`` counts the times the pass went back: a seek that landed somewhere unusable
    (the file was reopened) or a range decoded again without skipping because a wanted frame
    did not come out of it.
    """

    packets_read: int = 0
    packets_sent: int = 0
    frames_decoded: int = 0
    seeks: int = 0
    restarts: int = 0
    #: Wanted frames that came out only when their range was decoded again without skipping.
    recovered: int = 0


@dataclass
class DecodeFailure:
    """A packet the decoder rejected, by its presentation time."""

    pts: int | None
    message: str


class DecoderRefusedError(RuntimeError):
    """This decoder cannot take this video here; nothing was output, so another decoder may."""


class Picture(Protocol):
    """One decoded frame, converted only when asked."""

    @property
    def pts(self) -> int | None:
        """Presentation timestamp in the stream's time base (None: the decoder gave none)."""
        ...

    def rgb(self, size: tuple[int, int], resize_filter: str = DEFAULT_RESIZE_FILTER) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB at ``size`` (``(-1, -1)``: native), as a player shows it,
        scaled with ``resize_filter`` (``resize.RESIZE_FILTERS``)."""
        ...


@dataclass(frozen=True)
class AVPicture:
    """A frame FFmpeg decoded (on the CPU, or copied back from CUDA)."""

    frame: av.VideoFrame

    @property
    def pts(self) -> int | None:
        return self.frame.pts

    def rgb(self, size: tuple[int, int], resize_filter: str = DEFAULT_RESIZE_FILTER) -> np.ndarray:
        return to_rgb(self.frame, size, resize_filter=resize_filter)


class Decoder(Protocol):
    """An opened decoder on one video (see the module docstring for its guarantees)."""

    #: The decoder mode recorded with each row (``ffmpeg_cpu``, ``ffmpeg_gpu``, ``pynvc``).
    mode: str
    stats: DecodeStats
    failures: list[DecodeFailure]
    #: After ``chosen``: wanted positions whose frame never came out.
    missing: list[int]

    def chosen(self, positions: Iterable[int]) -> Iterator[tuple[int, Picture]]:
        """``(position, picture)`` for each wanted timeline position (needs the index)."""
        ...

    def every(self) -> Iterator[Picture]:
        """Every picture front to back, in presentation order, in constant memory."""
        ...
