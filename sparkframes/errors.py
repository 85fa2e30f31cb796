"""Typed errors. Each one names the file and the cause, so an error row is actionable on its own."""

from __future__ import annotations

import traceback


class FrameExtractionError(Exception):
    """Base class: something about one video (or one clip of it) could not be extracted.

    ``stage`` says where it failed (``open``, ``probe``, ``plan``, ``decode``) and ends up in the
    errors table next to the class name and message.
    """

    stage = "extract"
    #: The failure may pass by itself (a time limit, a crash, storage out of reach): the next
    #: incremental run tries the video again even though the file did not change.
    transient = False

    def __init__(self, video_path: str, cause: str, *, clip_id: str | None = None) -> None:
        self.video_path = video_path
        self.cause = cause
        self.clip_id = clip_id
        where = f"{video_path}" + (f" [clip {clip_id}]" if clip_id is not None else "")
        super().__init__(f"{where}: {cause}")

    def __reduce__(self) -> tuple:
        # Errors cross process boundaries (isolated decodes, Spark results): rebuild them from
        # their parts, not from the formatted message.
        return (_rebuild, (type(self), self.video_path, self.cause, self.clip_id))


def _rebuild(
    cls: type[FrameExtractionError], video_path: str, cause: str, clip_id: str | None
) -> FrameExtractionError:
    return cls(video_path, cause, clip_id=clip_id)


class VideoOpenError(FrameExtractionError):
    """The file is missing, unreadable, or not a container FFmpeg understands."""

    stage = "open"


class VideoFetchError(VideoOpenError):
    """A remote video could not be fetched, for a reason that may pass: its object store or
    server was out of reach or failing (5xx), a read broke off, or scratch space ran short."""

    transient = True


class ExternalReferenceError(VideoOpenError):
    """The file refers to other files or streams (a playlist, a concat list…) and reading them
    is not allowed: by default only self-contained media files are opened, and with
    ``allow_playlists`` an HLS playlist's files must lie under the playlist's own folder."""


class MissingVideoPathError(FrameExtractionError):
    """An input row has no ``video_path`` (null or empty): it gets this error row instead of
    being dropped silently. Its ``video_path`` in the errors table is empty."""

    stage = "input"

    def __init__(self, video_path: str = "", cause: str = "", *, clip_id: str | None = None):
        what = f" (clip_id {clip_id!r})" if clip_id is not None else ""
        Exception.__init__(self, f"an input row has no video_path{what}")
        self.video_path, self.cause, self.clip_id = "", cause or "no video_path", clip_id


class NoVideoStreamError(FrameExtractionError):
    """The container opened but holds no video stream (an audio-only file, say)."""

    stage = "open"


class VideoTooLargeError(FrameExtractionError):
    """The stream's declared frame size is above the configured ``max_pixels`` guard."""

    stage = "probe"


class EmptyVideoError(FrameExtractionError):
    """The stream holds no frame with a presentation timestamp."""

    stage = "probe"


class SpanError(FrameExtractionError):
    """A clip span is invalid (start >= end, negative) or holds no frame of the video."""

    stage = "plan"


class NotAVideoError(FrameExtractionError):
    """The file is a still image (or another single-picture format) with a video extension."""

    stage = "open"


class VideoTimeoutError(FrameExtractionError):
    """Extraction of this video ran past the per-video time limit and was stopped."""

    stage = "decode"
    transient = True


class DecoderCrashError(FrameExtractionError):
    """The process decoding this video died (a crash inside FFmpeg, or it was killed)."""

    stage = "decode"
    transient = True


class DecodeError(FrameExtractionError):
    """Decoding failed part-way; frames decoded before the failure are kept."""

    stage = "decode"


class InternalError(FrameExtractionError):
    """An unexpected exception (a bug, or a resource running out) while extracting one video:
    it costs that video, never the task, and its row says what and where."""

    stage = "internal"
    transient = True

    @classmethod
    def from_exception(cls, video_path: str, exc: BaseException) -> InternalError:
        where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
        at = f" at {where[0].filename}:{where[0].lineno}" if where else ""
        return cls(video_path, f"{type(exc).__name__}: {exc}{at}")
