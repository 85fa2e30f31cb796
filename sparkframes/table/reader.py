"""Reading the frames table from pyarrow: rows with ``frame`` as an Arrow tensor.

Only the files of the committed manifest are read, so a reader sees a run entirely or not at
all, even while another run commits. Recipes for DuckDB, Polars and Spark SQL are in the README.
"""

from __future__ import annotations

import posixpath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sparkframes.filesystems import resolve
from sparkframes.table.commit import TableState
from sparkframes.table.schema import ERRORS_SCHEMA, FRAMES_SCHEMA
from sparkframes.table.tensor import binary_to_tensor, tensor_to_numpy


def _dataset(root_uri: str, kind: str) -> tuple[ds.Dataset, Any, str]:
    fs, root = resolve(root_uri)
    state = TableState.load(fs, root)
    if not state.rows and fs.get_file_info(posixpath.join(root, "_SUCCESS")).type.name != "File":
        raise FileNotFoundError(f"{root_uri}: no sparkframes table here (no committed manifest)")
    files = sorted({r["file"] for r in state.rows if r["file"] and r["kind"] == kind})
    paths = [posixpath.join(root, f) for f in files]
    if kind == "frames":
        schema = FRAMES_SCHEMA.append(pa.field("purpose", pa.string()))
        dataset = ds.dataset(
            paths,
            schema=schema,
            filesystem=fs,
            format="parquet",
            partitioning=ds.partitioning(pa.schema([("purpose", pa.string())]), flavor="hive"),
            partition_base_dir=root,
        )
    else:
        dataset = ds.dataset(paths, schema=ERRORS_SCHEMA, filesystem=fs, format="parquet")
    return dataset, fs, root


def _to_expression(filters: Any) -> ds.Expression | None:
    """A pyarrow expression, or DNF tuples like ``[("clip_id", "=", "a")]`` as pyarrow accepts."""
    if filters is None or isinstance(filters, ds.Expression):
        return filters
    import pyarrow.parquet as pq

    return pq.filters_to_expression(filters)


def read_table(
    path: str, purpose: str | None = None, filters: Any = None, columns: list[str] | None = None
) -> pa.Table:
    """The committed rows as stored (``frame`` as binary), optionally of one purpose."""
    dataset, _, _ = _dataset(path, "frames")
    expr = _to_expression(filters)
    if purpose is not None:
        by_purpose = pc.field("purpose") == purpose
        expr = by_purpose if expr is None else expr & by_purpose
    return dataset.to_table(filter=expr, columns=columns)


def read_frame_groups(
    path: str, purpose: str | None = None, filters: Any = None
) -> dict[tuple[int, int], pa.Table]:
    """One table per frame shape ``(height, width)``, each with ``frame`` as a tensor column."""
    table = read_table(path, purpose, filters)
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
    tensor = binary_to_tensor(table["frame"], height, width)
    index = table.schema.get_field_index("frame")
    return table.set_column(index, pa.field("frame", tensor.type), tensor)


def read_frames(
    path: str,
    purpose: str | None = None,
    filters: Any = None,
    shape: tuple[int, int] | None = None,
) -> pa.Table:
    """The rows of ``purpose`` (all purposes if None) with ``frame`` as ``fixed_shape_tensor``.

    A tensor column has one shape, so the rows must share one ``(height, width)``; when they do
    not (native-size frames of different videos), pass ``shape=`` (only those rows are read) or
    use ``read_frame_groups``. ``frame`` converts to numpy without a copy per row group:
    ``frames_to_numpy(table)``.
    """
    expr = _to_expression(filters)
    if shape is not None:
        by_shape = (pc.field("height") == int(shape[0])) & (pc.field("width") == int(shape[1]))
        expr = by_shape if expr is None else expr & by_shape
    groups = read_frame_groups(path, purpose, expr)
    if len(groups) > 1:
        shapes = ", ".join(f"{h}x{w}" for h, w in sorted(groups))
        raise ValueError(
            f"{path}: rows have {len(groups)} frame shapes ({shapes}); pass shape=(h, w) "
            "or use read_frame_groups()"
        )
    if groups:
        return next(iter(groups.values()))
    height, width = shape if shape is not None else (0, 0)
    return _with_tensor(read_table(path, purpose, expr), int(height), int(width))


def frames_to_numpy(table: pa.Table) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 from a table returned by ``read_frames`` (zero-copy if possible)."""
    return tensor_to_numpy(table["frame"])


def read_errors(path: str, filters: Any = None) -> pa.Table:
    """The errors table: one row per failed video or clip (and purpose)."""
    dataset, _, _ = _dataset(path, "errors")
    return dataset.to_table(filter=_to_expression(filters))
