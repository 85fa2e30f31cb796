"""Columns of the frames, errors and state tables, and rows to Arrow. Pure (no file I/O).

The ``frame`` column is stored as one Parquet BINARY value per frame (H*W*3 bytes, row-major RGB,
or a JPEG/PNG image: ``frame_encoding`` says which) with ``height``/``width`` beside it.
Measured in bench/RESULTS.md: this stores and loads an order of magnitude faster than a
FixedSizeList tensor column, every engine reads it without error, and tables mixing frame shapes
stay readable. ``sparkframes.read_frames`` turns raw frames back into an
``arrow.fixed_shape_tensor`` per shape group without copying the pixels (encoded ones it
decodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from sparkframes.errors import FrameExtractionError
from sparkframes.table.encodings import RAW, RAW_FRAMES, FrameEncoding

#: Partition column of the frames table: not stored in its files, it comes from the
#: ``purpose=<p>`` folder (and the Delta log's partition values).
PARTITION_COLUMN = "purpose"
#: The errors and state tables live inside the frames table's folder; a leading underscore keeps
#: every reader of the frames table (Delta's vacuum included) out of them.
ERRORS_DIR = "_errors"
STATE_DIR = "_state"

FRAME_METADATA = {
    b"sparkframes.frame": b"uint8 RGB (height, width, 3): raw row-major bytes, or a JPEG/PNG "
    b"image, as frame_encoding says"
}

FRAMES_SCHEMA = pa.schema(
    [
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("clip_start_s", pa.float64(), nullable=False),
        pa.field("clip_end_s", pa.float64(), nullable=False),
        pa.field("policy", pa.string(), nullable=False),
        pa.field("target_fps", pa.float64()),
        pa.field("frame_index", pa.int32(), nullable=False),
        pa.field("pts_s", pa.float64(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("decoder", pa.string(), nullable=False),
        pa.field("frame", pa.binary(), nullable=False, metadata=FRAME_METADATA),
        pa.field("frame_encoding", pa.string(), nullable=False),
    ]
)

ERRORS_SCHEMA = pa.schema(
    [
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("clip_id", pa.string()),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("error_class", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("purpose", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)


#: The frames table as Delta knows it: the file columns plus the partition column.
FRAMES_TABLE_SCHEMA = FRAMES_SCHEMA.append(pa.field(PARTITION_COLUMN, pa.string(), nullable=False))

#: One row per (video, purpose) unit: everything an incremental run compares to decide whether the
#: unit is up to date, and what the last run that processed it got.
STATE_SCHEMA = pa.schema(
    [
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("purpose", pa.string(), nullable=False),
        # The video file as it was stat'ed when planned; -1 where it could not be read.
        pa.field("video_size", pa.int64(), nullable=False),
        pa.field("video_mtime_ns", pa.int64(), nullable=False),
        # A fingerprint of what was asked of the unit (rates, policy, size, spans…).
        pa.field("request_key", pa.string(), nullable=False),
        # "ok" (no error rows), "partial" (frames and error rows) or "failed" (no frames).
        pa.field("status", pa.string(), nullable=False),
        pa.field("frames", pa.int64(), nullable=False),
        pa.field("errors", pa.int64(), nullable=False),
        # Runs in a row whose failure may pass by itself (a time limit, a crash, a store out of
        # reach); such a unit is tried again by the next runs while this is below the limit.
        pa.field("transient_failures", pa.int32(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
    ]
)


def frames_to_batch(
    rows: Sequence, decoder: str = "ffmpeg_cpu", encoding: FrameEncoding = RAW_FRAMES
) -> pa.RecordBatch:
    """``ExtractedFrame`` rows (all of one purpose) to a record batch of ``FRAMES_SCHEMA``, the
    pixels stored in ``encoding``."""
    images = [r.image for r in rows]
    if encoding.name == RAW:
        frames = _binary_frames(images)
    else:
        frames = pa.array([encoding.encode(im) for im in images], pa.binary())
    columns = [
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
        pa.array([im.shape[0] for im in images], pa.int32()),
        pa.array([im.shape[1] for im in images], pa.int32()),
        pa.array([decoder] * len(rows), pa.string()),
        frames,
        pa.array([encoding.name] * len(rows), pa.string()),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=FRAMES_SCHEMA)


def rows_to_batches(
    rows: Sequence, decoder: str, encoding: FrameEncoding = RAW_FRAMES
) -> list[tuple[str, pa.RecordBatch]]:
    """Rows of any purposes to one record batch per purpose (the purpose is the partition)."""
    by_purpose: dict[str, list] = {}
    for row in rows:
        by_purpose.setdefault(row.purpose, []).append(row)
    return [(p, frames_to_batch(r, decoder, encoding)) for p, r in by_purpose.items()]


def _binary_frames(images: Sequence) -> pa.Array:
    """One BINARY value per image, built with a single copy of the pixels."""
    import numpy as np

    sizes = np.fromiter((im.nbytes for im in images), dtype=np.int64, count=len(images))
    offsets = np.zeros(len(images) + 1, dtype=np.int32)
    np.cumsum(sizes, out=offsets[1:])
    data = np.concatenate([im.reshape(-1) for im in images]) if images else np.empty(0, np.uint8)
    return pa.Array.from_buffers(
        pa.binary(), len(images), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def errors_to_batch(
    errors: Sequence[FrameExtractionError | BaseException],
    video_path: str,
    run_id: str | None = None,
    purpose: str | None = None,
) -> pa.RecordBatch:
    """Errors of one video to a record batch of ``ERRORS_SCHEMA``."""
    rows = [
        {
            "video_path": getattr(e, "video_path", video_path),
            "clip_id": getattr(e, "clip_id", None),
            "stage": getattr(e, "stage", "internal"),
            "error_class": type(e).__name__,
            "message": str(e),
            "purpose": purpose,
            "run_id": run_id,
        }
        for e in errors
    ]
    return pa.RecordBatch.from_pylist(rows, schema=ERRORS_SCHEMA)
