"""Planning in Spark: how a refresh's time and the driver's memory grow with the input.

For each input size N (hard links of a few copies of one tiny video, so stat'ing them is real
work but extracting them is never needed), on a warm local[2] session:

* no-op refresh: ``sparkframes.spark.write_clip_frames`` (policy ``middle``, incremental) on a
  table whose state already holds every video, up to date: it reads the input, stats every file
  on the executors, joins the state, finds nothing to do and commits nothing. The state is
  committed directly from each video's stat and request key (what a run would have committed),
  not by extracting N videos first;
* planning an all-new input: the same up to the decision (per-video plan, stat, join, counts)
  against an empty table, without the extraction that would follow (internals: there is no
  public dry run).

Memory: the driver's Python process's RSS, sampled every 5 ms, peak minus start. In local mode
the executors run in the driver's JVM, so the JVM's memory is not the driver's alone.
Run: ``python -m bench.planning_bench [--quick] [--rows 10000,100000] [--reps N]``.
"""

from __future__ import annotations

import shutil
from typing import Any

import pyarrow.parquet as pq

import sparkframes.spark
from bench import internals as sf
from bench.harness import CACHE_DIR, Run, interleaved, local_spark, median
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
    """What a run does before its tasks: input, per-video plan, stat, join, counts."""
    config = sf.build_options(
        sf.ClipFramesOptions, {"input": input_path, "output": output, **REQUEST}
    )
    planning, slots = sf.planning, sf.default_parallelism(spark)
    rows = planning.input_rows(sf.read_input(spark, input_path))
    planned = planning.planned_units(planning.videos_of(rows, slots), config)
    state = planning.state_frame(spark, sf.read_state_table(sf.TableLocation.of(output)))
    decided = planning.out_of_date(planned, state, slots).cache()
    try:
        return planning.counts(decided)
    finally:
        decided.unpersist()


def main(argv: list[str] | None = None) -> int:
    rows_flag = {"default": "10000,100000", "help": "comma-separated input sizes"}
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
        runs = interleaved(
            {"no-op refresh": lambda rep: refresh(), "planning, all new": lambda rep: plan()},
            run.reps,
            memory=True,
        )
        row: dict[str, Any] = {"input rows": n}
        for name, ts in runs.items():
            row |= {
                f"{name} s": median(t.wall for t in ts),
                f"{name} driver MiB added": median(t.peak_mib for t in ts),
            }
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
