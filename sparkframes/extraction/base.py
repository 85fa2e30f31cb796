"""What clip-frame and video-frame extraction share: output rows, options, the per-video report,
bounded batches, and the GPU-to-CPU decoder fallback. No Spark here."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from sparkframes.convert.resize import DEFAULT_RESIZE_FILTER
from sparkframes.decoding.backends import (
    CPU,
    DecoderChoice,
    DecoderUnavailableError,
    warn_fallback,
)
from sparkframes.decoding.protocol import DecoderRefusedError, DecodeStats
from sparkframes.decoding.remote import fetch_local_copy, needs_local_copy, remove_local_copy
from sparkframes.decoding.source import DEFAULT_MAX_PIXELS
from sparkframes.errors import FrameExtractionError
from sparkframes.table.encodings import FrameEncoding

#: Frames are handed out in batches of about this many bytes of pixels, so memory stays bounded
#: whatever the video's length (and Spark's Arrow batches stay far below their 2 GB limit).
DEFAULT_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class ExtractedFrame:
    """One output row: a frame and everything that says where it came from."""

    video_path: str
    clip_id: str
    clip_start_s: Fraction
    clip_end_s: Fraction
    purpose: str
    policy: str
    target_fps: Fraction | None
    frame_index: int
    pts_s: Fraction
    image: np.ndarray  # (H, W, 3) uint8 RGB, as a player shows it


@dataclass
class ExtractionReport:
    """How one video went: counts for the run summary and the errors to record."""

    video_path: str
    clips: int = 0
    frames_output: int = 0
    errors: list[FrameExtractionError] = field(default_factory=list)
    decode: DecodeStats = field(default_factory=DecodeStats)
    seconds: float = 0.0
    decoder: str = CPU


@dataclass
class ExtractOptions:
    """How to decode: decoder (mode, GPU), threads (= the Spark task's cpus), limits, batches."""

    threads: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    batch_bytes: int = DEFAULT_BATCH_BYTES
    skip_unneeded: bool = True
    decoder: DecoderChoice = field(default_factory=lambda: DecoderChoice(CPU, CPU))
    no_fallback: bool = False
    batch_size: int = 64  # frames per NVDEC batch (pynvc)
    #: Opt-in: skip H.264/HEVC deblocking on the CPU decoder (one of ``LOOP_FILTER_SKIPS``);
    #: cheaper decoding, slightly different pixels, the same frames and timestamps.
    skip_loop_filter: str = "none"
    #: The scaler (``resize.RESIZE_FILTERS``): bicubic as the FFmpeg CLI, or the cheaper area.
    resize_filter: str = DEFAULT_RESIZE_FILTER
    #: How the frames are stored when they become Arrow batches (raw, JPEG, PNG).
    frame_encoding: FrameEncoding = field(default_factory=FrameEncoding)
    #: Opt-in: open HLS playlists, reading their files only from under the playlist's folder;
    #: without it a video that refers to other files is an ``ExternalReferenceError``.
    allow_playlists: bool = False


class Batcher:
    """Collects rows and hands them out in batches of about ``max_bytes`` of pixels."""

    def __init__(self, max_bytes: int, report: ExtractionReport) -> None:
        self.max_bytes, self.report = max_bytes, report
        self.rows: list[ExtractedFrame] = []
        self.nbytes = 0

    def add(self, row: ExtractedFrame) -> list[ExtractedFrame] | None:
        """Add a row; return a full batch when one is ready."""
        self.rows.append(row)
        self.nbytes += row.image.nbytes
        return self.flush() if self.nbytes >= self.max_bytes else None

    def flush(self) -> list[ExtractedFrame] | None:
        if not self.rows:
            return None
        batch, self.rows, self.nbytes = self.rows, [], 0
        self.report.frames_output += len(batch)
        return batch


class Extraction:
    """Base of the per-video extractions: iterate for batches; ``report`` is complete after.

    A fault of the file never escapes the iteration: a video that cannot be opened yields no
    batch and one error in ``report.errors``. The decoder fallback lives here, and only here: a
    GPU decoder that refuses the video (``DecoderRefusedError``, always before any frame) has it
    decoded on the CPU instead, or, with ``no_fallback``, raises ``DecoderUnavailableError``.
    Any other exception is a bug or a resource running out and propagates as itself, so it is
    never mistaken for a decoder being unavailable.
    """

    def __init__(self, video_path: str, options: ExtractOptions | None) -> None:
        self.video_path = video_path
        self.options = options or ExtractOptions()
        self.report = ExtractionReport(video_path, decoder=self.options.decoder.mode)
        #: A local copy of a video on a filesystem FFmpeg cannot read (``fetch``), else None.
        self.local_copy: str | None = None

    def fetch(self) -> bool:
        """Copy a video FFmpeg cannot read in place (s3://, gs://, hdfs://…) to local scratch.

        True when this call made the copy (the caller then ``discard``s it). Raises
        ``VideoOpenError`` naming the video when it cannot be read. The isolated runner calls it
        in the parent, so the decode worker never touches a filesystem client.
        """
        if self.local_copy is not None or not needs_local_copy(self.video_path):
            return False
        self.local_copy = fetch_local_copy(self.video_path)
        return True

    def discard(self) -> None:
        """Delete the local copy, if any."""
        remove_local_copy(self.local_copy)
        self.local_copy = None

    def __iter__(self) -> Iterator[list[ExtractedFrame]]:
        started = time.perf_counter()
        fetched = False
        try:
            fetched = self.fetch()
            yield from self._with_fallback()
        except FrameExtractionError as exc:
            self.report.errors.append(exc)
        finally:
            if fetched:
                self.discard()
            self.report.seconds = time.perf_counter() - started

    def _with_fallback(self) -> Iterator[list[ExtractedFrame]]:
        choice = self.options.decoder
        try:
            yield from self._run(choice)
        except DecoderRefusedError as exc:
            if choice.mode == CPU:
                raise
            reason = str(exc)
            if self.options.no_fallback:
                raise DecoderUnavailableError(choice.mode, reason) from exc
            if self.report.frames_output:  # a refusal comes first; this would be a bug
                raise RuntimeError(f"{choice.mode} refused the video part-way: {reason}") from exc
            warn_fallback(choice.mode, reason)
            self.report = ExtractionReport(self.video_path, decoder=CPU)
            yield from self._run(DecoderChoice(CPU, choice.requested, choice.gpu_id, reason))

    def _run(self, choice: DecoderChoice) -> Iterator[list[ExtractedFrame]]:
        raise NotImplementedError
