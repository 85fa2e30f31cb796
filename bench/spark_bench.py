"""Spark job overhead: the clip-frames job on local[2] against the library on the same 2 cores.

The same request (rates 1 and 2 fps at 224x224 on 10 s fixed-stride clips) over the same N
videos, measured from outside, each as one wall time of a public entry point:

* the Spark job, ``sparkframes.spark.write_clip_frames`` on ``local[2]`` into a fresh table
  (reading the input, planning, tasks, Parquet, the commit), twice: ``video_timeout_s=0`` (each
  video decoded in the Python worker) and the default (each task's videos in a decode worker);
  the SparkSession's start and a warm-up job per mode are outside the timings;
* the library, ``sparkframes.extract_clip_frames`` on the same videos in partitions of the same
  sizes, in a pool of 2 forked processes with 1 decoder thread each (what ``local[2]`` runs,
  minus Spark and the table), batches consumed; and one process with 2 decoder threads.

CPU is user+sys of this process and every descendant (JVM, Python workers, decode workers, the
pool). Both Spark modes must write the same rows and pixels, as many rows as the library gives.
Run: ``python -m bench.spark_bench [--quick] [--reps N] [--videos N] [--dir D]``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import sparkframes
import sparkframes.spark
from bench.harness import (
    CACHE_DIR,
    Run,
    interleaved,
    local_spark,
    measure,
    median,
    ratio,
    table_digest,
    times,
)
from bench.videos import copies, ensure_video, facts, x264

SLOTS = 2  # local[2]: tasks at once, each with 1 cpu and so 1 decoder thread
PARTITIONS = 2 * SLOTS  # the job's default: twice the default parallelism
RATES, SIZE, CLIP_S = (1, 2), (224, 224), 10
INLINE, ISOLATED = "Spark job, video_timeout_s=0", "Spark job, default (decode worker per task)"
POOL, ONE = "library, 2 processes x 1 decoder thread", "library, 1 process x 2 decoder threads"


def extract(paths: list[str], threads: int) -> int:
    """The library on ``paths`` one after another, batches consumed; returns rows."""
    spec = sparkframes.ExtractionSpec("embeddings", target_fps=RATES, target_res=SIZE)
    stride = sparkframes.FixedStride(clip_len_s=Fraction(CLIP_S), stride_s=Fraction(CLIP_S))
    rows = 0
    for path in paths:
        options = sparkframes.ExtractOptions(threads=threads)
        ex = sparkframes.extract_clip_frames(path, [spec], stride=stride, options=options)
        rows += sum(len(batch) for batch in ex)
        if ex.report.errors:
            raise RuntimeError(f"{path}: {ex.report.errors}")
    return rows


def partitions(paths: list[str], count: int) -> list[list[str]]:
    """Longest first by file size onto the least loaded partition, as the job plans them."""
    bins: list[list[str]] = [[] for _ in range(min(count, len(paths)))]
    loads = [0] * len(bins)
    for path in sorted(paths, key=os.path.getsize, reverse=True):
        i = loads.index(min(loads))
        bins[i].append(path)
        loads[i] += os.path.getsize(path)
    return bins


def write(spark: Any, input_path: str, output: Path, timeout_s: float | None) -> int:
    """The Spark job into a fresh table; returns the rows written."""
    shutil.rmtree(output, ignore_errors=True)
    options: dict[str, Any] = {"target_fps": list(RATES), "target_res": SIZE, "clip_len_s": CLIP_S}
    if timeout_s is not None:
        options["video_timeout_s"] = timeout_s
    summary = sparkframes.spark.write_clip_frames(
        input_path, str(output), mode="overwrite", spark=spark, progress=False, **options
    )
    if summary.errors or summary.videos_failed:
        raise RuntimeError(f"Spark job reported errors: {summary.line()}")
    return summary.frames


def main(argv: list[str] | None = None) -> int:
    videos = {"type": int, "help": "input videos (default 12, --quick 2)"}
    folder = {"type": Path, "help": "work folder (default /dev/shm)"}
    run = Run(__file__, __doc__, reps=5, argv=argv, videos=videos, dir=folder)
    count = run.args.videos or (2 if run.quick else 12)
    seconds = 10 if run.quick else 20  # one or two 10 s clips a video
    video = ensure_video(x264("h264_720p_spark", 1280, 720, seconds))
    paths = copies(video, count)
    shm = Path("/dev/shm")
    work = run.args.dir or (shm if shm.is_dir() else CACHE_DIR) / "sparkframes_spark_bench"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    inputs = {"all": paths, "warm": paths[:SLOTS]}  # warm-up: both task slots start a worker
    for name, chosen in inputs.items():
        pq.write_table(pa.table({"video_path": chosen}), work / f"{name}.parquet")
    chunks = partitions(paths, PARTITIONS)

    # The pool forks its workers now, before the JVM exists: plain Python processes.
    pool = ProcessPoolExecutor(SLOTS, mp_context=multiprocessing.get_context("fork"))
    pool.submit(os.getpid).result()
    session = measure(local_spark)
    spark = session.value
    warm = measure(
        lambda: (
            [write(spark, str(work / "warm.parquet"), work / "warm", t) for t in (0.0, None)]
            + list(pool.map(extract, chunks[:SLOTS], [1] * SLOTS))
        )
    )
    idle = measure(lambda: time.sleep(3), tree=True)
    all_input = str(work / "all.parquet")
    methods = {
        INLINE: lambda rep: write(spark, all_input, work / "inline", 0.0),
        ISOLATED: lambda rep: write(spark, all_input, work / "isolated", None),
        POOL: lambda rep: sum(pool.map(extract, chunks, [1] * len(chunks))),
        ONE: lambda rep: extract(paths, 2),
    }
    runs = interleaved(methods, run.reps, label="spark", tree=True)
    rows = {name: {t.value for t in ts} for name, ts in runs.items()}
    if len(set().union(*rows.values())) != 1:
        raise RuntimeError(f"rows differ between methods or repetitions: {rows}")
    hashes = {name: table_digest(str(work / name)) for name in ("inline", "isolated")}
    if len(set(hashes.values())) != 1:
        raise RuntimeError(f"the two Spark modes wrote different rows: {hashes}")
    spark.stop()
    pool.shutdown()
    shutil.rmtree(work, ignore_errors=True)

    frames = next(iter(rows[POOL]))
    table = []
    for name, ts in runs.items():
        row = {"method": name, **times(ts), "frames/s": median(frames / t.wall for t in ts)}
        vs = {
            "vs library wall": ratio(runs[POOL], ts),
            "vs library CPU": ratio(runs[POOL], ts, cpu=True),
        }
        table.append(row | vs | {"rows": frames})
    headline = [
        {
            "comparison": f"{spark_mode} vs {POOL}",
            "throughput ratio, wall": ratio(runs[POOL], runs[spark_mode]),
            "throughput ratio, CPU": ratio(runs[POOL], runs[spark_mode], cpu=True),
            "0.85x met (wall)": ratio(runs[POOL], runs[spark_mode])["median"] >= 0.85,
        }
        for spark_mode in (INLINE, ISOLATED)
    ]
    headline.append(
        {
            "comparison": "isolation: t(isolated) / t(in-process), Spark job",
            "throughput ratio, wall": ratio(runs[ISOLATED], runs[INLINE]),
            "throughput ratio, CPU": ratio(runs[ISOLATED], runs[INLINE], cpu=True),
        }
    )
    parameters = {
        "videos": count,
        "request": f"rates {RATES} fps at {SIZE[0]}x{SIZE[1]} on {CLIP_S} s clips",
        "master": f"local[{SLOTS}]",
        "library partitions": [len(c) for c in chunks],
        "work folder": str(work),
        "session start s (not timed)": session.wall,
        "warm-up s (not timed)": warm.wall,
        "idle process tree CPU s per s": idle.cpu / 3,
        "Spark tables' row hash": hashes["inline"],
    }
    run.save(parameters, {"videos": [facts(video)], "headline": headline, "methods": table})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
