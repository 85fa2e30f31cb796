"""Contact sheets from a real frames table, and keyframe / exact previews straight from videos.

Every thumbnail is checked by the frame number its pixels carry, read back from the written
PNG or the HTML's embedded JPEG, against the sequential-decode oracle.
"""

from __future__ import annotations

import base64
import html
import io
import re
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from sparkframes.decoding.protocol import DecodeStats
from sparkframes.decoding.source import open_video
from sparkframes.errors import VideoOpenError
from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.table.encodings import decode_frame
from sparkframes.table.reader import read_table
from sparkframes.tools.preview import (
    contact_sheet,
    exact_thumbnails,
    keyframe_thumbnails,
    video_contact_sheet,
)
from sparkframes.tools.preview.contact_sheet import PAD, thumbnail
from tests.conftest import VIDEO_NAMES, oracle_for
from tests.test_job_local import write_input
from tests.videos import OracleVideo, oracle_select, read_frame_number

REPO = Path(__file__).resolve().parent.parent
ODD_ID = 'n1 <b>&"x"'  # a clip id that must be escaped in HTML


@pytest.fixture(scope="module")
def table(spark, catalog, tmp_path_factory) -> Path:
    """Purpose embeddings at 2 and 5 fps, 48x64: two whole videos and two clips of a third."""
    root = tmp_path_factory.mktemp("preview_table")
    ntsc = str(catalog["ntsc_mp4"])
    rows = [
        {"video_path": str(catalog["h264_mp4"])},
        {"video_path": str(catalog["rot90_mp4"])},
        {"video_path": ntsc, "clip_id": ODD_ID, "start_s": 0.5, "end_s": 1.5},
        {"video_path": ntsc, "clip_id": "n2", "start_s": 1.5, "end_s": None},
    ]
    values = {
        "input": write_input(root / "in.parquet", rows),
        "output": str(root / "out"),
        "purpose": "embeddings",
        "target_fps": "2,5",
        "target_res": "48x64",
    }
    summary = write_table(spark, build_options(ClipFramesOptions, values))
    assert summary.videos_failed == 0
    return root / "out"


@pytest.fixture(scope="module")
def native_table(spark, catalog, tmp_path_factory) -> Path:
    """Native-size frames of three shapes (one rotated) in one purpose."""
    root = tmp_path_factory.mktemp("preview_native")
    names = ["h264_mp4", "odd_vp9_webm", "rot90_mp4"]
    values = {
        "input": write_input(root / "in.parquet", [{"video_path": str(catalog[n])} for n in names]),
        "output": str(root / "out"),
        "purpose": "aesthetics",
    }
    summary = write_table(spark, build_options(ClipFramesOptions, values))
    assert summary.videos_failed == 0
    return root / "out"


def _number_at(oracle: OracleVideo, pts_s: float) -> int:
    """The frame number the oracle decoded at ``pts_s``."""
    matches = [f.number for f in oracle.frames if abs(float(f.pts_s) - pts_s) < 1e-9]
    assert len(matches) == 1, pts_s
    return matches[0]


def _video_of(catalog: dict[str, Path], path: str) -> str:
    return next(name for name, p in catalog.items() if str(p) == path)


def _crop(image: Image.Image, box: tuple[int, int, int, int]) -> np.ndarray:
    return np.asarray(image.convert("RGB").crop(box))


def _expected_clips(catalog: dict[str, Path]) -> list[tuple[str, str, float, float]]:
    """(video name, clip id, start, end) of the table's clips in sheet order."""
    ntsc_end = float(oracle_for(catalog["ntsc_mp4"]).end_s)
    clips = [
        ("h264_mp4", None, 0.0, float(oracle_for(catalog["h264_mp4"]).end_s)),
        ("ntsc_mp4", ODD_ID, 0.5, 1.5),
        ("ntsc_mp4", "n2", 1.5, ntsc_end),
        ("rot90_mp4", None, 0.0, float(oracle_for(catalog["rot90_mp4"]).end_s)),
    ]
    return sorted(clips, key=lambda c: (str(catalog[c[0]]), c[2]))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# From the table
