"""Planning a run in Spark: input rows -> one row per video, decided -> dealt to the tasks.

Every step is a DataFrame transformation, so planning scales with the cluster, not the driver,
and runs the same on a classic and a Spark Connect session. It is one query with the
extraction that follows: nothing is counted or cached before the tasks start (the tasks count
what was up to date), and its rows cross two shuffles, by video and then by task.

1. ``input_rows``: the input's columns, checked and typed (absent optional columns are null; a
   null or empty ``video_path`` becomes ``""``, which extraction turns into error rows);
2. ``videos_of``: one row per video with its distinct spans, hash-partitioned by video;
3. ``with_state``: each video's rows of the table's state (``OUT/_state``), broadcast when
   small, else read by the executors and partitioned alike, so the join never moves the input;
4. ``decided``: on the executors, per video: the file's size and mtime, each purpose's request
   key, and which purposes are out of date (``table/state.unit_todo``);
5. ``works``: the videos dealt to the tasks by size, without a step on one partition.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.pandas.types import from_arrow_schema

from sparkframes.filesystems import UNKNOWN_STATE, file_states
from sparkframes.options import CommonOptions
from sparkframes.sampling.spans import ClipSpan, clips_of_rows, span_of_row
from sparkframes.spark.inputs import check_columns, spark_kind, spark_type
from sparkframes.spark.partition_keys import partition_keys
from sparkframes.spark.request_keys import unit_keys_of
from sparkframes.table.delta import TableLocation
from sparkframes.table.schema import STATE_SCHEMA
from sparkframes.table.state import StateFiles, read_state_files, unit_todo

_DECIDED_ARROW = pa.schema(
    [
        pa.field("video_path", pa.string(), False),
        pa.field("video_size", pa.int64(), False),
        pa.field("video_mtime_ns", pa.int64(), False),
        #: purpose -> request key, for the purposes out of date only (empty: up to date)
        pa.field("request_keys", pa.map_(pa.string(), pa.string()), False),
        #: purpose -> failures in a row the unit carries into this run
        pa.field("transient_failures", pa.map_(pa.string(), pa.int32()), False),
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
        ),  # null where the video is up to date: the tasks need its spans only to extract
    ]
)
DECIDED = from_arrow_schema(_DECIDED_ARROW)
_STATE_FIELDS = ["video_size", "video_mtime_ns", "request_key", "transient_failures"]
#: A unit's state row as planning reads it: the list per video is of these.
_STATE_UNIT = pa.schema([STATE_SCHEMA.field(n) for n in ("purpose", *_STATE_FIELDS)])


def input_rows(videos: DataFrame, source: str = "input") -> DataFrame:
    """The input's columns, typed: ``video_path`` (``""`` where null or empty), ``clip_id``,
    ``start_s``, ``end_s``. Raises ``InputSchemaError`` naming a missing or mistyped column."""
    present = check_columns(
        {f.name: (spark_kind(f.dataType), f.dataType.simpleString()) for f in videos.schema.fields},
        source,
    )
    columns = [F.coalesce(F.col("video_path"), F.lit("")).alias("video_path")]
    for name in ("clip_id", "start_s", "end_s", "timestamps_s"):
        kind = spark_type(name)
        value = F.col(name).cast(kind) if name in present else F.lit(None).cast(kind)
        columns.append(value.alias(name))
    return videos.select(*columns)


def videos_of(rows: DataFrame, partitions: int) -> DataFrame:
    """One row per video: ``video_path`` and its distinct ``spans``, sorted (a repeated input
    row counts once, and the order, hence the request key, does not depend on the input's),
    in ``partitions`` partitions.

    The partition count is set here, not left to ``spark.sql.shuffle.partitions`` (200 by
    default): each partition is a Python task of ``decided``, and a group of ``works``.
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


#: A state of at most this many rows is read on the driver and broadcast to the planning tasks
#: (about 30 MB as Arrow); a larger one is read by the executors and shuffled into the planning
#: partitions, so the driver never holds it.
BROADCAST_STATE_ROWS = 200_000


def with_state(
    spark: SparkSession,
    videos: DataFrame,
    loc: TableLocation,
    state: StateFiles | None,
    partitions: int,
) -> DataFrame:
    """``videos`` with ``state``: per video, the list of its rows of the table's state (null for
    a video never extracted; None or an empty ``state``: no join at all).

    The join never moves the input's side: a small state is read on the driver, grouped by
    video there and broadcast; a large one is read from its files by the executors (each task
    some files, with the table's own filesystem and credentials), then grouped into the same
    partitions as ``videos``.
    """
    if state is None or state.rows == 0:
        kind = T.ArrayType(from_arrow_schema(_STATE_UNIT))
        return videos.withColumn("state", F.lit(None).cast(kind))
    if state.rows is not None and state.rows <= BROADCAST_STATE_ROWS:
        rows = read_state_files(loc, state.paths, ["video_path", *_STATE_UNIT.names])
        frame = F.broadcast(spark.createDataFrame(state_per_video(rows)))
    else:
        frame = _state_read_by_executors(spark, loc, state.paths, partitions)
    return videos.join(frame, "video_path", "left")


def _state_read_by_executors(
    spark: SparkSession, loc: TableLocation, paths: list[str], partitions: int
) -> DataFrame:
    """The state's rows grouped per video, read and grouped in Spark, in ``partitions``
    partitions hashed by video like the input's."""
    output = loc.uri  # absolute: an executor's working directory is not the driver's
    columns = ["video_path", *_STATE_UNIT.names]
    schema = pa.schema([STATE_SCHEMA.field(name) for name in columns])

    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        here = TableLocation.of(output)
        for batch in batches:
            files = batch.column("path").to_pylist()
            if files:
                yield from read_state_files(here, files, columns).to_batches()

    files = spark.createDataFrame([(p,) for p in paths], "path string")
    rows = files.mapInArrow(read, from_arrow_schema(schema))
    unit = F.struct(*_STATE_UNIT.names)
    return (
        rows.repartition(partitions, "video_path")
        .groupBy("video_path")
        .agg(F.collect_list(unit).alias("state"))
    )


def state_per_video(state: pa.Table) -> pa.Table:
    """``video_path`` and ``state``, the list of the video's state rows (``_STATE_UNIT``)."""
    rows = state.sort_by("video_path")
    paths = rows["video_path"].combine_chunks()
    units = pa.StructArray.from_arrays(
        [rows[name].combine_chunks() for name in _STATE_UNIT.names], fields=list(_STATE_UNIT)
    )
    # Sorted, a video's rows are one run: it starts where the path differs from the previous.
    changed = pc.not_equal(paths.slice(1), paths.slice(0, len(paths) - 1))
    starts = np.flatnonzero(np.concatenate([[True], changed.to_numpy(zero_copy_only=False)]))
    offsets = pa.array(np.append(starts, len(paths)), pa.int32())
    lists = pa.ListArray.from_arrays(offsets, units)
    return pa.table({"video_path": paths.take(pa.array(starts)), "state": lists})


def decided(videos: DataFrame, config: CommonOptions) -> DataFrame:
    """Per video, on the executors: its file's size and mtime, and the request key and carried
    failures of each purpose that is out of date (``table/state.unit_todo``)."""

    def decide(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        keys_of = unit_keys_of(config)
        for batch in batches:
            paths = batch.column("video_path").to_pylist()
            spans = batch.column("spans").to_pylist()
            states = batch.column("state").to_pylist()
            files = file_states([p for p in paths if p])
            rows = []
            for path, video_spans, state in zip(paths, spans, states, strict=True):
                size, mtime = files.get(path, UNKNOWN_STATE)
                known = {unit["purpose"]: unit for unit in state or []}
                todo, failures = {}, {}
                for purpose, key in keys_of(spans_to_clips(video_spans)).items():
                    redo, carried = unit_todo(known.get(purpose), size, mtime, key)
                    if redo:
                        todo[purpose], failures[purpose] = key, carried
                rows.append(
                    {
                        "video_path": path,
                        "video_size": size,
                        "video_mtime_ns": mtime,
                        "request_keys": todo,
                        "transient_failures": failures,
                        "spans": video_spans if todo else None,
                    }
                )
            yield pa.RecordBatch.from_pylist(rows, schema=_DECIDED_ARROW)

    return videos.mapInArrow(decide, DECIDED)


def works(decided: DataFrame, partitions: int, groups: int) -> DataFrame:
    """The decided videos spread over ``partitions`` tasks so that long and short videos even
    out, in one shuffle and with no step on a single partition.

    Each of the ``groups`` partitions of ``decided`` (a hash group of videos) deals its
    out-of-date videos to the tasks in turn, in decreasing file size, group g starting at task
    g * partitions / groups: with many videos per task every task gets its share of each
    group's large and small videos, and with few videos this is plain hashing. Up-to-date
    videos follow, dealt alike: a task only counts them. Task t then lands in partition t
    exactly (``partition_keys``). Within a task videos come in path order, so that the files it
    writes hold narrow, disjoint ranges of paths.
    """
    weight = F.when(F.size("request_keys") > 0, F.col("video_size")).otherwise(F.lit(-1))
    ranked = decided.sortWithinPartitions(weight.desc(), "video_path").withColumn(
        "_id", F.monotonically_increasing_id()
    )
    # monotonically_increasing_id: the partition in the upper 31 bits, the row in the lower 33.
    group = F.shiftright("_id", 33)
    rank = F.col("_id").bitwiseAND(F.lit((1 << 33) - 1))
    task = F.pmod(rank + F.floor(group * partitions / groups), F.lit(partitions))
    keys = F.array(*(F.lit(k) for k in partition_keys(partitions)))
    dealt = ranked.withColumn("task", F.element_at(keys, (task + 1).cast("int"))).drop("_id")
    return dealt.repartition(partitions, "task").sortWithinPartitions("video_path")
