"""The input table: Parquet rows of video paths with optional clip spans, validated up front."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from sparkframes.filesystems import resolve
from sparkframes.spans import ClipSpan, to_fraction

#: An input row without a span.
WHOLE_VIDEO = ClipSpan(Fraction(0), None)

#: What each input column holds: text, or seconds (any numeric type).
COLUMN_KINDS = {
    "video_path": "string",
    "clip_id": "string",
    "start_s": "seconds",
    "end_s": "seconds",
}
_KIND_WORDS = {"string": "string", "seconds": "a number of seconds (double)"}


class InputSchemaError(ValueError):
    """The input table lacks a required column or has one of the wrong type."""


@dataclass
class InputVideo:
    """One distinct video of the input with the spans asked of it (None: whole / stride)."""

    video_path: str
    clips: tuple[ClipSpan, ...] | None


def check_columns(columns: dict[str, tuple[str | None, str]], source: str) -> list[str]:
    """The optional columns present; raises InputSchemaError naming a missing or bad column.

    ``columns`` maps each column of the table to (the kind it holds, or None; its type's name),
    as read by pyarrow or Spark.
    """
    if "video_path" not in columns:
        raise InputSchemaError(
            f"{source}: input table has no column 'video_path' (columns: {sorted(columns)})"
        )
    present = []
    for name, kind in COLUMN_KINDS.items():
        if name not in columns:
            continue
        found, type_name = columns[name]
        if found != kind:
            raise InputSchemaError(
                f"{source}: column {name!r} must be {_KIND_WORDS[kind]}, is {type_name}"
            )
        if name != "video_path":
            present.append(name)
    return present


def read_input(spark: SparkSession, path: str) -> tuple[list[InputVideo], int]:
    """Distinct videos in first-seen order, and the count of rows skipped for a null path.

    The table is read on the driver (its rows are needed there to plan the work). pyarrow reads
    it when it has a filesystem for ``path`` (local, s3/s3a, gs, hdfs, abfs), with the same
    credentials as the videos and the output. Spark reads it when pyarrow cannot: a scheme only
    Hadoop knows (dbfs:, viewfs:…), or a path pyarrow does not find, which on YARN or Databricks
    may be on the cluster's default filesystem (``fs.defaultFS``), as Spark resolves it.
    """
    rows: list[dict] | None = None
    try:
        fs, resolved = resolve(path)
    except (ValueError, OSError):  # no pyarrow filesystem for it
        pass
    else:
        with contextlib.suppress(FileNotFoundError):
            rows = _read_with_pyarrow(fs, resolved, path)
    if rows is None:
        rows = _read_with_spark(spark, path)
    # Per video, its distinct spans in first-seen order (a dict as an ordered set): a repeated
    # row would otherwise give every one of its frames twice.
    videos: dict[str, dict[ClipSpan, None]] = {}
    null_paths = 0
    for values in rows:
        path_value = values["video_path"]
        if path_value is None:
            null_paths += 1
            continue
        span = _span(values.get("start_s"), values.get("end_s"), values.get("clip_id"))
        videos.setdefault(path_value, {})[span] = None
    return [InputVideo(p, _clips(tuple(spans))) for p, spans in videos.items()], null_paths


def _read_with_pyarrow(fs: pafs.FileSystem, resolved: str, source: str) -> list[dict]:
    try:
        dataset = ds.dataset(resolved, filesystem=fs, format="parquet", partitioning="hive")
        present = check_columns(
            {f.name: (_arrow_kind(f.type), str(f.type)) for f in dataset.schema}, source
        )
        table = dataset.to_table(columns=["video_path", *present])
    except (FileNotFoundError, InputSchemaError):
        raise  # not found: perhaps on the cluster's default filesystem, the caller asks Spark
    except (OSError, ValueError) as exc:  # not Parquet, files that disagree, access denied
        raise InputSchemaError(f"{source}: cannot read the input as Parquet ({exc})") from exc
    return table.to_pylist()


def _read_with_spark(spark: SparkSession, source: str) -> list[dict]:
    try:
        df = spark.read.parquet(source)
    except Exception as exc:
        raise InputSchemaError(f"{source}: cannot read the input as Parquet ({exc})") from exc
    present = check_columns(
        {f.name: (_spark_kind(f.dataType), f.dataType.simpleString()) for f in df.schema.fields},
        source,
    )
    return [row.asDict() for row in df.select("video_path", *present).collect()]


def _arrow_kind(type_: pa.DataType) -> str | None:
    if pa.types.is_dictionary(type_):  # pandas' category columns
        type_ = type_.value_type
    if (
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_string_view(type_)
    ):
        return "string"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_):
        return "seconds"
    return None


def _spark_kind(type_: T.DataType) -> str | None:
    if isinstance(type_, T.StringType):
        return "string"
    if isinstance(type_, T.NumericType):
        return "seconds"
    return None


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
