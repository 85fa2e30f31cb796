"""The input table: Parquet rows of video paths with optional clip spans, validated up front."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from sparkframes.spans import ClipSpan, to_fraction

#: An input row without a span.
WHOLE_VIDEO = ClipSpan(Fraction(0), None)

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
    # Per video, its distinct spans in first-seen order (a dict as an ordered set): a repeated
    # row would otherwise give every one of its frames twice.
    videos: dict[str, dict[ClipSpan, None]] = {}
    null_paths = 0
    for row in rows:
        values = row.asDict()
        path_value = values["video_path"]
        if path_value is None:
            null_paths += 1
            continue
        span = _span(values.get("start_s"), values.get("end_s"), values.get("clip_id"))
        videos.setdefault(path_value, {})[span] = None
    return [InputVideo(p, _clips(tuple(spans))) for p, spans in videos.items()], null_paths


def _span(start: object, end: object, clip_id: str | None) -> ClipSpan:
    """One row's span; no span at all is the whole-video marker ``ClipSpan(0, None)``."""
    bad = [
        f"{name} is {value}"
        for name, value in (("start_s", start), ("end_s", end))
        if value is not None and not math.isfinite(float(value))
    ]
    if bad:
        return ClipSpan(Fraction(0), None, clip_id, invalid=f"unusable span: {', '.join(bad)}")
    return ClipSpan(
        to_fraction(float(start)) if start is not None else Fraction(0),
        to_fraction(float(end)) if end is not None else None,
        clip_id,
    )


def _clips(spans: tuple[ClipSpan, ...]) -> tuple[ClipSpan, ...] | None:
    """None when every row of the video was span-less, as request keys have always stored it;
    otherwise all of them, the whole-video marker included where rows with and without a span
    were mixed."""
    return None if spans == (WHOLE_VIDEO,) else spans
