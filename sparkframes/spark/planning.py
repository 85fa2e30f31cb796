"""Planning a run in Spark: input rows -> one row per video -> what is out of date -> tasks.

Every step is a DataFrame transformation, so planning scales with the cluster, not the driver,
and runs the same on a classic and a Spark Connect session:

1. ``input_rows``: the input's columns, checked and typed (absent optional columns are null; a
   null or empty ``video_path`` becomes ``""``, which extraction turns into error rows);
2. ``videos``: one row per video with its distinct spans;
3. ``planned_units``: on the executors, per (video, purpose): the file's size and mtime and the
   request key (``request_keys.unit_keys_of``);
4. ``out_of_date``: a join with the table's state (``OUT/_state``) decides what to redo, by the
   rule of ``table/state.py``;
5. ``works``: the out-of-date units per video, spread over the tasks.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from sparkframes.filesystems import UNKNOWN_STATE, file_states
from sparkframes.options import CommonOptions
from sparkframes.sampling.spans import ClipSpan, clips_of_rows, span_of_row
from sparkframes.spark.inputs import check_columns, spark_kind
from sparkframes.spark.partition_keys import partition_keys
from sparkframes.spark.request_keys import unit_keys_of
from sparkframes.table.schema import STATE_SCHEMA
from sparkframes.table.state import MAX_TRANSIENT_TRIES

_PLANNED_ARROW = pa.schema(
    [
        pa.field("video_path", pa.string(), False),
        pa.field("purpose", pa.string(), False),
        pa.field("video_size", pa.int64(), False),
        pa.field("video_mtime_ns", pa.int64(), False),
        pa.field("request_key", pa.string(), False),
        pa.field(
            "spans",
            pa.list_(
                pa.struct(
                    [
                        ("clip_id", pa.string()),
                        ("start_s", pa.float64()),
                        ("end_s", pa.float64()),
                        ("timestamps_s", pa.list_(pa.float64())),
                    ]
                )
            ),
        ),
    ]
)
PLANNED = from_arrow_schema(_PLANNED_ARROW)


def input_rows(videos: DataFrame, source: str = "input") -> DataFrame:
    """The input's columns, typed: ``video_path`` (``""`` where null or empty), ``clip_id``,
    ``start_s``, ``end_s``. Raises ``InputSchemaError`` naming a missing or mistyped column."""
    present = check_columns(
        {f.name: (spark_kind(f.dataType), f.dataType.simpleString()) for f in videos.schema.fields},
        source,
    )
    kinds = {
        "clip_id": T.StringType(),
        "start_s": T.DoubleType(),
        "end_s": T.DoubleType(),
        "timestamps_s": T.ArrayType(T.DoubleType()),
    }
    columns = [F.coalesce(F.col("video_path"), F.lit("")).alias("video_path")]
    for name, kind in kinds.items():
        value = F.col(name).cast(kind) if name in present else F.lit(None).cast(kind)
        columns.append(value.alias(name))
    return videos.select(*columns)


def videos_of(rows: DataFrame, partitions: int) -> DataFrame:
    """One row per video: ``video_path`` and its distinct ``spans``, sorted (a repeated input
    row counts once, and the order, hence the request key, does not depend on the input's),
    in ``partitions`` partitions.

    The partition counts of planning are set here and in ``out_of_date``, not left to
    ``spark.sql.shuffle.partitions`` (200 by default): the planned units are cached, and a
    cached plan keeps its partitions, each a Python task.
    """
    span = F.struct("clip_id", "start_s", "end_s", "timestamps_s")
    by_video = rows.repartition(partitions, "video_path")
    return by_video.groupBy("video_path").agg(F.array_sort(F.collect_set(span)).alias("spans"))


def spans_to_clips(spans: list[dict] | None) -> tuple[ClipSpan, ...] | None:
    """The ``spans`` column of one video as the extraction's clips (None: whole video)."""
    return clips_of_rows(
        span_of_row(s["start_s"], s["end_s"], s["clip_id"], s.get("timestamps_s"))
        for s in (spans or [])
    )


def planned_units(videos: DataFrame, config: CommonOptions) -> DataFrame:
    """Per (video, purpose) on the executors: the file's size and mtime, and the request key."""

    def plan(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keys_of = unit_keys_of(config)
        for batch in batches:
            paths = batch.column("video_path").to_pylist()
            spans = batch.column("spans").to_pylist()
            states = file_states([p for p in paths if p])
            rows = []
            for path, video_spans in zip(paths, spans, strict=True):
                size, mtime = states.get(path, UNKNOWN_STATE)
                keys = keys_of(spans_to_clips(video_spans))
                rows.extend(
                    {
                        "video_path": path,
                        "purpose": purpose,
                        "video_size": size,
                        "video_mtime_ns": mtime,
                        "request_key": key,
                        "spans": video_spans,
                    }
                    for purpose, key in keys.items()
                )
            yield pa.RecordBatch.from_pylist(rows, schema=_PLANNED_ARROW)

    return videos.mapInArrow(plan, PLANNED)


def state_frame(spark: SparkSession, state: pa.Table | None) -> DataFrame:
    """The table's state as a DataFrame (read with pyarrow, which has the table's credentials;
    None: no state, as for an overwrite)."""
    if state is None or state.num_rows == 0:
        return spark.createDataFrame([], from_arrow_schema(STATE_SCHEMA))
    return spark.createDataFrame(state.select(STATE_SCHEMA.names))


def out_of_date(planned: DataFrame, state: DataFrame, partitions: int) -> DataFrame:
    """``planned`` with ``todo`` (the unit must be extracted) and ``transient_failures`` (the
    failures in a row it carries into this run), by the rule of ``table/state.py``; both sides
    partitioned alike (``partitions``), so that the join adds no shuffle of its own."""
    keys = ["video_path", "purpose"]
    planned = planned.repartition(partitions, *keys)
    s = state.repartition(partitions, *keys).select(
        "video_path",
        "purpose",
        F.col("video_size").alias("s_size"),
        F.col("video_mtime_ns").alias("s_mtime"),
        F.col("request_key").alias("s_key"),
        F.col("transient_failures").alias("s_failures"),
    )
    joined = planned.join(s, ["video_path", "purpose"], "left")
    same: Column = (
        (F.col("s_size") == F.col("video_size"))
        & (F.col("s_mtime") == F.col("video_mtime_ns"))
        & (F.col("s_key") == F.col("request_key"))
    )
    same = F.coalesce(same, F.lit(False))
    retry = (F.col("s_failures") > 0) & (F.col("s_failures") < MAX_TRANSIENT_TRIES)
    todo = ~same | F.coalesce(retry, F.lit(False))
    failures = F.when(same, F.col("s_failures")).otherwise(F.lit(0)).cast("int")
    return joined.select(*planned.columns, todo.alias("todo"), failures.alias("transient_failures"))


def counts(decided: DataFrame) -> tuple[int, int]:
    """(videos in the input, videos with at least one unit to extract)."""
    per_video = decided.groupBy("video_path").agg(F.max(F.col("todo").cast("int")).alias("todo"))
    row = per_video.agg(F.count("*").alias("videos"), F.sum("todo").alias("todo")).first()
    return int(row["videos"] or 0), int(row["todo"] or 0)


def works(decided: DataFrame, partitions: int) -> DataFrame:
    """The out-of-date units grouped per video, spread over ``partitions`` tasks so that long
    and short videos even out, in one shuffle and with no step on a single partition.

    The videos are hashed into ``partitions`` groups; within each group, in decreasing file
    size, they are dealt to the tasks in turn, group g starting at task g: with many videos per
    task every task gets its share of each group's large and small videos, and with few videos
    this is plain hashing. Task t then lands in partition t exactly (``partition_keys``), and within
    a task the largest videos go first, so its tail is short videos.
    """
    per_video = (
        decided.where("todo")
        .groupBy("video_path")
        .agg(
            F.first("video_size").alias("video_size"),
            F.first("video_mtime_ns").alias("video_mtime_ns"),
            F.first("spans").alias("spans"),
            F.map_from_entries(F.collect_list(F.struct("purpose", "request_key"))).alias(
                "request_keys"
            ),
            F.map_from_entries(F.collect_list(F.struct("purpose", "transient_failures"))).alias(
                "transient_failures"
            ),
        )
    )
    group = F.pmod(F.xxhash64("video_path"), F.lit(partitions))
    in_group = Window.partitionBy(group).orderBy(F.desc("video_size"), "video_path")
    task = F.pmod(F.row_number().over(in_group) - 1 + group, F.lit(partitions))
    keys = F.array(*(F.lit(k) for k in partition_keys(partitions)))
    dealt = per_video.withColumn("task", F.element_at(keys, (task + 1).cast("int")))
    return dealt.repartition(partitions, "task").sortWithinPartitions(F.desc("video_size"))
