"""Frames table: the Parquet round trip of the stored forms of the ``frame`` column.

The same real frames (every frame of decode_bench's videos, resized by sparkframes to 224x224
and to 27x48) stored as

* (i) one BINARY value per frame, as sparkframes writes it (its batches and Parquet options:
  frame column uncompressed, 64 MiB row groups), read back as a tensor and to numpy;
* (ii) an ``arrow.fixed_shape_tensor`` column with pyarrow's default writer options, and (ii')
  the same with compression off, to tell encoding from compression;
* (iii) BINARY with the frame column compressed by snappy or zstd, to justify 'none'.

Every write starts from the per-frame arrays the extractor yields; every read ends at one
``(N, H, W, 3)`` array. Files go to tmpfs (``/dev/shm``, or ``--dir``) and are read right after
being written: this measures encode/decode cost, not the disk. Afterwards DuckDB and Polars read
each form once: what type they report, and that they read it at all.
Run: ``python -m bench.table_bench [--quick] [--reps N] [--dir D]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import sparkframes
from bench.harness import CACHE_DIR, MIB, Run, Timed, interleaved, measure, median, ratio
from bench.internals import (
    FRAMES_PARQUET_OPTIONS,
    FRAMES_SCHEMA,
    ROW_GROUP_BYTES,
    binary_to_tensor,
    frames_to_batch,
    tensor_to_numpy,
)
from bench.videos import ensure_video, recipes

SHAPES = ((224, 224), (27, 48))
Rows = Sequence[sparkframes.ExtractedFrame]


def load_frames(quick: bool) -> dict[tuple[int, int], list[sparkframes.ExtractedFrame]]:
    """Every frame of the benchmark videos at each shape, as rows; pixels cached as .npz."""
    out: dict[tuple[int, int], list[sparkframes.ExtractedFrame]] = {s: [] for s in SHAPES}
    for recipe in recipes(quick):
        video = ensure_video(recipe)
        stem = f"frames_{recipe.name}_{recipe.seconds}s"
        cached = {(h, w): CACHE_DIR / f"{stem}_{h}x{w}.npz" for h, w in SHAPES}
        if not all(p.exists() for p in cached.values()):
            _extract_all(video.path, video.fps, cached)
        for shape, path in cached.items():
            data = np.load(path)
            for i, (image, t) in enumerate(zip(data["images"], data["pts"], strict=True)):
                start = Fraction(int(t // 10) * 10)
                out[shape].append(
                    sparkframes.ExtractedFrame(
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
        sparkframes.ExtractionSpec(f"s{h}x{w}", target_fps=(Fraction(fps),), target_res=(h, w))
        for h, w in SHAPES
    ]
    ex = sparkframes.extract_clip_frames(
        path,
        specs,
        stride=sparkframes.FixedStride(clip_len_s=Fraction(10), stride_s=Fraction(10)),
        options=sparkframes.ExtractOptions(threads=2),
    )
    by_shape: dict[tuple[int, int], dict[float, np.ndarray]] = {s: {} for s in SHAPES}
    for batch in ex:
        for row in batch:
            by_shape[row.image.shape[:2]].setdefault(float(row.pts_s), row.image)
    if ex.report.errors:
        raise RuntimeError(f"extraction failed: {ex.report.errors}")
    for shape, path_out in cached.items():
        pts = sorted(by_shape[shape])
        images = np.stack([by_shape[shape][t] for t in pts])
        np.savez(path_out, images=images, pts=np.array(pts, dtype=np.float64))


def write_binary(rows: Rows, path: Path, frame_codec: str = "none") -> None:
    """(i)/(iii): sparkframes' batches (64 MiB of pixels: its row groups) and writer options,
    the frame column's codec overridable."""
    options = dict(FRAMES_PARQUET_OPTIONS)
    options["compression"] = {**FRAMES_PARQUET_OPTIONS["compression"], "frame": frame_codec}
    per = max(1, ROW_GROUP_BYTES // rows[0].image.nbytes)
    with pq.ParquetWriter(path, FRAMES_SCHEMA, **options) as writer:
        for i in range(0, len(rows), per):
            writer.write_table(pa.Table.from_batches([frames_to_batch(rows[i : i + per])]))


def read_binary(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """All columns, the frame column as a tensor (zero-copy per chunk), then numpy; and the
    seconds of ``pq.read_table`` alone (with several row groups the rest is one copy)."""
    t0 = time.perf_counter()
    table = pq.read_table(path)
    parquet_s = time.perf_counter() - t0
    return tensor_to_numpy(binary_to_tensor(table["frame"], *shape)), parquet_s


def write_tensor(rows: Rows, path: Path, compression: str | None = None) -> None:
    """(ii): one fixed_shape_tensor column; pyarrow's defaults unless compression is given."""
    meta = pa.Table.from_batches([frames_to_batch(rows)]).drop_columns(["frame"])
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(np.stack([r.image for r in rows]))
    table = meta.append_column(pa.field("frame", tensor.type, nullable=False), tensor)
    pq.write_table(table, path, **({} if compression is None else {"compression": compression}))


def read_tensor(path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
    """All columns; the frame column comes back as the extension type if pyarrow knows it."""
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
    write: Callable[[Rows, Path], None]
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


def round_trip(form: Form, rows: Rows, shape: tuple, path: Path, check: Any) -> dict[str, Any]:
    """One write and one read, timed apart; with ``check`` (the pixels), whether they came back
    exact."""
    path.unlink(missing_ok=True)
    w = measure(lambda: form.write(rows, path))
    r = measure(lambda: form.read(path, shape))
    exact = None if check is None else bool(np.array_equal(check, r.value[0]))
    return {"write": w, "read": Timed(r.wall, r.cpu, r.value[1]), "exact": exact}


def engines(path: Path) -> dict[str, Any]:
    """What type DuckDB and Polars give ``frame``, and one full read each (errors reported,
    not raised: finding them is the point)."""
    import duckdb
    import polars as pl

    out: dict[str, Any] = {}
    con = duckdb.connect()
    try:
        relation = con.read_parquet(str(path))  # relation API: no DB-API copy of the rows
        out["DuckDB type"] = str(dict(zip(relation.columns, relation.types, strict=True))["frame"])
        t = measure(relation.to_arrow_table)
        out |= {"DuckDB rows": t.value.num_rows, "DuckDB read s": t.wall}
    except Exception as exc:
        out["DuckDB error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    finally:
        con.close()
    try:
        t = measure(lambda: pl.read_parquet(path))
        out["Polars type"] = str(t.value.schema["frame"]).split(", '{", 1)[0]  # less its JSON
        out |= {"Polars rows": t.value.height, "Polars read s": t.wall}
    except Exception as exc:
        out["Polars error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return out


def main(argv: list[str] | None = None) -> int:
    run = Run(
        __file__,
        __doc__,
        reps=3,
        argv=argv,
        dir={"type": Path, "help": "files (default /dev/shm)"},
    )
    frames = load_frames(run.quick)
    # tmpfs when there is one: the disk's write-back stalls would swamp the encoding costs.
    shm = Path("/dev/shm")
    work = run.args.dir or (shm if shm.is_dir() else CACHE_DIR) / "sparkframes_table_bench"
    work.mkdir(parents=True, exist_ok=True)
    # On a VM the first touch of a page is far dearer than later ones: touch about three
    # times the pixels' size once, then one untimed round on a slice of the frames.
    scratch = np.ones(3 * sum(len(r) * r[0].image.nbytes for r in frames.values()), np.uint8)
    del scratch
    for shape, rows in frames.items():
        for form in FORMS:
            form.write(rows[: max(1, len(rows) // 8)], work / "warmup.parquet")
            form.read(work / "warmup.parquet", shape)

    forms, reads_by = [], []
    for s_index, (shape, rows) in enumerate(frames.items()):
        mib, original = len(rows) * rows[0].image.nbytes / MIB, np.stack([r.image for r in rows])
        paths = {f.label: work / f"{f.key}_{shape[0]}x{shape[1]}.parquet" for f in FORMS}

        methods = {
            f.label: lambda rep, f=f, rows=rows, shape=shape, path=paths[f.label], check=original: (
                round_trip(f, rows, shape, path, check if rep == 0 else None)
            )
            for f in FORMS
        }
        runs = interleaved(methods, run.reps, shift=2 * s_index, label=f"{shape}")
        out = {k: [t.value for t in ts] for k, ts in runs.items()}
        base = out[FORMS[0].label]
        for label, cycles in out.items():
            w, r = [c["write"] for c in cycles], [c["read"] for c in cycles]
            bw, br = [c["write"] for c in base], [c["read"] for c in base]
            size, base_size = paths[label].stat().st_size, paths[FORMS[0].label].stat().st_size
            forms.append(
                {
                    "frames": f"{shape[0]}x{shape[1]}",
                    "form": label,
                    "write MiB/s": mib / median(t.wall for t in w),
                    "write x (i)": ratio(bw, w),
                    "write CPU x (i)": ratio(bw, w, cpu=True),
                    "read MiB/s": mib / median(t.wall for t in r),
                    "read x (i)": ratio(br, r),
                    "read CPU x (i)": ratio(br, r, cpu=True),
                    "of which read_table MiB/s": mib / median(t.value for t in r),
                    "file MiB": size / MIB,
                    "size x (i)": size / base_size,
                    "exact": cycles[0]["exact"],
                }
            )
            reads_by.append(
                {"frames": f"{shape[0]}x{shape[1]}", "form": label, **engines(paths[label])}
            )
    for path in work.glob("*.parquet"):
        path.unlink()
    parameters: dict[str, Any] = {"files in": str(work.parent)}
    for shape, rows in frames.items():
        parameters[f"{shape[0]}x{shape[1]} frames"] = len(rows)
        parameters[f"{shape[0]}x{shape[1]} MiB of pixels"] = len(rows) * rows[0].image.nbytes / MIB
    import duckdb
    import polars

    parameters |= {"duckdb": duckdb.__version__, "polars": polars.__version__}
    run.save(parameters, {"forms": forms, "engines": reads_by})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
