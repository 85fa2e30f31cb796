"""What an executor task does with its videos: extract them, then write files or hand out frames.

The functions here run in Spark's Python workers, under ``mapInArrow``:

* ``files_function``: the table write. A task extracts its videos, writes Parquet itself
  (pyarrow) straight into the Delta tables under names no other attempt uses, and returns one
  small row describing what it wrote: no pixels cross Spark's bridge, and the driver decides
  which attempts' files the commit lists (until then no Delta reader sees them).
* ``frames_function``: the lazy DataFrame of frames (``sparkframes.spark.clip_frames``). The
  frames themselves are the task's output rows.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from sparkframes.decoding.backends import DecoderUnavailableError, choose_decoder
from sparkframes.errors import FrameExtractionError, InternalError, MissingVideoPathError
from sparkframes.extraction.base import Extraction, ExtractionReport, ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.video import extract_video_frames
from sparkframes.extraction.worker import IsolatedRunner
from sparkframes.options import ClipFramesOptions, CommonOptions, VideoFramesOptions
from sparkframes.sampling.spans import WHOLE_VIDEO, ClipSpan
from sparkframes.spark.planning import spans_to_clips
from sparkframes.spark.progress import write_progress
from sparkframes.table.commit import AttemptResult
from sparkframes.table.delta import ERRORS, TableLocation
from sparkframes.table.files import AttemptWriter
from sparkframes.table.schema import ERROR_STRUCT, FRAMES_DATAFRAME_SCHEMA, errors_to_batch
from sparkframes.table.state import UnitState

#: The one column of ``files_function``'s output: an attempt's result, pickled.
RESULT_COLUMN = "attempt"
RESULT_SCHEMA = pa.schema([pa.field(RESULT_COLUMN, pa.binary(), False)])


@dataclass(frozen=True)
class VideoWork:
    """One video and what to extract from it (only the purposes that are out of date)."""

    video_path: str
    size: int
    mtime_ns: int
    clips: tuple[ClipSpan, ...] | None
    request_keys: dict[str, str]  # purpose -> request key
    #: purpose -> earlier runs in a row whose failure may pass (absent: none)
    transient_failures: dict[str, int] = field(default_factory=dict)

    @property
    def purposes(self) -> list[str]:
        return list(self.request_keys)

    @classmethod
    def from_row(cls, row: dict, purposes: list[str] | None = None) -> VideoWork:
        """From a row of ``planning.works`` (or, given ``purposes``, of ``planning.videos_of``)."""
        keys = dict(row["request_keys"]) if purposes is None else dict.fromkeys(purposes, "")
        return cls(
            row["video_path"],
            row.get("video_size", -1),
            row.get("video_mtime_ns", -1),
            spans_to_clips(row["spans"]),
            keys,
            dict(row.get("transient_failures") or {}),
        )


@dataclass
class TaskResult:
    """What one task attempt hands the driver: its files and unit states, per-video counts, how
    many of its videos were up to date, and the decoder that could not run under
    ``no_fallback`` (then the attempt wrote nothing that counts, and the driver fails the run
    with it)."""

    attempt: AttemptResult = field(default_factory=AttemptResult)
    videos: list[ExtractionReport] = field(default_factory=list)
    videos_up_to_date: int = 0
    unavailable: DecoderUnavailableError | None = None


@dataclass(frozen=True)
class TaskSettings:
    """Everything a task needs besides its videos; pickled once per task.

    ``options`` is the run's options object as the user gave it (command line, config file or
    keyword arguments), unchanged.
    """

    run_id: str
    output: str  # the table, as the user gave it (each executor resolves it itself)
    options: CommonOptions
    progress_dir: str | None = None  # local runs: where tasks leave their counts


def purposes_of(options: CommonOptions) -> list[str]:
    """The purposes a run's options ask for."""
    if isinstance(options, ClipFramesOptions):
        return list(dict.fromkeys(options.purpose))
    return [options.purpose]


def extract_options(options: CommonOptions) -> ExtractOptions:
    """How this task decodes: the run's options, the task's cpus, the GPU Spark assigned."""
    from sparkframes.spark.resources import assigned_gpu

    gpu_id, _ = assigned_gpu()
    return ExtractOptions(
        threads=options.decoder_threads or _task_cpus(),
        max_pixels=options.max_pixels,
        decoder=choose_decoder(options.decoder_mode, gpu_id, no_fallback=options.no_fallback),
        no_fallback=options.no_fallback,
        batch_size=options.batch_size,
        skip_loop_filter=options.skip_loop_filter,
        resize_filter=options.resize_filter,
        frame_encoding=options.encoding(),
        allow_playlists=options.allow_playlists,
    )


