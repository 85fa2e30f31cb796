"""Tables written by sparkframes 0.1 (Parquet files plus our own manifest, before Delta Lake).

They are refused with the fix, and ``--mode overwrite`` removes what that format left (the
files its manifest names, the manifest, ``_SUCCESS``) before writing the table anew.
"""

from __future__ import annotations

import contextlib
import posixpath

import pyarrow.parquet as pq
from pyarrow import fs as pafs

#: Where sparkframes 0.1 kept its committed state, relative to the table.
LEGACY_MANIFEST = "_sparkframes/manifest.parquet"
_LEGACY_MARKERS = ("_sparkframes", "_SUCCESS")


def _is_legacy(fs: pafs.FileSystem, root: str) -> bool:
    info = fs.get_file_info(
        [posixpath.join(root, LEGACY_MANIFEST), posixpath.join(root, "_delta_log")]
    )
    return info[0].type == pafs.FileType.File and info[1].type == pafs.FileType.NotFound


def legacy_problem(loc) -> str | None:
    """Why the folder at ``loc`` cannot be used as is, if it holds a sparkframes 0.1 table."""
    try:
        legacy = _is_legacy(loc.fs, loc.root)
    except OSError:
        return None
    if not legacy:
        return None
    return (
        f"{loc.output}: written by sparkframes 0.1 (Parquet files and a manifest, not a Delta "
        "table); run once with --mode overwrite to extract it again as a Delta table"
    )


def remove_legacy_files(loc) -> int:
    """Delete a sparkframes 0.1 table's files (those its manifest names and its markers);
    returns how many files went. Nothing else in the folder is touched."""
    if not _is_legacy(loc.fs, loc.root):
        return 0
    with loc.fs.open_input_file(posixpath.join(loc.root, LEGACY_MANIFEST)) as f:
        files = {p for p in pq.read_table(f, columns=["file"])["file"].to_pylist() if p}
    for rel in sorted(files):
        with contextlib.suppress(FileNotFoundError, OSError):
            loc.fs.delete_file(posixpath.join(loc.root, rel))
    for marker in _LEGACY_MARKERS:
        path = posixpath.join(loc.root, marker)
        with contextlib.suppress(FileNotFoundError, OSError):
            if loc.fs.get_file_info(path).type == pafs.FileType.Directory:
                loc.fs.delete_dir(path)
            else:
                loc.fs.delete_file(path)
    return len(files)
