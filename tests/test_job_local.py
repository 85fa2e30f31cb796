"""The clip-frames job on a real local SparkSession: rows, errors, readers, commits, increments."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction as F
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.inputs import InputSchemaError, _read_with_spark, read_input
from sparkframes.spark.job import write_table
from sparkframes.table.delta import TableLocation
from sparkframes.table.maintenance import vacuum
from sparkframes.table.reader import (
    frames_to_numpy,
    read_errors,
    read_frame_groups,
    read_frames,
    read_table,
)
from tests.conftest import oracle_for
from tests.tables import read_state
from tests.videos import oracle_select, read_frame_number

VIDEOS = ["h264_mp4", "vfr_mkv", "hevc_mp4"]


def write_input(path: Path, rows: list[dict]) -> str:
    schema = pa.schema(
        [
            ("video_path", pa.string()),
            ("clip_id", pa.string()),
            ("start_s", pa.float64()),
            ("end_s", pa.float64()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)


def run(spark, input_path, output, **flags) -> object:
    config = build_options(ClipFramesOptions, {"input": input_path, "output": str(output), **flags})
    return write_table(spark, config)


def table_files(root: Path) -> list[str]:
    """The data files the latest version of the frames table lists."""
    return sorted(DeltaTable(str(root)).file_uris())


@pytest.fixture()
def inputs(tmp_path, catalog):
    rows = [{"video_path": str(catalog[n])} for n in VIDEOS]
    rows.append(
        {"video_path": str(catalog["ntsc_mp4"]), "clip_id": "n1", "start_s": 0.5, "end_s": 1.5}
    )
    rows.append(
        {"video_path": str(catalog["ntsc_mp4"]), "clip_id": "n2", "start_s": 2.0, "end_s": None}
    )
    rows.append({"video_path": str(tmp_path / "missing.mp4")})
    return write_input(tmp_path / "in.parquet", rows)


def test_job_writes_oracle_exact_frames_and_errors(spark, tmp_path, catalog, inputs):
    out = tmp_path / "out"
    summary = run(spark, inputs, out, purpose="embeddings,aesthetics", target_res="48x64")
    assert summary.videos_processed == 5 and summary.videos_failed == 1
    table = read_frames(str(out), purpose="embeddings")
    assert table.schema.field("frame").type == pa.fixed_shape_tensor(pa.uint8(), [48, 64, 3])
    frames = frames_to_numpy(table)
    assert frames.shape == (table.num_rows, 48, 64, 3)
    rows = table.drop_columns(["frame"]).to_pylist()
    for name in VIDEOS:
        oracle = oracle_for(catalog[name])
        want = [(float(f.pts_s), f.number) for f in oracle_select(oracle, 0, 10**6, F(2))]
        got = sorted(
            (r["frame_index"], r["pts_s"], read_frame_number(frames[i]))
            for i, r in enumerate(rows)
            if r["video_path"] == str(catalog[name])
        )
        assert [(p, n) for _, p, n in got] == want
    ntsc = {r["clip_id"] for r in rows if r["video_path"] == str(catalog["ntsc_mp4"])}
    assert ntsc == {"n1", "n2"}
    assert (
        read_frames(str(out), purpose="aesthetics").num_rows
        == summary.frames_by_purpose["aesthetics"]
    )
    errors = read_errors(str(out)).to_pylist()
    assert {(e["video_path"], e["purpose"], e["error_class"]) for e in errors} == {
        (str(tmp_path / "missing.mp4"), p, "VideoOpenError") for p in ("embeddings", "aesthetics")
    }
    assert "no such file" in errors[0]["message"]
    # One commit, which says which run made it, how it was asked and what it did.
    (entry,) = DeltaTable(str(out)).history()[:1]
    meta = entry["sparkframes"]
    assert meta["run_id"] == summary.run_id and entry["version"] == 1
    assert summary.table_version == 1  # version 0 is the empty table the run created
    assert meta["command"] == "clip-frames" and meta["settings"]["target_res"] == [48, 64]
    assert meta["summary"]["frames_by_purpose"] == summary.frames_by_purpose
    # The state says what decided "up to date", one row per (video, purpose), as data.
    state = read_state(TableLocation.of(str(out)))
    assert len(state) == 2 * 5
    missing = state[(str(tmp_path / "missing.mp4"), "embeddings")]
    assert (missing.frames, missing.errors, missing.status) == (0, 1, "failed")
    h264 = state[(str(catalog["h264_mp4"]), "aesthetics")]
    assert (h264.video_size, h264.status) == (os.path.getsize(catalog["h264_mp4"]), "ok")
    aesthetics = read_table(str(out), purpose="aesthetics", columns=["video_path"])
    assert h264.frames == aesthetics["video_path"].to_pylist().count(str(catalog["h264_mp4"])) > 0


def test_all_four_engines_read_the_table(spark, tmp_path, inputs):
    """The README's recipes: every engine reads the same rows through the Delta log."""
    out = tmp_path / "out"
    run(spark, inputs, out, purpose="embeddings,aesthetics", target_res="32x32")
    # A second run redoes one video (a new request for it), so files were superseded on disk.
    run(spark, inputs, out, purpose="embeddings,aesthetics", target_res="32x32", mode="overwrite")
    ours = read_table(str(out)).drop_columns(["frame"])
    key = ["purpose", "video_path", "clip_id", "target_fps", "frame_index"]
    want = sorted(tuple(r[k] for k in key) for r in ours.to_pylist())

    dt = DeltaTable(str(out))
    by_deltalake = dt.to_pyarrow_table(columns=key)
    assert sorted(tuple(r[k] for k in key) for r in by_deltalake.to_pylist()) == want

    by_polars = pl.scan_delta(str(out)).select(key).collect()
    assert sorted(by_polars.iter_rows()) == want

    con = duckdb.connect()
    frames = dt.to_pyarrow_dataset()  # noqa: F841 (DuckDB finds it by name)
    by_duckdb = con.sql(
        "SELECT purpose, count(*), min(octet_length(frame)) FROM frames GROUP BY purpose"
    ).fetchall()
    assert sum(c for _, c, _ in by_duckdb) == len(want)
    assert {b for *_, b in by_duckdb} == {32 * 32 * 3}

    # Spark without the Delta connector: the files of the version, as Parquet.
    df = spark.read.option("basePath", str(out)).parquet(*dt.file_uris())
    assert sorted(tuple(r[k] for k in key) for r in df.select(key).collect()) == want
    one = df.where("purpose = 'embeddings'").select("frame", "height", "width").first()
    img = np.frombuffer(one["frame"], np.uint8).reshape(one["height"], one["width"], 3)
    read_frame_number(img)  # real pixels survived the trip through Spark
    assert DeltaTable(str(out / "_errors")).to_pyarrow_table().num_rows == 2
    assert pl.read_delta(str(out / "_errors")).height == 2


