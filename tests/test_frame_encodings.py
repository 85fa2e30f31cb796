"""Frames stored as JPEG or PNG: smaller tables, the same rows, pixels within a stated bound, and
every reader the project ships giving pixels back."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkframes.convert.encode import FrameEncoding
from sparkframes.notebook import clip_array
from sparkframes.options import ClipFramesOptions, VideoFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.table.encodings import decode_frame
from sparkframes.table.reader import frames_to_numpy, read_frames, read_table
from sparkframes.tools.preview.contact_sheet import contact_sheet
from tests.videos import read_frame_number

VIDEOS = ["h264_mp4", "hevc_mp4", "vfr_mkv"]
KEY = ["video_path", "clip_id", "target_fps", "frame_index", "pts_s"]
#: The documented bound for JPEG at the default quality 95 (docs/table.md, "Choosing an encoding").
JPEG_MEAN_ABS_DIFF = 4.0


def _run(spark, inputs, output, **flags):
    values = {"input": str(inputs), "output": str(output), "target_res": "224x224", **flags}
    return write_table(spark, build_options(ClipFramesOptions, values))


def _table_bytes(output) -> int:
    dt = DeltaTable(str(output))
    return sum(pa.table(dt.get_add_actions(flatten=True))["size_bytes"].to_pylist())


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory, catalog):
    """The same videos as raw, JPEG and PNG tables."""
    work = tmp_path_factory.mktemp("encodings")
    inputs = work / "in.parquet"
    pq.write_table(pa.table({"video_path": [str(catalog[n]) for n in VIDEOS]}), inputs)
    out = {}
    for encoding in ("raw", "jpeg", "png"):
        out[encoding] = work / encoding
        _run(spark, inputs, out[encoding], frame_encoding=encoding)
    return inputs, out


def _sorted(table: pa.Table) -> pa.Table:
    return table.sort_by([(k, "ascending") for k in KEY])


def test_jpeg_is_much_smaller_with_the_same_rows_and_close_pixels(tables):
    _, out = tables
    assert _table_bytes(out["raw"]) > 5 * _table_bytes(out["jpeg"])
    raw, jpeg = _sorted(read_frames(str(out["raw"]))), _sorted(read_frames(str(out["jpeg"])))
    assert raw.select(KEY).equals(jpeg.select(KEY))  # same rows, same timestamps
    assert jpeg.schema.field("frame").type == raw.schema.field("frame").type
    assert set(jpeg["frame_encoding"].to_pylist()) == {"jpeg"}
    a, b = frames_to_numpy(raw), frames_to_numpy(jpeg)
    diff = np.abs(a.astype(np.int16) - b).mean(axis=(1, 2, 3))
    assert diff.max() <= JPEG_MEAN_ABS_DIFF, diff.max()
    # Still the same source frame: the frame number survives the compression.
    assert [read_frame_number(f) for f in b] == [read_frame_number(f) for f in a]


def test_png_is_exact(tables):
    _, out = tables
    raw, png = _sorted(read_frames(str(out["raw"]))), _sorted(read_frames(str(out["png"])))
    assert raw.select(KEY).equals(png.select(KEY))
    assert np.array_equal(frames_to_numpy(raw), frames_to_numpy(png))
    assert _table_bytes(out["png"]) < _table_bytes(out["raw"])


def test_every_reader_gives_pixels(tables, tmp_path):
    _, out = tables
    table = read_frames(str(out["jpeg"]))
    first = table["clip_id"][0].as_py()
    assert clip_array(table, first, target_fps=2).shape[1:] == (224, 224, 3)
    sheet = contact_sheet(str(out["jpeg"]), "embeddings", output=tmp_path / "sheet.png")
    assert sheet.rows and all(t.image.size for r in sheet.rows for t in r.thumbs)
    # Any engine: the stored bytes and decode_frame.
    row = pl.scan_delta(str(out["jpeg"])).head(1).collect().row(0, named=True)
    img = decode_frame(row["frame"], row["frame_encoding"], row["height"], row["width"])
    stored = read_table(str(out["raw"]), filters=[("pts_s", "=", row["pts_s"])])
    raw = stored.filter(pa.compute.equal(stored["video_path"], row["video_path"]))
    want = decode_frame(raw["frame"][0].as_buffer(), "raw", 224, 224)
    assert read_frame_number(img) == read_frame_number(want)


def test_changing_the_encoding_re_extracts(spark, tables, tmp_path, catalog):
    inputs, _ = tables
    out = tmp_path / "out"
    assert _run(spark, inputs, out).videos_processed == len(VIDEOS)
    assert _run(spark, inputs, out, frame_encoding="jpeg").videos_processed == len(VIDEOS)
    assert _run(spark, inputs, out, frame_encoding="jpeg").videos_skipped == len(VIDEOS)
    q80 = _run(spark, inputs, out, frame_encoding="jpeg", jpeg_quality=80)
    assert q80.videos_processed == len(VIDEOS)
    assert set(read_table(str(out), columns=["frame_encoding"])["frame_encoding"].to_pylist()) == {
        "jpeg"
    }
    assert _run(spark, inputs, out).videos_processed == len(VIDEOS)  # back to raw


def test_scene_frames_can_be_stored_as_png(spark, tmp_path, catalog):
    pq.write_table(pa.table({"video_path": [str(catalog["h264_mp4"])]}), tmp_path / "in.parquet")
    values = {"input": str(tmp_path / "in.parquet"), "frame_encoding": "png"}
    for encoding, folder in (("png", "png"), ("raw", "raw")):
        config = {**values, "output": str(tmp_path / folder), "frame_encoding": encoding}
        write_table(spark, build_options(VideoFramesOptions, config))
    png = _sorted(read_frames(str(tmp_path / "png"), purpose="scene"))
    raw = _sorted(read_frames(str(tmp_path / "raw"), purpose="scene"))
    assert np.array_equal(frames_to_numpy(png), frames_to_numpy(raw)) and png.num_rows > 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"frame_encoding": "webp"}, "--frame-encoding must be one of"),
        ({"jpeg_quality": 80}, "--jpeg-quality: only with --frame-encoding jpeg"),
        ({"frame_encoding": "png", "jpeg_quality": 80}, "only with --frame-encoding jpeg"),
        ({"frame_encoding": "jpeg", "jpeg_quality": 0}, r"within \[1, 100\]"),
        ({"frame_encoding": "jpeg", "jpeg_quality": "high"}, "must be an integer"),
    ],
)
def test_bad_encoding_flags_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        build_options(ClipFramesOptions, {"input": "i", "output": "o", **values})


def test_the_encodings_round_trip():
    rng = np.random.default_rng(3)
    image = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    for name in ("raw", "png"):
        data = FrameEncoding(name).encode(image)
        assert np.array_equal(decode_frame(data, name, 30, 40), image)
    jpeg = FrameEncoding("jpeg", 95).encode(image)
    assert jpeg[:2] == b"\xff\xd8" and decode_frame(jpeg, "jpeg", 30, 40).shape == (30, 40, 3)
    with pytest.raises(ValueError, match="not 40x31"):
        decode_frame(jpeg, "jpeg", 31, 40)
    with pytest.raises(ValueError, match="one of"):
        FrameEncoding("gif")
