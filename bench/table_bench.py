"""Frames-table benchmark: the Parquet round trip of the stored forms of the ``frame`` column.

Issue "the frames table's stored form". The same real frames (every frame of the decode
benchmark's videos, resized by sparkframes to 224x224 and to 27x48) stored as

* (i) one BINARY value per frame, as sparkframes writes it (``frames_to_batch`` and
  ``FRAMES_PARQUET_OPTIONS``: frame column uncompressed, 64 MiB row groups), read back with
  ``binary_to_tensor`` + ``tensor_to_numpy``;
* (ii) an ``arrow.fixed_shape_tensor`` column (FixedSizeList<uint8>) with pyarrow's default
  writer options (``pq.write_table``: snappy, dictionary, one row group), and (ii') the same
  with compression off, to tell encoding from compression;
* (iii) BINARY with the frame column compressed by snappy or zstd, to justify 'none'.

Every write starts from the list of per-frame arrays the extractor yields; every read ends at
one ``(N, H, W, 3)`` numpy array. Forms are interleaved in a rotating order per repetition and
ratios are medians of per-repetition ratios. Files go to tmpfs (``/dev/shm``, or ``--dir``) and
are read right after being written: this measures encode/decode cost, not the disk. Afterwards
each stored form is read by DuckDB and Polars to see what type they report and that they read
it at all.

Run: ``python -m bench.table_bench [--quick] [--reps N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.common import (
    CACHE_DIR,
    Timed,
    ensure_video,
    load_note,
    machine_info,
    md_table,
    median,
    ratio,
    recipes,
    rotated,
    timed,
    write_section,
)
from sparkframes.extraction.base import ExtractedFrame
from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
from sparkframes.sampling.spans import FixedStride
from sparkframes.sampling.specs import ExtractionSpec
from sparkframes.table.files import FRAMES_PARQUET_OPTIONS, ROW_GROUP_BYTES
from sparkframes.table.schema import FRAMES_SCHEMA, frames_to_batch
from sparkframes.table.tensor import binary_to_tensor, tensor_to_numpy

SECTION = "table_bench"
SHAPES = ((224, 224), (27, 48))
MIB = 1 << 20


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------


def load_frames(quick: bool) -> dict[tuple[int, int], list[ExtractedFrame]]:
    """Every frame of the benchmark videos at each shape, as rows; pixels cached as .npy."""
    out: dict[tuple[int, int], list[ExtractedFrame]] = {shape: [] for shape in SHAPES}
    for recipe in recipes(quick):
        video = ensure_video(recipe)
        cached = {
            shape: CACHE_DIR / f"frames_{recipe.name}_{recipe.seconds}s_{shape[0]}x{shape[1]}.npz"
            for shape in SHAPES
        }
        if not all(p.exists() for p in cached.values()):
            _extract_all(video.path, video.fps, cached)
        for shape, path in cached.items():
            data = np.load(path)
            images, pts = data["images"], data["pts"]
            for i, (image, t) in enumerate(zip(images, pts, strict=True)):
                start = Fraction(int(t // 10) * 10)
                out[shape].append(
                    ExtractedFrame(
                        video_path=video.path,
                        clip_id=f"{float(start):.3f}-{float(start) + 10:.3f}-{recipe.name}",
                        clip_start_s=start,
                        clip_end_s=start + 10,
                        purpose="bench",
                        policy="sequence",
                        target_fps=Fraction(video.fps),
                        frame_index=i,
                        pts_s=Fraction(float(t)),
                        image=image,
                    )
                )
    return out


def _extract_all(path: str, fps: int, cached: dict[tuple[int, int], Path]) -> None:
    """Every frame (sampled at the video's own rate), resized by sparkframes in one decode."""
    specs = [
        ExtractionSpec(f"s{h}x{w}", target_fps=(Fraction(fps),), target_res=(h, w))
        for h, w in SHAPES
    ]
    ex = extract_clip_frames(
        path,
        specs,
        stride=FixedStride(clip_len_s=Fraction(10), stride_s=Fraction(10)),
        options=ExtractOptions(threads=2),
    )
    by_shape: dict[tuple[int, int], dict[float, np.ndarray]] = {s: {} for s in SHAPES}
    for batch in ex:
        for row in batch:
            by_shape[row.image.shape[:2]].setdefault(float(row.pts_s), row.image)
    if ex.report.errors:
        raise RuntimeError(f"extraction failed: {ex.report.errors}")
    for shape, path_out in cached.items():
        times = sorted(by_shape[shape])
        np.savez(
            path_out,
            images=np.stack([by_shape[shape][t] for t in times]),
            pts=np.array(times, dtype=np.float64),
        )


# --------------------------------------------------------------------------------------------
# Stored forms
# --------------------------------------------------------------------------------------------


def _metadata_columns(rows: Sequence[ExtractedFrame]) -> pa.Table:
    """The non-frame columns exactly as sparkframes builds them."""
    return pa.Table.from_batches([frames_to_batch(rows)]).drop_columns(["frame"])


def _batches(rows: Sequence[ExtractedFrame]) -> list[Sequence[ExtractedFrame]]:
    """Rows cut into the extractor's batch size (64 MiB of pixels), which become row groups."""
    per = max(1, ROW_GROUP_BYTES // rows[0].image.nbytes)
    return [rows[i : i + per] for i in range(0, len(rows), per)]


def write_binary(rows: Sequence[ExtractedFrame], path: Path, frame_codec: str = "none") -> None:
    """(i)/(iii): sparkframes' batches and writer options (frame codec overridable)."""
    options = dict(FRAMES_PARQUET_OPTIONS)
    options["compression"] = {**FRAMES_PARQUET_OPTIONS["compression"], "frame": frame_codec}
    with pq.ParquetWriter(path, FRAMES_SCHEMA, **options) as writer:
        for chunk in _batches(rows):
            writer.write_table(pa.Table.from_batches([frames_to_batch(chunk)]))


def read_binary(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """All columns, then the frame column as a tensor (zero-copy per chunk) and numpy.

    Returns the array and the seconds spent in ``pq.read_table`` alone: with several row
    groups ``tensor_to_numpy`` concatenates the chunks, a copy whose cost (fresh pages) varies.
    """
    t0 = time.perf_counter()
    table = pq.read_table(path)
    parquet_s = time.perf_counter() - t0
    return tensor_to_numpy(binary_to_tensor(table["frame"], *shape)), parquet_s


def write_tensor(
    rows: Sequence[ExtractedFrame], path: Path, compression: str | None = None
) -> None:
    """(ii): one fixed_shape_tensor column; pyarrow's defaults unless compression is given."""
    meta = _metadata_columns(rows)
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(np.stack([r.image for r in rows]))
    table = meta.append_column(pa.field("frame", tensor.type, nullable=False), tensor)
    if compression is None:
        pq.write_table(table, path)
    else:
        pq.write_table(table, path, compression=compression)


def read_tensor(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """All columns; the frame column comes back as the extension type if pyarrow knows it.
    Returns the array and the seconds spent in ``pq.read_table`` alone."""
    t0 = time.perf_counter()
    column = pq.read_table(path)["frame"]
    parquet_s = time.perf_counter() - t0
    if isinstance(column.type, pa.FixedShapeTensorType):
        return tensor_to_numpy(column), parquet_s
    flat = pa.concat_arrays([c.flatten() for c in column.chunks]).to_numpy()
    return flat.reshape(len(column), shape[0], shape[1], 3), parquet_s


@dataclass(frozen=True)
class Form:
    key: str
    label: str
    write: Callable[[Sequence[ExtractedFrame], Path], None]
    read: Callable[[Path, tuple[int, int]], tuple[np.ndarray, float]]


FORMS = [
    Form("binary", "(i) binary, sparkframes options (frame: none)", write_binary, read_binary),
    Form("tensor", "(ii) fixed_shape_tensor, pyarrow defaults", write_tensor, read_tensor),
    Form(
        "tensor_none",
        "(ii') fixed_shape_tensor, compression none",
        lambda rows, path: write_tensor(rows, path, "none"),
        read_tensor,
    ),
    Form(
        "binary_snappy",
        "(iii) binary, frame: snappy",
        lambda rows, path: write_binary(rows, path, "snappy"),
        read_binary,
    ),
    Form(
        "binary_zstd",
        "(iii) binary, frame: zstd (Arrow's default level)",
        lambda rows, path: write_binary(rows, path, "zstd"),
        read_binary,
    ),
]


_WORK_NAME = "sparkframes_table_bench"


def _default_workdir() -> Path:
    shm = Path("/dev/shm")
    return shm / _WORK_NAME if shm.is_dir() else CACHE_DIR / _WORK_NAME


def warm_up(frames: dict[tuple[int, int], list[ExtractedFrame]], work: Path) -> None:
    """One untimed round on a slice of the frames, so no form pays first-use costs (imports,
    allocator growth) in the timings; and touch, once, about three times the pixels' size of
    memory, because on a VM the first touch of a page is far dearer than any later one."""
    total = sum(len(rows) * rows[0].image.nbytes for rows in frames.values() if rows)
    scratch = np.ones(3 * total, dtype=np.uint8)
    del scratch
    for shape, rows in frames.items():
        part = rows[: max(1, len(rows) // 8)]
        for form in FORMS:
            path = work / f"warmup_{form.key}.parquet"
            form.write(part, path)
            form.read(path, shape)
            path.unlink()


# --------------------------------------------------------------------------------------------
# Engines
# --------------------------------------------------------------------------------------------


def duckdb_check(path: Path) -> tuple[str, str]:
    """(type DuckDB reports for ``frame``, outcome of reading every row of it)."""
    import duckdb

    con = duckdb.connect()
    try:
        relation = con.read_parquet(str(path))  # relation API: no DB-API copy of the rows
        ftype = str(dict(zip(relation.columns, relation.types, strict=True))["frame"])
        t0 = time.perf_counter()
        rows = relation.to_arrow_table()
        return ftype, f"ok, {rows.num_rows} rows in {time.perf_counter() - t0:.2f} s"
    except Exception as exc:  # reported, not raised: finding this out is the point
        return "?", f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        con.close()


def polars_check(path: Path) -> tuple[str, str]:
    """(dtype ``pl.read_parquet`` gives ``frame``, outcome of reading the whole file)."""
    import polars as pl

    try:
        t0 = time.perf_counter()
        df = pl.read_parquet(path)
        seconds = time.perf_counter() - t0
        dtype = str(df.schema["frame"]).split(", '{", 1)[0]  # drop the extension's JSON
        return dtype, f"ok, {df.height} rows in {seconds:.2f} s"
    except Exception as exc:
        return "?", f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short videos, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    parser.add_argument("--dir", default=None, help="where to write files (default: /dev/shm)")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    machine = machine_info()
    print(machine, flush=True)

    t0 = time.perf_counter()
    frames = load_frames(args.quick)
    print(f"frames ready in {time.perf_counter() - t0:.1f} s", flush=True)
    # tmpfs when there is one: the disk's write-back stalls would swamp the encoding costs.
    work = Path(args.dir) if args.dir else _default_workdir()
    work.mkdir(parents=True, exist_ok=True)
    warm_up(frames, work)

    writes: dict[tuple[str, tuple[int, int]], list[Timed]] = {}
    reads: dict[tuple[str, tuple[int, int]], list[Timed]] = {}
    sizes: dict[tuple[str, tuple[int, int]], int] = {}
    exact: dict[tuple[str, tuple[int, int]], bool] = {}
    started = time.perf_counter()
    for rep in range(reps):
        for s_index, shape in enumerate(SHAPES):
            rows = frames[shape]
            for form in rotated(FORMS, rep * 2 + s_index):
                path = work / f"{form.key}_{shape[0]}x{shape[1]}.parquet"
                path.unlink(missing_ok=True)
                w = timed(lambda form=form, rows=rows, path=path: form.write(rows, path))
                r = timed(lambda form=form, path=path, shape=shape: form.read(path, shape))
                key = (form.key, shape)
                writes.setdefault(key, []).append(w)
                reads.setdefault(key, []).append(Timed(r.wall, r.cpu, r.value[1]))
                sizes[key] = path.stat().st_size
                if rep == 0:
                    original = np.stack([row.image for row in rows])
                    exact[key] = bool(np.array_equal(original, r.value[0]))
                del r
                print(
                    f"rep {rep} {shape[0]}x{shape[1]} {form.key:>13}: write {w.wall:6.2f} s, "
                    f"read {reads[key][-1].wall:6.2f} s, {sizes[key] / MIB:8.1f} MiB",
                    flush=True,
                )
    total = time.perf_counter() - started

    engines: dict[tuple[str, tuple[int, int]], tuple[tuple[str, str], tuple[str, str]]] = {}
    for shape in SHAPES:
        for form in FORMS:
            path = work / f"{form.key}_{shape[0]}x{shape[1]}.parquet"
            engines[(form.key, shape)] = (duckdb_check(path), polars_check(path))
            print(f"engines {form.key} {shape}: {engines[(form.key, shape)]}", flush=True)
    for path in work.glob("*.parquet"):
        path.unlink()
    if work.name == _WORK_NAME:
        work.rmdir()

    body = _report(
        frames, writes, reads, sizes, exact, engines, reps, machine, total, args.quick, work
    )
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, body)}")
    return 0


def _report(
    frames: dict[tuple[int, int], list[ExtractedFrame]],
    writes: dict[tuple[str, tuple[int, int]], list[Timed]],
    reads: dict[tuple[str, tuple[int, int]], list[Timed]],
    sizes: dict[tuple[str, tuple[int, int]], int],
    exact: dict[tuple[str, tuple[int, int]], bool],
    engines: dict[tuple[str, tuple[int, int]], tuple[tuple[str, str], tuple[str, str]]],
    reps: int,
    machine: str,
    total_s: float,
    quick: bool,
    work: Path,
) -> str:
    import duckdb
    import polars as pl

    lines = [
        "## Frames table: stored form of the `frame` column (`bench/table_bench.py`)",
        "",
        machine + f" DuckDB {duckdb.__version__}, Polars {pl.__version__}.",
        "",
        "Frames: every frame of the decode benchmark's three videos, resized by sparkframes "
        "(bicubic) - real picture content, neither noise nor constant. "
        + "; ".join(
            f"{h}x{w}: {len(rows)} frames, {len(rows) * h * w * 3 / MIB:.0f} MiB of pixels"
            for (h, w), rows in frames.items()
        )
        + f". {reps} repetition(s){' (--quick)' if quick else ''}, forms interleaved in a "
        f"rotating order; medians shown, ratios are medians of per-repetition ratios against "
        f"(i). Whole run {total_s:.0f} s.",
        "",
        "MiB/s are MiB of pixels per wall second. Write = per-frame arrays to a Parquet file "
        "(Arrow array building included); read = `pq.read_table` of all columns to one "
        f"`(N, H, W, 3)` uint8 array. Files in `{work.parent}` "
        f"({'tmpfs, so no disk in the timings' if str(work).startswith('/dev/shm') else 'disk'}); "
        "one untimed warm-up round first. *x (i)*: speed relative to (i) in wall time, "
        "*CPU x (i)* the same in CPU time (all threads; less disturbed by other load): "
        "above 1 is faster than (i). *of which read_table*: the `pq.read_table` step alone (the "
        "rest is the frame column to numpy; with several row groups that is one copy of the "
        "pixels into fresh memory, whose page-fault cost varies from run to run). "
        "*size x (i)*: above 1 is bigger.",
        "",
    ]
    header = ["frames", "form", "write MiB/s", "x (i)", "CPU x (i)", "read MiB/s", "x (i)"]
    header += ["CPU x (i)", "of which read_table MiB/s", "file MiB", "size x (i)", "exact"]
    rows_out: list[list[str]] = []
    for shape in SHAPES:
        h, w = shape
        mib = len(frames[shape]) * h * w * 3 / MIB
        base_w, base_r = writes[("binary", shape)], reads[("binary", shape)]
        for form in FORMS:
            key = (form.key, shape)
            ws, rs = writes[key], reads[key]
            rows_out.append(
                [
                    f"{h}x{w}",
                    form.label,
                    f"{mib / median(x.wall for x in ws):.0f}",
                    f"{ratio(base_w, ws):.2f}x",
                    f"{ratio(base_w, ws, cpu=True):.2f}x",
                    f"{mib / median(x.wall for x in rs):.0f}",
                    f"{ratio(base_r, rs):.2f}x",
                    f"{ratio(base_r, rs, cpu=True):.2f}x",
                    f"{mib / median(x.value for x in rs):.0f}",
                    f"{sizes[key] / MIB:.1f}",
                    f"{sizes[key] / sizes[('binary', shape)]:.3f}",
                    "yes" if exact.get(key) else "NO",
                ]
            )
    lines += [md_table(header, rows_out, left=2), ""]
    lines += [
        "Other engines reading each stored form (one full read each, `SELECT *` for DuckDB, "
        "`pl.read_parquet` for Polars; single timings, for information):",
        "",
    ]
    erows: list[list[str]] = []
    for shape in SHAPES:
        for form in FORMS:
            (d_type, d_out), (p_type, p_out) = engines[(form.key, shape)]
            erows.append(
                [f"{shape[0]}x{shape[1]}", form.label, f"`{d_type}`", d_out, f"`{p_type}`", p_out]
            )
    lines += [
        md_table(
            ["frames", "form", "DuckDB type", "DuckDB read", "Polars type", "Polars read"],
            erows,
            left=6,
        ),
        "",
        load_note(),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
