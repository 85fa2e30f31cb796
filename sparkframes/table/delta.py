"""The Delta tables of a frames table, and the one change sparkframes makes to them.

A frames table at ``OUT`` is three Delta tables (delta-rs, through the ``deltalake`` package):

    OUT/            frames, partitioned by purpose (``OUT/purpose=<p>/…``)
    OUT/_errors/    error rows
    OUT/_state/     one row per (video, purpose) unit: what decided "up to date"

Every commit sparkframes makes to any of them is the same change, ``replace_units``: remove
every row of some units and add the files that now hold them, in one Delta commit. A file that
holds only those units' rows is removed; one that mixes them with other units' rows is rewritten
without them (the frames writer keeps one unit per file, so that happens to frames only after
someone compacted the table).

Overlapping runs: each such commit carries the application transaction id ``APP_ID``, so two
commits built on the same table version conflict (delta-rs raises ``CommitFailedError``, as for
two instances of one streaming query). The loser reads the new version, works out its removals
again (now including the rows the winner just added) and tries again. So commits are serialised
while the extraction before them runs in parallel, and a unit's rows are in the table exactly
once whichever run commits last.
"""

from __future__ import annotations

import os
import posixpath
import random
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, Transaction
from pyarrow import fs as pafs

from sparkframes.filesystems import resolve
from sparkframes.table.files import (
    FRAMES_PARQUET_OPTIONS,
    SMALL_PARQUET_OPTIONS,
    DataFile,
    Unit,
    write_file,
)
from sparkframes.table.schema import (
    ERRORS_DIR,
    ERRORS_SCHEMA,
    FRAMES_SCHEMA,
    FRAMES_TABLE_SCHEMA,
    PARTITION_COLUMN,
    STATE_DIR,
    STATE_SCHEMA,
)

#: The application transaction id every sparkframes commit carries (see the module docstring).
APP_ID = "sparkframes"
#: Commits tried before a run gives up on a table other writers keep changing under it.
MAX_COMMIT_TRIES = 50


class TableConflictError(RuntimeError):
    """A commit lost to other writers ``MAX_COMMIT_TRIES`` times in a row."""


@dataclass(frozen=True)
class TableKind:
    """One of the three tables: where it lives under ``OUT`` and what its files hold."""

    name: str
    subdir: str  # "" for the frames table itself
    schema: pa.Schema  # the table's columns, partition column included
    file_schema: pa.Schema  # the columns stored in its files
    partition_by: tuple[str, ...]
    parquet_options: dict = field(default_factory=dict, hash=False, compare=False)
    #: A small table (errors, state): each run adds a file holding many units, so a commit
    #: that finds more than ``COMPACT_AFTER`` files rewrites them all into one, instead of
    #: reading ever more of them on every later commit.
    compact: bool = False


FRAMES = TableKind(
    "frames", "", FRAMES_TABLE_SCHEMA, FRAMES_SCHEMA, (PARTITION_COLUMN,), FRAMES_PARQUET_OPTIONS
)
ERRORS = TableKind(
    "errors", ERRORS_DIR, ERRORS_SCHEMA, ERRORS_SCHEMA, (), SMALL_PARQUET_OPTIONS, compact=True
)
STATE = TableKind(
    "state", STATE_DIR, STATE_SCHEMA, STATE_SCHEMA, (), SMALL_PARQUET_OPTIONS, compact=True
)
COMPACT_AFTER = 32
#: Every table gets a checkpoint every 100 commits (delta-rs makes it after the commit), so a
#: reader replays at most that many JSON commits. Delta's default, written down.
TABLE_PROPERTIES = {"delta.checkpointInterval": "100"}


@dataclass(frozen=True)
class TableLocation:
    """Where a frames table is, as delta-rs opens it and as pyarrow writes its data files.

    ``output`` is what the user gave (a path or a URI: the executors get this string and find
    the same place from it).
    """

    output: str
    uri: str
    storage_options: dict[str, str]
    fs: pafs.FileSystem
    root: str

    @classmethod
    def of(cls, output: str) -> TableLocation:
        fs, root = resolve(output)
        uri = output.rstrip("/") if "://" in output else root
        return cls(output, uri, delta_storage_options(output), fs, root.rstrip("/"))

    def uri_of(self, kind: TableKind) -> str:
        return f"{self.uri}/{kind.subdir}" if kind.subdir else self.uri

    def root_of(self, kind: TableKind) -> str:
        return posixpath.join(self.root, kind.subdir) if kind.subdir else self.root