def run_partition(
    works: list[VideoWork], settings: TaskSettings, partition_id: int, attempt: int, attempt_id: int
) -> TaskResult:
    """Extract every video of one partition (``works``: the out-of-date ones) into files of
    this attempt's own."""
    from sparkframes.spark.resources import assigned_gpu

    loc = TableLocation.of(settings.output)
    writer = AttemptWriter(
        loc.fs,
        loc.root,
        loc.root_of(ERRORS),
        f"part-{settings.run_id}-{partition_id:05d}-a{attempt}-t{attempt_id}",
    )
    _, gpu_address = assigned_gpu()
    task = TaskResult()
    result = task.attempt
    counts = {"todo": len(works), "videos": 0, "frames": 0, "errors": 0}
    if settings.progress_dir:
        write_progress(settings.progress_dir, partition_id, attempt, counts)
    try:
        options = extract_options(settings.options)
        with isolation(settings.options) as runner:
            for work in works:
                report = ExtractionReport(work.video_path, gpu_address=gpu_address)
                for purpose, batch in _batches(work, settings.options, options, report, runner):
                    writer.write_frames(purpose, batch, work.video_path)
                for purpose in work.purposes if report.errors else []:
                    batch = errors_to_batch(
                        report.errors, work.video_path, settings.run_id, purpose
                    )
                    writer.write_errors(purpose, batch, work.video_path)
                task.videos.append(report)
                if settings.progress_dir:
                    counts["videos"] += 1
                    counts["frames"] += report.frames_output
                    counts["errors"] += int(bool(report.errors))
                    write_progress(settings.progress_dir, partition_id, attempt, counts)
                result.units.extend(_unit_states(work, report))
        result.frame_files, result.error_files = writer.close()
    except DecoderUnavailableError as exc:  # --no-fallback: the driver fails the run with it
        writer.abort()
        return TaskResult(unavailable=exc)
    except BaseException:
        writer.abort()  # its files stay unlisted, for vacuum; no stream left to the GC
        raise
    return task


def _unit_states(work: VideoWork, report: ExtractionReport) -> list[UnitState]:
    """What this attempt records in the state for each of the video's purposes."""
    return [
        UnitState(
            work.video_path,
            purpose,
            work.size,
            work.mtime_ns,
            request_key,
            frames=report.frames_by_purpose.get(purpose, 0),
            errors=len(report.errors),
            transient_failures=(work.transient_failures.get(purpose, 0) + 1 if report.retry else 0),
        )
        for purpose, request_key in work.request_keys.items()
    ]


def _extraction(work: VideoWork, options: CommonOptions, extract: ExtractOptions) -> Extraction:
    if isinstance(options, VideoFramesOptions):
        return extract_video_frames(
            work.video_path, options.output_hw, purpose=options.purpose, options=extract
        )
    specs = [s for s in options.specs() if s.purpose in work.request_keys]
    return extract_clip_frames(
        work.video_path, specs, work.clips, stride=options.stride(), options=extract
    )


def isolation(options: CommonOptions) -> contextlib.AbstractContextManager[IsolatedRunner | None]:
    """The task's runner of isolated extractions (its worker process starts with the first
    video and is stopped when the task ends), or None with ``video_timeout_s`` 0."""
    return IsolatedRunner() if options.video_timeout_s > 0 else contextlib.nullcontext()


