"""Decoding on NVDEC through PyNvVideoCodec (the optional ``gpu`` extra).

Every frame is decoded in order, in batches of ``batch_size``, and handed out as RGB in host
memory with its presentation timestamp (stream time-base units, as the demuxer reports them), so
frame choice is identical to the CPU path. Scaling to the target size then happens on the CPU
with the same swscale step as every other decoder, which keeps pixels comparable across modes.

Written against the PyNvVideoCodec 2.x ``SimpleDecoder`` API; it runs only where an NVIDIA GPU
and driver are present (tests marked ``gpu``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class PyNvcDecoder:
    """Sequential NVDEC decode of one file on GPU ``gpu_id``."""

    def __init__(self, path: str, gpu_id: int = 0, batch_size: int = 64) -> None:
        import PyNvVideoCodec as nvc

        self.path = path
        self.batch_size = max(1, batch_size)
        self._decoder = nvc.SimpleDecoder(
            path,
            gpu_id=gpu_id,
            use_device_memory=False,
            output_color_type=nvc.OutputColorType.RGB,
        )
        self.frames_decoded = 0

    def frames(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(pts, (H, W, 3) uint8 RGB)`` for every frame, in presentation order."""
        while True:
            batch = self._decoder.get_batch_frames(self.batch_size)
            if not batch:
                return
            for frame in batch:
                self.frames_decoded += 1
                rgb = np.from_dlpack(frame)
                if rgb.ndim == 3 and rgb.shape[0] == 3:  # planar RGB: make it interleaved
                    rgb = np.moveaxis(rgb, 0, -1)
                yield int(frame.getPTS()), np.ascontiguousarray(rgb, dtype=np.uint8)