# --------------------------------------------------------------------------------------------


def test_png_sheet_grid_and_pixels(table, catalog, tmp_path):
    sheet = contact_sheet(table, "embeddings", output=tmp_path / "sheet.png", thumb_height=96)
    image = Image.open(sheet.path)
    layout = sheet.layout
    assert layout is not None and image.size == (layout.width, layout.height)
    clips = _expected_clips(catalog)
    assert len(sheet.rows) == len(clips) == len(layout.boxes)
    # One row per clip; as many columns as the longest clip has frames at its lowest rate.
    wanted = {}
    for name, clip_id, start, end in clips:
        oracle = oracle_for(catalog[name])
        wanted[(name, clip_id)] = [float(f.pts_s) for f in oracle_select(oracle, start, end, 2)]
    cols = max(len(v) for v in wanted.values())
    assert max(len(row) for row in layout.boxes) == cols == 5
    assert layout.height == PAD + len(clips) * layout.row_height
    assert layout.width >= PAD + cols * (layout.cell_width + PAD)
    stored = read_table(str(table), "embeddings")
    for r, (row, (name, clip_id, start, end)) in enumerate(zip(sheet.rows, clips, strict=True)):
        assert row.video_path == str(catalog[name])
        if clip_id is not None:
            assert row.clip_id == clip_id
        assert row.target_fps == 2.0  # the lowest of the clip's rates (2 and 5)
        assert [t.pts_s for t in row.thumbs] == wanted[(name, clip_id)]
        assert f"{start:.2f}-{end:.2f} s" in row.label
        oracle = oracle_for(catalog[name])
        for c, (thumb, box) in enumerate(zip(row.thumbs, layout.boxes[r], strict=True)):
            left, top, right, bottom = box
            assert (bottom - top, right - left) == (96, 128)
            assert left == PAD + c * (layout.cell_width + PAD) + (layout.cell_width - 128) // 2
            crop = _crop(image, box)
            assert read_frame_number(crop, oracle.rotation) == _number_at(oracle, thumb.pts_s)
            # Exactly the stored frame, resized the same way.
            mask = (
                (np.array(stored["clip_id"].to_pylist()) == row.clip_id)
                & (np.array(stored["pts_s"].to_pylist()) == thumb.pts_s)
                & (np.array(stored["target_fps"].to_pylist()) == 2.0)
            )
            (i,) = np.flatnonzero(mask)
            frame = decode_frame(stored["frame"][int(i)].as_buffer(), "raw", 48, 64)
            assert np.array_equal(crop, thumbnail(frame, 96))


def test_limits_and_video_filter(table, catalog, tmp_path):
    few = contact_sheet(
        table, "embeddings", output=tmp_path / "few.png", max_clips=2, max_frames_per_clip=3
    )
    clips = _expected_clips(catalog)[:2]
    assert [r.video_path for r in few.rows] == [str(catalog[c[0]]) for c in clips]
    first = few.rows[0]  # h264_mp4: 5 frames at 2 fps, 3 shown evenly, first and last kept
    assert [t.pts_s for t in first.thumbs] == [0.0, 1.0, 2.0]
    assert max(len(b) for b in few.layout.boxes) == 3

    by_name = contact_sheet(
        table, "embeddings", [catalog["rot90_mp4"].name], output=tmp_path / "one.png"
    )
    assert [r.video_path for r in by_name.rows] == [str(catalog["rot90_mp4"])]
    by_path = contact_sheet(
        table, "embeddings", [str(catalog["ntsc_mp4"])], output=tmp_path / "two.png"
    )
    assert [r.clip_id for r in by_path.rows] == [ODD_ID, "n2"]
    with pytest.raises(ValueError, match="no frames of purpose 'aesthetics'"):
        contact_sheet(table, "aesthetics", output=tmp_path / "none.png")
    with pytest.raises(ValueError, match="must end in"):
        contact_sheet(table, "embeddings", output=tmp_path / "sheet.gif")


