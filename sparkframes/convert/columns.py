"""Frames to the frames table's Arrow record batches, built column by column as they come.

Each frame's pixels are copied once, from the converted picture into one buffer per batch that
becomes the ``frame`` column as it is (raw RGB bytes, or the JPEG/PNG that ``encode.py`` makes):
no per-frame ``bytes``, no concatenation. The other columns are plain lists until the batch is
finished. Batches stay about ``max_bytes`` of stored frames, so memory is bounded however long
the video is, and Spark's Arrow batches stay far below their 2 GB limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pyarrow as pa

from sparkframes.convert.encode import RAW, FrameEncoding
from sparkframes.table.schema import FRAMES_SCHEMA


@dataclass(frozen=True)
class FrameRow:
    """Where one output frame comes from: every column of its row but the pixels."""

    video_path: str
    clip_id: str
    clip_start_s: Fraction
    clip_end_s: Fraction
    purpose: str
    policy: str
    target_fps: Fraction | None
    frame_index: int
    pts_s: Fraction


@dataclass
class _Columns:
    """One purpose's next batch: metadata lists and the frame bytes with their offsets."""

    data: np.ndarray
    used: int = 0
    offsets: list[int] = field(default_factory=lambda: [0])
    meta: list[FrameRow] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)

    def append(self, row: FrameRow, stored: np.ndarray, shape: tuple[int, int]) -> None:
        size = stored.nbytes
        if self.used + size > self.data.size:  # rare: frames larger than the first one
            grown = np.empty(max(2 * self.data.size, self.used + size), np.uint8)
            grown[: self.used] = self.data[: self.used]
            self.data = grown
        # The only copy of the pixels on the way to the batch; it also makes a rotated or
        # padded view contiguous.
        self.data[self.used : self.used + size].reshape(stored.shape)[...] = stored
        self.used += size
        self.offsets.append(self.used)
        self.meta.append(row)
        self.shapes.append(shape)


class FrameBatches:
    """Rows in, ``(purpose, record batch of FRAMES_SCHEMA)`` out, about ``max_bytes`` at a time.

    >>> batches = FrameBatches("ffmpeg_cpu", FrameEncoding("jpeg"), 64 << 20)
    >>> for purpose, batch in batches.add(row, image): ...   # full batches, if any
    >>> for purpose, batch in batches.flush(): ...           # the rest, at the end
    """

    def __init__(self, decoder: str, encoding: FrameEncoding, max_bytes: int) -> None:
        self.decoder, self.encoding, self.max_bytes = decoder, encoding, max_bytes
        self._open: dict[str, _Columns] = {}
        self._bytes = 0
        #: Frames handed out so far, over all purposes.
        self.rows_out = 0

    def add(self, row: FrameRow, image: np.ndarray) -> list[tuple[str, pa.RecordBatch]]:
        """Add one frame (``image``: (H, W, 3) uint8, any strides); full batches, if any."""
        if self.encoding.name == RAW:
            stored = image
        else:
            stored = np.frombuffer(self.encoding.encode(np.ascontiguousarray(image)), np.uint8)
        columns = self._open.get(row.purpose)
        if columns is None:
            capacity = max(self.max_bytes, stored.nbytes) + stored.nbytes
            columns = self._open[row.purpose] = _Columns(np.empty(capacity, np.uint8))
        columns.append(row, stored, image.shape[:2])
        self._bytes += stored.nbytes
        return self.flush() if self._bytes >= self.max_bytes else []

    def flush(self) -> list[tuple[str, pa.RecordBatch]]:
        """Every purpose's batch so far, finished."""
        out = [(purpose, self._finish(columns)) for purpose, columns in self._open.items()]
        self._open.clear()
        self._bytes = 0
        self.rows_out += sum(batch.num_rows for _, batch in out)
        return out

    def _finish(self, columns: _Columns) -> pa.RecordBatch:
        rows, n = columns.meta, len(columns.meta)
        offsets = np.asarray(columns.offsets, dtype=np.int32)
        frames = pa.Array.from_buffers(
            pa.binary(),
            n,
            [None, pa.py_buffer(offsets), pa.py_buffer(columns.data[: columns.used])],
        )
        heights, widths = zip(*columns.shapes, strict=True)
        arrays = [
            pa.array([r.video_path for r in rows], pa.string()),
            pa.array([r.clip_id for r in rows], pa.string()),
            pa.array([float(r.clip_start_s) for r in rows], pa.float64()),
            pa.array([float(r.clip_end_s) for r in rows], pa.float64()),
            pa.array([r.policy for r in rows], pa.string()),
            pa.array(
                [None if r.target_fps is None else float(r.target_fps) for r in rows], pa.float64()
            ),
            pa.array([r.frame_index for r in rows], pa.int32()),
            pa.array([float(r.pts_s) for r in rows], pa.float64()),
            pa.array(heights, pa.int32()),
            pa.array(widths, pa.int32()),
            pa.array([self.decoder] * n, pa.string()),
            frames,
            pa.array([self.encoding.name] * n, pa.string()),
        ]
        return pa.RecordBatch.from_arrays(arrays, schema=FRAMES_SCHEMA)
