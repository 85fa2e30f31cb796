"""Typed errors. Each one names the file and the cause, so an error row is actionable on its own."""

from __future__ import annotations


class FrameExtractionError(Exception):
    """Base class: something about one video (or one clip of it) could not be extracted.

    ``stage`` says where it failed (``open``, ``probe``, ``plan``, ``decode``) and ends up in the
    errors table next to the class name and message.
    """

    stage = "extract"

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


class DecoderCrashError(FrameExtractionError):
    """The process decoding this video died (a crash inside FFmpeg, or it was killed)."""

    stage = "decode"


class DecodeError(FrameExtractionError):
    """Decoding failed part-way; frames decoded before the failure are kept."""

    stage = "decode"
