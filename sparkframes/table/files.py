"""Parquet data files written by a task attempt straight into the tables, and their descriptions.

A file written here is invisible to every Delta reader until the driver commits it
(``commit.py``): Delta tables are what their log lists, not what their folders hold. So an
attempt that fails, is killed or loses to a speculative twin leaves only unlisted files behind,
which ``vacuum`` removes once they are older than its retention period.

A task's videos share its frame files, one open file per purpose, in the order the task
extracts them (path order), rolled over at ``FILE_TARGET_BYTES``: a table of many short clips
gets files of a healthy size, not one per clip. Redoing a video later removes the files that
hold only its rows and rewrites the others without them: at most two files of other videos'
rows per (video, purpose), ``FILE_TARGET_BYTES`` each (the file it starts in and the one it ends
in). Error rows are few and small, so an attempt writes them all into one file.
"""

from __future__ import annotations

import json
import math
import posixpath
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkframes.table.schema import ERRORS_SCHEMA, FRAMES_SCHEMA, PARTITION_COLUMN

#: A unit of incremental work and of replacement: (video_path, purpose).
Unit = tuple[str, str]

ROW_GROUP_BYTES = 64 << 20
#: Where a task's frame file rolls over, and the size ``optimize`` compacts to. Replacing a video
#: rewrites the files that share its rows, so this also bounds what a refresh rewrites per video.
FILE_TARGET_BYTES = 128 << 20

# Pixels are dense and barely compress; compressing them costs more time than it saves bytes.
# Metadata columns compress very well. (Measured: bench/table_bench.py.)
_METADATA_COLUMNS = [f.name for f in FRAMES_SCHEMA if f.name != "frame"]
FRAMES_PARQUET_OPTIONS = {
    "compression": {**{c: "zstd" for c in _METADATA_COLUMNS}, "frame": "none"},
    "use_dictionary": ["video_path", "clip_id", "policy", "decoder", "frame_encoding"],
    "write_statistics": _METADATA_COLUMNS,
}
SMALL_PARQUET_OPTIONS = {"compression": "zstd"}
#: The frames schema without the pixels: what a file's statistics are computed from.
_FRAME_METADATA_SCHEMA = FRAMES_SCHEMA.remove(FRAMES_SCHEMA.get_field_index("frame"))


@dataclass(frozen=True)
class DataFile:
    """A Parquet file in one of the tables, not yet committed; small enough to send the driver.

    ``path`` is relative to its table's root (the form the Delta log stores), ``stats`` is the
    Delta statistics JSON that lets readers skip the file, and ``rows`` counts its rows per unit.
    """

    path: str
    size: int
    partition_values: dict[str, str]
    stats: str
    rows: dict[Unit, int]
    modification_time_ms: int


