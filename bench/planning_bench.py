"""Planning in Spark: how a refresh's time and memory grow with the input, up to 1 M rows.

For each input size N (hard links of a few copies of one tiny video, so stat'ing them is real
work but extracting them is never needed), on a warm local[2] session:

* no-op refresh: ``sparkframes.spark.write_clip_frames`` (policy ``middle``, incremental) on a
  table whose state already holds every video, up to date: it reads the input, stats every file
  on the executors, joins the state, finds nothing to do and commits nothing. The state is
  committed directly from each video's stat and request key (what a run would have committed),
  not by extracting N videos first;
  Its tasks only count the videos;
* planning an all-new input: the same query up to the tasks (per-video plan, stat, decision,
  the deal to tasks) against an empty table, counted instead of extracted (internals: there is
  no public dry run).

Memory, sampled every 20 ms, peak RSS: the driver's Python process (what it holds from earlier
runs included: pyarrow keeps freed memory for reuse), the JVM (in local mode the driver's and
the executors' at once: heap, shuffle, the state's rows) and the Spark Python workers (summed
over those alive at once: planning's and the tasks').
Run: ``python -m bench.planning_bench [--quick] [--rows 10000,100000,1000000] [--reps N]``.
"""

from __future__ import annotations

import shutil
import threading
import time
from typing import Any

import pyarrow.parquet as pq

import sparkframes.spark
from bench import internals as sf
from bench.harness import CACHE_DIR, Run, local_spark, median, rotated
from bench.videos import tiny_videos_input

REQUEST = {"policy": "middle", "progress": False}


def up_to_date_state(input_path: str, output: str) -> None:
    """Commit the state a run over the input would have left: each video up to date."""
    config = sf.build_options(
        sf.ClipFramesOptions, {"input": input_path, "output": output, **REQUEST}
    )
    paths = pq.read_table(input_path)["video_path"].to_pylist()
    states = sf.file_states(paths)
    keys = sf.unit_keys_of(config)(None).items()
    units = [
        sf.UnitState(p, purpose, *states[p], key, frames=1) for p in paths for purpose, key in keys
    ]
    sf.commit(sf.TableLocation.of(output), [], [], units, overwrite=True)


def plan_only(spark: Any, input_path: str, output: str) -> tuple[int, int]:
    """What a run plans before its tasks decode, counted: (videos, videos to extract)."""
    from pyspark.sql import functions as F

    config = sf.build_options(
        sf.ClipFramesOptions, {"input": input_path, "output": output, **REQUEST}
    )
    planning, slots = sf.planning, sf.default_parallelism(spark)
    rows = planning.input_rows(sf.read_input(spark, input_path))
    loc = sf.TableLocation.of(output)
    state = sf.state_files(loc)
    videos = planning.with_state(spark, planning.videos_of(rows, slots), loc, state, slots)
    dealt = planning.works(planning.decided(videos, config), 2 * slots, slots)
    todo = F.sum((F.size("request_keys") > 0).cast("long"))
    row = dealt.agg(F.count("*").alias("videos"), todo.alias("todo")).first()
    return int(row["videos"]), int(row["todo"])


KINDS = ("driver Python", "JVM", "Spark Python workers")


def rss_by_kind() -> dict[str, float]:
    """RSS in MiB of this process, the JVM, and the Spark Python workers (summed)."""
    import psutil

    me, totals = psutil.Process(), dict.fromkeys(KINDS, 0.0)
    for proc in [me, *me.children(recursive=True)]:
        try:
            rss, name, cmdline = proc.memory_info().rss, proc.name(), " ".join(proc.cmdline())
        except psutil.Error:
            continue
        kind = (
            KINDS[0]
            if proc.pid == me.pid
            else "JVM"
            if name == "java"
            else KINDS[2]
            if "pyspark" in cmdline
            else None
        )
        if kind:
            totals[kind] += rss / 2**20
    return totals


def peaks(fn: Any) -> tuple[float, dict[str, float]]:
    """Run ``fn``: (wall s, peak RSS MiB per kind)."""
    start = rss_by_kind()
    peak = dict(start)
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            for kind, mib in rss_by_kind().items():
                peak[kind] = max(peak[kind], mib)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        fn()
    finally:
        wall = time.perf_counter() - t0
        stop.set()
        sampler.join()
    return wall, peak


def main(argv: list[str] | None = None) -> int:
    rows_flag = {"default": "10000,100000,1000000", "help": "comma-separated input sizes"}
    run = Run(__file__, __doc__, reps=3, argv=argv, rows=rows_flag)
    sizes = [1000, 3000] if run.quick else [int(r) for r in run.args.rows.split(",")]
    work = CACHE_DIR / "planning_bench"
    shutil.rmtree(work / "tables", ignore_errors=True)
    spark = local_spark(2, "planning-bench")
    rows = []
    for n in sizes:
        inputs = str(tiny_videos_input(work, n))
        noop, fresh = str(work / "tables" / f"up_{n}"), str(work / "tables" / f"new_{n}")
        up_to_date_state(inputs, noop)

        def refresh(inputs: str = inputs, noop: str = noop, n: int = n) -> None:
            summary = sparkframes.spark.write_clip_frames(inputs, noop, spark=spark, **REQUEST)
            assert summary.videos_processed == 0 and summary.videos_skipped == n, summary.line()

        def plan(inputs: str = inputs, fresh: str = fresh, n: int = n) -> None:
            assert plan_only(spark, inputs, fresh) == (n, n)

        refresh()  # warm-up: the session's Python workers, the first job's compilation
        methods = {"no-op refresh": refresh, "planning, all new": plan}
        measured: dict[str, list] = {name: [] for name in methods}
        for rep in range(run.reps):
            for name in rotated(list(methods), rep):
                measured[name].append(peaks(methods[name]))
                print(f"{n} rows rep {rep} {name}: {measured[name][-1]}", flush=True)
        row: dict[str, Any] = {"input rows": n}
        for name, runs in measured.items():
            row[f"{name} s"] = median(wall for wall, _ in runs)
            for kind in KINDS:
                row[f"{name}: {kind} peak MiB"] = max(p[kind] for _, p in runs)
        rows.append(row)
    spark.stop()
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        growth = {
            k: {"median": last[k] / first[k]} for k in first if k.endswith(" s") and first[k] > 0.5
        }
        rows.append(
            {"input rows": f"{last['input rows'] // first['input rows']}x the rows", **growth}
        )
    run.save(
        {"master": "local[2]", "video": "3-frame 64x48 H.264 (hard links)", **REQUEST},
        {"planning": rows},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
