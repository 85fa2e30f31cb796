"""Videos dealt to tasks in Spark: balanced by size, each task in a partition of its own, and no
step that runs every video through one partition."""

from __future__ import annotations

import pyarrow as pa
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


def _decided(spark, sizes: list[int]):
    rows = [
        {
            "video_path": f"/videos/{i:04d}.mp4",
            "purpose": "embeddings",
            "video_size": size,
            "video_mtime_ns": 1,
            "request_key": "k",
            "spans": [],
            "todo": True,
            "transient_failures": 0,
        }
        for i, size in enumerate(sizes)
    ]
    schema = planning._PLANNED_ARROW.append(pa.field("todo", pa.bool_())).append(
        pa.field("transient_failures", pa.int32())
    )
    return spark.createDataFrame(pa.Table.from_pylist(rows, schema=schema).to_pandas())


def test_videos_are_dealt_evenly_one_task_per_partition(spark):
    partitions = 4
    # Sizes spread over two orders of magnitude, as long and short videos are.
    sizes = [int(1000 * 1.05**i) for i in range(120)]
    dealt = planning.works(_decided(spark, sizes), partitions)
    plan = dealt._jdf.queryExecution().executedPlan().toString()
    assert "SinglePartition" not in plan, plan
    got = dealt.select(
        "video_path", "video_size", "task", F.spark_partition_id().alias("partition")
    ).collect()
    keys = partition_keys(partitions)
    assert all(keys[r["partition"]] == r["task"] for r in got)  # task t is partition t
    assert sorted(r["video_path"] for r in got) == [f"/videos/{i:04d}.mp4" for i in range(120)]
    load = [sum(r["video_size"] for r in got if r["partition"] == p) for p in range(partitions)]
    assert max(load) / min(load) < 1.3, load
    for p in range(partitions):  # the largest first within a task
        mine = [r["video_size"] for r in got if r["partition"] == p]
        assert mine == sorted(mine, reverse=True)
