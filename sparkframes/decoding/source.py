"""Opening a video: container, video stream, and its timeline from one demux pass.

The demux pass reads packets without decoding them. It gives exact presentation times, the
video's end and the keyframes, which the planner needs before anything is decoded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av
from av.codec.hwaccel import HWAccel

from sparkframes.decoding.protocol import DecoderRefusedError
from sparkframes.decoding.references import (
    PLAYLISTS,
    PlaylistFiles,
    local_path,
    open_options,
    refusal,
    refused_format,
)
from sparkframes.decoding.remote import fetch_local_copy, needs_local_copy, remove_local_copy
from sparkframes.errors import (
    EmptyVideoError,
    ExternalReferenceError,
    NotAVideoError,
    NoVideoStreamError,
    VideoFetchError,
    VideoOpenError,
    VideoTooLargeError,
)
from sparkframes.filesystems import resolve
from sparkframes.sampling.timeline import PacketInfo, VideoTimeline

#: Default guard against headers that claim absurd sizes (about 8K x 8K).
DEFAULT_MAX_PIXELS = 8192 * 8192
#: Decoder threads when FFmpeg decodes on the GPU (``hwaccel``). FFmpeg's NVDEC path adds a
#: decode surface per frame thread on top of the stream's reference frames, and NVDEC takes at
#: most 32, so the task's cpus as threads (up to 16 on a GPU node) would make the decoder fail
#: and send every video back to the CPU. The GPU does the decoding; one thread feeds it, and the
#: task's other cpus convert frames meanwhile (``prefetch.overlapped``).
HWACCEL_THREADS = 1
#: FFmpeg's ``skip_loop_filter`` levels (AVDiscard names), least to most skipped. Skipping the
#: H.264/HEVC deblocking filter makes CPU decoding cheaper and changes pixels slightly; which
#: frames are output, and their timestamps, do not change. Other codecs ignore it.
#: No skipping: the default, exact pixels.
NO_LOOP_FILTER_SKIP = "none"
LOOP_FILTER_SKIPS = (NO_LOOP_FILTER_SKIP, "noref", "bidir", "nokey", "all")


#: What FFmpeg's network protocols (http, https…) raise for a server that is down, slow or
#: failing right now; a 404 or 403 is not among them.
_NETWORK_FAILURES_THAT_MAY_PASS = (ConnectionError, TimeoutError, av.error.HTTPServerError)


class HardwareOpenError(DecoderRefusedError):
    """Opening with a hardware decoder failed (no device, driver refused, no CUDA decoder for
    the codec): not the file's fault, so the CPU may take it."""


@dataclass
class VideoSource:
    """An opened video: the container (positioned anywhere), its stream and its timeline.

    ``path`` is the video as given (errors name it); ``local_copy`` the scratch copy FFmpeg reads
    when ``path`` is on a filesystem FFmpeg cannot read itself (``remote.py``), deleted on close
    when ``owns_copy``. ``allow_playlists``: an HLS playlist may be opened (``references.py``).
    """

    path: str
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    timeline: VideoTimeline | None
    hwaccel: HWAccel | None = None
    skip_loop_filter: str = NO_LOOP_FILTER_SKIP
    local_copy: str | None = None
    owns_copy: bool = False
    allow_playlists: bool = False

    @property
    def codec(self) -> str:
        return self.stream.codec_context.name

    @property
    def is_playlist(self) -> bool:
        """Opened as a playlist: its files are read through the folder check of
        ``references.PlaylistFiles``, which another reader of ``readable_path`` would skip."""
        return self.container.format.name in PLAYLISTS

    @property
    def readable_path(self) -> str:
        """What another reader of the file (NVDEC) should open: the local copy, if any."""
        return self.local_copy or self.path

    def close(self) -> None:
        self.container.close()
        if self.owns_copy:
            remove_local_copy(self.local_copy)

    def reopen(self) -> None:
        """Reopen the container at its start: the fallback when a seek lands somewhere unusable."""
        context = self.stream.codec_context
        threads, thread_type = context.thread_count, context.thread_type
        self.container.close()
        self.container = open_container(
            self.path,
            self.hwaccel,
            read_from=self.local_copy,
            allow_playlists=self.allow_playlists,
        )
        self.stream = self.container.streams.video[0]
        # As the caller had set them.
        _configure_decoder(self.stream, threads, thread_type, self.skip_loop_filter)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_container(
    path: str,
    hwaccel: HWAccel | None = None,
    *,
    read_from: str | None = None,
    allow_playlists: bool = False,
) -> av.container.InputContainer:
    """Open ``path`` with FFmpeg, turning its errors into one that names the file and cause.

    ``hwaccel`` decodes on a device (FFmpeg's CUDA hwaccel for ``ffmpeg_gpu``); frames are
    downloaded to system memory as they are decoded. ``read_from`` is a local copy of ``path``
    to open instead (errors still name ``path``).

    Only self-contained formats are opened; one that refers to other files (a playlist, a
    concat list, ``references.REFERENCING``) raises ``ExternalReferenceError``, except an HLS
    playlist under ``allow_playlists``, whose files are then kept to its folder.
    """
    if read_from is None and "://" not in path:
        if not os.path.exists(path):
            raise VideoOpenError(path, "no such file")
        if os.path.isdir(path):
            raise VideoOpenError(path, "is a directory, not a video file")
        if not os.path.isfile(path):
            raise VideoOpenError(path, "is not a regular file (a pipe or device?)")
        if not os.access(path, os.R_OK):
            raise VideoOpenError(path, "permission denied (the file is not readable)")
        if os.path.getsize(path) == 0:
            raise VideoOpenError(path, "file is empty (0 bytes)")
    target = read_from or path
    local = local_path(target)
    try:
        return _open(target, hwaccel, name=path, options=open_options(local is not None))
    except (VideoOpenError, HardwareOpenError) as exc:
        # EINVAL before any demuxer read the file is FFmpeg refusing the format it probed (or
        # a demuxer on the list refusing its header so: refused_format tells them apart).
        if not isinstance(exc.__cause__, av.error.ArgumentError):
            raise
        refused = exc
    video_format = refused_format(target)
    if video_format is None:
        raise refused
    files = _playlist_files(path, read_from, local) if allow_playlists else None
    if video_format not in PLAYLISTS or files is None:
        raise ExternalReferenceError(path, refusal(video_format, allow_playlists, path))
    options = open_options(True, playlist=True)
    return _open(files.opened, hwaccel, name=path, options=options, io_open=files)


