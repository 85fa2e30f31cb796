"""Videos dealt to tasks in Spark: balanced by size, each task in a partition of its own, and no
step that runs every video through one partition."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from sparkframes.spark import planning
from sparkframes.spark.partition_keys import partition_keys, spark_hash_int


def test_our_hash_is_sparks(spark):
    values = [*range(-50, 300), 2**31 - 1, -(2**31)]
    frame = spark.createDataFrame([(v,) for v in values], "v int")
    theirs = [r[0] for r in frame.select(F.hash("v")).collect()]
    assert theirs == [spark_hash_int(v) for v in values]
    for n in (1, 2, 7, 64):
        keys = partition_keys(n)
        assert [spark_hash_int(k) % n for k in keys] == list(range(n))


def _decided(spark, sizes: list[int], groups: int, up_to_date: int = 0):
    """Decided videos of these sizes, in ``groups`` hash partitions as planning leaves them; the
    last ``up_to_date`` are up to date."""
    rows = [
        {
            "video_path": f"/videos/{i:04d}.mp4",
            "video_size": size,
            "video_mtime_ns": 1,
            "request_keys": [] if i >= len(sizes) - up_to_date else [("embeddings", "k")],
            "transient_failures": [],
            "spans": [],
        }
        for i, size in enumerate(sizes)
    ]
    table = pa.Table.from_pylist(rows, schema=planning._DECIDED_ARROW)
    return spark.createDataFrame(table.to_pandas()).repartition(groups, "video_path")


def _dealt(spark, sizes: list[int], partitions: int, groups: int, up_to_date: int = 0):
    dealt = planning.works(_decided(spark, sizes, groups, up_to_date), partitions, groups)
    plan = dealt._jdf.queryExecution().executedPlan().toString()
    assert "SinglePartition" not in plan and "Window" not in plan, plan
    got = dealt.select(
        "video_path",
        "video_size",
        "request_keys",
        "task",
        F.spark_partition_id().alias("partition"),
    ).collect()
    keys = partition_keys(partitions)
    assert all(keys[r["partition"]] == r["task"] for r in got)  # task t is partition t
    assert sorted(r["video_path"] for r in got) == [
        f"/videos/{i:04d}.mp4" for i in range(len(sizes))
    ]
    for p in range(partitions):  # path order within a task
        mine = [r["video_path"] for r in got if r["partition"] == p]
        assert mine == sorted(mine)
    return got


def test_videos_are_dealt_evenly_one_task_per_partition(spark):
    partitions = 4
    # Sizes spread over two orders of magnitude, as long and short videos are.
    sizes = [int(1000 * 1.05**i) for i in range(120)]
    got = _dealt(spark, sizes, partitions, groups=2)
    load = [sum(r["video_size"] for r in got if r["partition"] == p) for p in range(partitions)]
    assert max(load) / min(load) < 1.3, load


def test_few_videos_go_to_distinct_tasks(spark):
    """With as many videos as tasks, no task gets two while another idles (up to the hash's
    split of the videos into groups)."""
    got = _dealt(spark, [100, 200, 300, 400], partitions=8, groups=2)
    per_task = [sum(1 for r in got if r["partition"] == p) for p in range(8)]
    assert max(per_task) == 1, per_task


def test_up_to_date_videos_do_not_unbalance_the_work(spark):
    """Up-to-date videos are dealt after the out-of-date ones and weigh nothing: the work to
    do is spread as if they were not there."""
    sizes = [int(1000 * 1.05**i) for i in range(80)] + [10**9] * 40
    got = _dealt(spark, sizes, partitions=4, groups=2, up_to_date=40)
    work = [r for r in got if r["request_keys"]]
    load = [sum(r["video_size"] for r in work if r["partition"] == p) for p in range(4)]
    assert len(work) == 80 and max(load) / min(load) < 1.3, load


@pytest.mark.parametrize("state", ["broadcast", "read by the executors"])
def test_a_run_plans_and_extracts_in_one_query(spark, tmp_path, catalog, monkeypatch, state):
    """Nothing is counted or cached before the tasks: a first run is three Spark jobs (the
    input's shuffle by video, the deal's shuffle by task, the tasks), where planning used to
    take eight before the first decode. A refresh adds the state's broadcast; a state too large
    to broadcast is read and shuffled by the executors instead. Either way the refresh finds
    every video up to date, and the changed one out of date."""
    from sparkframes.options import ClipFramesOptions, build_options
    from sparkframes.spark.job import write_table

    folder = tmp_path / "videos"
    folder.mkdir()
    videos = [str(shutil.copy(catalog[n], folder)) for n in ("h264_mp4", "vp9_webm", "hevc_mp4")]
    inputs = tmp_path / "in.parquet"
    pq.write_table(pa.table({"video_path": videos}), inputs)
    values = {"input": str(inputs), "output": str(tmp_path / "out"), "policy": "middle"}
    options = build_options(ClipFramesOptions, {**values, "progress": False})
    tracker = spark.sparkContext.statusTracker()

    def jobs_of_a_run() -> tuple[int, object]:
        before = set(tracker.getJobIdsForGroup())
        summary = write_table(spark, options)
        return len(set(tracker.getJobIdsForGroup()) - before), summary

    jobs, first = jobs_of_a_run()
    assert first.videos_processed == 3 and jobs <= 3, (jobs, first.line())
    if state == "read by the executors":
        monkeypatch.setattr(planning, "BROADCAST_STATE_ROWS", 0)
    jobs, refresh = jobs_of_a_run()
    assert (refresh.videos_processed, refresh.videos_skipped) == (0, 3), refresh.line()
    assert refresh.table_version is None
    if state == "broadcast":  # the other way's jobs are adaptive execution's to choose
        assert jobs <= 4, jobs
    shutil.copy(catalog["ntsc_mp4"], videos[1])
    changed = write_table(spark, options)
    assert (changed.videos_processed, changed.videos_skipped) == (1, 2), changed.line()


def test_the_state_grouped_per_video_keeps_each_row_with_its_video():
    """Rows in any order and over many chunks (as a Delta table of several files reads): each
    video gets exactly its own rows."""
    import random

    from sparkframes.table.schema import STATE_SCHEMA

    rng = random.Random(7)
    units = [(f"/v/{i:05d}.mp4", p) for i in range(3000) for p in ("a", "b")[: 1 + i % 2]]
    rng.shuffle(units)
    rows = [
        {
            "video_path": v,
            "purpose": p,
            "video_size": i,
            "video_mtime_ns": i,
            "request_key": f"{v}|{p}",
            "status": "ok",
            "frames": 1,
            "errors": 0,
            "transient_failures": 0,
            "run_id": "r",
        }
        for i, (v, p) in enumerate(units)
    ]
    chunks = [
        pa.Table.from_pylist(rows[k : k + 700], STATE_SCHEMA) for k in range(0, len(rows), 700)
    ]
    grouped = planning.state_per_video(pa.concat_tables(chunks)).to_pylist()
    assert [g["video_path"] for g in grouped] == sorted({v for v, _ in units})
    for g in grouped:
        keys = sorted(s["request_key"] for s in g["state"])
        i = int(g["video_path"][3:8])
        assert keys == [f"{g['video_path']}|{p}" for p in ("a", "b")[: 1 + i % 2]]
