"""The driver side of a run: input, incremental selection, distribution, commit, summary.

read input -> stat videos -> skip up-to-date (video, purpose) units -> balance videos over
partitions -> executors extract and stage files (tasks.py) -> commit (table/commit.py)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import posixpath
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyarrow import fs as pafs
from pyspark.sql import SparkSession

from sparkframes.config import ClipFramesConfig, CommonConfig, VideoFramesConfig
from sparkframes.filesystems import file_states, resolve
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
from sparkframes.table.commit import (
    AttemptResult,
    TableState,
    commit_run,
    delete_orphans,
    staging_location,
    staging_root,
    transient_tries,
)


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
    """``key`` extended by the decode settings that change pixels, so that turning one on (or
    off) re-extracts; with the defaults it is ``key`` unchanged, as earlier runs stored it."""
    if config.skip_loop_filter == "none":
        return key
    return fingerprint({"request": key, "skip_loop_filter": config.skip_loop_filter})


def fingerprint(doc: dict) -> str:
    """A short stable hash of a JSON-able request description."""
    return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def plan_work(
    videos: list[InputVideo],
    request_keys: Callable[[InputVideo], dict[str, str]],
    state: TableState,
) -> tuple[list[VideoWork], int]:
    """Out-of-date videos with the purposes to redo, and how many videos were up to date."""
    committed = state.unit_keys()
    stats = file_states([v.video_path for v in videos])
    works, skipped = [], 0
    for video in videos:
        size, mtime = stats[video.video_path]
        keys: dict[str, str] = {}
        tries = 0
        for purpose, key in request_keys(video).items():
            old = committed.get((video.video_path, purpose))
            if old is None or (old.size, old.mtime_ns, old.request_key) != (size, mtime, key):
                keys[purpose] = key
                tries = max(tries, transient_tries(old.mtime_ns) if old is not None else 0)
        if keys:
            works.append(VideoWork(video.video_path, size, mtime, video.clips, keys, tries))
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
    fs, root = resolve(config.output)
    overwrite = config.mode == "overwrite"
    committed = TableState.load(fs, root)
    orphans = delete_orphans(fs, root, committed)
    state = TableState([]) if overwrite else committed

    videos, _ = read_input(spark, config.input)
    summary.videos_in_input = len(videos)
    works, summary.videos_skipped = plan_work(videos, keys, state)

    attempts: list[AttemptResult] = []
    if works:
        sc = spark.sparkContext
        settings = TaskSettings(
            run_id=run_id,
            staging_root=staging_location(config.output),
            decoder_mode=config.decoder_mode,
            no_fallback=config.no_fallback,
            batch_size=config.batch_size,
            skip_loop_filter=config.skip_loop_filter,
            allow_playlists=config.allow_playlists,
            threads=config.decoder_threads,
            max_pixels=config.max_pixels,
            video_timeout_s=config.video_timeout_s,
            fail_first_attempt=_int_list(spark.conf.get(FAIL_FIRST_ATTEMPT_CONF, "")),
            kill_first_attempt=_int_list(spark.conf.get(KILL_FIRST_ATTEMPT_CONF, "")),
            slow_first_attempt=_int_list(spark.conf.get(SLOW_FIRST_ATTEMPT_CONF, "")),
            progress_dir=(
                posixpath.join(staging_root(root), run_id, "_progress")
                if is_local(sc) and isinstance(fs, pafs.LocalFileSystem)
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
            if settings.progress_dir and config.progress
            else contextlib.nullcontext()
        )
        try:
            with progress:
                results = rdd.collect()
        except BaseException:
            _discard_staging(fs, root, run_id)  # the table stays as it was
            raise
        for attempt, outcomes in results:
            attempts.append(attempt)
            _add_outcomes(summary, outcomes)
    if works or overwrite or orphans or not state.rows:
        commit_run(fs, root, run_id, attempts, overwrite=overwrite, orphans_removed=len(orphans))
    summary.seconds = time.perf_counter() - started
    return summary


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


def _discard_staging(fs: pafs.FileSystem, root: str, run_id: str) -> None:
    with contextlib.suppress(OSError):
        fs.delete_dir(posixpath.join(staging_root(root), run_id))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
