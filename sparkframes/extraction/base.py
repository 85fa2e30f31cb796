"""What clip-frame and video-frame extraction share: output rows, options, the per-video report,
bounded batches, and the GPU-to-CPU decoder fallback. No Spark here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa

from sparkframes.convert.columns import FrameBatches, FrameRow
from sparkframes.convert.encode import FrameEncoding
from sparkframes.convert.resize import DEFAULT_RESIZE_FILTER, SMALL_IMAGE_BYTES
from sparkframes.decoding.backends import CPU, DecoderChoice, cuda_hwaccel, fall_back
from sparkframes.decoding.protocol import DecoderRefusedError, DecodeStats
from sparkframes.decoding.remote import fetch_local_copy, needs_local_copy, remove_local_copy
from sparkframes.decoding.source import (
    DEFAULT_MAX_PIXELS,
    NO_LOOP_FILTER_SKIP,
    VideoSource,
    open_video,
)
from sparkframes.errors import FrameExtractionError

#: Frames are handed out in batches of about this many bytes of stored pixels, so memory stays
#: bounded whatever the video's length (and Spark's Arrow batches far below their 2 GB limit).
DEFAULT_BATCH_BYTES = 64 << 20


@dataclass(frozen=True)
class ExtractedFrame(FrameRow):
    """One output row as the library hands it out: where it came from, and its pixels."""

    image: np.ndarray  # (H, W, 3) uint8 RGB, as a player shows it


@dataclass
class ExtractionReport:
    """How one video went, the one result type per video: the library's ``extraction.report``,
    and what a Spark task hands the driver for the run summary and the state."""

    video_path: str
    clips: int = 0
    frames_output: int = 0
    errors: list[FrameExtractionError] = field(default_factory=list)
    decode: DecodeStats = field(default_factory=DecodeStats)
    seconds: float = 0.0
    decoder: str = CPU
    #: Rows written per purpose (filled where the rows are counted: a Spark task).
    frames_by_purpose: dict[str, int] = field(default_factory=dict)
    gpu_address: str | None = None  # what Spark assigned the task, if anything

    @property
    def failed(self) -> bool:
        """The whole video failed: errors, and no frame at all."""
        return bool(self.errors) and not self.frames_output

    @property
    def retry(self) -> bool:
        """An error that may pass by itself: the next incremental run tries again."""
        return any(e.transient for e in self.errors)


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
    skip_loop_filter: str = NO_LOOP_FILTER_SKIP
    #: The scaler (``resize.RESIZE_FILTERS``): bicubic as the FFmpeg CLI, or the cheaper area.
    resize_filter: str = DEFAULT_RESIZE_FILTER
    #: How the frames are stored when they become Arrow batches (raw, JPEG, PNG).
    frame_encoding: FrameEncoding = field(default_factory=FrameEncoding)
    #: Opt-in: open HLS playlists, reading their files only from under the playlist's folder;
    #: without it a video that refers to other files is an ``ExternalReferenceError``.
    allow_playlists: bool = False


class Output(Protocol):
    """Where an extraction loop puts its rows: lists of ``ExtractedFrame`` for the library, or
    the table's record batches (``convert.columns.FrameBatches``)."""

    rows_out: int

    def add(self, row: FrameRow, image: np.ndarray) -> list: ...

    def flush(self) -> list: ...


class FrameLists:
    """Rows as lists of ``ExtractedFrame``, about ``max_bytes`` of pixels a list: the library's
    form, where each row owns its array (a small frame is copied out of its decoded picture, so
    that thousands of scene frames hold their pixels, not whole pictures)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.rows: list[ExtractedFrame] = []
        self.nbytes = 0
        self.rows_out = 0

    def add(self, row: FrameRow, image: np.ndarray) -> list[list[ExtractedFrame]]:
        if not image.flags.c_contiguous:  # a rotated view: this makes it a compact copy
            image = np.ascontiguousarray(image)
        elif image.nbytes < SMALL_IMAGE_BYTES:
            image = image.copy()
        self.rows.append(ExtractedFrame(**vars(row), image=image))
        self.nbytes += image.nbytes
        return self.flush() if self.nbytes >= self.max_bytes else []

    def flush(self) -> list[list[ExtractedFrame]]:
        if not self.rows:
            return []
        batch, self.rows, self.nbytes = self.rows, [], 0
        self.rows_out += len(batch)
        return [batch]


class Extraction:
    """Base of the per-video extractions; ``report`` is complete after the iteration.

    Iterating gives lists of ``ExtractedFrame`` (the library's form); ``record_batches`` gives
    the same rows as the frames table's Arrow record batches, built column by column (the jobs'
    form). Both come from one loop per kind of extraction (``_run``).

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
        yield from self._stream(lambda _decoder: FrameLists(self.batch_bytes))

    def record_batches(self) -> Iterator[tuple[str, pa.RecordBatch]]:
        """``(purpose, record batch of FRAMES_SCHEMA)`` pairs, pixels stored as the options'
        ``frame_encoding`` says."""
        opts = self.options
        yield from self._stream(
            lambda decoder: FrameBatches(decoder, opts.frame_encoding, self.batch_bytes)
        )

    @property
    def batch_bytes(self) -> int:
        """About how many bytes of frames a batch holds."""
        return self.options.batch_bytes

    def _stream(self, output: Callable[[str], Output]) -> Iterator:
        started = time.perf_counter()
        fetched = False
        try:
            fetched = self.fetch()
            yield from self._with_fallback(output)
        except FrameExtractionError as exc:
            self.report.errors.append(exc)
        finally:
            if fetched:
                self.discard()
            self.report.seconds = time.perf_counter() - started

    def _with_fallback(self, output: Callable[[str], Output]) -> Iterator:
        choice = self.options.decoder
        try:
            yield from self._counted(choice, output(choice.mode))
        except DecoderRefusedError as exc:
            if choice.mode == CPU:
                raise
            if self.report.frames_output:  # a refusal comes first; this would be a bug
                raise RuntimeError(f"{choice.mode} refused the video part-way: {exc}") from exc
            cpu = fall_back(choice, str(exc), no_fallback=self.options.no_fallback)
            self.report = ExtractionReport(self.video_path, decoder=CPU)
            yield from self._counted(cpu, output(cpu.mode))

    def _counted(self, choice: DecoderChoice, output: Output) -> Iterator:
        """``_run``'s batches, with ``report.frames_output`` kept up to date as they go."""
        for batch in self._run(choice, output):
            self.report.frames_output = output.rows_out
            yield batch

    def open(self, choice: DecoderChoice, *, index: bool) -> VideoSource:
        """The video opened for ``choice`` with these options (``index``: read every packet's
        timestamps first, which choosing frames needs and a front-to-back decode does not)."""
        opts = self.options
        return open_video(
            self.video_path,
            threads=opts.threads,
            max_pixels=opts.max_pixels,
            hwaccel=cuda_hwaccel(choice),
            index=index,
            skip_loop_filter=opts.skip_loop_filter,
            local_copy=self.local_copy,
            allow_playlists=opts.allow_playlists,
        )

    def _run(self, choice: DecoderChoice, output: Output) -> Iterator:
        """Decode with ``choice``, put each row into ``output`` and yield what it hands out."""
        raise NotImplementedError
