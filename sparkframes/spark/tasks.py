"""What an executor task does with its partition of videos: extract, write files, report.

Runs in the Python worker. It writes Parquet itself (pyarrow) straight into the Delta tables,
under names no other attempt uses, and hands the driver only a small description of what it
wrote: no pixels cross Spark's bridge, and the driver decides which attempts' files the commit
lists (until then no Delta reader sees them).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sparkframes.clip_frames import extract_clip_frames
from sparkframes.decoding.backends import DecoderUnavailableError, choose_decoder
from sparkframes.errors import InternalError
from sparkframes.extraction import Extraction, ExtractOptions
from sparkframes.isolation import run_inline, run_isolated
from sparkframes.spans import ClipSpan, FixedStride
from sparkframes.spark.progress import write_progress
from sparkframes.specs import SCENE_PURPOSE, ExtractionSpec
from sparkframes.table.commit import AttemptResult
from sparkframes.table.delta import ERRORS, TableLocation
from sparkframes.table.encodings import RAW_FRAMES, FrameEncoding
from sparkframes.table.files import AttemptWriter
from sparkframes.table.schema import errors_to_batch
from sparkframes.table.state import UnitState
from sparkframes.video_frames import extract_video_frames

#: Test hooks (Spark confs, comma-separated partition ids): attempt 0 of the listed partitions
#: raises (FAIL) or kills its own Python worker with SIGKILL (KILL) after writing its files, so
#: tests can check that a retried attempt never adds duplicate or loses rows.
FAIL_FIRST_ATTEMPT_CONF = "spark.sparkframes.test.failFirstAttempt"
KILL_FIRST_ATTEMPT_CONF = "spark.sparkframes.test.killFirstAttempt"
#: ...or stalls for SLOW_ATTEMPT_S after writing its files (to let speculation overtake it, or a
#: test kill the driver while uncommitted files are there).
SLOW_FIRST_ATTEMPT_CONF = "spark.sparkframes.test.slowFirstAttempt"
SLOW_ATTEMPT_S = 30.0


@dataclass(frozen=True)
class VideoWork:
    """One video and what to extract from it (only the purposes that are out of date)."""

    video_path: str
    size: int
    mtime_ns: int
    clips: tuple[ClipSpan, ...] | None
    request_keys: dict[str, str]  # purpose -> request key
    transient_failures: int = 0  # earlier runs in a row that failed in a way that may pass

    @property
    def purposes(self) -> list[str]:
        return list(self.request_keys)


@dataclass
class VideoOutcome:
    """Per-video counts for the driver's run summary."""

    video_path: str
    clips: int = 0
    frames_by_purpose: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    failed: bool = False  # the whole video failed (no clip produced frames)
    retry: bool = False  # an error that may pass: the next incremental run tries again
    seconds: float = 0.0
    frames_decoded: int = 0
    decoder: str = "ffmpeg_cpu"
    gpu_address: str | None = None  # what Spark assigned the task, if anything


@dataclass(frozen=True)
class TaskSettings:
    """Everything a task needs besides its videos; pickled once per task.

    ``kind`` is ``clips`` (clip frames for ``specs``) or ``video`` (every frame at
    ``output_hw`` for ``video_purpose``).
    """

    run_id: str
    output: str  # the table, as the user gave it (each executor resolves it itself)
    kind: str = "clips"
    specs: tuple[ExtractionSpec, ...] = ()
    stride: FixedStride | None = None
    output_hw: tuple[int, int] = (27, 48)
    video_purpose: str = SCENE_PURPOSE
    decoder_mode: str = "ffmpeg_cpu"
    no_fallback: bool = False
    batch_size: int = 64
    skip_loop_filter: str = "none"
    frame_encoding: FrameEncoding = RAW_FRAMES
    allow_playlists: bool = False
    threads: int = 0  # 0: the task's cpus
    max_pixels: int = 8192 * 8192
    video_timeout_s: float = 0.0  # > 0: each video in a child process, killed at the limit
    progress_dir: str | None = None  # local runs: where tasks leave their counts
    fail_first_attempt: tuple[int, ...] = ()  # test hook, see FAIL_FIRST_ATTEMPT_CONF
    kill_first_attempt: tuple[int, ...] = ()  # test hook, see KILL_FIRST_ATTEMPT_CONF
    slow_first_attempt: tuple[int, ...] = ()  # test hook, see SLOW_FIRST_ATTEMPT_CONF