def test_html_sheet_is_self_contained_and_escaped(table, catalog, tmp_path):
    sheet = contact_sheet(table, "embeddings", output=tmp_path / "sheet.html")
    text = sheet.path.read_text(encoding="utf-8")
    assert sheet.layout is None
    assert html.escape(ODD_ID) in text and ODD_ID not in text and "<b>" not in text
    for row in sheet.rows:
        assert html.escape(row.clip_id) in text
        for thumb in row.thumbs:
            assert f"<figcaption>{thumb.pts_s:.2f} s</figcaption>" in text
    sources = re.findall(r'<img src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', text)
    assert text.count("<img ") == len(sources) == sum(len(r.thumbs) for r in sheet.rows)
    assert 'src="http' not in text and "<link" not in text and "<script" not in text
    # The embedded JPEGs show the right frames, in sheet order.
    at = 0
    for row in sheet.rows:
        name = _video_of(catalog, row.video_path)
        oracle = oracle_for(catalog[name])
        for thumb in row.thumbs:
            image = np.asarray(Image.open(io.BytesIO(base64.b64decode(sources[at]))))
            assert read_frame_number(image, oracle.rotation) == _number_at(oracle, thumb.pts_s)
            at += 1


def test_native_frames_of_mixed_shapes(native_table, catalog, tmp_path):
    sheet = contact_sheet(native_table, "aesthetics", output=tmp_path / "native.png")
    image = Image.open(sheet.path)
    widths = {}
    for r, row in enumerate(sheet.rows):
        name = _video_of(catalog, row.video_path)
        oracle = oracle_for(catalog[name])
        assert row.target_fps == 1.0 and row.thumbs
        for thumb, box in zip(row.thumbs, sheet.layout.boxes[r], strict=True):
            crop = _crop(image, box)
            assert crop.shape[0] == 96
            widths[name] = crop.shape[1]
            assert read_frame_number(crop, oracle.rotation) == _number_at(oracle, thumb.pts_s)
    # Each at its own aspect: 128x96, 97x61, and 96x128 as displayed.
    assert widths == {"h264_mp4": 128, "odd_vp9_webm": round(97 * 96 / 61), "rot90_mp4": 72}


# --------------------------------------------------------------------------------------------
# Straight from videos
# --------------------------------------------------------------------------------------------


def _keyframe_times(path: Path) -> list[F]:
    with open_video(str(path)) as source:
        timeline = source.timeline
        assert timeline is not None
        keys = {p.pts for p in timeline.packets if p.is_keyframe and p.is_frame}
        return sorted(timeline.seconds(k) for k in keys)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_keyframe_thumbnails_snap_to_keyframes(catalog, name):
    oracle = oracle_for(catalog[name])
    stats = DecodeStats()
    thumbs = keyframe_thumbnails(catalog[name], max_frames=4, height=40, stats=stats)
    keys = _keyframe_times(catalog[name])
    targets = [k * oracle.end_s / 4 for k in range(4)]
    nearest = [min(keys, key=lambda t, target=target: (abs(t - target), t)) for target in targets]
    assert [t.pts_s for t in thumbs] == [float(t) for t in sorted(set(nearest))]
    assert stats.packets_sent == len(thumbs)  # nothing but the chosen keyframes decoded
    for thumb in thumbs:
        assert thumb.image.shape[0] == 40
        assert read_frame_number(thumb.image, oracle.rotation) == _number_at(oracle, thumb.pts_s)


def test_keyframes_of_a_long_gop_video(long_gop_video):
    """400 frames at 25 fps, GOP 100: 12 targets snap to the 4 keyframes, 4 packets decoded."""
    oracle = oracle_for(long_gop_video)
    stats = DecodeStats()
    thumbs = keyframe_thumbnails(long_gop_video, max_frames=12, height=32, stats=stats)
    assert [t.pts_s for t in thumbs] == [0.0, 4.0, 8.0, 12.0]
    assert stats.packets_sent == 4
    assert [read_frame_number(t.image) for t in thumbs] == [0, 100, 200, 300]
    assert [_number_at(oracle, t.pts_s) for t in thumbs] == [0, 100, 200, 300]


