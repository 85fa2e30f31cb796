"""Videos on filesystems FFmpeg cannot read itself (s3://, gs://, hdfs://, abfs://…).

FFmpeg opens local files and a few network protocols (http, https, ftp…) on its own. Data lakes
keep videos behind filesystem URIs instead, which pyarrow's filesystems read (the same ones the
output table is written through). Such a video is copied whole into local scratch space and
decoded from there, because every extraction reads the whole file anyway: the index pass reads
every packet before decoding, so a streamed remote file would be read twice, and with many small
random reads. One sequential download reads it once.

Scratch space is ``$SPARKFRAMES_SCRATCH_DIR``, else the executor's first local directory as
Spark sets it (``$SPARK_LOCAL_DIRS`` on standalone and Kubernetes, ``$LOCAL_DIRS`` on YARN),
else the system temporary directory. A copy lives as long as its ``VideoSource`` and is deleted
on close; one left by a killed worker goes with the application's local directories, which
the cluster manager removes when the application ends.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import tempfile
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from sparkframes.errors import VideoFetchError, VideoOpenError
from sparkframes.filesystems import resolve

#: URI schemes FFmpeg's own protocols read; a video there is opened by FFmpeg directly.
FFMPEG_SCHEMES = frozenset(
    {"file", "http", "https", "ftp", "rtmp", "rtmps", "rtsp", "srt", "tcp", "udp", "data"}
)
#: Space left free on the scratch disk after a copy, so one video never fills it.
SCRATCH_HEADROOM_BYTES = 256 << 20
_CHUNK_BYTES = 8 << 20


def needs_local_copy(path: str) -> bool:
    """True for a URI whose scheme FFmpeg has no protocol for (s3, gs, hdfs, abfs…)."""
    if "://" not in path:
        return False
    return urlsplit(path).scheme.lower() not in FFMPEG_SCHEMES


def scratch_dir() -> str:
    """Where local copies go: see the module docstring."""
    chosen = os.environ.get("SPARKFRAMES_SCRATCH_DIR")
    if chosen:
        return chosen
    for variable in ("SPARK_LOCAL_DIRS", "LOCAL_DIRS"):
        first = os.environ.get(variable, "").split(",")[0].strip()
        if first:
            return first
    return tempfile.gettempdir()


def fetch_local_copy(path: str, scratch: str | None = None) -> str:
    """Copy the video at URI ``path`` into scratch space and return the copy's local path.

    The caller owns the copy and deletes it. Every failure raises ``VideoOpenError`` naming
    ``path``: no filesystem for the scheme, no such object, empty; or its subclass
    ``VideoFetchError`` for what may pass (store out of reach, a read failing part-way, scratch
    space short or unusable). No partial copy is left behind.
    """
    scheme = urlsplit(path).scheme
    try:
        fs, key = resolve(path)
    except ValueError as exc:  # pyarrow's ArrowInvalid: a scheme it has no filesystem for
        raise VideoOpenError(
            path,
            f"no filesystem for '{scheme}://' ({_first_line(exc)}); pyarrow reads s3, "
            "gs, hdfs and abfs",
        ) from exc
    except OSError as exc:  # the filesystem is known but cannot start (libhdfs, credentials)
        raise VideoFetchError(path, f"cannot reach its filesystem: {_first_line(exc)}") from exc
    try:
        info = fs.get_file_info(key)
    except OSError as exc:
        raise VideoFetchError(path, f"cannot stat: {_first_line(exc)}") from exc
    if info.type == pafs.FileType.NotFound:
        raise VideoOpenError(path, "no such file")
    if info.type != pafs.FileType.File:
        raise VideoOpenError(path, "is a directory, not a video file")
    size = int(info.size or 0)
    if size == 0:
        raise VideoOpenError(path, "file is empty (0 bytes)")

    scratch = scratch or scratch_dir()
    # The extension helps FFmpeg's probe with formats that have no magic bytes (raw streams).
    suffix = posixpath.splitext(key)[1][:16]
    try:
        os.makedirs(scratch, exist_ok=True)
        free = shutil.disk_usage(scratch).free
        if size + SCRATCH_HEADROOM_BYTES > free:
            raise VideoFetchError(
                path,
                f"needs {size / 2**20:.0f} MiB of scratch space to be decoded, "
                f"{free / 2**20:.0f} MiB free in {scratch} (set SPARKFRAMES_SCRATCH_DIR)",
            )
        handle, local = tempfile.mkstemp(prefix="sparkframes-", suffix=suffix, dir=scratch)
    except OSError as exc:
        raise VideoFetchError(path, f"cannot use scratch space {scratch}: {exc}") from exc
    try:
        with os.fdopen(handle, "wb") as out, fs.open_input_stream(key) as src:
            shutil.copyfileobj(src, out, _CHUNK_BYTES)
        copied = os.path.getsize(local)
        if copied != size:
            raise OSError(f"read {copied} of its {size} bytes")
    except BaseException as exc:
        os.unlink(local)
        if isinstance(exc, OSError):
            raise VideoFetchError(path, f"cannot read: {_first_line(exc)}") from exc
        raise
    return local


def remove_local_copy(local_copy: str | None) -> None:
    """Delete a copy made by ``fetch_local_copy`` (None: nothing to do)."""
    if local_copy is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(local_copy)


def _first_line(exc: BaseException) -> str:
    """pyarrow's messages can run to pages (libhdfs lists every JVM path it tried)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