def run_partition(
    works: list[VideoWork], settings: TaskSettings, partition_id: int, attempt: int, attempt_id: int
) -> tuple[AttemptResult, list[VideoOutcome]]:
    """Extract every video of one partition into files of this attempt's own."""
    from sparkframes.spark.resources import assigned_gpu

    loc = TableLocation.of(settings.output)
    writer = AttemptWriter(
        loc.fs,
        loc.root,
        loc.root_of(ERRORS),
        f"part-{settings.run_id}-{partition_id:05d}-a{attempt}-t{attempt_id}",
    )
    gpu_id, gpu_address = assigned_gpu()
    options = ExtractOptions(
        threads=settings.threads or _task_cpus(),
        max_pixels=settings.max_pixels,
        decoder=choose_decoder(settings.decoder_mode, gpu_id, no_fallback=settings.no_fallback),
        no_fallback=settings.no_fallback,
        batch_size=settings.batch_size,
        skip_loop_filter=settings.skip_loop_filter,
        frame_encoding=settings.frame_encoding,
        allow_playlists=settings.allow_playlists,
    )
    result = AttemptResult()
    outcomes = []
    counts = {"videos": 0, "frames": 0, "errors": 0}
    for work in works:
        outcome = _run_video(work, settings, options, writer)
        writer.end_video()
        outcome.gpu_address = gpu_address
        outcomes.append(outcome)
        if settings.progress_dir:
            counts["videos"] += 1
            counts["frames"] += sum(outcome.frames_by_purpose.values())
            counts["errors"] += int(outcome.errors > 0)
            write_progress(settings.progress_dir, partition_id, attempt, counts)
        for purpose, request_key in work.request_keys.items():
            result.units.append(
                UnitState(
                    work.video_path,
                    purpose,
                    work.size,
                    work.mtime_ns,
                    request_key,
                    frames=outcome.frames_by_purpose.get(purpose, 0),
                    errors=outcome.errors,
                    transient_failures=work.transient_failures + 1 if outcome.retry else 0,
                )
            )
    result.frame_files, result.error_files = writer.close()
    if attempt == 0 and partition_id in settings.slow_first_attempt:
        time.sleep(SLOW_ATTEMPT_S)
    if attempt == 0 and partition_id in settings.kill_first_attempt:
        os.kill(os.getpid(), signal.SIGKILL)
    if attempt == 0 and partition_id in settings.fail_first_attempt:
        raise RuntimeError(f"test hook: failing attempt 0 of partition {partition_id}")
    return result, outcomes


def _extraction(work: VideoWork, settings: TaskSettings, options: ExtractOptions) -> Extraction:
    if settings.kind == "video":
        return extract_video_frames(
            work.video_path, settings.output_hw, purpose=settings.video_purpose, options=options
        )
    specs = [s for s in settings.specs if s.purpose in work.request_keys]
    return extract_clip_frames(
        work.video_path, specs, work.clips, stride=settings.stride, options=options
    )


def _run_video(
    work: VideoWork, settings: TaskSettings, options: ExtractOptions, writer: AttemptWriter
) -> VideoOutcome:
    outcome = VideoOutcome(work.video_path)
    extraction = _extraction(work, settings, options)
    batches = (
        run_isolated(extraction, settings.video_timeout_s)
        if settings.video_timeout_s > 0
        else run_inline(extraction)
    )
    errors: list[BaseException] = []
    try:
        for purpose, batch in batches:
            writer.write_frames(purpose, batch, work.video_path)
            outcome.frames_by_purpose[purpose] = (
                outcome.frames_by_purpose.get(purpose, 0) + batch.num_rows
            )
    except DecoderUnavailableError:
        raise  # --no-fallback: the run must fail, loudly
    except Exception as exc:  # a bug or resource error must cost one video, not the task
        errors.append(InternalError.from_exception(work.video_path, exc))
    report = extraction.report
    errors = [*report.errors, *errors]
    if errors:
        for purpose in work.purposes:
            batch = errors_to_batch(errors, work.video_path, settings.run_id, purpose)
            writer.write_errors(batch, work.video_path, purpose)
    outcome.clips = report.clips
    outcome.errors = len(errors)
    outcome.failed = bool(errors) and not outcome.frames_by_purpose
    outcome.retry = any(getattr(e, "transient", False) for e in errors)
    outcome.seconds = report.seconds
    outcome.frames_decoded = report.decode.frames_decoded
    outcome.decoder = report.decoder
    return outcome


def _task_cpus() -> int:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return max(1, ctx.cpus()) if ctx is not None else 1


def partition_function(settings: TaskSettings) -> Callable[[Iterator], Iterator]:
    """The function ``mapPartitions`` runs: one element per partition, a list of works."""

    def run(items: Iterator[list[VideoWork]]) -> Iterator[tuple[AttemptResult, list]]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        works = [w for chunk in items for w in chunk]
        yield run_partition(
            works, settings, ctx.partitionId(), ctx.attemptNumber(), ctx.taskAttemptId()
        )

    return run