@pytest.mark.parametrize("name", ["h264_mp4", "vfr_mkv", "rot90_mp4", "hevc_mp4"])
def test_exact_thumbnails_are_the_oracle_nearest_frames(catalog, name):
    oracle = oracle_for(catalog[name])
    thumbs = exact_thumbnails(catalog[name], max_frames=5, height=40)
    want = oracle_select(oracle, 0, oracle.end_s, F(5) / oracle.end_s)
    assert [t.pts_s for t in thumbs] == [float(f.pts_s) for f in want]
    assert [read_frame_number(t.image, oracle.rotation) for t in thumbs] == [f.number for f in want]


def test_video_sheet_and_bad_video(catalog, tmp_path):
    videos = [catalog["h264_mp4"], catalog["rot90_mp4"]]
    sheet = video_contact_sheet(videos, tmp_path / "videos.png", max_frames=4)
    image = Image.open(sheet.path)
    assert [r.video_path for r in sheet.rows] == [str(v) for v in videos]
    for r, (row, video) in enumerate(zip(sheet.rows, videos, strict=True)):
        oracle = oracle_for(video)
        assert "keyframes" in row.label
        for thumb, box in zip(row.thumbs, sheet.layout.boxes[r], strict=True):
            crop = _crop(image, box)
            assert read_frame_number(crop, oracle.rotation) == _number_at(oracle, thumb.pts_s)
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    with pytest.raises(VideoOpenError, match=r"notes\.txt"):
        video_contact_sheet([text], tmp_path / "bad.png")


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sparkframes.cli", "preview", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


def test_cli_table_sheets(spark, table, catalog, tmp_path):
    png = tmp_path / "cli.png"
    result = _cli(str(table), "--purpose", "embeddings", "--output", str(png), "--max-clips", "3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(png)
    assert Image.open(png).format == "PNG"

    page = tmp_path / "cli.html"
    args = ["--videos", catalog["ntsc_mp4"].name, "--max-frames", "2", "--output", str(page)]
    result = _cli(str(table), "--purpose", "embeddings", *args)
    assert result.returncode == 0, result.stderr
    text = page.read_text()
    assert html.escape(ODD_ID) in text and "n2" in text and text.count("<img ") == 4

    result = _cli(str(table), "--purpose", "nope", "--output", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "no rows of purpose 'nope' (its purposes: embeddings)" in result.stderr
    # A table of one purpose needs no --purpose; one of several says which it has.
    result = _cli(str(table), "--output", str(tmp_path / "only.png"), "--max-clips", "1")
    assert result.returncode == 0, result.stderr
    two = tmp_path / "two"
    pq.write_table(pa.table({"video_path": [str(catalog["h264_mp4"])]}), tmp_path / "in.pq")
    config = {"input": str(tmp_path / "in.pq"), "output": str(two), "target_res": "24x32"}
    write_table(
        spark, build_options(ClipFramesOptions, {**config, "purpose": "embeddings,aesthetics"})
    )
    result = _cli(str(two), "--output", str(tmp_path / "x.png"))
    assert result.returncode == 2
    assert "several purposes (aesthetics, embeddings): choose one with --purpose" in result.stderr
    result = _cli(str(table), "--purpose", "embeddings", "--exact")
    assert result.returncode == 2 and "--exact applies to --from-videos" in result.stderr


def test_cli_sheets_from_videos(catalog, tmp_path):
    videos = f"{catalog['h264_mp4']},{catalog['vfr_mkv']}"
    for mode in ([], ["--exact"]):
        out = tmp_path / f"videos{len(mode)}.png"
        result = _cli("--from-videos", videos, "--output", str(out), "--max-frames", "4", *mode)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == str(out) and Image.open(out).size[0] > 0
    text = tmp_path / "notes.txt"
    text.write_text("not a video\n")
    result = _cli("--from-videos", str(text), "--output", str(tmp_path / "bad.png"))
    assert result.returncode == 2 and str(text) in result.stderr
    assert not (tmp_path / "bad.png").exists()
