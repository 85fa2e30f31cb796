"""Opening a video: container, video stream, and its timeline from one demux pass.

The demux pass reads packets without decoding them. It gives exact presentation times, the
video's end and the keyframes, which the planner needs before anything is decoded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

import av

from sparkframes.errors import (
    EmptyVideoError,
    NoVideoStreamError,
    VideoOpenError,
    VideoTooLargeError,
)
from sparkframes.timeline import PacketInfo, VideoTimeline

#: Default guard against headers that claim absurd sizes (about 8K x 8K).
DEFAULT_MAX_PIXELS = 8192 * 8192


@dataclass
class VideoSource:
    """An opened video: the container (positioned anywhere), its stream and its timeline."""

    path: str
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    timeline: VideoTimeline

    @property
    def codec(self) -> str:
        return self.stream.codec_context.name

    def close(self) -> None:
        self.container.close()

    def reopen(self) -> None:
        """Reopen the container at its start: the fallback when a seek lands somewhere unusable."""
        threads = self.stream.codec_context.thread_count
        self.container.close()
        self.container = open_container(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.codec_context.thread_type = "AUTO"
        self.stream.codec_context.thread_count = threads

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_container(path: str) -> av.container.InputContainer:
    """Open ``path`` with FFmpeg, turning its errors into one that names the file and cause."""
    if "://" not in path:
        if not os.path.exists(path):
            raise VideoOpenError(path, "no such file")
        if os.path.isdir(path):
            raise VideoOpenError(path, "is a directory, not a video file")
        if os.path.getsize(path) == 0:
            raise VideoOpenError(path, "file is empty (0 bytes)")
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except PermissionError as exc:
        raise VideoOpenError(path, f"permission denied ({exc.strerror})") from exc
    except (av.error.FFmpegError, OSError) as exc:
        reason = _ffmpeg_reason(exc)
        raise VideoOpenError(path, f"cannot open as a video container: {reason}") from exc


def open_video(path: str, *, threads: int = 1, max_pixels: int = DEFAULT_MAX_PIXELS) -> VideoSource:
    """Open ``path``, pick its first video stream and index its packets.

    ``threads`` is the decoder thread count (frame and slice threads); Spark passes the task's
    cpus so that decoding never oversubscribes the executor's cores.
    """
    container = open_container(path)
    try:
        if not container.streams.video:
            raise NoVideoStreamError(path, "no video stream in the file")
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise VideoTooLargeError(
                path, f"frame size {width}x{height} is above max_pixels={max_pixels}"
            )
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = max(1, int(threads))
        timeline = _index(path, container, stream)
    except BaseException:
        container.close()
        raise
    return VideoSource(path, container, stream, timeline)


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
        raise EmptyVideoError(path, "the video stream has no frame with a presentation timestamp")
    return timeline


def _ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words without the file name PyAV appends (we name the file ourselves)."""
    strerror = getattr(exc, "strerror", None)
    return strerror or str(exc)
