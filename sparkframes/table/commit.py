"""Atomic commit of a run into the frames table, and the state that makes re-runs incremental.

Layout of a table at ``ROOT``::

    ROOT/purpose=<p>/part-<run>-<task>-<n>.parquet   frames (what readers read)
    ROOT/_errors/part-<run>-<task>-<n>.parquet       errors (readers of frames skip "_" folders)
    ROOT/_sparkframes/manifest.parquet               committed state: which file holds whose rows
    ROOT/_SUCCESS                                    written after each successful commit

Task attempts write only to their own folder under a staging area beside the table
(``.ROOT-name.staging/<run>/``), never inside it. The driver commits the attempts Spark reports as
successful, which is one per task, so retried and speculative attempts cannot add rows:

1. files holding rows that this run replaces are rewritten without them (in staging);
2. staged files are renamed into the table;
3. the new manifest is written beside the old one and renamed over it: the commit point;
4. superseded files and the run's staging folder are deleted, then ``_SUCCESS`` is written.

``read_frames`` reads exactly the manifest's files, so it sees a run entirely or not at all. A
run killed before step 3 leaves the previous manifest in force; files it renamed in step 2 are
orphans that the next run deletes before doing anything else.

The unit of incremental state is (video, purpose): a unit is skipped when the video's
(size, mtime) and the request for that purpose (spec and clips) are unchanged.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as pafs

from sparkframes.filesystems import resolve
from sparkframes.table.writer import StagedFile

MANIFEST_PATH = "_sparkframes/manifest.parquet"
SUCCESS_PATH = "_SUCCESS"
#: Files this project owns inside a table; nothing else there is ever deleted.
OWNED_FILE = re.compile(r"^(purpose=[a-z][a-z0-9_]*|_errors)/part-[A-Za-z0-9_.-]+\.parquet$")

MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("video_path", pa.string(), nullable=False),
        pa.field("purpose", pa.string(), nullable=False),
        pa.field("size", pa.int64(), nullable=False),
        pa.field("mtime_ns", pa.int64(), nullable=False),
        pa.field("request_key", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("kind", pa.string()),  # "frames" | "errors" | null (a unit with no rows)
        pa.field("file", pa.string()),  # relative to the table root
        pa.field("rows", pa.int64(), nullable=False),
    ]
)


def staging_root(table_root: str) -> str:
    """The staging area beside (not inside) the table, so no reader ever lists it."""
    parent, name = posixpath.split(table_root.rstrip("/"))
    return posixpath.join(parent, f".{name}.staging")


def staging_location(output: str) -> str:
    """The staging area of the table at ``output`` (a path or URI), in a form ``resolve`` maps
    to the same filesystem: executors get this string, and a resolved S3 key would read as a
    local path there."""
    if "://" not in output:
        return staging_root(resolve(output)[1])
    parts = urlsplit(output)
    if parts.path.strip("/") == "":
        raise ValueError(
            f"{output}: a table cannot be a bucket's root, since its staging area goes beside "
            f"it; use a folder such as {output.rstrip('/')}/frames"
        )
    return urlunsplit(parts._replace(path=staging_root(parts.path)))


#: The mtime stored for a unit whose failure may pass (a timeout, a crash, storage out of
#: reach): no stat returns it (unknown is -1), so the next incremental run redoes the unit.
#: -2 after one such failure, -3 after two in a row, …
RETRY_MTIME_NS = -2
#: Tries in a row before a failure that may pass is taken as lasting: a video that always runs
#: past the time limit must not hold a task for an hour on every scheduled run.
MAX_TRANSIENT_TRIES = 3


def transient_tries(mtime_ns: int) -> int:
    """How many tries in a row a unit has failed in a way that may pass (0: none)."""
    return RETRY_MTIME_NS + 1 - mtime_ns if mtime_ns <= RETRY_MTIME_NS else 0


def committed_mtime(mtime_ns: int, failed_transiently: bool, tries_before: int) -> int:
    """The mtime to store for a unit: the file's, unless it failed in a way that may pass and
    has tries left, in which case a marker that makes the next run try again."""
    tries = tries_before + 1
    if failed_transiently and tries < MAX_TRANSIENT_TRIES:
        return RETRY_MTIME_NS + 1 - tries
    return mtime_ns


@dataclass(frozen=True)
class UnitKey:
    """What makes a (video, purpose) unit up to date."""

    size: int
    mtime_ns: int
    request_key: str


@dataclass
class UnitResult:
    """A (video, purpose) unit processed in this run."""

    video_path: str
    purpose: str
    key: UnitKey


@dataclass
class AttemptResult:
    """What one successful task attempt hands the driver (small: no pixels)."""

    staging_dir: str
    units: list[UnitResult] = field(default_factory=list)
    files: list[StagedFile] = field(default_factory=list)


class TableState:
    """The committed manifest of a table, as rows of ``MANIFEST_SCHEMA``."""

    def __init__(self, rows: list[dict]) -> None:
        self.rows = rows

    @classmethod
    def load(cls, fs: pafs.FileSystem, root: str) -> TableState:
        path = posixpath.join(root, MANIFEST_PATH)
        if fs.get_file_info(path).type != pafs.FileType.File:
            return cls([])
        with fs.open_input_file(path) as f:
            return cls(pq.read_table(f).to_pylist())

    def unit_keys(self) -> dict[tuple[str, str], UnitKey]:
        return {
            (r["video_path"], r["purpose"]): UnitKey(r["size"], r["mtime_ns"], r["request_key"])
            for r in self.rows
        }

    def files(self) -> set[str]:
        return {r["file"] for r in self.rows if r["file"]}


def delete_orphans(fs: pafs.FileSystem, root: str, state: TableState) -> list[str]:
    """Delete project files in the table that no manifest row names (a killed commit's)."""
    known = state.files()
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    orphans = []
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File:
            continue
        rel = posixpath.relpath(info.path, root)
        if OWNED_FILE.match(rel) and rel not in known:
            fs.delete_file(info.path)
            orphans.append(rel)
    return orphans


@dataclass
class CommitSummary:
    files_added: int
    files_removed: int
    files_rewritten: int
    orphans_removed: int


def commit_run(
    fs: pafs.FileSystem,
    root: str,
    run_id: str,
    attempts: Iterable[AttemptResult],
    *,
    overwrite: bool,
    orphans_removed: int = 0,
) -> CommitSummary:
    """Make the run's staged files the table's content (see the module docstring)."""
    attempts = list(attempts)
    committed = TableState.load(fs, root)  # as of now: the manifest this commit replaces
    state = TableState([]) if overwrite else committed
    old_files = committed.files() if overwrite else set()
    replaced = {(u.video_path, u.purpose) for a in attempts for u in a.units}
    stage_dir = posixpath.join(staging_root(root), run_id)

    # 1. Rewrite files that mix replaced units with kept ones; drop those holding only replaced.
    kept_rows, superseded, rewritten = _drop_units(fs, root, state, replaced, stage_dir, run_id)

    # 2. Rename staged files into the table.
    new_rows: list[dict] = []
    moves: list[tuple[str, str]] = []
    for src_dir, rel, staged_rows in rewritten:
        moves.append((posixpath.join(src_dir, rel), rel))
        new_rows.extend(staged_rows)
    for attempt in attempts:
        by_unit_files: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
        for staged in attempt.files:
            moves.append((posixpath.join(attempt.staging_dir, staged.relpath), staged.relpath))
            for unit_key, rows in staged.rows_by_unit.items():
                by_unit_files[unit_key].append((staged.relpath, staged.kind, rows))
        for unit in attempt.units:
            base = {
                "video_path": unit.video_path,
                "purpose": unit.purpose,
                "size": unit.key.size,
                "mtime_ns": unit.key.mtime_ns,
                "request_key": unit.key.request_key,
                "run_id": run_id,
            }
            entries = by_unit_files.get((unit.video_path, unit.purpose), [])
            if not entries:  # processed, nothing written: remember it so it is not redone
                new_rows.append({**base, "kind": None, "file": None, "rows": 0})
            for rel, kind, rows in entries:
                new_rows.append({**base, "kind": kind, "file": rel, "rows": rows})
    for src, rel in moves:
        dst = posixpath.join(root, rel)
        fs.create_dir(posixpath.dirname(dst))
        fs.move(src, dst)

    # 3. The commit point: the new manifest replaces the old one in one rename.
    _write_manifest(fs, root, run_id, kept_rows + new_rows)

    # 4. Clean up.
    removed = superseded | (old_files - {rel for _, rel in moves})
    for rel in removed:
        _delete_quietly(fs, posixpath.join(root, rel))
    fs.delete_dir_contents(stage_dir, missing_dir_ok=True)
    _delete_quietly(fs, stage_dir, directory=True)
    _delete_if_empty(fs, staging_root(root))  # other runs may be staging there right now
    with fs.open_output_stream(posixpath.join(root, SUCCESS_PATH)) as f:
        f.write(run_id.encode())
    return CommitSummary(len(moves), len(removed), len(rewritten), orphans_removed)


def _drop_units(
    fs: pafs.FileSystem,
    root: str,
    state: TableState,
    replaced: set[tuple[str, str]],
    stage_dir: str,
    run_id: str,
) -> tuple[list[dict], set[str], list[tuple[str, str, list[dict]]]]:
    """Manifest rows to keep, files to delete, and rewritten files (staged) with their rows."""
    rows_by_file: dict[str, list[dict]] = defaultdict(list)
    kept: list[dict] = []
    for row in state.rows:
        if row["file"]:
            rows_by_file[row["file"]].append(row)
        elif (row["video_path"], row["purpose"]) not in replaced:
            kept.append(row)
    superseded: set[str] = set()
    rewritten: list[tuple[str, str, list[dict]]] = []
    for rel, rows in rows_by_file.items():
        stale = [r for r in rows if (r["video_path"], r["purpose"]) in replaced]
        if not stale:
            kept.extend(rows)
            continue
        superseded.add(rel)
        fresh = [r for r in rows if (r["video_path"], r["purpose"]) not in replaced]
        if not fresh:
            continue
        new_rel = _rewrite_without(fs, root, rel, stale, stage_dir, run_id)
        rewritten.append((stage_dir, new_rel, [{**r, "file": new_rel} for r in fresh]))
    return kept, superseded, rewritten


def _rewrite_without(
    fs: pafs.FileSystem, root: str, rel: str, stale: list[dict], stage_dir: str, run_id: str
) -> str:
    with fs.open_input_file(posixpath.join(root, rel)) as f:
        table = pq.read_table(f)
    stale_keys = pa.array([f"{r['video_path']}\x00{r['purpose']}" for r in stale])
    if rel.startswith("_errors/"):
        keys = pc.binary_join_element_wise(table["video_path"], table["purpose"], "\x00")
    else:
        purpose = rel.split("/", 1)[0].split("=", 1)[1]
        keys = pc.binary_join_element_wise(table["video_path"], pa.scalar(purpose), "\x00")
    table = table.filter(pc.invert(pc.is_in(keys, value_set=stale_keys)))
    folder, name = posixpath.split(rel)
    new_rel = posixpath.join(folder, f"{name.removesuffix('.parquet')}-rw{run_id}.parquet")
    dst = posixpath.join(stage_dir, new_rel)
    fs.create_dir(posixpath.dirname(dst))
    with fs.open_output_stream(dst) as out:
        pq.write_table(table, out)
    return new_rel


def _write_manifest(fs: pafs.FileSystem, root: str, run_id: str, rows: list[dict]) -> None:
    path = posixpath.join(root, MANIFEST_PATH)
    tmp = f"{path}.{run_id}.tmp"
    fs.create_dir(posixpath.dirname(path))
    rows = sorted(rows, key=lambda r: (r["video_path"], r["purpose"], r["file"] or ""))
    with fs.open_output_stream(tmp) as out:
        pq.write_table(pa.Table.from_pylist(rows, schema=MANIFEST_SCHEMA), out)
    fs.move(tmp, path)


def _delete_quietly(fs: pafs.FileSystem, path: str, *, directory: bool = False) -> None:
    try:
        if directory:
            fs.delete_dir(path)
        else:
            fs.delete_file(path)
    except (FileNotFoundError, OSError):
        pass


def _delete_if_empty(fs: pafs.FileSystem, folder: str) -> None:
    selector = pafs.FileSelector(folder, allow_not_found=True)
    if not fs.get_file_info(selector):
        _delete_quietly(fs, folder, directory=True)
