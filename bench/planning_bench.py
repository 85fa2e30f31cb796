"""Planning a refresh in Spark: how its time and the driver's memory grow with the input.

    python -m bench.planning_bench [--quick] [--rows 10000,100000] [--reps N]

For each input size N (videos are hard links of a few copies of one tiny file, so stat'ing
them is real work but extracting them is never needed):

* **no-op refresh**: the table's state (``OUT/_state``) already holds every video, up to date,
  so ``run_clip_frames`` reads the input, stats every file on the executors, joins the state,
  finds nothing to do and commits nothing. The state is written directly from each video's
  stat and request key (what a run would have committed), not by extracting N videos first.
* **planning an all-new input**: the same input against an empty table, up to the decision
  (per-video plan, stat, join, counts), without the extraction that would follow.

Each is timed on a warm local[2] session, and the driver's Python process's memory is sampled
every 5 ms (peak RSS during the call minus RSS before it). In local mode the executors run in
the driver's JVM, so the JVM's memory is not the driver's alone and is not reported.
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from collections.abc import Callable

import psutil
import pyarrow.parquet as pq

from bench.common import (
    CACHE_DIR,
    load_note,
    machine_info,
    md_table,
    median,
    tiny_videos_input,
    write_section,
)
from sparkframes.filesystems import file_states
from sparkframes.options import ClipFramesConfig, build_config
from sparkframes.spark import planning
from sparkframes.spark.inputs import read_input
from sparkframes.spark.job import run_clip_frames
from sparkframes.spark.request_keys import unit_keys
from sparkframes.spark.resources import default_parallelism
from sparkframes.spark.session import get_session
from sparkframes.table.commit import AttemptResult, commit_run
from sparkframes.table.delta import TableLocation
from sparkframes.table.state import UnitState, read_state_table

REQUEST = {"policy": "middle", "progress": False}


def write_up_to_date_state(config: ClipFramesConfig, paths: list[str]) -> None:
    """The state a run over ``paths`` would have committed, each video up to date."""
    states = file_states(paths)
    units = [
        UnitState(path, purpose, *states[path], key, frames=1)
        for path in paths
        for purpose, key in unit_keys(config, None).items()
    ]
    loc = TableLocation.of(config.output)
    commit_run(loc, "bench-state", [AttemptResult([], [], units)], overwrite=True, metadata={})


def measured(fn: Callable[[], object]) -> tuple[float, float, object]:
    """(seconds, MiB the driver's RSS rose by at its peak, result) of one call."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    value = fn()
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    return seconds, (peak[0] - base) / 2**20, value


def plan_only(spark, config: ClipFramesConfig) -> tuple[int, int]:
    """What a run does before its tasks: input, per-video plan, stat, join, counts."""
    loc = TableLocation.of(config.output)
    slots = default_parallelism(spark)
    rows = planning.input_rows(read_input(spark, config.input))
    planned = planning.planned_units(planning.videos_of(rows, slots), config)
    state = planning.state_frame(spark, read_state_table(loc))
    decided = planning.out_of_date(planned, state, slots).cache()
    try:
        return planning.counts(decided)
    finally:
        decided.unpersist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 and 10,000 rows, once")
    parser.add_argument("--rows", default="10000,100000", help="comma-separated input sizes")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [1000, 10000] if args.quick else [int(r) for r in args.rows.split(",")]
    reps = 1 if args.quick else args.reps
    work = CACHE_DIR / "planning_bench"
    shutil.rmtree(work / "tables", ignore_errors=True)
    header = machine_info()
    started = time.perf_counter()
    spark = get_session("local[2]", "planning-bench", log_level="ERROR")
    results: dict[int, dict[str, list]] = {}
    for n in sizes:
        inputs = tiny_videos_input(work, n)
        paths = pq.read_table(inputs)["video_path"].to_pylist()
        base = {"input": str(inputs), **REQUEST}
        noop = build_config(ClipFramesConfig, {**base, "output": str(work / "tables" / f"up_{n}")})
        fresh = build_config(
            ClipFramesConfig, {**base, "output": str(work / "tables" / f"new_{n}")}
        )
        write_up_to_date_state(noop, paths)
        run_clip_frames(spark, noop)  # warm-up: the session and its Python workers
        for _ in range(reps):
            seconds, mib, summary = measured(lambda c=noop: run_clip_frames(spark, c))
            assert summary.videos_processed == 0 and summary.videos_skipped == n, summary.line()
            results.setdefault(n, {}).setdefault("noop", []).append((seconds, mib))
            seconds, mib, counts = measured(lambda c=fresh: plan_only(spark, c))
            assert counts == (n, n), counts
            results[n].setdefault("plan", []).append((seconds, mib))
    spark.stop()
    rows = []
    for n in sizes:
        noop_s = median(s for s, _ in results[n]["noop"])
        noop_m = median(m for _, m in results[n]["noop"])
        plan_s = median(s for s, _ in results[n]["plan"])
        plan_m = median(m for _, m in results[n]["plan"])
        rows.append([f"{n:,}", f"{noop_s:.1f}", f"{noop_m:.0f}", f"{plan_s:.1f}", f"{plan_m:.0f}"])
    if len(sizes) > 1:
        a, b = sizes[0], sizes[-1]

        def growth(kind: str, i: int) -> str:
            first = median(v[i] for v in results[a][kind])
            last = median(v[i] for v in results[b][kind])
            return f"{last / first:.1f}x" if first > 0.5 else "-"

        rows.append(
            [
                f"{b // a}x the rows",
                growth("noop", 0),
                growth("noop", 1),
                growth("plan", 0),
                growth("plan", 1),
            ]
        )
    table = md_table(
        [
            "input rows",
            "no-op refresh s",
            "driver MiB added",
            "planning, all new s",
            "driver MiB added",
        ],
        rows,
    )
    elapsed = time.perf_counter() - started
    body = f"""## Planning in Spark, from 10,000 to 100,000 videos (`bench/planning_bench.py`)

{header}

`local[2]`, {reps} repetition(s), medians. Videos are hard links of copies of one 3-frame
64x48 H.264 file; request: policy `middle`, default purpose. Whole run {elapsed:.0f} s.
*no-op refresh*: `run_clip_frames` over a table whose state has every video up to date (read
the input, plan and stat on the executors, join the state, count; nothing to commit).
*planning, all new*: the same up to the decision, against an empty table. *driver MiB added*:
peak RSS of the driver's Python process during the call, minus its RSS before.

{table}

{load_note()}
"""
    write_section("planning_bench", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
