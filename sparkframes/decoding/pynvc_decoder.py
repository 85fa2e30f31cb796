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

from collections.abc import Iterator

import numpy as np


class NvdecRefusedError(RuntimeError):
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
    """Sequential NVDEC decode of one file on GPU ``gpu_id``."""

    def __init__(self, path: str, gpu_id: int = 0, batch_size: int = 64) -> None:
        import PyNvVideoCodec as nvc

        self.path = path
        self.batch_size = max(1, batch_size)
        self._decoder = nvc.SimpleDecoder(
            path,
            gpu_id=gpu_id,
            use_device_memory=False,  # frames in host memory, (H, W, 3) for RGB
            output_color_type=nvc.OutputColorType.RGB,
        )
        self.frames_decoded = 0

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(pts, (H, W, 3) uint8 RGB)`` for every frame, in presentation order.

        Raises ``NvdecRefusedError`` when the first batch is empty: nothing was decoded, so the
        caller can still fall back to the CPU.
        """
        while True:
            batch = self._decoder.get_batch_frames(self.batch_size)
            if not batch:
                if self.frames_decoded == 0:
                    raise NvdecRefusedError("NVDEC returned no frame")
                return
            for frame in batch:
                self.frames_decoded += 1
                rgb = np.array(np.from_dlpack(frame), dtype=np.uint8, copy=True)
                yield int(frame.getPTS()), rgb