def delta_storage_options(output: str) -> dict[str, str]:
    """delta-rs options for ``output``'s store, from the same environment pyarrow reads.

    On S3 a commit must be a put-if-absent for two writers to be safe; S3 has that through
    conditional writes, which object_store uses with ``conditional_put = etag``. A user who set
    up another mechanism (a DynamoDB lock: ``AWS_S3_LOCKING_PROVIDER``) keeps it.
    """
    scheme = urlsplit(output).scheme.lower() if "://" in output else ""
    if scheme not in ("s3", "s3a", "s3n"):
        return {}
    options: dict[str, str] = {}
    if "AWS_S3_LOCKING_PROVIDER" not in os.environ:
        options["conditional_put"] = "etag"
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["endpoint"] = endpoint
        if endpoint.lower().startswith("http://"):
            options["allow_http"] = "true"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return options


def open_table(loc: TableLocation, kind: TableKind, version: int | None = None) -> DeltaTable:
    """The table at its latest (or a given) version; ``TableNotFoundError`` if there is none."""
    return DeltaTable(loc.uri_of(kind), version=version, storage_options=loc.storage_options)


def ensure_table(loc: TableLocation, kind: TableKind) -> DeltaTable:
    """The table at its latest version, created empty first if it does not exist yet."""
    try:
        return open_table(loc, kind)
    except TableNotFoundError:
        pass
    try:
        return DeltaTable.create(
            loc.uri_of(kind),
            kind.schema,
            partition_by=list(kind.partition_by) or None,
            mode="ignore",
            name=f"sparkframes {kind.name}",
            configuration=TABLE_PROPERTIES,
            storage_options=loc.storage_options,
        )
    except (CommitFailedError, DeltaError) as exc:
        try:  # another run may have created it a moment ago
            return open_table(loc, kind)
        except TableNotFoundError:
            raise exc from None  # no: the creation's own failure says why


def file_paths(
    dt: DeltaTable, loc: TableLocation, kind: TableKind, prune: list | None = None
) -> list[str]:
    """The data files of ``dt``'s version as paths on ``loc.fs`` (what pyarrow reads).

    ``prune`` is a filter in DNF tuples: files it rules out by their partition values or
    their statistics are left out (the rows of the others still need filtering).
    """
    prefix = dt.table_uri.rstrip("/") + "/"
    root = loc.root_of(kind)
    paths = []
    for uri in dt.file_uris(file_pruning_predicate=prune or None):
        if uri.startswith(prefix):  # the file's place in the table, on the table's own fs
            paths.append(posixpath.join(root, uri[len(prefix) :]))
        else:  # a file elsewhere (Delta allows absolute paths): its own filesystem's path
            paths.append(resolve(uri)[1] if "://" in uri else uri)
    return paths


@dataclass(frozen=True)
class FileHit:
    """An active file holding rows of some of the units being replaced."""

    path: str
    size: int
    partition_values: dict[str, str]
    units: frozenset[Unit]  # the replaced units it holds
    only_these: bool  # it holds no other rows: removed whole, not rewritten


def files_holding(
    dt: DeltaTable, loc: TableLocation, kind: TableKind, units: set[Unit]
) -> list[FileHit]:
    """The active files of ``dt`` that hold rows of ``units``.

    The log's statistics decide most files: one whose video_path min and max are equal holds one
    video, and its purpose is its partition value (or its own min = max). Only files whose
    video_path range could hold one of ``units`` without being one of them are read (their
    video_path and purpose columns), and files without statistics.
    """
    if not units:
        return []
    actions = pa.table(dt.get_add_actions(flatten=True))
    if actions.num_rows == 0:
        return []
    paths_by_purpose: dict[str, list[str]] = {}
    for path, purpose in units:
        paths_by_purpose.setdefault(purpose, []).append(path)
    for paths in paths_by_purpose.values():
        paths.sort()

    def column(name: str) -> list:
        if name in actions.column_names:
            return actions[name].to_pylist()
        return [None] * actions.num_rows

    lows, highs = column("min.video_path"), column("max.video_path")
    if kind.partition_by:
        purposes_low = purposes_high = column(f"partition.{PARTITION_COLUMN}")
    else:
        purposes_low, purposes_high = column("min.purpose"), column("max.purpose")
    hits = []
    for i, (path, size) in enumerate(
        zip(actions["path"].to_pylist(), actions["size_bytes"].to_pylist(), strict=True)
    ):
        low, high, p_low, p_high = lows[i], highs[i], purposes_low[i], purposes_high[i]
        partition_values = {PARTITION_COLUMN: p_low} if kind.partition_by else {}
        if low is not None and low == high and p_low is not None and p_low == p_high:
            if (low, p_low) in units:
                hits.append(FileHit(path, size, partition_values, frozenset({(low, p_low)}), True))
            continue
        candidates = (
            [paths_by_purpose.get(p_low, [])]
            if p_low is not None and p_low == p_high
            else list(paths_by_purpose.values())
        )
        if not any(_any_within(paths, low, high) for paths in candidates):
            continue
        held, only = _units_in_file(loc, kind, path, p_low if kind.partition_by else None, units)
        if held:
            hits.append(FileHit(path, size, partition_values, frozenset(held), only))
    return hits


