"""The incremental state: one row per (video, purpose) unit in ``OUT/_state``.

The rule that reads it (``unit_todo``, applied per video on the executors by
``spark/planning``): a unit is up to date when its video file has the size and mtime it had when
the unit was last extracted and the same thing is asked of it (the request key), unless its
last failure may pass by itself (a time limit, a crash, a store out of reach) and it has not
failed so ``MAX_TRANSIENT_TRIES`` runs in a row: a video that always runs past the time limit
must not hold a task for an hour every night.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds
from deltalake.exceptions import TableNotFoundError

from sparkframes.table.delta import STATE, TableLocation, file_paths, open_table
from sparkframes.table.files import Unit
from sparkframes.table.reader import read_rows
from sparkframes.table.schema import STATE_SCHEMA

#: Runs in a row a failure that may pass is retried before it is taken as lasting.
MAX_TRANSIENT_TRIES = 3


@dataclass(frozen=True)
class UnitState:
    """What one run got for one unit, and the video as it was when planned."""

    video_path: str
    purpose: str
    video_size: int
    video_mtime_ns: int
    request_key: str
    frames: int = 0
    errors: int = 0
    transient_failures: int = 0

    @property
    def unit(self) -> Unit:
        return (self.video_path, self.purpose)

    @property
    def status(self) -> str:
        if not self.errors:
            return "ok"
        return "partial" if self.frames else "failed"


def unit_todo(
    state: dict | None, video_size: int, video_mtime_ns: int, request_key: str
) -> tuple[bool, int]:
    """(whether a unit must be extracted, the failures in a row it carries into this run), by
    the rule above. ``state`` is the unit's row of ``OUT/_state`` (None: never extracted)."""
    if state is None:
        return True, 0
    same = (
        state["video_size"] == video_size
        and state["video_mtime_ns"] == video_mtime_ns
        and state["request_key"] == request_key
    )
    if not same:
        return True, 0
    failures = state["transient_failures"] or 0
    return 0 < failures < MAX_TRANSIENT_TRIES, failures


def state_rows(states: list[UnitState], run_id: str) -> pa.Table:
    """Rows of ``STATE_SCHEMA``."""
    return pa.Table.from_pylist(
        [
            {
                "video_path": s.video_path,
                "purpose": s.purpose,
                "video_size": s.video_size,
                "video_mtime_ns": s.video_mtime_ns,
                "request_key": s.request_key,
                "status": s.status,
                "frames": s.frames,
                "errors": s.errors,
                "transient_failures": s.transient_failures,
                "run_id": run_id,
            }
            for s in states
        ],
        schema=STATE_SCHEMA,
    )


@dataclass(frozen=True)
class StateFiles:
    """The committed state's data files (paths on the table's filesystem) and how many rows they
    hold (None where a writer left no statistics): what planning reads, on the driver when
    small, on the executors when not."""

    paths: list[str]
    rows: int | None


def state_files(loc: TableLocation) -> StateFiles | None:
    """The state's files at its newest version (None for a table without a state yet)."""
    try:
        dt = open_table(loc, STATE)
    except TableNotFoundError:
        return None
    counts = pa.table(dt.get_add_actions(flatten=True))
    names = counts.column_names
    records = counts["num_records"].to_pylist() if "num_records" in names else [None] * len(counts)
    rows = None if None in records else sum(records)
    return StateFiles(file_paths(dt, loc, STATE), rows)


def read_state_files(loc: TableLocation, paths: list[str], columns: list[str]) -> pa.Table:
    """``columns`` of the state rows in ``paths`` (some of ``state_files``' paths)."""
    dataset = ds.dataset(paths, schema=STATE_SCHEMA, filesystem=loc.fs, format="parquet")
    return dataset.to_table(columns=columns)


def read_state_table(loc: TableLocation, version: int | None = None) -> pa.Table:
    """The committed state, one row per unit, as stored (empty for a table without one yet)."""
    try:
        return read_rows(loc, STATE, version=version)
    except TableNotFoundError:
        return STATE_SCHEMA.empty_table()
