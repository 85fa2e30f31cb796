"""What a run costs around the decode: the Spark job against the library on the same 2 cores.

Three workloads, each on ``local[2]`` with the SparkSession started (and warmed up by one small
run) outside every timing, the job measured from outside as one wall time of
``sparkframes.spark.write_clip_frames`` into a fresh table (default: each task's videos in a
decode worker, so isolation on):

* fixed cost: N tiny videos (3 frames of 64x48, policy ``middle``): from the call to the first
  decode, read as the earliest access time of the input files (their atime is set back before
  each run, so a relatime filesystem records the first read: planning only stats them), the
  whole run, and the Spark jobs it started;
* 80 clips: 10 s 720p H.264 at 2 fps and 224x224 (four distinct files, hard-linked 20 times
  each): the job against ``sparkframes.extract_clip_frames`` on the same paths in a pool of 2
  forked processes x 1 decoder thread, the paths split as the job splits them (4 tasks);
* 400 clips: 4 s QCIF H.264, policy ``middle``: ms per video, the job against the library in
  that pool and in one process.

Then the data files of each workload's table: as the job wrote them (a task's videos share a
file per purpose) and after ``sparkframes.optimize`` (delta-rs rewrites them with its own
Parquet settings, which compress and dictionary-encode the frames: the copies' identical frames
shrink to almost nothing there, so the compacted sizes say little about real videos).

Methods are interleaved, each repetition in a rotated order; ratios are t(library) / t(job)
per repetition (the job's throughput as a share of the library's). The job and the library must
give the same number of frames.
Run: ``python -m bench.spark_bench [--quick] [--reps N] [--tiny N]``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import sparkframes
import sparkframes.spark
from bench.harness import CACHE_DIR, Run, interleaved, local_spark, measure, median, ratio, times
from bench.videos import copies, ensure_video, facts, tiny_videos_input, x264

SLOTS = 2  # local[2]: two tasks at once, each with 1 cpu and so 1 decoder thread
TASKS = 2 * SLOTS  # the job's default partitions
SIZE, RATE = (224, 224), 2
JOB, POOL, ONE = "Spark job", "library, 2 processes x 1 thread", "library, 1 process"


def library(paths: list[str], policy: str) -> int:
    """The library on ``paths`` one after another, as a task does (1 decoder thread); rows."""
    rates = (RATE,) if policy == "sequence" else ()
    spec = sparkframes.ExtractionSpec(
        "embeddings", target_fps=rates, target_res=SIZE, policy=sparkframes.Policy(policy)
    )
    rows = 0
    for path in paths:
        ex = sparkframes.extract_clip_frames(path, [spec], options=sparkframes.ExtractOptions(1))
        rows += sum(len(batch) for batch in ex)
        if ex.report.errors:
            raise RuntimeError(f"{path}: {ex.report.errors}")
    return rows


def job(spark: Any, input_path: str, output: Path, policy: str) -> int:
    """The Spark job into a fresh table; the frames it wrote."""
    shutil.rmtree(output, ignore_errors=True)
    rates = {"target_fps": [RATE]} if policy == "sequence" else {}
    summary = sparkframes.spark.write_clip_frames(
        input_path,
        str(output),
        mode="overwrite",
        spark=spark,
        progress=False,
        policy=policy,
        target_res=SIZE,
        **rates,
    )
    if summary.errors or summary.videos_failed:
        raise RuntimeError(f"Spark job reported errors: {summary.line()}")
    return summary.frames


def linked(sources: list[str], count: int, folder: Path) -> list[str]:
    """``count`` hard links, the sources in turn: many videos of a few known files."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        link = folder / f"v{i:04d}{Path(sources[0]).suffix}"
        if not link.exists():
            os.link(sources[i % len(sources)], link)
        paths.append(str(link))
    return paths


def table_of(paths: list[str], path: Path) -> str:
    pq.write_table(pa.table({"video_path": paths}), path)
    return str(path)