def _playlist_files(path: str, read_from: str | None, local: str | None) -> PlaylistFiles | None:
    """What serves the files of the playlist ``path`` (read from the local file ``local``),
    or None where they cannot be kept to its folder: a URL FFmpeg reads itself, or a local copy
    whose store cannot be reached again."""
    if local is None:
        return None
    if read_from is None:
        return PlaylistFiles(path, local)
    try:
        origin = resolve(path)
    except (ValueError, OSError):
        return None
    return PlaylistFiles(path, local, origin)


def _open(
    target: str,
    hwaccel: HWAccel | None,
    *,
    name: str,
    options: dict[str, str],
    io_open: PlaylistFiles | None = None,
) -> av.container.InputContainer:
    kwargs = {"container_options": options, "io_open": io_open}
    if hwaccel is not None:
        try:
            return av.open(target, mode="r", metadata_errors="ignore", hwaccel=hwaccel, **kwargs)
        except (av.error.FFmpegError, OSError) as exc:
            # The device, not the file, may be at fault: a distinct error lets the caller fall
            # back to the CPU, which then names any fault of the file itself.
            raise HardwareOpenError(f"{name}: cannot open with hwaccel: {exc}") from exc
    try:
        return av.open(target, mode="r", metadata_errors="ignore", **kwargs)
    except PermissionError as exc:
        raise VideoOpenError(name, f"permission denied ({exc.strerror})") from exc
    except (av.error.FFmpegError, OSError) as exc:
        reason = _ffmpeg_reason(exc)
        if "://" in name and isinstance(exc, _NETWORK_FAILURES_THAT_MAY_PASS):
            raise VideoFetchError(name, f"cannot reach it: {reason}") from exc
        raise VideoOpenError(name, f"cannot open as a video container: {reason}") from exc


def open_video(
    path: str,
    *,
    threads: int = 1,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    hwaccel: HWAccel | None = None,
    index: bool = True,
    skip_loop_filter: str = NO_LOOP_FILTER_SKIP,
    local_copy: str | None = None,
    allow_playlists: bool = False,
) -> VideoSource:
    """Open ``path``, pick its first video stream and (``index=True``) index its packets.

    Without the index the source can only be decoded front to back (``PyAVDecoder.all_frames``)
    and its memory use does not grow with the video's length.

    ``threads`` is the decoder thread count (frame and slice threads); Spark passes the task's
    cpus so that decoding never oversubscribes the executor's cores. With ``hwaccel`` the
    decoder runs ``HWACCEL_THREADS`` instead (see there). ``skip_loop_filter`` is one of
    ``LOOP_FILTER_SKIPS`` (opt-in speed for pixels, see there).

    A ``path`` on a filesystem FFmpeg cannot read (s3://, gs://, hdfs://…) is read from
    ``local_copy`` when the caller fetched one (``remote.fetch_local_copy``), else fetched here
    and deleted when the source closes.

    ``allow_playlists`` opens an HLS playlist too, reading its files only from under its own
    folder (``references.py``); without it a playlist raises ``ExternalReferenceError``.
    """
    if skip_loop_filter not in LOOP_FILTER_SKIPS:
        raise ValueError(f"skip_loop_filter must be one of {LOOP_FILTER_SKIPS}")
    owns_copy = local_copy is None and needs_local_copy(path)
    if owns_copy:
        local_copy = fetch_local_copy(path)
    try:
        container = open_container(
            path, hwaccel, read_from=local_copy, allow_playlists=allow_playlists
        )
    except BaseException:
        if owns_copy:
            remove_local_copy(local_copy)
        raise
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise NoVideoStreamError(path, f"no video stream in the file (streams: {kinds})")
        if _is_still_image(container):
            raise NotAVideoError(path, f"is a still image ({container.format.name}), not a video")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise VideoTooLargeError(
                path, f"frame size {width}x{height} is above max_pixels={max_pixels}"
            )
        if hwaccel is not None and not stream.codec_context.is_hwaccel:
            # PyAV leaves a codec without a CUDA decoder on the CPU without saying so.
            raise HardwareOpenError(
                f"{path}: FFmpeg has no hardware decoder for {stream.codec_context.name}"
            )
        _configure_decoder(stream, decode_threads(threads, hwaccel), "AUTO", skip_loop_filter)
        timeline = _index(path, container, stream) if index else None
    except BaseException:
        container.close()
        if owns_copy:
            remove_local_copy(local_copy)
        raise
    return VideoSource(
        path,
        container,
        stream,
        timeline,
        hwaccel,
        skip_loop_filter,
        local_copy,
        owns_copy,
        allow_playlists,
    )