def test_rerun_is_idempotent_and_incremental(spark, tmp_path, catalog, inputs):
    out = tmp_path / "out"
    first = run(spark, inputs, out)
    files = table_files(out)
    versions = [DeltaTable(str(out / sub)).version() for sub in ("", "_errors", "_state")]
    again = run(spark, inputs, out)
    assert again.videos_processed == 0 and again.videos_skipped == first.videos_processed
    assert table_files(out) == files
    # Nothing to do commits nothing: no table gets a new version.
    assert [DeltaTable(str(out / sub)).version() for sub in ("", "_errors", "_state")] == versions
    before = read_table(str(out)).drop_columns(["frame"]).sort_by("pts_s").to_pylist()

    # A new video adds only its rows.
    extra = tmp_path / "extra.mp4"
    shutil.copy(catalog["offset_mp4"], extra)
    rows = [*pq.read_table(inputs).to_pylist(), {"video_path": str(extra)}]
    inputs2 = write_input(tmp_path / "in2.parquet", rows)
    third = run(spark, inputs2, out)
    assert third.videos_processed == 1
    table = read_table(str(out))
    assert table.num_rows == len(before) + third.frames

    # A video changed in place is replaced in one commit, with no stale or duplicate rows.
    shutil.copy(catalog["three_frames_mp4"], extra)
    os.utime(extra, ns=(os.stat(extra).st_atime_ns, os.stat(extra).st_mtime_ns + 10**9))
    fourth = run(spark, inputs2, out)
    assert fourth.videos_processed == 1
    assert fourth.table_version == third.table_version + 1
    rows = read_table(str(out)).drop_columns(["frame"]).to_pylist()
    mine = [r for r in rows if r["video_path"] == str(extra)]
    assert len(mine) == fourth.frames == 1  # three frames at 25 fps: one sample at 2 fps
    keys = [(r["video_path"], r["clip_id"], r["target_fps"], r["frame_index"]) for r in rows]
    assert len(keys) == len(set(keys))
    # The version before it still reads as it was (time travel).
    old = read_table(str(out), version=third.table_version)
    assert old.num_rows == len(before) + third.frames
    assert old.filter(pa.compute.equal(old["video_path"], str(extra))).num_rows == third.frames

    # Overwrite mode replaces everything.
    fifth = run(spark, inputs, out, mode="overwrite")
    assert fifth.videos_processed == first.videos_processed
    assert read_table(str(out)).num_rows == len(before)


