"""Which pyarrow filesystem a path or URI lives on: one answer for videos, tables and staging."""

from __future__ import annotations

import os

import pyarrow.fs as pafs

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
