"""A table written by the last release before the redesign refreshes as a no-op, then correctly.

The redesign moved every module and changed how frames travel, but not what a run asks of a
video (the request keys) nor the tables' layout. So a scheduled refresh over a table that the
old code wrote must find every video up to date and commit nothing; and after one video changes
in place, it must redo that video alone, replacing its rows. The old code runs from a checkout
of its commit (``git archive``), in a process of its own, exactly as a user's old install would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkframes.options import ClipFramesOptions, VideoFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.table.reader import read_table
from tests.cluster import REPO

#: main before the redesign: the layout, options and frame path it replaced.
BEFORE_REDESIGN = "3b5b331b6d048d23cbde40ec11d72cd844708b70"
CLIP_FLAGS = {
    "purpose": "embeddings,aesthetics",
    "target_res": "24x32",
    "clip_len_s": "1",
    "frame_encoding": "jpeg",
}
VIDEO_FLAGS = {"output_hw": "12x16"}


def _old_checkout(dest: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", BEFORE_REDESIGN],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest


def _old_cli(checkout: Path, command: str, flags: dict[str, str]) -> None:
    argv = [command, "--master", "local[2]"]
    for key, value in flags.items():
        argv += [f"--{key.replace('_', '-')}", value]
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYSPARK_PYTHON": sys.executable}
    # The old package must be the one that runs, not this checkout's installed one.
    code = (
        "import sys, sparkframes; assert sparkframes.__file__.startswith(sys.argv[1]), "
        "sparkframes.__file__; from sparkframes.cli import main; sys.exit(main(sys.argv[2:]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(checkout), *argv],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "0 failed" in done.stdout, done.stdout


def _rows(table: Path, video: str) -> pa.Table:
    rows = read_table(str(table), columns=["video_path", "purpose", "clip_id", "pts_s", "height"])
    mask = pa.compute.equal(rows["video_path"], video)
    return rows.filter(mask).sort_by([("purpose", "ascending"), ("pts_s", "ascending")])


@pytest.mark.timeout(900)
def test_an_old_table_refreshes_as_a_no_op_then_redoes_a_changed_video(spark, tmp_path, catalog):
    checkout = _old_checkout(tmp_path / "old")
    assert (checkout / "sparkframes" / "config.py").exists()  # really the old layout
    videos = tmp_path / "videos"
    videos.mkdir()
    paths = [
        shutil.copy(catalog[name], videos / catalog[name].name) for name in ("h264_mp4", "vp9_webm")
    ]
    inputs = tmp_path / "in.parquet"
    pq.write_table(pa.table({"video_path": [str(p) for p in paths]}), inputs)
    out = tmp_path / "frames"
    common = {"input": str(inputs), "output": str(out)}
    _old_cli(checkout, "clip-frames", {**common, **CLIP_FLAGS})
    _old_cli(checkout, "video-frames", {**common, **VIDEO_FLAGS})
    old_version = DeltaTable(str(out)).version()
    changed, kept = (str(p) for p in paths)
    before = {v: _rows(out, v) for v in (changed, kept)}
    assert all(t.num_rows > 0 for t in before.values())

    clip = build_options(ClipFramesOptions, {**common, **CLIP_FLAGS})
    video = build_options(VideoFramesOptions, {**common, **VIDEO_FLAGS})
    for options in (clip, video):
        summary = write_table(spark, options)
        assert (summary.videos_processed, summary.videos_skipped) == (0, 2), summary.line()
        assert summary.table_version is None
    assert DeltaTable(str(out)).version() == old_version  # nothing committed

    # The first video changes in place: it becomes a copy of another, longer video.
    shutil.copy(catalog["hevc_mp4"], changed)
    for options in (clip, video):
        summary = write_table(spark, options)
        assert (summary.videos_processed, summary.videos_skipped) == (1, 1), summary.line()
        assert summary.errors == 0
    assert _rows(out, kept).equals(before[kept])  # untouched, rows and all
    redone = _rows(out, changed)
    assert not redone.equals(before[changed])
    # Its rows are what a fresh table of the changed file would hold: no stale, no duplicates.
    fresh = tmp_path / "fresh"
    only = tmp_path / "only.parquet"
    pq.write_table(pa.table({"video_path": [changed]}), only)
    for options in (clip, video):
        write_table(
            spark,
            build_options(
                type(options), {**_flags(options), "input": str(only), "output": str(fresh)}
            ),
        )
    assert redone.equals(_rows(fresh, changed))


def _flags(options: ClipFramesOptions | VideoFramesOptions) -> dict[str, str]:
    return dict(CLIP_FLAGS if isinstance(options, ClipFramesOptions) else VIDEO_FLAGS)
