"""Which filesystem a path or URI lives on, and the state of a file there (size, mtime).

pyarrow's filesystems answer for local paths and data-lake URIs, one answer for videos, tables
and staging; plain HTTP(S) URLs, which FFmpeg reads itself, are asked with a HEAD request.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
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
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            length = response.headers.get("Content-Length")
            modified = response.headers.get("Last-Modified")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    size = int(length) if length is not None and length.isdigit() else -1
    try:
        mtime_ns = int(parsedate_to_datetime(modified).timestamp() * 1e9) if modified else -1
    except (TypeError, ValueError):
        mtime_ns = -1
    if size < 0 and mtime_ns < 0:
        return None
    return size, mtime_ns