def _batches(
    work: VideoWork,
    options: CommonOptions,
    extract: ExtractOptions,
    report: ExtractionReport,
    runner: IsolatedRunner | None,
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """One video's (purpose, batch) as they come; ``report`` says how it went by the end. A
    failure costs this video only (``--no-fallback`` aside). With a ``runner`` the video is
    extracted in its worker, under ``video_timeout_s``."""
    if not work.video_path:  # input rows without a path: an error row each, nothing to open
        report.errors.extend(
            MissingVideoPathError(clip_id=c.clip_id) for c in (work.clips or [WHOLE_VIDEO])
        )
        return
    extraction = _extraction(work, options, extract)
    batches = (
        runner.run(extraction, options.video_timeout_s)
        if runner is not None
        else extraction.record_batches()
    )
    failure: list[FrameExtractionError] = []
    counted = report.frames_by_purpose
    try:
        for purpose, batch in batches:
            counted[purpose] = counted.get(purpose, 0) + batch.num_rows
            yield purpose, batch
    except DecoderUnavailableError:
        raise  # --no-fallback: the run must fail, loudly
    except Exception as exc:  # a bug or resource error must cost one video, not the task
        failure.append(InternalError.from_exception(work.video_path, exc))
    # The extraction's own report (the worker's, when isolated), with what was counted here.
    done = extraction.report
    report.clips, report.decode, report.seconds = done.clips, done.decode, done.seconds
    report.decoder, report.frames_output = done.decoder, sum(counted.values())
    report.errors = [*done.errors, *failure]


def _task_cpus() -> int:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return max(1, ctx.cpus()) if ctx is not None else 1


def _rows(batches: Iterator[pa.RecordBatch]) -> Iterator[dict]:
    for batch in batches:
        yield from batch.to_pylist()


def files_function(settings: TaskSettings) -> Callable[[Iterator], Iterator]:
    """What ``mapInArrow`` runs for the table write: the decided videos of one partition in, one
    row with the attempt's result out. Up-to-date videos are only counted, in Arrow: a no-op
    refresh of a million videos builds no Python object per video."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        works, up_to_date = [], 0
        for batch in batches:
            keys = np.diff(batch.column("request_keys").offsets.to_numpy())  # per video
            todo = pa.array(keys > 0)
            kept = batch.filter(todo)
            up_to_date += batch.num_rows - kept.num_rows
            works.extend(VideoWork.from_row(row) for row in kept.to_pylist())
        result = run_partition(
            works, settings, ctx.partitionId(), ctx.attemptNumber(), ctx.taskAttemptId()
        )
        result.videos_up_to_date = up_to_date
        yield pa.RecordBatch.from_pydict({RESULT_COLUMN: [pickle.dumps(result)]}, RESULT_SCHEMA)

    return run


#: What ``spark.clip_frames`` does with a video or clip that fails (Spark's readers' modes).
PERMISSIVE, DROPMALFORMED, FAILFAST = "PERMISSIVE", "DROPMALFORMED", "FAILFAST"
ERROR_MODES = (PERMISSIVE, DROPMALFORMED, FAILFAST)


def frames_function(options: CommonOptions, mode: str) -> Callable[[Iterator], Iterator]:
    """What ``mapInArrow`` runs for the lazy frames DataFrame: videos in, their frames out, with
    their purpose, batch by batch as they are extracted. A failure becomes a row with its
    ``error`` (``PERMISSIVE``), a line in the task's log (``DROPMALFORMED``), or the task's
    failure, naming the video and the cause (``FAILFAST``)."""
    purposes = purposes_of(options)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import logging

        extract = extract_options(options)
        with isolation(options) as runner:
            for row in _rows(batches):
                work = VideoWork.from_row(row, purposes)
                report = ExtractionReport(work.video_path)
                for purpose, batch in _batches(work, options, extract, report, runner):
                    n = batch.num_rows
                    extra = [pa.array([purpose] * n, pa.string()), pa.nulls(n, ERROR_STRUCT)]
                    yield pa.RecordBatch.from_arrays(
                        [*batch.columns, *extra], schema=FRAMES_DATAFRAME_SCHEMA
                    )
                if not report.errors:
                    continue
                if mode == FAILFAST:
                    raise report.errors[0]
                if mode == PERMISSIVE:
                    yield _error_rows(report.errors, work.purposes)
                else:
                    for error in report.errors:
                        logging.getLogger("sparkframes").warning(
                            "%s: %s", type(error).__name__, error
                        )

    return run


def _error_rows(errors: list[FrameExtractionError], purposes: list[str]) -> pa.RecordBatch:
    """One row per error and purpose: where it happened, and why (``error``)."""
    rows = [
        {
            "video_path": e.video_path,
            "clip_id": e.clip_id,
            "purpose": purpose,
            "error": {"stage": e.stage, "error_class": type(e).__name__, "message": str(e)},
        }
        for e in errors
        for purpose in purposes
    ]
    return pa.RecordBatch.from_pylist(rows, schema=FRAMES_DATAFRAME_SCHEMA)


def task_results(rows: list) -> list[TaskResult]:
    """The results ``files_function`` returned, from the rows the driver collected."""
    return [pickle.loads(row[RESULT_COLUMN]) for row in rows]
