"""Writing frames and errors to Parquet files, one set of files per task attempt.

A task attempt writes only inside its own staging folder; nothing it writes is visible in the
table until the driver commits it (``commit.py``). Files roll over at ``max_file_bytes`` and
row groups are buffered to about ``row_group_bytes`` so readers get few, large row groups.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkframes.table.schema import ERRORS_DIR, ERRORS_SCHEMA, FRAMES_SCHEMA, PARTITION_COLUMN

ROW_GROUP_BYTES = 64 << 20
MAX_FILE_BYTES = 512 << 20

# Pixels are dense and barely compress; compressing them costs more time than it saves bytes.
# Metadata columns compress very well. (Measured: bench/table_bench.py.)
_METADATA_COLUMNS = [f.name for f in FRAMES_SCHEMA if f.name != "frame"]
FRAMES_PARQUET_OPTIONS = {
    "compression": {**{c: "zstd" for c in _METADATA_COLUMNS}, "frame": "none"},
    "use_dictionary": ["video_path", "clip_id", "policy", "decoder"],
    "write_statistics": _METADATA_COLUMNS,
}


@dataclass
class StagedFile:
    """A file a task attempt wrote, relative to its staging folder, and whose rows it holds.

    ``rows_by_unit`` counts rows per (video_path, purpose): the unit that incremental runs
    replace as a whole.
    """

    relpath: str
    kind: str  # "frames" or "errors"
    rows_by_unit: dict[tuple[str, str], int] = field(default_factory=dict)


class _RollingFile:
    def __init__(
        self, fs: pafs.FileSystem, folder: str, stem: str, schema: pa.Schema, options: dict
    ) -> None:
        self.fs, self.folder, self.stem, self.schema, self.options = (
            fs,
            folder,
            stem,
            schema,
            options,
        )
        self.files: list[StagedFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._file_bytes = 0

    def add(self, batch: pa.RecordBatch, unit: tuple[str, str], staged: StagedFile) -> None:
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        if self._writer is None:
            self._open(staged)
        current = self.files[-1]
        current.rows_by_unit[unit] = current.rows_by_unit.get(unit, 0) + len(batch)
        if self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def _open(self, staged: StagedFile) -> None:
        name = f"{self.stem}-{len(self.files):04d}.parquet"
        staged.relpath = posixpath.join(staged.relpath, name)
        self.fs.create_dir(posixpath.join(self.folder, posixpath.dirname(staged.relpath)))
        sink = self.fs.open_output_stream(posixpath.join(self.folder, staged.relpath))
        self._writer = pq.ParquetWriter(sink, self.schema, **self.options)
        self._sink = sink
        self.files.append(staged)
        self._file_bytes = 0

    def _write_pending(self) -> None:
        if self._pending and self._writer is not None:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
            self._file_bytes += self._pending_bytes
        self._pending, self._pending_bytes = [], 0

    def _flush(self) -> None:
        self._write_pending()
        if self._file_bytes >= MAX_FILE_BYTES:
            self.close()  # the next batch opens a new file

    def close(self) -> None:
        self._write_pending()
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = None


class StagingWriter:
    """All files of one task attempt under ``staging_dir`` (laid out like the table itself)."""

    def __init__(self, filesystem: pafs.FileSystem, staging_dir: str, file_stem: str) -> None:
        self.fs = filesystem
        self.staging_dir = staging_dir
        self.file_stem = file_stem
        self._frames: dict[str, _RollingFile] = {}
        self._errors = _RollingFile(
            filesystem, staging_dir, file_stem, ERRORS_SCHEMA, {"compression": "zstd"}
        )

    def write_frames(self, purpose: str, batch: pa.RecordBatch, video_path: str) -> None:
        """Rows of one (video, purpose) unit."""
        rolling = self._frames.get(purpose)
        if rolling is None:
            rolling = _RollingFile(
                self.fs, self.staging_dir, self.file_stem, FRAMES_SCHEMA, FRAMES_PARQUET_OPTIONS
            )
            self._frames[purpose] = rolling
        folder = f"{PARTITION_COLUMN}={purpose}"
        rolling.add(batch, (video_path, purpose), StagedFile(folder, "frames"))

    def write_errors(self, batch: pa.RecordBatch, video_path: str, purpose: str) -> None:
        """Error rows of one (video, purpose) unit (their ``purpose`` column says which)."""
        if len(batch):
            self._errors.add(batch, (video_path, purpose), StagedFile(ERRORS_DIR, "errors"))

    def close(self) -> list[StagedFile]:
        """Finish every file; return what was written."""
        staged: list[StagedFile] = []
        for rolling in [*self._frames.values(), self._errors]:
            rolling.close()
            staged.extend(rolling.files)
        return staged
