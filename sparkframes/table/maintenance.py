"""Keeping a frames table healthy: ``optimize`` compacts small files, ``vacuum`` deletes the
files no retained version reads. Both act on the frames, errors and state tables alike, and both
are safe beside runs: a run whose commit conflicts with them reads the new version and retries
(``delta.replace_units``), and its refresh stays exact after a compaction, since units are
found by the rows files hold, not by file names.
"""

from __future__ import annotations

from deltalake import CommitProperties, Transaction
from deltalake.exceptions import TableNotFoundError

from sparkframes.table.delta import APP_ID, ERRORS, FRAMES, STATE, TableLocation, open_table
from sparkframes.table.files import FILE_TARGET_BYTES

#: The column ``optimize --z-order`` clusters by: a video's rows end up in few files, so a
#: reader of some videos, and a refresh of one, touch less.
Z_ORDER_COLUMNS = ("video_path",)


def optimize(
    table: str | TableLocation,
    *,
    z_order: bool = False,
    target_bytes: int = FILE_TARGET_BYTES,
) -> dict[str, dict]:
    """Compact each table's small files into files of about ``target_bytes`` (with ``z_order``:
    rewrite the frames table clustered by ``video_path``). ``table`` is the frames table's path
    or URI. One commit per table that changes; the metrics delta-rs reports, per table (none
    where there is no frames table)."""
    loc = table if isinstance(table, TableLocation) else TableLocation.of(table)
    metrics: dict[str, dict] = {}
    for kind in (FRAMES, ERRORS, STATE):
        try:
            dt = open_table(loc, kind)
        except TableNotFoundError:
            continue
        commit = CommitProperties(
            custom_metadata={"sparkframes": {"command": "optimize", "z_order": z_order}},
            app_transactions=[Transaction(APP_ID, dt.version() + 1)],
        )
        if z_order and kind is FRAMES:
            metrics[kind.name] = dt.optimize.z_order(
                Z_ORDER_COLUMNS, target_size=target_bytes, commit_properties=commit
            )
        else:
            metrics[kind.name] = dt.optimize.compact(
                target_size=target_bytes, commit_properties=commit
            )
    return metrics


#: How long vacuum keeps files no version needs any more, unless told otherwise: Delta's own
#: default (``delta.deletedFileRetentionDuration``), long enough for any reader or run going on.
DEFAULT_RETENTION_HOURS = 168


def vacuum(
    loc: TableLocation, retention_hours: int = DEFAULT_RETENTION_HOURS, *, dry_run: bool = False
) -> dict[str, list[str]]:
    """Delete files that no version from the last ``retention_hours`` reads, per table: files
    superseded by later runs, and files that attempts or runs wrote and never committed (a
    killed task, a lost speculative twin, a killed driver). Earlier versions whose files are
    gone can no longer be read."""
    removed: dict[str, list[str]] = {}
    for kind in (FRAMES, ERRORS, STATE):
        try:
            dt = open_table(loc, kind)
        except TableNotFoundError:
            continue
        removed[kind.name] = dt.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
        )
    return removed
