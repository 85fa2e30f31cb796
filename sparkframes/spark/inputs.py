"""The input table: Parquet rows of video paths with optional clip spans, validated up front."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from sparkframes.spans import ClipSpan, to_fraction

REQUIRED = {"video_path": (T.StringType,)}
OPTIONAL = {
    "clip_id": (T.StringType,),
    "start_s": (T.DoubleType, T.FloatType, T.IntegerType, T.LongType, T.DecimalType),
    "end_s": (T.DoubleType, T.FloatType, T.IntegerType, T.LongType, T.DecimalType),
}


class InputSchemaError(ValueError):
    """The input table lacks a required column or has one of the wrong type."""


@dataclass
class InputVideo:
    """One distinct video of the input with the spans asked of it (None: whole / stride)."""

    video_path: str
    clips: tuple[ClipSpan, ...] | None


def validate_schema(df: DataFrame, source: str) -> list[str]:
    """The optional columns present; raises InputSchemaError naming the bad column."""
    fields = {f.name: f.dataType for f in df.schema.fields}
    for name, types in REQUIRED.items():
        if name not in fields:
            raise InputSchemaError(
                f"{source}: input table has no column {name!r} (columns: {sorted(fields)})"
            )
        if not isinstance(fields[name], types):
            raise InputSchemaError(
                f"{source}: column {name!r} must be string, is {fields[name].simpleString()}"
            )
    present = []
    for name, types in OPTIONAL.items():
        if name in fields:
            if not isinstance(fields[name], types):
                kind = "string" if name == "clip_id" else "a number of seconds (double)"
                raise InputSchemaError(
                    f"{source}: column {name!r} must be {kind}, is {fields[name].simpleString()}"
                )
            present.append(name)
    return present


def read_input(spark: SparkSession, path: str) -> tuple[list[InputVideo], int]:
    """Distinct videos in first-seen order, and the count of rows skipped for a null path."""
    try:
        df = spark.read.parquet(path)
    except Exception as exc:
        raise InputSchemaError(f"{path}: cannot read the input as Parquet ({exc})") from exc
    present = validate_schema(df, path)
    columns = ["video_path", *present]
    rows = df.select(*columns).collect()
    videos: OrderedDict[str, list[ClipSpan] | None] = OrderedDict()
    null_paths = 0
    for row in rows:
        values = row.asDict()
        path_value = values["video_path"]
        if path_value is None:
            null_paths += 1
            continue
        start, end = values.get("start_s"), values.get("end_s")
        clip_id = values.get("clip_id")
        has_span = start is not None or end is not None or clip_id is not None
        if not has_span:
            videos.setdefault(path_value, None)
            continue
        span = ClipSpan(
            to_fraction(float(start)) if start is not None else to_fraction(0),
            to_fraction(float(end)) if end is not None else None,
            clip_id,
        )
        clips = videos.get(path_value)
        videos[path_value] = [*(clips or []), span]
    return [
        InputVideo(p, tuple(c) if c is not None else None) for p, c in videos.items()
    ], null_paths
