"""The input table: Parquet rows of video paths with optional clip spans, validated up front."""

from __future__ import annotations

import contextlib

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from sparkframes.filesystems import resolve

#: What each input column holds: text, or seconds (any numeric type).
COLUMN_KINDS = {
    "video_path": "string",
    "clip_id": "string",
    "start_s": "seconds",
    "end_s": "seconds",
    "timestamps_s": "seconds list",
}
_KIND_WORDS = {
    "string": "string",
    "seconds": "a number of seconds (double)",
    "seconds list": "a list of seconds (list<double>)",
}
#: The Arrow type each kind is handed to Spark as.
_ARROW_TYPES = {
    "string": pa.string(),
    "seconds": pa.float64(),
    "seconds list": pa.list_(pa.float64()),
}
_SPARK_TYPES = {
    "string": T.StringType(),
    "seconds": T.DoubleType(),
    "seconds list": T.ArrayType(T.DoubleType()),
}


class InputSchemaError(ValueError):
    """The input table lacks a required column or has one of the wrong type."""


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


def read_input(spark: SparkSession, path: str) -> DataFrame:
    """The input table at ``path`` as a DataFrame, its columns checked.

    pyarrow reads it when it has a filesystem for ``path`` (local, s3/s3a, gs, hdfs, abfs), with
    the same credentials as the videos and the output, and hands Spark the Arrow table (an input
    is paths and spans: small). Spark reads it when pyarrow cannot: a scheme only Hadoop knows
    (dbfs:, viewfs:…), or a path pyarrow does not find, which on YARN or Databricks may be on the
    cluster's default filesystem (``fs.defaultFS``), as Spark resolves it.
    """
    table: pa.Table | None = None
    try:
        fs, resolved = resolve(path)
    except (ValueError, OSError):  # no pyarrow filesystem for it
        pass
    else:
        with contextlib.suppress(FileNotFoundError):
            table = _read_with_pyarrow(fs, resolved, path)
    if table is None:
        return _read_with_spark(spark, path)
    if table.num_rows == 0:
        fields = [T.StructField(n, spark_type(n)) for n in table.column_names]
        return spark.createDataFrame([], T.StructType(fields))
    return spark.createDataFrame(table)


def _read_with_pyarrow(fs: pafs.FileSystem, resolved: str, source: str) -> pa.Table:
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
    # Spark takes plain strings and doubles (pandas' category columns arrive as dictionaries).
    return table.cast(
        pa.schema([pa.field(f.name, _ARROW_TYPES[COLUMN_KINDS[f.name]]) for f in table.schema])
    )


def _read_with_spark(spark: SparkSession, source: str) -> DataFrame:
    try:
        df = spark.read.parquet(source)
        schema = df.schema
    except Exception as exc:
        raise InputSchemaError(f"{source}: cannot read the input as Parquet ({exc})") from exc
    present = check_columns(
        {f.name: (spark_kind(f.dataType), f.dataType.simpleString()) for f in schema.fields},
        source,
    )
    return df.select("video_path", *present)


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
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return "seconds list" if _arrow_kind(type_.value_type) == "seconds" else None
    return None


def spark_type(column: str) -> T.DataType:
    """The Spark type an input column is typed as for planning."""
    return _SPARK_TYPES[COLUMN_KINDS[column]]


def spark_kind(type_: T.DataType) -> str | None:
    if isinstance(type_, T.StringType):
        return "string"
    if isinstance(type_, T.NumericType):
        return "seconds"
    if isinstance(type_, T.ArrayType):
        return "seconds list" if spark_kind(type_.elementType) == "seconds" else None
    return None