def chunks(paths: list[str]) -> list[list[str]]:
    """The paths in ``TASKS`` parts, in turn: as the job deals videos of equal size."""
    return [paths[i::TASKS] for i in range(TASKS)]


def fixed_cost(spark: Any, work: Path, videos: int, reps: int) -> list[dict]:
    """Call to first decode, whole run and Spark jobs, for ``videos`` tiny videos."""
    folder = work / f"tiny_{videos}"
    input_path = str(tiny_videos_input(folder, videos))
    sources = sorted(folder.glob("source_*.mp4"))
    tracker = spark.sparkContext.statusTracker()
    rows = []
    for rep in range(reps):
        for source in sources:  # atime before mtime: the next read is recorded
            st = os.stat(source)
            os.utime(source, (st.st_mtime - 60, st.st_mtime))
        jobs_before = set(tracker.getJobIdsForGroup())
        started = time.time()
        t = measure(lambda: job(spark, input_path, work / "fixed", "middle"))
        first = min(os.stat(s).st_atime for s in sources)
        if first < started:
            raise RuntimeError(f"{folder}: the filesystem did not record the first read (atime)")
        rows.append(
            {
                "videos": videos,
                "repetition": rep,
                "call to first decode s": first - started,
                "whole run s": t.wall,
                "ms per video": t.wall / videos * 1e3,
                "Spark jobs": len(set(tracker.getJobIdsForGroup()) - jobs_before),
            }
        )
        print(f"fixed cost {videos} videos rep {rep}: {rows[-1]}", flush=True)
    return rows


def side_by_side(
    spark: Any,
    pool: ProcessPoolExecutor,
    name: str,
    paths: list[str],
    policy: str,
    work: Path,
    reps: int,
) -> tuple[list[dict], dict]:
    """The job and the library on ``paths``, interleaved: a row per method, and the headline."""
    input_path = table_of(paths, work / f"{name}.parquet")
    methods = {
        JOB: lambda rep: job(spark, input_path, work / name, policy),
        POOL: lambda rep: sum(pool.map(library, chunks(paths), [policy] * TASKS)),
    }
    if policy == "middle":
        methods[ONE] = lambda rep: library(paths, policy)
    runs = interleaved(methods, reps, label=name, tree=True)
    frames = {m: {t.value for t in ts} for m, ts in runs.items()}
    if len(set().union(*frames.values())) != 1:
        raise RuntimeError(f"{name}: frames differ between methods or repetitions: {frames}")
    rows = [
        {
            "workload": name,
            "method": m,
            **times(ts),
            "ms per video": median(t.wall for t in ts) / len(paths) * 1e3,
            "job throughput / this method's": ratio(ts, runs[JOB]) if m != JOB else None,
            "frames": next(iter(frames[m])),
        }
        for m, ts in runs.items()
    ]
    share = ratio(runs[POOL], runs[JOB])
    headline = {
        "workload": name,
        "videos": len(paths),
        "job s": median(t.wall for t in runs[JOB]),
        "library s (2 processes)": median(t.wall for t in runs[POOL]),
        "job throughput / library's": share,
        "job ms per video": median(t.wall for t in runs[JOB]) / len(paths) * 1e3,
    }
    return rows, headline