def test_rows_with_and_without_spans_for_one_video_all_count(spark, tmp_path, catalog):
    """A span-less row next to span rows still asks for the whole video; a repeated row adds
    nothing; a NaN span costs its own clip only."""
    path = str(catalog["h264_mp4"])
    span = {"video_path": path, "clip_id": "a", "start_s": 0.5, "end_s": 1.5}
    nan = {"video_path": path, "clip_id": "bad", "start_s": float("nan"), "end_s": 1.0}
    inputs = write_input(tmp_path / "in.parquet", [span, {"video_path": path}, span, nan])
    out = tmp_path / "out"
    summary = run(spark, inputs, out, target_res="32x48")
    assert (summary.videos_processed, summary.videos_failed) == (1, 0)
    rows = read_frames(str(out)).drop_columns(["frame"]).to_pylist()
    clip_a = [r["frame_index"] for r in rows if r["clip_id"] == "a"]
    assert clip_a == [0, 1]  # 2 fps over 1 s, once
    (whole_id,) = {r["clip_id"] for r in rows} - {"a"}
    whole = [r for r in rows if r["clip_id"] == whole_id]
    video_end = float(oracle_for(catalog["h264_mp4"]).end_s)
    assert (whole[0]["clip_start_s"], whole[0]["clip_end_s"]) == (0.0, video_end)
    assert len(whole) == len({r["frame_index"] for r in whole}) > len(clip_a)
    errors = read_errors(str(out)).to_pylist()
    assert [(e["clip_id"], e["error_class"]) for e in errors] == [("bad", "SpanError")]
    assert "start_s is nan" in errors[0]["message"]


def test_changing_the_stride_redoes_videos_given_by_id_alone(spark, tmp_path, catalog):
    """A row with a clip id and no span is cut at the stride: a new stride is a new request."""
    path = str(catalog["h264_mp4"])
    inputs = write_input(tmp_path / "in.parquet", [{"video_path": path, "clip_id": "v"}])
    out = tmp_path / "out"
    run(spark, inputs, out, target_res="32x48", clip_len_s="1")
    ids_1s = sorted({r for r in read_frames(str(out))["clip_id"].to_pylist()})
    assert ids_1s[:2] == ["v-00000", "v-00001"]
    second = run(spark, inputs, out, target_res="32x48", clip_len_s="0.5")
    assert second.videos_processed == 1
    ids_half = sorted({r for r in read_frames(str(out))["clip_id"].to_pylist()})
    assert len(ids_half) > len(ids_1s)


def test_a_setting_that_changes_pixels_re_extracts(spark, tmp_path, catalog):
    """skip_loop_filter and resize_filter are part of the request key: turning one on (or off)
    redoes the videos."""
    inputs = write_input(tmp_path / "in.parquet", [{"video_path": str(catalog["h264_mp4"])}])
    out = tmp_path / "out"
    assert run(spark, inputs, out).videos_processed == 1
    fast = run(spark, inputs, out, skip_loop_filter="all")
    assert fast.videos_processed == 1 and fast.videos_skipped == 0
    assert run(spark, inputs, out, skip_loop_filter="all").videos_skipped == 1
    assert run(spark, inputs, out).videos_processed == 1
    area = run(spark, inputs, out, resize_filter="area")
    assert area.videos_processed == 1 and area.videos_skipped == 0
    assert run(spark, inputs, out, resize_filter="area").videos_skipped == 1


def test_new_purpose_is_added_without_redoing_others(spark, tmp_path, inputs):
    out = tmp_path / "out"
    run(spark, inputs, out, purpose="embeddings")
    emb = read_table(str(out), purpose="embeddings").drop_columns(["frame"])
    second = run(spark, inputs, out, purpose="embeddings,aesthetics")
    assert second.frames_by_purpose.keys() == {"aesthetics"}
    assert read_table(str(out), purpose="embeddings").drop_columns(["frame"]).equals(emb)