def _any_within(sorted_paths: list[str], low: str | None, high: str | None) -> bool:
    """Whether a path of ``sorted_paths`` lies in [low, high] (None: unbounded)."""
    if not sorted_paths:
        return False
    i = 0 if low is None else bisect_left(sorted_paths, low)
    return i < len(sorted_paths) and (high is None or sorted_paths[i] <= high)


def _units_in_file(
    loc: TableLocation, kind: TableKind, relpath: str, purpose: str | None, units: set[Unit]
) -> tuple[set[Unit], bool]:
    """(the replaced units a file holds, whether it holds nothing else), read from its columns."""
    columns = ["video_path"] if purpose is not None else ["video_path", "purpose"]
    table = _read_file(loc, kind, relpath, columns)
    purposes = [purpose] * table.num_rows if purpose is not None else table["purpose"].to_pylist()
    found = set(zip(table["video_path"].to_pylist(), purposes, strict=True))
    held = found & units
    return held, held == found


def _read_file(
    loc: TableLocation, kind: TableKind, relpath: str, columns: list[str] | None = None
) -> pa.Table:
    path = posixpath.join(loc.root_of(kind), relpath)
    with loc.fs.open_input_file(path) as f:
        return pq.read_table(f, columns=columns)


#: What a rewritten file's name adds to the name of the file its rows first came in.
_REWRITE_MARK = ".rw-"


def origin_of(path: str) -> str:
    """The name of the file a data file's rows were first written in: its own, or, for a file
    that ``rewrite_without`` made, the origin of the file it was rewritten from. A run tells by
    it whether a unit's rows are still the ones it wrote (``commit.py``)."""
    return posixpath.basename(path).removesuffix(".parquet").split(_REWRITE_MARK)[0]


def rewrite_without(loc: TableLocation, kind: TableKind, hit: FileHit) -> DataFile | None:
    """A copy of a mixed file without the rows of ``hit.units`` (None if nothing is left),
    named after its origin (``origin_of``)."""
    table = _read_file(loc, kind, hit.path)
    purpose = hit.partition_values.get(PARTITION_COLUMN)
    purposes = (
        pa.chunked_array([pa.array([purpose] * table.num_rows, pa.string())])
        if purpose is not None
        else table["purpose"]
    )
    stale = pa.array([f"{v}\x00{p}" for v, p in hit.units], pa.string())
    mask = pc.invert(pc.is_in(_unit_keys(table["video_path"], purposes), value_set=stale))
    kept = table.filter(mask)
    if kept.num_rows == 0:
        return None
    kept_purposes = purposes.filter(mask).to_pylist()
    kept = kept.select(kind.file_schema.names).cast(kind.file_schema)
    rows: dict[Unit, int] = {}
    for unit in zip(kept["video_path"].to_pylist(), kept_purposes, strict=True):
        rows[unit] = rows.get(unit, 0) + 1
    folder = posixpath.dirname(hit.path)
    name = f"{origin_of(hit.path)}{_REWRITE_MARK}{random.getrandbits(48):012x}.parquet"
    return write_file(
        loc.fs,
        loc.root_of(kind),
        posixpath.join(folder, name) if folder else name,
        kept.to_batches(),
        kind.file_schema,
        rows,
        hit.partition_values,
        kind.parquet_options,
    )


def add_action(f: DataFile) -> AddAction:
    return AddAction(f.path, f.size, f.partition_values, f.modification_time_ms, True, f.stats)


#: What a commit changes, worked out anew against each version it is tried on: the units whose
#: rows it replaces and the files that now hold them.
Change = Callable[[], tuple[set[Unit], list[DataFile]]]