def file_sizes(table: Path, name: str) -> list[dict]:
    """The frames table's data files as the job left them, then after ``sparkframes.optimize``."""
    from deltalake import DeltaTable

    rows = []
    for state in ("as written", "after optimize"):
        if state == "after optimize":
            sparkframes.optimize(str(table))
        actions = DeltaTable(str(table)).get_add_actions(flatten=True)
        sizes = sorted(actions["size_bytes"].to_pylist())
        rows.append(
            {
                "workload": name,
                "table": state,
                "rows": sum(actions["num_records"].to_pylist()),
                "files": len(sizes),
                "median MB": median(sizes) / 1e6,
                "smallest MB": sizes[0] / 1e6,
                "largest MB": sizes[-1] / 1e6,
                "total MB": sum(sizes) / 1e6,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    tiny = {"type": str, "help": "tiny-video counts for the fixed cost (default 100,1000)"}
    run = Run(__file__, __doc__, reps=3, argv=argv, tiny=tiny)
    tiny_counts = [
        int(n) for n in (run.args.tiny or ("100" if run.quick else "100,1000")).split(",")
    ]
    clips_80, clips_400 = (8, 40) if run.quick else (80, 400)
    work = CACHE_DIR / "spark_bench"
    shutil.rmtree(work / "tables", ignore_errors=True)
    (work / "tables").mkdir(parents=True, exist_ok=True)
    hd = ensure_video(x264("h264_720p_10s", 1280, 720, 10))
    qcif = ensure_video(x264("h264_qcif_4s", 176, 144, 4))
    paths_80 = linked(copies(hd, 4), clips_80, work / "links_720p")
    paths_400 = linked(copies(qcif, 4), clips_400, work / "links_qcif")

    # The pool forks its workers now, before the JVM exists: plain Python processes.
    pool = ProcessPoolExecutor(SLOTS, mp_context=multiprocessing.get_context("fork"))
    pool.submit(os.getpid).result()
    session = measure(local_spark)
    spark = session.value
    warm_input = table_of(paths_400[:TASKS], work / "warm.parquet")
    warm = measure(
        lambda: (
            job(spark, warm_input, work / "tables" / "warm", "middle"),
            list(pool.map(library, chunks(paths_400[:TASKS]), ["middle"] * TASKS)),
        )
    )
    tables = work / "tables"
    fixed = [row for n in tiny_counts for row in fixed_cost(spark, tables, n, run.reps)]
    rows_80, head_80 = side_by_side(spark, pool, "80 clips", paths_80, "sequence", tables, run.reps)
    rows_400, head_400 = side_by_side(
        spark, pool, "400 clips", paths_400, "middle", tables, run.reps
    )
    spark.stop()
    pool.shutdown()
    files = [
        *file_sizes(tables / "80 clips", "80 clips"),
        *file_sizes(tables / "400 clips", "400 clips"),
    ]
    if any(a["rows"] != b["rows"] for a, b in zip(files[::2], files[1::2], strict=True)):
        raise RuntimeError(f"optimize changed the number of rows: {files}")
    shutil.rmtree(tables, ignore_errors=True)

    fixed_summary = [
        {
            "videos": n,
            "call to first decode s (median)": median(
                r["call to first decode s"] for r in fixed if r["videos"] == n
            ),
            "whole run s (median)": median(r["whole run s"] for r in fixed if r["videos"] == n),
            "Spark jobs": max(r["Spark jobs"] for r in fixed if r["videos"] == n),
        }
        for n in tiny_counts
    ]
    head_80["0.85x met"] = head_80["job throughput / library's"]["median"] >= 0.85
    head_400["15 ms per video met"] = head_400["job ms per video"] <= 15
    parameters = {
        "master": f"local[{SLOTS}]",
        "job tasks": TASKS,
        "80 clips": f"{clips_80} hard links of 4 copies of the 10 s 720p video, "
        f"{RATE} fps at {SIZE[0]}x{SIZE[1]}",
        "400 clips": f"{clips_400} hard links of 4 copies of the 4 s QCIF video, policy middle",
        "fixed cost": "tiny videos: 3 frames of 64x48 H.264, policy middle",
        "session start s (not timed)": session.wall,
        "warm-up s (not timed)": warm.wall,
    }
    run.save(
        parameters,
        {
            "videos": [facts(hd), facts(qcif)],
            "headline": [head_80, head_400],
            "fixed cost": fixed_summary,
            "fixed cost, each run": fixed,
            "methods": rows_80 + rows_400,
            "data files": files,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
