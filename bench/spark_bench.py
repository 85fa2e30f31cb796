"""Spark benchmark: what the Spark clip-frames job costs over running the decode core directly.

Issue "Spark job overhead". The same request (rates 1 and 2 fps at 224x224 on 10 s fixed-stride
clips) over the same N videos on the same 2 cores, done by

* the Spark job, ``run_clip_frames`` on ``local[2]``: reading the input table, planning, tasks,
  Parquet written by the tasks, the commit; SparkSession start-up excluded (one session, warmed
  up with a tiny job). Twice: ``video_timeout_s=0`` (each video decoded in the Python worker) and
  the default (each task's videos in a decode worker process that sends their frames back as
  Arrow IPC);
* direct, write: the body of a Spark task (``sparkframes.spark.tasks.run_partition``: extract,
  Arrow, Parquet into the table's folders) on partitions of the same sizes, in a pool of 2
  forked processes: what Spark schedules, minus Spark; and the same with the videos in a decode
  worker (``video_timeout_s`` as the job's default), to see isolation's cost without Spark;
* direct, no write: ``extract_clip_frames`` on the same partitions and pool, batches consumed;
* for reference, one process decoding the videos in turn with 2 decoder threads, no write.

Why this direct baseline: ``local[2]`` runs 2 tasks at once, each decoding with the task's 1 cpu,
so 2 processes with 1 decoder thread each over the same partitions is the same shape of work. On
a shared machine the methods run back to back in a rotating order; ratios are taken within a
repetition and the median over repetitions is reported. CPU time is user+sys of this process and
every descendant (the JVM, PySpark's Python workers, the pool, decode workers), from psutil.
Run: ``python -m bench.spark_bench [--quick] [--reps N] [--videos N] [--dir D] [--no-write]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql.classic.dataframe import DataFrame as ClassicDataFrame

import sparkframes.spark.job as job_module
import sparkframes.spark.planning as planning_module
from bench.common import (
    CACHE_DIR,
    Timed,
    VideoInfo,
    VideoRecipe,
    ensure_video,
    load_note,
    machine_info,
    md_table,
    median,
    ratio,
    ratio_cell,
    rotated,
    write_section,
)
from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
from sparkframes.options import ClipFramesConfig, build_config
from sparkframes.spark.request_keys import request_key
from sparkframes.spark.session import get_session
from sparkframes.spark.summary import RunSummary
from sparkframes.spark.tasks import TaskSettings, VideoWork, run_partition

SECTION = "spark_bench"
MASTER = "local[2]"
SLOTS = 2  # tasks local[2] runs at once
TASK_THREADS = 1  # decoder threads per task: the task's cpus (spark.task.cpus = 1)
PARTITIONS = 2 * SLOTS  # the job's default: twice the default parallelism
REQUEST = {"target_fps": "1,2", "target_res": "224x224", "clip_len_s": "10"}
ISOLATED_TIMEOUT_S = 3600.0  # the job's default video_timeout_s


def recipe() -> VideoRecipe:
    """720p30 H.264, 20 s: two 10 s clips per video, mid-size for a Spark task."""
    return VideoRecipe(
        "h264_720p_spark",
        "libx264",
        ".mp4",
        1280,
        720,
        30,
        20,
        (("preset", "veryfast"),),
        "libx264 preset veryfast, crf 23, x264 default GOP structure "
        "(keyint 250, bframes 3, scenecut on)",
    )


def input_videos(source: VideoInfo, count: int) -> list[str]:
    """``count`` byte-identical copies of ``source`` under distinct names (cached)."""
    folder = CACHE_DIR / "spark_videos"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"video_{i:02d}.mp4"
        if not path.exists() or path.stat().st_size != source.size_bytes:
            shutil.copyfile(source.path, path)
        paths.append(str(path))
    return paths


# --------------------------------------------------------------------------------------------
# CPU time of the whole process tree
# --------------------------------------------------------------------------------------------


def tree_cpu() -> float:
    """user+sys seconds of this process and all its descendants, live or reaped.

    ``getrusage(RUSAGE_CHILDREN)`` would miss the JVM and PySpark's workers: it counts only
    children that have exited and been waited for, and those live on between jobs.
    """
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue  # exited meanwhile: its time is in its parent's children_* once reaped
        total += t.user + t.system + t.children_user + t.children_system
    return total


def timed_tree(fn: Callable[[], int]) -> Timed:
    """Wall seconds and process-tree CPU seconds of one call."""
    cpu0 = tree_cpu()
    t0 = time.perf_counter()
    value = fn()
    wall = time.perf_counter() - t0
    return Timed(wall, tree_cpu() - cpu0, value)


# --------------------------------------------------------------------------------------------
# Where a Spark job's wall time goes
# --------------------------------------------------------------------------------------------

#: Driver-side steps, as named in ``sparkframes.spark.job`` (wrapped there, by name, for timing).
JOB_STEPS = {
    "read_input": "read input (pyarrow, into a DataFrame)",
    "read_state_table": "read the incremental state",
    "counts": "plan in Spark: stat, request keys, up-to-date join, counts",
    "collect": "tasks: extraction `collect()` (scheduling + task bodies)",
    "commit_run": "commit",
}
#: Where each step's function is looked up when the job runs it.
_STEP_OWNERS = {"counts": planning_module, "collect": ClassicDataFrame}


class StepClock:
    """Wall seconds of the job's steps: wraps the functions ``job.py`` calls by module name,
    and ``DataFrame.collect`` (the job collects once, the tasks' results). Timing only;
    behaviour is unchanged."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._saved: list[tuple[object, str, Callable[..., object]]] = []

    def _wrap(self, owner: object, attr: str, step: str) -> None:
        original = getattr(owner, attr)

        def timed_call(*args: object, **kwargs: object) -> object:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[step] = self.seconds.get(step, 0.0) + time.perf_counter() - t0

        self._saved.append((owner, attr, original))
        setattr(owner, attr, timed_call)

    def __enter__(self) -> StepClock:
        for name in JOB_STEPS:
            self._wrap(_STEP_OWNERS.get(name, job_module), name, name)
        add = RunSummary.add

        def add_and_count(summary: RunSummary, outcomes: list) -> None:
            # Per-video seconds measured in the tasks (extraction and writing of that video).
            self.seconds["video_s"] = self.seconds.get("video_s", 0.0) + sum(
                o.seconds for o in outcomes
            )
            add(summary, outcomes)

        self._saved.append((RunSummary, "add", add))
        RunSummary.add = add_and_count  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, attr, original in reversed(self._saved):
            setattr(owner, attr, original)
        self._saved.clear()


def balance(works: list[VideoWork], partitions: int) -> list[list[VideoWork]]:
    """Longest-first greedy assignment by file size, for the direct runs' pool."""
    bins: list[list[VideoWork]] = [[] for _ in range(max(1, min(partitions, len(works))))]
    loads = [0] * len(bins)
    for work in sorted(works, key=lambda w: w.size, reverse=True):
        i = loads.index(min(loads))
        bins[i].append(work)
        loads[i] += max(work.size, 1)
    return [b for b in bins if b]


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


def _config(input_path: str, output: str, timeout_s: float) -> ClipFramesConfig:
    values = {"input": input_path, "output": output, "mode": "overwrite", "progress": False}
    return build_config(ClipFramesConfig, {**values, **REQUEST, "video_timeout_s": timeout_s})


def run_spark(
    spark: SparkSession,
    input_path: str,
    output: Path,
    timeout_s: float,
    steps: list[dict[str, float]] | None = None,
) -> int:
    """The whole job into a fresh table; returns rows written (and appends its step times)."""
    config = _config(input_path, str(output), timeout_s)
    with StepClock() as clock:
        t0 = time.perf_counter()
        summary = job_module.run_clip_frames(spark, config)
        clock.seconds["total"] = time.perf_counter() - t0
    if steps is not None:
        steps.append(clock.seconds)
    if summary.errors or summary.videos_failed:
        raise RuntimeError(f"Spark job reported errors: {summary.line()}")
    return summary.frames


def _direct_write_chunk(args: tuple[list[VideoWork], TaskSettings, int]) -> tuple[int, float]:
    """In a pool worker: one Spark task's body, run as a plain function. Returns rows and the
    per-video seconds the body reports (summed), as the Spark tasks report them."""
    works, settings, partition = args
    _, outcomes = run_partition(works, settings, partition, 0, partition)
    rows = sum(sum(o.frames_by_purpose.values()) for o in outcomes if not o.failed)
    return rows, sum(o.seconds for o in outcomes)


def _extract_chunk(args: tuple[list[str], int]) -> int:
    """In a pool worker (or the main process): extraction only, batches consumed."""
    paths, threads = args
    config = _config("unused", "unused", 0)
    rows = 0
    for path in paths:
        ex = extract_clip_frames(
            path,
            config.specs(),
            stride=config.stride(),
            options=ExtractOptions(threads=threads),
        )
        for batch in ex:
            rows += len(batch)
        if ex.report.errors:
            raise RuntimeError(f"{path}: {ex.report.errors}")
    return rows


def make_works(paths: list[str]) -> list[VideoWork]:
    """The job's own unit of work, keyed as the job keys it, for the direct runs."""
    config = _config("unused", "unused", 0)
    (spec,) = config.specs()
    key = request_key(spec, None, config.stride())
    works = []
    for path in paths:
        st = os.stat(path)
        works.append(VideoWork(path, st.st_size, st.st_mtime_ns, None, {spec.purpose: key}))
    return works


def direct_settings(table: Path, timeout_s: float) -> TaskSettings:
    config = _config("unused", "unused", timeout_s)
    config = dataclasses.replace(config, decoder_threads=TASK_THREADS)
    return TaskSettings(run_id="direct", output=str(table), options=config)


def run_direct_write(
    pool: ProcessPoolExecutor,
    chunks: list[list[VideoWork]],
    table: Path,
    timeout_s: float,
    video_seconds: list[float] | None = None,
) -> int:
    """The task bodies on the pool; appends the summed per-video seconds to ``video_seconds``."""
    settings = direct_settings(table, timeout_s)
    jobs = [(chunk, settings, i) for i, chunk in enumerate(chunks)]
    results = list(pool.map(_direct_write_chunk, jobs))
    if video_seconds is not None:
        video_seconds.append(sum(sec for _, sec in results))
    return sum(rows for rows, _ in results)


def run_direct_extract(pool: ProcessPoolExecutor, chunks: list[list[VideoWork]]) -> int:
    jobs = [([w.video_path for w in chunk], TASK_THREADS) for chunk in chunks]
    return sum(pool.map(_extract_chunk, jobs))


# --------------------------------------------------------------------------------------------
# Output check (outside the timings)
# --------------------------------------------------------------------------------------------


def digest(files: list[Path]) -> tuple[int, str]:
    """(rows, a hash of every row's identity and pixels, order-independent)."""
    keys: list[str] = []
    for file in files:
        table = pq.read_table(file)
        cols = table.to_pydict()
        for i, frame in enumerate(cols["frame"]):
            ident = (
                cols["video_path"][i],
                cols["clip_id"][i],
                cols["target_fps"][i],
                cols["frame_index"][i],
                cols["pts_s"][i],
            )
            keys.append(f"{ident}:{hashlib.sha1(frame).hexdigest()}")
    return len(keys), hashlib.sha1("\n".join(sorted(keys)).encode()).hexdigest()[:12]


def frame_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet") if "purpose=" in str(p.parent))


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

METHODS = {
    "spark_inline": "Spark job, video_timeout_s=0 (decode in the Python worker)",
    "spark_isolated": "Spark job, default (videos in a decode worker per task, Arrow IPC)",
    "direct_write": "direct: task body (extract + Parquet), 2 processes",
    "direct_write_iso": "direct: task body, videos in a decode worker, 2 processes",
    "direct_extract": "direct: extract only, 2 processes",
    "seq_t2": "direct: extract only, 1 process, 2 decoder threads (reference)",
}
SPARK = ("spark_inline", "spark_isolated")
WRITERS = (*SPARK, "direct_write", "direct_write_iso")
DIRECT_OF = {"spark_inline": "direct_write", "spark_isolated": "direct_write_iso"}


def _default_workdir() -> Path:
    shm = Path("/dev/shm")
    return (shm if shm.is_dir() else CACHE_DIR) / "sparkframes_spark_bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 videos, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--videos", type=int, default=None, help="input videos (default 12)")
    parser.add_argument("--dir", default=None, help="work folder (default: /dev/shm)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    count = args.videos or (4 if args.quick else 12)
    machine = machine_info()
    print(machine, flush=True)

    video = ensure_video(recipe())
    state = "generated" if video.generated_now else "cached"
    print(f"{video.name}: {video.frames} frames ({state})", flush=True)
    paths = input_videos(video, count)
    work = Path(args.dir) if args.dir else _default_workdir()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    input_path = str(work / "input.parquet")
    pq.write_table(pa.table({"video_path": paths}), input_path)
    # Two videos: both task slots start (and keep) a Python worker before the timings.
    warm_input = str(work / "warm.parquet")
    pq.write_table(pa.table({"video_path": paths[:SLOTS]}), warm_input)
    chunks = balance(make_works(paths), PARTITIONS)

    # The pool forks both workers now, before the JVM exists, so they are plain Python
    # processes.
    pool = ProcessPoolExecutor(SLOTS, mp_context=multiprocessing.get_context("fork"))
    pool.submit(os.getpid).result()

    t0 = time.perf_counter()
    spark = get_session(MASTER, "sparkframes-spark-bench")
    spark.sparkContext.setLogLevel("ERROR")
    startup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for timeout in (0.0, ISOLATED_TIMEOUT_S):  # Python workers, imports, JIT, fork path
        run_spark(spark, warm_input, work / "warm_out", timeout)
    for timeout in (0.0, ISOLATED_TIMEOUT_S):
        run_direct_write(pool, [chunks[0][:1]], work / "warm_direct", timeout)
    run_direct_extract(pool, [chunks[0][:1]])
    warm_s = time.perf_counter() - t0
    idle = timed_tree(lambda: time.sleep(3) or 0)
    print(f"session {startup_s:.1f} s, warm-up {warm_s:.1f} s; idle tree CPU {idle.cpu:.2f} s/3 s")

    steps: dict[str, list[dict[str, float]]] = {m: [] for m in SPARK}
    direct_video_s: dict[str, list[float]] = {"direct_write": [], "direct_write_iso": []}
    calls: dict[str, Callable[[Path], int]] = {
        "spark_inline": lambda out: run_spark(spark, input_path, out, 0.0, steps["spark_inline"]),
        "spark_isolated": lambda out: run_spark(
            spark, input_path, out, ISOLATED_TIMEOUT_S, steps["spark_isolated"]
        ),
        "direct_write": lambda out: run_direct_write(
            pool, chunks, out / "table", 0.0, direct_video_s["direct_write"]
        ),
        "direct_write_iso": lambda out: run_direct_write(
            pool, chunks, out / "table", ISOLATED_TIMEOUT_S, direct_video_s["direct_write_iso"]
        ),
        "direct_extract": lambda out: run_direct_extract(pool, chunks),
        "seq_t2": lambda out: _extract_chunk((paths, 2)),
    }
    times: dict[str, list[Timed]] = {m: [] for m in METHODS}
    rows: dict[str, int] = {}
    digests: dict[str, tuple[int, str]] = {}
    started = time.perf_counter()
    for rep in range(reps):
        for method in rotated(list(METHODS), rep):
            out = work / f"out_{method}"
            shutil.rmtree(out, ignore_errors=True)
            t = timed_tree(lambda method=method, out=out: calls[method](out))
            times[method].append(t)
            expected = next(iter(rows.values()), t.value)
            if t.value != expected or not t.value:
                raise RuntimeError(f"{method}: {t.value} rows, other runs {expected}")
            rows[method] = t.value
            if rep == 0 and method in WRITERS:
                digests[method] = digest(frame_files(out))
            print(
                f"rep {rep} {method:>14}: {t.wall:6.2f} s wall {t.cpu:6.2f} s CPU, "
                f"{t.value} rows ({t.value / t.wall:.0f}/s)",
                flush=True,
            )
    total_s = time.perf_counter() - started
    spark.stop()
    pool.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    body = _report(
        machine,
        video,
        count,
        chunks,
        times,
        steps,
        direct_video_s,
        rows,
        digests,
        reps,
        args.quick,
        total_s,
        (startup_s, warm_s, idle.cpu / 3),
        work,
    )
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, body)}")
    return 0