def test_uncommitted_files_are_invisible_and_vacuum_keeps_recent_ones(spark, tmp_path, inputs):
    """A file an attempt wrote into the table whose run then died: no Delta reader sees it, and
    vacuum deletes it only after the retention period (a run in progress keeps its files)."""
    out = tmp_path / "out"
    run(spark, inputs, out)
    before = read_table(str(out)).num_rows
    stray = out / "purpose=embeddings" / "part-dead-00000-a0-t0-000000000000.parquet"
    shutil.copy(next((out / "purpose=embeddings").glob("*.parquet")), stray)
    assert read_table(str(out)).num_rows == before
    assert pl.scan_delta(str(out)).select(pl.len()).collect().item() == before
    assert run(spark, inputs, out).videos_processed == 0  # still up to date
    loc = TableLocation.of(str(out))
    assert vacuum(loc)["frames"] == []  # younger than the default 168 hours
    assert stray.exists()
    assert vacuum(loc, retention_hours=0)["frames"] == [str(stray.relative_to(out))]
    assert not stray.exists() and read_table(str(out)).num_rows == before


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (pa.schema([("path", pa.string())]), "no column 'video_path'"),
        (pa.schema([("video_path", pa.int64())]), "'video_path' must be string"),
        (
            pa.schema([("video_path", pa.string()), ("start_s", pa.string())]),
            "'start_s' must be a number",
        ),
    ],
)
def test_bad_input_tables_are_rejected_up_front(spark, tmp_path, schema, message):
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist([], schema=schema), path)
    with pytest.raises(InputSchemaError, match=message) as info:
        run(spark, str(path), tmp_path / "out")
    assert str(path) in str(info.value)
    assert not (tmp_path / "out").exists()
    # Spark reads inputs on filesystems pyarrow has none for, with the same checks.
    with pytest.raises(InputSchemaError, match=message):
        _read_with_spark(spark, str(path))


def test_spark_and_pyarrow_read_an_input_folder_alike(spark, tmp_path, catalog):
    folder = tmp_path / "in"
    folder.mkdir()
    rows = [
        {"video_path": str(catalog["h264_mp4"]), "clip_id": "a", "start_s": 0.5, "end_s": 1.5},
        {"video_path": str(catalog["vfr_mkv"]), "clip_id": None, "start_s": None, "end_s": None},
    ]
    write_input(folder / "part-0.parquet", rows[:1])
    write_input(folder / "part-1.parquet", rows[1:])
    (folder / "_SUCCESS").write_text("")  # what Spark writers leave; no reader may choke on it

    def as_rows(df) -> list[dict]:
        return sorted((r.asDict() for r in df.collect()), key=lambda r: r["video_path"])

    want = sorted(rows, key=lambda r: r["video_path"])
    assert as_rows(read_input(spark, str(folder))) == want  # read with pyarrow
    assert as_rows(_read_with_spark(spark, str(folder))) == want
    # Hadoop's "file:/path" is no path pyarrow finds: Spark reads it, as it would read a path on
    # the cluster's default filesystem.
    assert as_rows(read_input(spark, f"file:{folder}")) == want


def test_category_columns_from_pandas_are_strings(spark, tmp_path, catalog):
    """pandas writes a category column as a dictionary of strings; Spark reads it as string."""
    table = pa.table(
        {
            "video_path": pa.array([str(catalog["h264_mp4"])] * 2).dictionary_encode(),
            "clip_id": pa.array(["a", "b"]).dictionary_encode(),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    videos = read_input(spark, str(tmp_path / "in.parquet"))
    assert dict(videos.dtypes) == {"video_path": "string", "clip_id": "string"}
    assert sorted(r["clip_id"] for r in videos.collect()) == ["a", "b"]
    summary = run(spark, str(tmp_path / "in.parquet"), tmp_path / "out", target_res="24x32")
    assert (summary.videos_processed, summary.videos_failed) == (1, 0)
    assert set(read_table(str(tmp_path / "out"))["clip_id"].to_pylist()) == {"a", "b"}


def test_mixed_native_shapes_are_read_per_shape(spark, tmp_path, catalog):
    paths = [str(catalog["h264_mp4"]), str(catalog["ntsc_mp4"])]
    inputs = write_input(tmp_path / "in.parquet", [{"video_path": p} for p in paths])
    run(spark, inputs, tmp_path / "out")  # native size: 96x128 and 120x160 frames
    with pytest.raises(ValueError, match="2 frame shapes"):
        read_frames(str(tmp_path / "out"))
    small = read_frames(str(tmp_path / "out"), shape=(96, 128))
    assert set(small["video_path"].to_pylist()) == {paths[0]}
    assert frames_to_numpy(small).shape[1:] == (96, 128, 3)
    groups = read_frame_groups(str(tmp_path / "out"))
    assert set(groups) == {(96, 128), (120, 160)}
    assert sum(g.num_rows for g in groups.values()) == read_table(str(tmp_path / "out")).num_rows
    assert read_frames(str(tmp_path / "out"), shape=(1, 1)).num_rows == 0
