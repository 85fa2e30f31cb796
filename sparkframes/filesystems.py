"""Which filesystem a path or URI lives on, and the state of a file there (size, mtime).

pyarrow's filesystems answer for local paths and data-lake URIs, one answer for videos and for
tables; plain HTTP(S) URLs, which FFmpeg reads itself, are asked with a HEAD request.
"""

from __future__ import annotations

import os
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import pyarrow.fs as pafs

HTTP_SCHEMES = ("http://", "https://")

#: Hadoop's names for S3 (what Spark jobs on data lakes write) that pyarrow knows only as s3.
_SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}


def resolve(path: str) -> tuple[pafs.FileSystem, str]:
    """Filesystem and path for a local path or a filesystem URI (file://, s3://, s3a://, gs://,
    hdfs://, abfs://…). Raises ``ValueError`` or ``OSError`` as pyarrow does."""
    if "://" in path:
        scheme, rest = path.split("://", 1)
        scheme = _SCHEME_ALIASES.get(scheme.lower(), scheme)
        return pafs.FileSystem.from_uri(f"{scheme}://{rest}")
    return pafs.LocalFileSystem(), os.path.abspath(path).replace(os.sep, "/")


def http_stat(url: str, timeout_s: float = 10.0) -> tuple[int, int] | None:
    """(size, mtime_ns) of the file at an HTTP(S) URL from its Content-Length and Last-Modified
    headers, or None when the server gives neither or cannot be asked."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            modified = response.headers.get("Last-Modified")
    except Exception:
        # A malformed URL, refused, timed out, a bad status line: all mean "state unknown"
        # here, and the extraction itself names the cause per video.
        return None
    size = int(length) if length is not None and length.isdigit() else -1
    try:
        mtime_ns = int(parsedate_to_datetime(modified).timestamp() * 1e9) if modified else -1
    except (TypeError, ValueError):
        mtime_ns = -1
    if size < 0 and mtime_ns < 0:
        return None
    return size, mtime_ns


#: Remote files asked about at once: each question is a network round trip.
_REMOTE_STATS_AT_ONCE = 16
UNKNOWN_STATE = (-1, -1)


def file_states(paths: list[str]) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) per path, ``UNKNOWN_STATE`` where it cannot be read (the extraction
    then records why). What an incremental run compares to decide whether a video changed.

    Local paths are listed in one ``get_file_info`` call; URIs (HTTP(S) by a HEAD request,
    the others through their pyarrow filesystem) several at a time.
    """
    out = dict.fromkeys(paths, UNKNOWN_STATE)
    local = [p for p in paths if "://" not in p]
    if local:
        infos = pafs.LocalFileSystem().get_file_info([resolve(p)[1] for p in local])
        out.update(zip(local, map(_state, infos), strict=True))
    remote = [p for p in paths if "://" in p]
    if remote:
        with ThreadPoolExecutor(min(_REMOTE_STATS_AT_ONCE, len(remote))) as pool:
            out.update(zip(remote, pool.map(_remote_state, remote), strict=True))
    return out


def _remote_state(path: str) -> tuple[int, int]:
    if path.lower().startswith(HTTP_SCHEMES):
        return http_stat(path) or UNKNOWN_STATE
    try:
        fs, resolved = resolve(path)
        return _state(fs.get_file_info(resolved))
    except (OSError, ValueError):
        return UNKNOWN_STATE


def _state(info: pafs.FileInfo) -> tuple[int, int]:
    if info.type != pafs.FileType.File:
        return UNKNOWN_STATE
    mtime = info.mtime_ns if info.mtime_ns is not None else -1
    return int(info.size or 0), int(mtime)