def _report(
    machine: str,
    video: VideoInfo,
    count: int,
    chunks: list[list[VideoWork]],
    times: dict[str, list[Timed]],
    steps: dict[str, list[dict[str, float]]],
    direct_video_s: dict[str, list[float]],
    rows: dict[str, int],
    digests: dict[str, tuple[int, str]],
    reps: int,
    quick: bool,
    total_s: float,
    session: tuple[float, float, float],
    work: Path,
) -> str:
    startup_s, warm_s, idle_cpu = session
    lines = [
        "## Spark job overhead: clip-frames on local[2] vs the decode core run directly "
        "(`bench/spark_bench.py`)",
        "",
        "Reproduce: `python -m bench.spark_bench` (`--quick` for a smoke run, `--reps N`, "
        "`--videos N`, `--dir D`, `--no-write` to leave this file alone).",
        "",
        machine,
        "",
        f"Input: {count} videos, byte-identical copies of one under distinct names "
        f"({video.name}: {video.width}x{video.height}@{video.fps}, {video.seconds:g} s, "
        f"{video.frames} frames, {video.mbps} Mbit/s; {video.note}). Request: rates 1 and 2 fps "
        "at 224x224 on 10 s fixed-stride clips. "
        f"`{MASTER}`, so 2 tasks at once with {TASK_THREADS} decoder thread each; "
        f"{len(chunks)} partitions of {', '.join(str(len(c)) for c in chunks)} videos "
        "(longest first by file size), and the direct runs use the same partitions on a pool of "
        f"2 forked processes. Files under `{work.parent}` (tmpfs), written anew each run. "
        f"{reps} repetition(s){' (--quick)' if quick else ''}, methods in a rotating order; times "
        "are medians, ratios medians of per-repetition ratios. CPU = user+sys of this process "
        "and all descendants (JVM, Python workers, pool, decode workers). Timed part "
        f"{total_s:.0f} s. SparkSession start-up {startup_s:.1f} s and a warm-up of one "
        f"{SLOTS}-video job per mode ({warm_s:.1f} s) are outside the timings; the idle "
        f"process tree (JVM and all) burns {idle_cpu:.3f} CPU s per s, counted in every "
        "method alike.",
        "",
        "Headline: Spark throughput relative to the direct run, t(direct) / t(Spark) "
        "(target 0.85x); median of the per-repetition ratios, their range in brackets:",
        "",
    ]
    comparisons = [
        ("spark_inline", "direct_write", "Spark in-process vs direct (task body, in-process)"),
        ("spark_isolated", "direct_write", "Spark isolated (default) vs direct (in-process)"),
        ("spark_isolated", "direct_write_iso", "Spark isolated vs direct isolated (like for like)"),
        ("spark_inline", "direct_extract", "Spark in-process vs direct extract only (no write)"),
        ("spark_isolated", "direct_extract", "Spark isolated vs direct extract only (no write)"),
    ]
    hrows = []
    for spark_method, base, label in comparisons:
        ts, bs = times[spark_method], times[base]
        met = "yes" if ratio(bs, ts) >= 0.85 else "**no**"
        hrows.append([label, ratio_cell(bs, ts), ratio_cell(bs, ts, cpu=True), met])
    hheader = ["comparison", "throughput ratio, wall", "throughput ratio, CPU", "0.85x met (wall)"]
    lines += [md_table(hheader, hrows), ""]

    def iso_cost(iso: str, inline: str) -> str:
        a, b = times[iso], times[inline]
        return f"{ratio(a, b):.2f}x wall, {ratio(a, b, cpu=True):.2f}x CPU"

    lines += [
        "Isolation (a decode worker per task, frames over a pipe as Arrow IPC), t(isolated) / "
        f"t(in-process): in the Spark job {iso_cost('spark_isolated', 'spark_inline')}; in the "
        f"direct run {iso_cost('direct_write_iso', 'direct_write')}.",
        "",
        "All methods (frames/s = output rows per wall second; each row is one frame of one "
        "rate of one clip):",
        "",
    ]
    base = times["direct_write"]
    trows = []
    for method, label in METHODS.items():
        ts = times[method]
        trows.append(
            [
                label,
                f"{median(t.wall for t in ts):.2f}",
                f"{median(t.cpu for t in ts):.2f}",
                f"{median(rows[method] / t.wall for t in ts):.0f}",
                f"{ratio(base, ts):.2f}x",
                f"{ratio(base, ts, cpu=True):.2f}x",
                str(rows[method]),
            ]
        )
    theader = ["method", "wall s", "CPU s", "frames/s", "vs direct write wall"]
    theader += ["vs direct write CPU", "rows"]
    lines += [md_table(theader, trows), ""]
    lines += [
        "Where the Spark job's wall time goes (medians over repetitions, from timing wrappers "
        "around the functions `job.py` calls; *other* = total minus the steps: manifest loads, "
        "settings, summary):",
        "",
    ]
    srows = []
    for step, label in [*JOB_STEPS.items(), ("other", "other driver work"), ("total", "total")]:
        row = [label]
        for method in SPARK:
            runs = steps[method]
            if step == "other":
                values = [r["total"] - sum(r.get(k, 0.0) for k in JOB_STEPS) for r in runs]
            else:
                values = [r.get(step, 0.0) for r in runs]
            share = median(v / r["total"] for v, r in zip(values, runs, strict=True))
            row += [f"{median(values):.3f}", f"{share:.0%}"]
        srows.append(row)
    sheader = ["step", "in-process s", "share", "isolated s", "share"]
    lines += [md_table(sheader, srows), ""]
    per_slot = [
        (
            "per-video work the task bodies report (extract + write; summed / "
            f"{SLOTS} slots), Spark",
            [median(r.get("video_s", 0.0) / SLOTS for r in steps[m]) for m in SPARK],
        ),
        (
            "the same reported by the direct run's task bodies",
            [median(v / SLOTS for v in direct_video_s[m]) for m in DIRECT_OF.values()],
        ),
        (
            "`collect` minus Spark's per-video work: scheduling, task launch, results, "
            "slot idle time",
            [
                median(r.get("collect", 0.0) - r.get("video_s", 0.0) / SLOTS for r in steps[m])
                for m in SPARK
            ],
        ),
        (
            "job total minus `collect`: driver steps",
            [median(r["total"] - r.get("collect", 0.0) for r in steps[m]) for m in SPARK],
        ),
    ]
    lines += [
        "Inside `collect` (seconds per slot, medians; in-process | isolated):",
        "",
        md_table(
            ["", "in-process s", "isolated s"],
            [[label, *(f"{v:.2f}" for v in values)] for label, values in per_slot],
        ),
        "",
    ]
    same = len(set(digests.values())) == 1
    lines += [
        "Check (first repetition): rows and a hash of every row's identity and pixels, from "
        "the Parquet files each writing method produced: "
        + ", ".join(f"{m} {n} rows `{h}`" for m, (n, h) in digests.items())
        + (" (identical)." if same else " (**they differ**)."),
        "",
        load_note(),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
