"""Columns of the frames, errors and state tables, and error rows to Arrow. Pure (no I/O).

The ``frame`` column is stored as one Parquet BINARY value per frame (H*W*3 bytes, row-major RGB,
or a JPEG/PNG image: ``frame_encoding`` says which) with ``height``/``width`` beside it.
Measured in bench/RESULTS.md: this stores and loads an order of magnitude faster than a
FixedSizeList tensor column, every engine reads it without error, and tables mixing frame shapes
stay readable. ``convert/columns.py`` builds the frames' record batches; ``read_frames`` turns raw
frames back into an
``arrow.fixed_shape_tensor`` per shape group without copying the pixels (encoded ones it
decodes).
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from sparkframes.errors import FrameExtractionError

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

#: Why a video or clip has no frames, in the lazy DataFrame's ``error`` column.
ERROR_STRUCT = pa.struct(
    [("stage", pa.string()), ("error_class", pa.string()), ("message", pa.string())]
)
#: The rows of ``spark.clip_frames``/``video_frames``: the table's columns, then ``error``,
#: which is null on frame rows. A failed video's or clip's row (mode PERMISSIVE) has its
#: ``video_path``, ``purpose``, ``clip_id`` where it has one, and nulls for the frame's columns.
FRAMES_DATAFRAME_SCHEMA = pa.schema(
    [
        f if f.name in ("video_path", PARTITION_COLUMN) else f.with_nullable(True)
        for f in FRAMES_TABLE_SCHEMA
    ]
).append(pa.field("error", ERROR_STRUCT))

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
