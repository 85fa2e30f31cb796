"""Reading the frames table from pyarrow: rows with ``frame`` as an Arrow tensor.

A Delta table is what its log lists, so a reader of any version sees whole runs only, whatever
other runs are writing. The files of a version are read with pyarrow directly (the filesystem
pyarrow has for the path, with its credentials) so that ``frame`` arrives as binary chunks that
become tensors without a copy. Recipes for deltalake, Polars, DuckDB and Spark are in the README.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake.exceptions import TableNotFoundError

from sparkframes.table.delta import ERRORS, FRAMES, TableKind, TableLocation, file_paths, open_table
from sparkframes.table.encodings import RAW, decode_column
from sparkframes.table.schema import PARTITION_COLUMN
from sparkframes.table.tensor import binary_to_tensor, tensor_to_numpy


def read_rows(
    loc: TableLocation,
    kind: TableKind,
    *,
    version: int | None = None,
    filter: ds.Expression | None = None,
    columns: list[str] | None = None,
    purpose: str | None = None,
    prune: list | None = None,
) -> pa.Table:
    """The rows of one of the tables at its latest (or a given) version.

    ``prune`` (DNF tuples, the same condition as ``filter`` or a looser one) lets the Delta
    log's statistics skip whole files. Raises ``TableNotFoundError`` when the table does not
    exist.
    """
    dt = open_table(loc, kind, version)
    if purpose is not None:
        prune = _and_tuples(prune, (PARTITION_COLUMN, "=", purpose))
    if kind.partition_by:
        dataset = ds.dataset(
            file_paths(dt, loc, kind, prune),
            schema=kind.schema,
            filesystem=loc.fs,
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([kind.schema.field(PARTITION_COLUMN)]), flavor="hive"
            ),
            partition_base_dir=loc.root_of(kind),
        )
    else:
        dataset = ds.dataset(
            file_paths(dt, loc, kind, prune),
            schema=kind.schema,
            filesystem=loc.fs,
            format="parquet",
        )
        if purpose is not None:
            by_purpose = pc.field(PARTITION_COLUMN) == purpose
            filter = by_purpose if filter is None else filter & by_purpose
    return dataset.to_table(filter=filter, columns=columns)


def _delta_tuples(filters: Any) -> list | None:
    """DNF tuple filters as delta-rs's file pruning takes them (``==`` as ``=``), or None for
    a pyarrow expression (it filters rows only)."""
    if filters is None or isinstance(filters, ds.Expression):
        return None

    def one(condition: tuple) -> tuple:
        column, op, value = condition
        return (column, "=" if op == "==" else op, value)

    if filters and isinstance(filters[0], tuple):
        return [one(c) for c in filters]
    return [[one(c) for c in group] for group in filters]


def _and_tuples(prune: list | None, condition: tuple) -> list:
    """``prune AND condition`` in DNF tuples."""
    if not prune:
        return [condition]
    if isinstance(prune[0], tuple):
        return [*prune, condition]
    return [[*group, condition] for group in prune]


def _open_frames(
    path: str, version: int | None, filters: Any, columns: list[str] | None, purpose: str | None
) -> pa.Table:
    loc = TableLocation.of(path)
    try:
        return read_rows(
            loc,
            FRAMES,
            version=version,
            filter=_to_expression(filters),
            columns=columns,
            purpose=purpose,
            prune=_delta_tuples(filters),
        )
    except TableNotFoundError:
        raise FileNotFoundError(f"{path}: no frames table here (no Delta log in {path})") from None


def _to_expression(filters: Any) -> ds.Expression | None:
    """A pyarrow expression, or DNF tuples like ``[("clip_id", "=", "a")]`` as pyarrow accepts."""
    if filters is None or isinstance(filters, ds.Expression):
        return filters
    import pyarrow.parquet as pq

    return pq.filters_to_expression(filters)


def read_table(
    path: str,
    purpose: str | None = None,
    filters: Any = None,
    columns: list[str] | None = None,
    version: int | None = None,
) -> pa.Table:
    """The rows of a version (the latest by default) as stored (``frame`` as binary: raw bytes,
    or JPEG/PNG as ``frame_encoding`` says), optionally of one purpose."""
    return _open_frames(path, version, filters, columns, purpose)


def read_frame_groups(
    path: str, purpose: str | None = None, filters: Any = None, version: int | None = None
) -> dict[tuple[int, int], pa.Table]:
    """One table per frame shape ``(height, width)``, each with ``frame`` as a tensor column."""
    table = read_table(path, purpose, filters, version=version)
    shapes = table.select(["height", "width"]).group_by(["height", "width"]).aggregate([])
    groups: dict[tuple[int, int], pa.Table] = {}
    for h, w in zip(shapes["height"].to_pylist(), shapes["width"].to_pylist(), strict=True):
        part = (
            table
            if shapes.num_rows == 1
            else table.filter(pc.and_(pc.equal(table["height"], h), pc.equal(table["width"], w)))
        )
        groups[(h, w)] = _with_tensor(part, h, w)
    return groups


def _with_tensor(table: pa.Table, height: int, width: int) -> pa.Table:
    """``table`` with ``frame`` as a tensor column: raw frames without a copy, JPEG and PNG
    frames decoded (into one array, raw ones beside them copied in)."""
    encodings = table["frame_encoding"]
    if table.num_rows == 0 or pc.all(pc.equal(encodings, RAW)).as_py():
        tensor = binary_to_tensor(table["frame"], height, width)
    else:
        pixels = decode_column(table["frame"], encodings.to_pylist(), height, width)
        tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(pixels)
    index = table.schema.get_field_index("frame")
    return table.set_column(index, pa.field("frame", tensor.type), tensor)


def read_frames(
    path: str,
    purpose: str | None = None,
    filters: Any = None,
    shape: tuple[int, int] | None = None,
    version: int | None = None,
) -> pa.Table:
    """The rows of ``purpose`` (all purposes if None) with ``frame`` as ``fixed_shape_tensor``.

    ``version`` reads an earlier version of the table (Delta time travel; None: the latest).
    A tensor column has one shape, so the rows must share one ``(height, width)``; when they do
    not (native-size frames of different videos), pass ``shape=`` (only those rows are read) or
    use ``read_frame_groups``. ``frame`` converts to numpy without a copy per row group:
    ``frames_to_numpy(table)``.
    """
    if shape is not None:
        h, w = int(shape[0]), int(shape[1])
        if isinstance(filters, ds.Expression):
            filters = filters & (pc.field("height") == h) & (pc.field("width") == w)
        else:  # stay tuples, which also skip files by their statistics
            filters = _and_tuples(_and_tuples(filters, ("height", "=", h)), ("width", "=", w))
    groups = read_frame_groups(path, purpose, filters, version)
    if len(groups) > 1:
        shapes = ", ".join(f"{h}x{w}" for h, w in sorted(groups))
        raise ValueError(
            f"{path}: rows have {len(groups)} frame shapes ({shapes}); pass shape=(h, w) "
            "or use read_frame_groups()"
        )
    if groups:
        return next(iter(groups.values()))
    height, width = shape if shape is not None else (0, 0)
    empty = read_table(path, purpose, filters, version=version)
    return _with_tensor(empty, int(height), int(width))


def frames_to_numpy(table: pa.Table) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 from a table returned by ``read_frames`` (zero-copy if possible)."""
    return tensor_to_numpy(table["frame"])


def read_errors(path: str, filters: Any = None, version: int | None = None) -> pa.Table:
    """The errors table: one row per failed video or clip (and purpose). ``version`` is the
    errors table's own (its versions are not the frames table's)."""
    loc = TableLocation.of(path)
    try:
        return read_rows(loc, ERRORS, version=version, filter=_to_expression(filters))
    except TableNotFoundError:
        raise FileNotFoundError(
            f"{path}: no errors table here (no Delta log in {path}/_errors)"
        ) from None


def table_purposes(path: str, version: int | None = None) -> list[str]:
    """The purposes a frames table holds rows of (from its log: no data file is read)."""
    loc = TableLocation.of(path)
    try:
        dt = open_table(loc, FRAMES, version)
    except TableNotFoundError:
        raise FileNotFoundError(f"{path}: no frames table here (no Delta log in {path})") from None
    return sorted({p[PARTITION_COLUMN] for p in dt.partitions()})
