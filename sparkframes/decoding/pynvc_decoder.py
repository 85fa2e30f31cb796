"""Decoding on NVDEC through PyNvVideoCodec (the optional ``gpu`` extra).

Every frame is decoded in order, in batches of ``batch_size``, and handed out as RGB in host
memory with its presentation timestamp (stream time-base units, as the demuxer reports them), so
frame choice is identical to the CPU path. Scaling to the target size then happens on the CPU
with the same swscale step as every other decoder, which keeps pixels comparable across modes.

Written against the PyNvVideoCodec 2.x ``SimpleDecoder`` API; it runs only where an NVIDIA GPU
and driver are present (tests marked ``gpu``). Two facts of that API shape this module (read in
its sources; not yet checked on hardware by this project):

* ``get_batch_frames`` stops at the container's header frame count (``nb_frames``), not when the
  stream runs out. Where the header has no count (Matroska, WebM) it returns nothing at all; where
  the count is short it drops the tail silently. ``nvdec_refusal`` catches both before decoding,
  so such a video falls back to the CPU instead of coming out short.
* Frames live in buffers the decoder reuses on its next batch, so each one is copied out.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from sparkframes.decoding.protocol import (
    DecodeFailure,
    DecoderRefusedError,
    DecodeStats,
    RGBPicture,
)
from sparkframes.decoding.source import VideoSource, first_frame_turns

PYNVC_MODE = "pynvc"


class NvdecRefusedError(DecoderRefusedError):
    """NVDEC through PyNvVideoCodec would not deliver every frame of this video."""


def nvdec_refusal(header_frames: int, demuxed_frames: int, playlist: bool = False) -> str | None:
    """Why PyNvVideoCodec cannot be trusted with a video, or None.

    ``header_frames`` is the container's own frame count (PyAV's ``stream.frames``, 0 when the
    container has none); ``demuxed_frames`` the frames found by reading every packet.
    ``playlist``: the video is a playlist opened under ``allow_playlists``.
    """
    if playlist:
        return (
            "a playlist is decoded on the CPU: PyNvVideoCodec would open its files itself, "
            "past the check that keeps them to the playlist's folder"
        )
    if header_frames <= 0:
        return "the container has no frame count, which PyNvVideoCodec needs to read to the end"
    if header_frames != demuxed_frames:
        return (
            f"the container says {header_frames} frames but {demuxed_frames} were found; "
            "PyNvVideoCodec would stop at the header's count"
        )
    return None


class PyNvcDecoder:
    """Sequential NVDEC decode of one file on GPU ``gpu_id``, as a ``Decoder``.

    ``frame_count`` is the number of frames the demuxer found (the timeline's length, or the
    scan's count without an index): a video whose container would make NVDEC stop short is
    refused here, before any frame, so it can go to the CPU. Frames are decoded in order and
    the chosen ones picked by pts; the full-size RGB is scaled on the CPU like every other
    decoder's output.
    """

    mode = PYNVC_MODE

    def __init__(self, source: VideoSource, gpu_id: int, batch_size: int, frame_count: int) -> None:
        if refusal := nvdec_refusal(source.stream.frames, frame_count, source.is_playlist):
            raise NvdecRefusedError(refusal)
        import PyNvVideoCodec as nvc

        self.source = source
        self.batch_size = max(1, batch_size)
        self.stats = DecodeStats()
        self.failures: list[DecodeFailure] = []
        self.missing: list[int] = []
        self._turns = first_frame_turns(source)  # NVDEC does not report the display matrix
        try:
            self._decoder = nvc.SimpleDecoder(
                source.readable_path,
                gpu_id=gpu_id,
                use_device_memory=False,  # frames in host memory, (H, W, 3) for RGB
                output_color_type=nvc.OutputColorType.RGB,
            )
        except Exception as exc:  # the library's own errors: a codec or size it cannot take
            raise NvdecRefusedError(f"PyNvVideoCodec cannot open it: {exc}") from exc

    def every(self) -> Iterator[RGBPicture]:
        """Every frame in presentation order.

        Raises ``NvdecRefusedError`` when the first batch is empty: nothing was decoded, so the
        caller can still fall back to the CPU.
        """
        while True:
            batch = self._decoder.get_batch_frames(self.batch_size)
            if not batch:
                if self.stats.frames_decoded == 0:
                    raise NvdecRefusedError("NVDEC returned no frame")
                return
            for frame in batch:
                self.stats.frames_decoded += 1
                rgb = np.array(np.from_dlpack(frame), dtype=np.uint8, copy=True)
                yield RGBPicture(int(frame.getPTS()), rgb, self._turns)

    def chosen(self, positions: Iterable[int]) -> Iterator[tuple[int, RGBPicture]]:
        """The wanted positions' frames, picked by pts from the full decode."""
        timeline = self.source.timeline
        assert timeline is not None, "chosen frames need the index"
        wanted = {timeline.pts[p]: p for p in positions}
        for picture in self.every():
            position = wanted.pop(picture.pts, None)
            if position is not None:
                yield position, picture
            if not wanted:
                break
        self.missing = sorted(wanted.values())