def decode_threads(threads: int, hwaccel: HWAccel | None) -> int:
    """The decoder's thread count: the caller's on the CPU, ``HWACCEL_THREADS`` on a device."""
    threads = max(1, int(threads))
    return threads if hwaccel is None else min(threads, HWACCEL_THREADS)


def _index(
    path: str, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> VideoTimeline:
    packets: list[PacketInfo] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            packets.append(
                PacketInfo(
                    pts=packet.pts,
                    dts=packet.dts,
                    duration=packet.duration or 0,
                    is_keyframe=packet.is_keyframe,
                    is_discard=packet.is_discard,
                )
            )
    except av.error.FFmpegError as exc:
        # A damaged tail: keep what was indexed; the decoder reports the damage by time.
        if not packets:
            raise VideoOpenError(path, f"cannot read packets: {_ffmpeg_reason(exc)}") from exc
    if stream.time_base is None:
        raise VideoOpenError(path, "video stream has no time base")
    timeline = VideoTimeline(Fraction(stream.time_base), packets)
    if len(timeline) == 0:
        raise EmptyVideoError(path, _no_pts_reason(len(packets)))
    return timeline


def _no_pts_reason(packets: int) -> str:
    if packets == 0:
        return "the video stream has no frame with a presentation timestamp"
    # Raw elementary streams (.h264, .hevc) have no container to carry timestamps.
    return (
        f"none of its {packets} packets has a presentation timestamp (a raw elementary stream "
        "such as .h264?); remux it into a container: ffmpeg -i IN -c copy OUT.mp4"
    )


def _is_still_image(container: av.container.InputContainer) -> bool:
    """FFmpeg reads image files with its ``image2`` or ``<codec>_pipe`` demuxers (png_pipe,
    jpeg_pipe, …): a still picture with a video extension. Animated GIF/WebP stay videos."""
    name = container.format.name
    return name == "image2" or name.endswith("_pipe")


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words without the file name PyAV appends (we name the file ourselves)."""
    strerror = getattr(exc, "strerror", None)
    return strerror or str(exc)


def _configure_decoder(
    stream: av.video.stream.VideoStream, threads: int, thread_type: str, skip_loop_filter: str
) -> None:
    """Threads (frame and slice by default; the count is the Spark task's cpus) and the loop
    filter skip, set before the codec opens at its first packet."""
    context = stream.codec_context
    context.thread_type = thread_type
    context.thread_count = max(1, int(threads))
    if skip_loop_filter != NO_LOOP_FILTER_SKIP:
        context.options = {**context.options, "skip_loop_filter": skip_loop_filter}


def scan_extent(source: VideoSource) -> tuple[int, int, int]:
    """(first pts, end pts, frame count) from one demux pass in constant memory.

    The end is the last-presented frame's pts plus its duration (or the last interval), as the
    timeline defines it; the container is reopened at its start afterwards.
    """
    first: int | None = None
    last = previous = None
    last_duration = 0
    count = packets = 0
    try:
        for packet in source.container.demux(source.stream):
            packets += packet.size > 0
            if packet.size == 0 or packet.pts is None or packet.is_discard:
                continue
            count += 1
            first = packet.pts if first is None else min(first, packet.pts)
            if last is None or packet.pts > last:
                previous, last, last_duration = last, packet.pts, packet.duration or 0
            elif previous is None or packet.pts > previous:
                previous = packet.pts
    except av.error.FFmpegError:
        pass  # a damaged tail: the decoder reports it by time
    if first is None or last is None:
        raise EmptyVideoError(source.path, _no_pts_reason(packets))
    if last_duration <= 0:
        last_duration = last - previous if previous is not None else 0
    source.reopen()
    return first, last + last_duration, count
