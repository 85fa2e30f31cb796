"""The driver side of a run: input, incremental selection, distribution, commit, summary.

read input -> stat videos -> skip up-to-date (video, purpose) units (table/state.py) -> balance
videos over partitions -> executors extract and write files (tasks.py) -> commit (table/commit.py)
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyarrow import fs as pafs
from pyspark.sql import SparkSession

from sparkframes.config import ClipFramesConfig, CommonConfig, VideoFramesConfig
from sparkframes.filesystems import file_states
from sparkframes.spans import ClipSpan, FixedStride, is_whole_video
from sparkframes.spark.inputs import InputVideo, read_input
from sparkframes.spark.progress import ProgressLine
from sparkframes.spark.resources import is_local, stage_profile
from sparkframes.spark.tasks import (
    FAIL_FIRST_ATTEMPT_CONF,
    KILL_FIRST_ATTEMPT_CONF,
    SLOW_FIRST_ATTEMPT_CONF,
    TaskSettings,
    VideoOutcome,
    VideoWork,
    partition_function,
)
from sparkframes.specs import ExtractionSpec
from sparkframes.table.commit import AttemptResult, RunCommit, commit_run
from sparkframes.table.delta import FRAMES, TableLocation, ensure_table
from sparkframes.table.legacy import legacy_problem, remove_legacy_files
from sparkframes.table.state import UnitState, is_up_to_date, read_state


class LegacyTableError(ValueError):
    """The output holds a table in the format of sparkframes 0.1; the message names the fix."""


@dataclass
class RunSummary:
    """What a run did; printed at the end and used for the exit code."""

    run_id: str
    videos_in_input: int = 0
    videos_processed: int = 0
    videos_skipped: int = 0
    videos_failed: int = 0
    clips: int = 0
    frames_by_purpose: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    frames_decoded: int = 0
    decoders: dict[str, int] = field(default_factory=dict)  # decoder used -> videos
    gpu_addresses: set[str] = field(default_factory=set)  # what Spark assigned the tasks
    table_version: int | None = None  # the frames table's version this run committed
    units_lost: int = 0  # units an overlapping run committed after this one (theirs stay)

    @property
    def frames(self) -> int:
        return sum(self.frames_by_purpose.values())

    @property
    def error_rate(self) -> float:
        return self.videos_failed / self.videos_processed if self.videos_processed else 0.0

    def line(self) -> str:
        per_purpose = ", ".join(f"{p}={n}" for p, n in sorted(self.frames_by_purpose.items()))
        fps = self.frames / self.seconds if self.seconds else 0.0
        return (
            f"sparkframes run {self.run_id}: {self.videos_processed} videos processed, "
            f"{self.videos_skipped} up to date, {self.videos_failed} failed; "
            f"{self.clips} clips; frames {per_purpose or 'none'}; {self.errors} error rows; "
            f"{self.seconds:.1f} s ({fps:.1f} frames/s)"
            + (f"; table version {self.table_version}" if self.table_version is not None else "")
            + (f"; {self.units_lost} units kept from an overlapping run" if self.units_lost else "")
            + (f"; decoders {_counts(self.decoders)}" if self.decoders else "")
            + (
                f"; GPUs assigned {','.join(sorted(self.gpu_addresses))}"
                if self.gpu_addresses
                else ""
            )
        )


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def request_key(
    spec: ExtractionSpec, clips: tuple[ClipSpan, ...] | None, stride: FixedStride | None
) -> str:
    """A fingerprint of what was asked of one (video, purpose): same key, same rows."""
    doc = {
        "rates": [str(r) for r in spec.rates],
        "policy": spec.policy.value,
        "target_res": list(spec.target_res),
        "min_frames": spec.min_frames,
        "clips": None
        if clips is None
        else [[c.clip_id, str(c.start_s), str(c.end_s), *_invalid(c)] for c in clips],
        # Stride cuts every span-less clip (the whole-video marker, alone or among spans).
        "stride": None
        if stride is None or (clips is not None and not any(is_whole_video(c) for c in clips))
        else [
            str(stride.clip_len_s),
            str(stride.stride_s),
            str(stride.min_clip_len_s),
            stride.limit_clips,
        ],
    }
    return fingerprint(doc)


def _invalid(clip: ClipSpan) -> list[str]:
    # Only when set, so that the keys earlier runs stored stay the same.
    return [] if clip.invalid is None else [clip.invalid]


def pixels_key(key: str, config: CommonConfig) -> str:
    """``key`` extended by the settings that change what is stored (the decoder's loop filter,
    the frame encoding, whether playlists may be opened), so that changing one re-extracts;
    with the defaults it is ``key`` unchanged."""
    doc: dict = {}
    if config.skip_loop_filter != "none":
        doc["skip_loop_filter"] = config.skip_loop_filter
    if config.allow_playlists:
        doc["allow_playlists"] = True
    doc.update(config.encoding().key() or {})
    return fingerprint({"request": key, **doc}) if doc else key


def fingerprint(doc: dict) -> str:
    """A short stable hash of a JSON-able request description."""
    return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def plan_work(
    videos: list[InputVideo],
    request_keys: Callable[[InputVideo], dict[str, str]],
    state: dict[tuple[str, str], UnitState],
) -> tuple[list[VideoWork], int]:
    """Out-of-date videos with the purposes to redo, and how many videos were up to date."""
    stats = file_states([v.video_path for v in videos])
    works, skipped = [], 0
    for video in videos:
        size, mtime = stats[video.video_path]
        keys: dict[str, str] = {}
        failures = 0
        for purpose, key in request_keys(video).items():
            old = state.get((video.video_path, purpose))
            if is_up_to_date(old, size, mtime, key):
                continue
            keys[purpose] = key
            if old is not None and (old.video_size, old.video_mtime_ns, old.request_key) == (
                size,
                mtime,
                key,
            ):
                # Same file, same request: out of date only because its last failure may pass.
                failures = max(failures, old.transient_failures)
        if keys:
            works.append(VideoWork(video.video_path, size, mtime, video.clips, keys, failures))
        else:
            skipped += 1
    return works, skipped


def balance(works: list[VideoWork], partitions: int) -> list[list[VideoWork]]:
    """Longest-first greedy assignment by file size, so long and short videos even out."""
    bins: list[list[VideoWork]] = [[] for _ in range(max(1, min(partitions, len(works))))]
    loads = [0] * len(bins)
    for work in sorted(works, key=lambda w: w.size, reverse=True):
        i = loads.index(min(loads))
        bins[i].append(work)
        loads[i] += max(work.size, 1)
    return [b for b in bins if b]


def run_clip_frames(spark: SparkSession, config: ClipFramesConfig) -> RunSummary:
    """Extract clip frames for every out-of-date video of the input and commit them."""
    specs, stride = config.specs(), config.stride()

    def keys(video: InputVideo) -> dict[str, str]:
        return {s.purpose: pixels_key(request_key(s, video.clips, stride), config) for s in specs}

    settings = dict(kind="clips", specs=tuple(specs), stride=stride)
    return _run(spark, config, keys, settings, "clip-frames")


def run_video_frames(spark: SparkSession, config: VideoFramesConfig) -> RunSummary:
    """Every frame of every out-of-date video at ``output_hw``, into ``purpose=scene``."""
    key = pixels_key(fingerprint({"output_hw": list(config.output_hw)}), config)

    def keys(video: InputVideo) -> dict[str, str]:
        return {config.purpose: key}

    settings = dict(kind="video", output_hw=config.output_hw, video_purpose=config.purpose)
    return _run(spark, config, keys, settings, "video-frames")


def _run(
    spark: SparkSession,
    config: CommonConfig,
    keys: Callable[[InputVideo], dict[str, str]],
    kind_settings: dict,
    command: str,
) -> RunSummary:
    started = time.perf_counter()
    run_id = new_run_id()
    summary = RunSummary(run_id)
    loc = TableLocation.of(config.output)
    overwrite = config.mode == "overwrite"
    problem = legacy_problem(loc)
    if problem is not None and not overwrite:
        raise LegacyTableError(problem)
    state = {} if overwrite else read_state(loc)

    videos, _ = read_input(spark, config.input)
    summary.videos_in_input = len(videos)
    works, summary.videos_skipped = plan_work(videos, keys, state)

    attempts: list[AttemptResult] = []
    if works:
        sc = spark.sparkContext
        settings = TaskSettings(
            run_id=run_id,
            output=config.output,
            decoder_mode=config.decoder_mode,
            no_fallback=config.no_fallback,
            batch_size=config.batch_size,
            skip_loop_filter=config.skip_loop_filter,
            frame_encoding=config.encoding(),
            allow_playlists=config.allow_playlists,
            threads=config.decoder_threads,
            max_pixels=config.max_pixels,
            video_timeout_s=config.video_timeout_s,
            fail_first_attempt=_int_list(spark.conf.get(FAIL_FIRST_ATTEMPT_CONF, "")),
            kill_first_attempt=_int_list(spark.conf.get(KILL_FIRST_ATTEMPT_CONF, "")),
            slow_first_attempt=_int_list(spark.conf.get(SLOW_FIRST_ATTEMPT_CONF, "")),
            progress_dir=(
                os.path.join(tempfile.gettempdir(), f"sparkframes-progress-{run_id}")
                if config.progress and is_local(sc) and isinstance(loc.fs, pafs.LocalFileSystem)
                else None
            ),
            **kind_settings,
        )
        n = config.partitions or 2 * sc.defaultParallelism
        chunks = balance(works, n)
        rdd = sc.parallelize(chunks, len(chunks)).mapPartitions(partition_function(settings))
        profile = stage_profile(
            sc, config.decoder_mode, config.decoder_threads, config.streams_per_gpu
        )
        if profile is not None:
            rdd = rdd.withResources(profile)
        sc.setJobDescription(f"sparkframes {command}: {len(works)} videos")
        progress = (
            ProgressLine(settings.progress_dir, len(works))
            if settings.progress_dir
            else contextlib.nullcontext()
        )
        # A failed job commits nothing: the files its attempts wrote are listed in no version.
        with progress:
            results = rdd.collect()
        for attempt, outcomes in results:
            attempts.append(attempt)
            _add_outcomes(summary, outcomes)
    if works or overwrite:
        if overwrite:
            remove_legacy_files(loc)
        summary.seconds = time.perf_counter() - started
        committed = commit_run(
            loc,
            run_id,
            attempts,
            overwrite=overwrite,
            metadata=_commit_metadata(command, config, summary),
        )
        _add_commit(summary, committed)
    else:
        ensure_table(loc, FRAMES)  # a first run with nothing to do still leaves a table to read
    summary.seconds = time.perf_counter() - started
    return summary


def _commit_metadata(command: str, config: CommonConfig, summary: RunSummary) -> dict:
    """What a run's commits carry besides the run id: enough to tell from the table's history
    which run made a version, how it was asked and what it did."""
    settings = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    counts = {
        "videos_in_input": summary.videos_in_input,
        "videos_processed": summary.videos_processed,
        "videos_skipped": summary.videos_skipped,
        "videos_failed": summary.videos_failed,
        "clips": summary.clips,
        "frames_by_purpose": dict(summary.frames_by_purpose),
        "errors": summary.errors,
        "seconds": round(summary.seconds, 3),
    }
    return {"command": command, "settings": settings, "summary": counts}


def _add_commit(summary: RunSummary, committed: RunCommit) -> None:
    summary.table_version = committed.version
    summary.units_lost = committed.units_lost


def _add_outcomes(summary: RunSummary, outcomes: list[VideoOutcome]) -> None:
    for o in outcomes:
        summary.videos_processed += 1
        summary.videos_failed += int(o.failed)
        summary.clips += o.clips
        summary.errors += o.errors
        summary.frames_decoded += o.frames_decoded
        summary.decoders[o.decoder] = summary.decoders.get(o.decoder, 0) + 1
        if o.gpu_address is not None:
            summary.gpu_addresses.add(o.gpu_address)
        for purpose, n in o.frames_by_purpose.items():
            summary.frames_by_purpose[purpose] = summary.frames_by_purpose.get(purpose, 0) + n


def exit_code(summary: RunSummary, max_error_rate: float) -> int:
    """0 unless failed videos exceed ``max_error_rate`` of those processed (then 3)."""
    if summary.videos_processed and summary.error_rate > max_error_rate:
        print(
            f"sparkframes: {summary.videos_failed}/{summary.videos_processed} videos failed "
            f"({summary.error_rate:.0%}), above --max-error-rate {max_error_rate:.0%}",
            file=sys.stderr,
        )
        return 3
    return 0


def _int_list(text: str | None) -> tuple[int, ...]:
    return tuple(int(t) for t in (text or "").split(",") if t.strip())


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
