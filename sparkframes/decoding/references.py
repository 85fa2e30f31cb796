"""Formats whose content points at other files, and how a video is kept to its own bytes.

Why: FFmpeg follows pointers inside some formats. An HLS playlist names its segments (any local
path or URL), a concat list its entries, an MLV video makes FFmpeg read the ``.M00``-``.M99``
files beside it, a VobSub index the ``.sub`` file, an SDP file the network streams it lists.
Videos in a lake come from many hands, and a small text file must not make an executor read
another tenant's videos.

By default a video is opened only by a demuxer that reads nothing but the file itself: FFmpeg's
``format_whitelist`` lists every demuxer of this build except ``REFERENCING`` and ``DEVICES``.
FFmpeg checks it after probing the file's first bytes and before the demuxer reads its header,
so the pointers of a refused file are never followed. Two demuxers on the list can reach other
files through options, which are pinned off: ``image2`` (``pattern_type=none``: a ``%03d`` or
``*`` in a file name is not a pattern of other files) and ``mov`` (``enable_drefs=0``: a track
whose samples live in another file reads as empty).

With ``allow_playlists`` an HLS playlist is opened with ``PlaylistFiles`` as PyAV's ``io_open``:
FFmpeg then opens every file of the playlist through it (the playlist, variant playlists, init
sections, segments, keys; the demuxers of the segments may open nothing at all), and it serves
only regular files under the playlist's own folder, on the playlist's own filesystem or bucket.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
from typing import BinaryIO

import av
import pyarrow.fs as pafs

from sparkframes.errors import ExternalReferenceError, VideoFetchError, VideoOpenError

#: The demuxers of this FFmpeg build that read other files or streams than the one opened, with
#: what they read (found by opening crafted files; tests/test_untrusted_inputs.py).
REFERENCING: dict[str, str] = {
    "hls": "an HLS playlist (its segments are other files or URLs)",
    "concat": "an FFmpeg concat list (its entries are other files)",
    "mlv": "a Magic Lantern video (FFmpeg also reads the .M00-.M99 files beside it)",
    "vobsub": "a VobSub subtitle index (FFmpeg also reads the .sub file beside it)",
    "sdp": "an SDP session description (FFmpeg opens the network streams it lists)",
}
#: What ``allow_playlists`` opens. Not concat: FFmpeg opens each entry in a demuxer of its own
#: that does not use ``io_open``, so an entry inside the folder (an HLS playlist, say) could
#: reach out of it unseen. Not the others: they are no playlists.
PLAYLISTS = frozenset({"hls"})
#: Capture devices, and libavfilter's ``lavfi`` (whose movie source opens any file): FFmpeg uses
#: them only when told to, never for a probed file; they are left off the list all the same.
DEVICES = frozenset({"alsa", "fbdev", "kmsgrab", "lavfi", "oss", "video4linux2", "v4l2", "x11grab"})

#: What is read of a refused file to name its format.
_HEAD_BYTES = 4096
_AVIO_FLAG_WRITE = 2
_URL_SHOWN = 200


@functools.cache
def self_contained_demuxers() -> str:
    """``format_whitelist``: every input format of this build but the refused ones."""
    refused = REFERENCING.keys() | DEVICES
    names = [
        name
        for name in sorted(av.formats_available)
        # A demuxer may have several names ("mov,mp4,m4a,3gp,3g2,mj2"); FFmpeg matches any.
        if av.ContainerFormat(name).is_input and not set(name.split(",")) & refused
    ]
    return ",".join(names)


def open_options(local: bool, *, playlist: bool = False) -> dict[str, str]:
    """FFmpeg format options that keep a video to its own bytes (``playlist``: HLS allowed,
    for an open through ``PlaylistFiles``). ``local``: the file is read from local disk."""
    whitelist = self_contained_demuxers() + (",hls" if playlist else "")
    options = {"format_whitelist": whitelist, "pattern_type": "none", "enable_drefs": "0"}
    if local:
        # Nothing a local file says may switch to another protocol (FFmpeg's own default for
        # files also lets crypto: and data: through).
        options["protocol_whitelist"] = "file"
    return options


def local_path(url: str) -> str | None:
    """The local file a path or ``file:`` URL names, as FFmpeg's file protocol opens it; None
    for any other URL."""
    if url.startswith("file:"):
        return url[len("file:") :] or None
    return None if "://" in url else url


def refused_format(target: str) -> str | None:
    """Which of ``REFERENCING`` the file at ``target`` is, or None, to name it in the error.

    FFmpeg's probe decides what is refused (``format_whitelist``); this reads the first bytes
    and looks for the signatures those demuxers' probes look for, only to say what it was.
    """
    head = _head(target)
    if head.startswith(b"#EXTM3U"):
        return "hls"
    if head.startswith(b"ffconcat version 1.0"):
        return "concat"
    if head[:4] == b"MLVI" and head[8:12] == b"v2.0":
        return "mlv"
    if head.startswith(b"# VobSub index file, v"):
        return "vobsub"
    if re.search(rb"(?m)^c=IN IP", head):
        return "sdp"
    return None


def _head(target: str) -> bytes:
    local = local_path(target)
    try:
        if local is not None:
            with open(local, "rb") as f:
                return f.read(_HEAD_BYTES)
        # A URL FFmpeg reads itself: the same bytes through FFmpeg's raw "data" demuxer, which
        # follows nothing.
        head = b""
        with av.open(target, format="data", timeout=30) as container:
            for packet in container.demux():
                head += bytes(packet)
                if len(head) >= _HEAD_BYTES:
                    break
        return head
    except (OSError, av.error.FFmpegError):
        return b""


def refusal(video_format: str, allow_playlists: bool, path: str) -> str:
    """The error message for a refused ``video_format`` (one of ``REFERENCING``)."""
    what = REFERENCING[video_format]
    if video_format not in PLAYLISTS:
        return (
            f"is {what}; formats that refer to other files are not opened "
            "(--allow-playlists covers HLS playlists only)"
        )
    if allow_playlists:  # only a URL FFmpeg reads itself gets here
        scheme = path.split("://", 1)[0]
        return (
            f"is {what}, read over {scheme}://; --allow-playlists opens playlists on local and "
            "object-store filesystems only, where their files can be kept to the playlist's folder"
        )
    return (
        f"is {what}; only self-contained media files are opened. To decode it, allow playlists "
        "(--allow-playlists, config key allow-playlists, ExtractOptions(allow_playlists=True)): "
        "its files are then read only from under its own folder"
    )


class PlaylistFiles:
    """PyAV's ``io_open`` for an HLS playlist opened under ``allow_playlists``.

    ``opened`` is the local file FFmpeg opens first: the playlist ``name``, or its local copy
    when ``origin`` (filesystem, path) says it was fetched from an object store; the copy's
    folder then stands for the playlist's folder there, from which the other files are read.
    Every other file must be a regular file under that folder. A refusal raises
    ``ExternalReferenceError`` naming ``name``; PyAV hands an exception raised here on to
    whoever opened or demuxed the container.
    """

    def __init__(
        self, name: str, opened: str, origin: tuple[pafs.FileSystem, str] | None = None
    ) -> None:
        self.name = name
        self.opened = os.path.abspath(opened)
        self.origin = origin
        if origin is None:
            self.folder = os.path.dirname(os.path.realpath(self.opened))
            self.shown_folder = self.folder
        else:
            # Lexical: the files are not in the scratch folder, only named relative to it.
            self.folder = os.path.dirname(self.opened)
            self.shown_folder = posixpath.dirname(name)

    def __call__(self, url: str, flags: int, options: dict[str, str]) -> BinaryIO:
        if flags & _AVIO_FLAG_WRITE:
            raise self._refuse(url, "to write it")
        path = url[len("file:") :] if url.startswith("file:") else url
        if url.startswith("crypto"):
            # FFmpeg's AES-128 decryption is a protocol, which io_open would have to replace.
            raise self._refuse(url, "an encrypted segment, which is not read")
        if not path.startswith("/"):
            # http(s)://, data:, a path relative to the working folder.
            raise self._refuse(url, "which is not a file on the playlist's filesystem")
        if self.origin is None:
            return self._open_local(url, path)
        return self._open_remote(url, os.path.normpath(path))

    def _open_local(self, url: str, path: str) -> BinaryIO:
        real = os.path.realpath(path)  # "..", and symbolic links pointing out, resolved
        if not _within(real, self.folder):
            raise self._refuse(url, "outside the playlist's folder")
        if not os.path.isfile(real):
            cause = "no such file" if not os.path.exists(real) else "not a regular file"
            raise VideoOpenError(self.name, f"refers to {_shown(url)}: {cause}")
        try:
            return open(real, "rb")
        except OSError as exc:
            raise VideoOpenError(
                self.name, f"cannot read {_shown(url)}, which it refers to: {exc.strerror}"
            ) from exc

    def _open_remote(self, url: str, path: str) -> BinaryIO:
        if path == self.opened:
            return open(path, "rb")
        assert self.origin is not None
        fs, key = self.origin
        relative = os.path.relpath(path, self.folder).replace(os.sep, "/")
        shown = posixpath.join(self.shown_folder, relative)  # where it is on the store
        if not _within(path, self.folder):
            raise self._refuse(shown, "outside the playlist's folder")
        other = posixpath.join(posixpath.dirname(key), relative)
        try:
            info = fs.get_file_info(other)
            if info.type != pafs.FileType.File:
                raise VideoOpenError(self.name, f"refers to {shown}: no such file")
            return fs.open_input_file(other)
        except OSError as exc:
            raise VideoFetchError(
                self.name, f"cannot read {shown}, which it refers to: {exc}"
            ) from exc

    def _refuse(self, url: str, why: str) -> ExternalReferenceError:
        return ExternalReferenceError(
            self.name,
            f"refers to {_shown(url)}, {why}; a playlist allowed by --allow-playlists may "
            f"refer only to regular files under its own folder {self.shown_folder}",
        )


def _within(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder


def _shown(url: str) -> str:
    return url if len(url) <= _URL_SHOWN else url[:_URL_SHOWN] + "…"