def delta_stats(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> str:
    """Delta statistics (row count; min, max and null count per column) of a file's rows.

    Binary and timestamp columns get a null count only: their min/max would be large or need
    a format of their own, and no reader filters on them.
    """
    table = pa.Table.from_batches(list(batches), schema)
    mins, maxs, nulls = {}, {}, {}
    for field in schema:
        column = table[field.name]
        nulls[field.name] = column.null_count
        if pa.types.is_binary(field.type) or pa.types.is_timestamp(field.type):
            continue
        if column.null_count == len(column):
            continue
        bounds = pc.min_max(column)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if isinstance(low, float) and not (math.isfinite(low) and math.isfinite(high)):
            continue  # JSON has no NaN or infinity
        mins[field.name], maxs[field.name] = low, high
    doc = {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    return json.dumps(doc)


def write_file(
    fs: pafs.FileSystem,
    table_root: str,
    relpath: str,
    batches: list[pa.RecordBatch],
    schema: pa.Schema,
    rows: dict[Unit, int],
    partition_values: dict[str, str] | None = None,
    options: dict | None = None,
) -> DataFile:
    """Write ``batches`` as one Parquet file at ``table_root/relpath`` and describe it."""
    path = posixpath.join(table_root, relpath)
    fs.create_dir(posixpath.dirname(path))
    with fs.open_output_stream(path) as sink:
        pq.write_table(pa.Table.from_batches(batches, schema), sink, **(options or {}))
    size = fs.get_file_info(path).size
    return DataFile(
        path=relpath,
        size=int(size),
        partition_values=dict(partition_values or {}),
        stats=delta_stats(batches, schema),
        rows=dict(rows),
        modification_time_ms=int(time.time() * 1000),
    )


class _PurposeFile:
    """The frame rows of one purpose, from one video after another, buffered into row groups
    and rolled over by size."""

    def __init__(self, writer: AttemptWriter, purpose: str) -> None:
        self.writer, self.purpose = writer, purpose
        self._parquet: pq.ParquetWriter | None = None
        self._sink = None
        self._relpath = ""
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._file_bytes = 0
        self._file_rows: dict[Unit, int] = {}  # pending rows included: they are flushed first
        self._file_batches: list[pa.RecordBatch] = []  # for the statistics (metadata only)

    def add(self, batch: pa.RecordBatch, unit: Unit) -> None:
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._file_rows[unit] = self._file_rows.get(unit, 0) + batch.num_rows
        if self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()
            if self._file_bytes >= FILE_TARGET_BYTES:
                self.close()  # the next batch opens a new file

    def _flush(self) -> None:
        if not self._pending:
            return
        if self._parquet is None:
            self._relpath = self.writer.new_relpath(f"{PARTITION_COLUMN}={self.purpose}")
            path = posixpath.join(self.writer.root, self._relpath)
            self.writer.fs.create_dir(posixpath.dirname(path))
            self._sink = self.writer.fs.open_output_stream(path)
            self._parquet = pq.ParquetWriter(self._sink, FRAMES_SCHEMA, **FRAMES_PARQUET_OPTIONS)
        try:
            self._parquet.write_table(pa.Table.from_batches(self._pending, FRAMES_SCHEMA))
        except BaseException:
            # The file is lost: forget it whole (it stays unlisted, for vacuum) so that it is
            # never described to the driver half-written.
            self.abort()
            raise
        # Statistics need the metadata columns only: keep those, not the pixels.
        self._file_batches.extend(b.drop_columns(["frame"]) for b in self._pending)
        self._file_bytes += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def abort(self) -> None:
        """Drop the file being written. Close the stream now: an object-store stream left to
        the garbage collector may wait on its upload forever."""
        try:
            if self._parquet is not None:
                self._parquet.close()
        except Exception:
            pass  # the file is being dropped; the error that got us here is the one to report
        finally:
            if self._sink is not None:
                self._sink.close()
            self._parquet, self._sink = None, None
            self._pending, self._pending_bytes = [], 0
            self._file_batches, self._file_bytes, self._file_rows = [], 0, {}

    def close(self) -> None:
        self._flush()
        if self._parquet is None:
            return
        try:
            self._parquet.close()
        finally:
            self._sink.close()
        path = posixpath.join(self.writer.root, self._relpath)
        stats = json.loads(delta_stats(self._file_batches, _FRAME_METADATA_SCHEMA))
        stats["nullCount"]["frame"] = 0  # a frame is never null (FRAMES_SCHEMA says so)
        self.writer.files.append(
            DataFile(
                path=self._relpath,
                size=int(self.writer.fs.get_file_info(path).size),
                partition_values={PARTITION_COLUMN: self.purpose},
                stats=json.dumps(stats),
                rows=self._file_rows,
                modification_time_ms=int(time.time() * 1000),
            )
        )
        self._parquet, self._sink, self._file_batches = None, None, []
        self._file_bytes, self._file_rows = 0, {}


class AttemptWriter:
    """Every file one task attempt writes into the frames table at ``root`` and its errors table.

    File names carry the run, the Spark partition and a random part, so no two attempts (a retry,
    a speculative twin, another run) ever write the same file.
    """

    def __init__(self, fs: pafs.FileSystem, root: str, errors_root: str, file_stem: str) -> None:
        self.fs, self.root, self.errors_root, self.file_stem = fs, root, errors_root, file_stem
        self.files: list[DataFile] = []
        self.error_files: list[DataFile] = []
        self._open: dict[str, _PurposeFile] = {}
        self._errors: list[pa.RecordBatch] = []
        self._error_rows: dict[Unit, int] = {}

    def new_relpath(self, folder: str) -> str:
        name = f"{self.file_stem}-{uuid.uuid4().hex[:12]}.parquet"
        return posixpath.join(folder, name) if folder else name

    def write_frames(self, purpose: str, batch: pa.RecordBatch, video_path: str) -> None:
        """Rows of one (video, purpose) unit."""
        if purpose not in self._open:
            self._open[purpose] = _PurposeFile(self, purpose)
        self._open[purpose].add(batch, (video_path, purpose))

    def write_errors(self, purpose: str, batch: pa.RecordBatch, video_path: str) -> None:
        """Error rows of one (video, purpose) unit (their ``purpose`` column says which)."""
        if len(batch):
            self._errors.append(batch)
            unit = (video_path, purpose)
            self._error_rows[unit] = self._error_rows.get(unit, 0) + len(batch)

    def abort(self) -> None:
        """Give up the attempt: close every open stream and describe nothing."""
        for purpose_file in self._open.values():
            purpose_file.abort()
        self._open.clear()
        self.files, self.error_files, self._errors, self._error_rows = [], [], [], {}

    def close(self) -> tuple[list[DataFile], list[DataFile]]:
        """Finish every file; (frame files, error files)."""
        for purpose_file in self._open.values():
            purpose_file.close()
        self._open.clear()
        if self._errors:
            self.error_files.append(
                write_file(
                    self.fs,
                    self.errors_root,
                    self.new_relpath(""),
                    self._errors,
                    ERRORS_SCHEMA,
                    self._error_rows,
                    options=SMALL_PARQUET_OPTIONS,
                )
            )
            self._errors, self._error_rows = [], {}
        return self.files, self.error_files