def replace_units(
    loc: TableLocation,
    kind: TableKind,
    change: Change,
    *,
    run_id: str,
    overwrite: bool = False,
    metadata: dict | None = None,
    commit_when_owned: bool = False,
) -> tuple[int | None, int]:
    """One commit to ``kind``: the rows of the units ``change()`` names become exactly those of
    the files it gives. Returns the version made (None: there was nothing to commit) and the
    tries it took (more than one: other writers committed meanwhile).

    ``change`` is called after each read of the newest version, so that a commit retried after
    a conflict can take into account what the winner did. With ``overwrite`` every row of the
    table goes, not only the units'. ``commit_when_owned`` commits even when there is nothing
    to add or remove but ``change`` names units: an empty commit, which a concurrent commit
    built on the version before it conflicts with (see ``commit.py``).
    """
    properties = {"sparkframes": {"run_id": run_id, **(metadata or {})}}
    for tries in range(1, MAX_COMMIT_TRIES + 1):
        dt = ensure_table(loc, kind)
        units, files = change()
        now_ms = int(time.time() * 1000)
        if overwrite:
            removes, rewritten = [], []
        else:
            removes, rewritten = _removals(dt, loc, kind, units, run_id, now_ms)
        adds = [*files, *rewritten]
        if not (adds or removes or overwrite or (commit_when_owned and units)):
            return None, tries
        try:
            dt.create_write_transaction(
                [*removes, *map(add_action, adds)],
                mode="overwrite" if overwrite else "append",
                schema=kind.schema,
                partition_by=list(kind.partition_by) or None,
                commit_properties=CommitProperties(
                    custom_metadata=properties,
                    app_transactions=[Transaction(APP_ID, dt.version() + 1)],
                ),
            )
        except CommitFailedError:
            # Another writer committed since ``dt`` was read: start again from its version.
            # (Files rewritten for this try are never listed; vacuum removes them.)
            time.sleep(random.uniform(0.05, 0.2) * min(tries, 10))
            continue
        return committed_version(dt, run_id), tries
    raise TableConflictError(
        f"{loc.uri_of(kind)}: gave up committing after {MAX_COMMIT_TRIES} conflicts with other "
        "writers"
    )


def _removals(
    dt: DeltaTable, loc: TableLocation, kind: TableKind, units: set[Unit], run_id: str, now: int
) -> tuple[list[RemoveAction], list[DataFile]]:
    """What a commit replacing ``units`` removes, and the rewritten files it adds back."""

    def remove(path: str, size: int, partition_values: dict[str, str]) -> RemoveAction:
        return RemoveAction(path, True, now, size, partition_values)

    stem = f"part-{run_id}"
    if kind.compact:
        actions = pa.table(dt.get_add_actions(flatten=True))
        if actions.num_rows > COMPACT_AFTER:
            paths, sizes = actions["path"].to_pylist(), actions["size_bytes"].to_pylist()
            kept = _compact_without(loc, kind, paths, units, stem)
            return [remove(p, n, {}) for p, n in zip(paths, sizes, strict=True)], kept
    hits = files_holding(dt, loc, kind, units)
    rewritten = [
        f
        for h in hits
        if not h.only_these
        for f in [rewrite_without(loc, kind, h)]
        if f is not None
    ]
    return [remove(h.path, h.size, h.partition_values) for h in hits], rewritten


def _compact_without(
    loc: TableLocation, kind: TableKind, paths: list[str], units: set[Unit], stem: str
) -> list[DataFile]:
    """The rows of all ``paths`` (a small, unpartitioned table's files) but ``units``', in one
    new file (none if no row is left)."""
    import pyarrow.dataset as ds

    root = loc.root_of(kind)
    table = ds.dataset(
        [posixpath.join(root, p) for p in paths],
        schema=kind.file_schema,
        filesystem=loc.fs,
        format="parquet",
    ).to_table()
    keys = _unit_keys(table["video_path"], table["purpose"])
    stale = pa.array([f"{v}\x00{p}" for v, p in units], pa.string())
    kept = table.filter(pc.invert(pc.is_in(keys, value_set=stale)))
    if kept.num_rows == 0:
        return []
    rows: dict[Unit, int] = {}
    for unit in zip(kept["video_path"].to_pylist(), kept["purpose"].to_pylist(), strict=True):
        rows[unit] = rows.get(unit, 0) + 1
    name = f"{stem}-compact-{random.getrandbits(48):012x}.parquet"
    return [
        write_file(
            loc.fs, root, name, kept.to_batches(), kind.file_schema, rows, {}, kind.parquet_options
        )
    ]


def _unit_keys(video_paths: pa.ChunkedArray, purposes: pa.ChunkedArray) -> pa.ChunkedArray:
    """``video_path NUL purpose`` per row (a null purpose as empty), to match units against."""
    return pc.binary_join_element_wise(video_paths, pc.fill_null(purposes, ""), "\x00")


def committed_version(dt: DeltaTable, run_id: str) -> int | None:
    """The version at which run ``run_id`` committed to ``dt`` (looked up in recent history:
    delta-rs may have moved the commit past versions that did not conflict with it)."""
    dt.update_incremental()
    for entry in dt.history(limit=100):
        if (entry.get("sparkframes") or {}).get("run_id") == run_id:
            return int(entry["version"])
    return None
