"""A table that stays healthy: compaction (ours, or any other Delta writer's) keeps refreshes
exact, and readers replay at most about 100 JSON commits thanks to checkpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.table.delta import STATE, TableLocation, replace_units
from sparkframes.table.maintenance import optimize
from sparkframes.table.reader import read_table
from tests.cluster import REPO

VIDEOS = ["h264_mp4", "vp9_webm", "hevc_mp4", "vfr_mkv"]
FLAGS = {"purpose": "embeddings,aesthetics", "target_res": "16x16", "clip_len_s": "1"}


def _rows(table, video: str | None = None) -> pa.Table:
    rows = read_table(str(table), columns=["video_path", "purpose", "clip_id", "pts_s", "frame"])
    if video is not None:
        rows = rows.filter(pc.equal(rows["video_path"], video))
    keys = ["video_path", "purpose", "clip_id", "pts_s"]
    return rows.sort_by([(k, "ascending") for k in keys])


def _compact(table, how: str) -> None:
    if how == "ours":
        optimize(str(table))
    elif how == "ours, z-ordered":
        optimize(str(table), z_order=True)
    else:  # another Delta writer: delta-rs itself, with none of our metadata
        DeltaTable(str(table)).optimize.compact()


@pytest.mark.parametrize("how", ["ours", "ours, z-ordered", "another writer"])
def test_refreshes_stay_exact_after_a_compaction(spark, tmp_path, catalog, how):
    videos = tmp_path / "videos"
    videos.mkdir()
    paths = [str(shutil.copy(catalog[n], videos / catalog[n].name)) for n in VIDEOS]
    inputs = tmp_path / "in.parquet"
    pq.write_table(pa.table({"video_path": paths}), inputs)
    out = tmp_path / "frames"
    options = build_options(ClipFramesOptions, {"input": str(inputs), "output": str(out), **FLAGS})
    write_table(spark, options)
    before = _rows(out)
    files_before = len(DeltaTable(str(out)).file_uris())
    assert files_before > 2  # the tasks' files: more than one per purpose

    _compact(out, how)
    assert len(DeltaTable(str(out)).file_uris()) == 2  # one per purpose now
    assert _rows(out).equals(before)
    compacted = DeltaTable(str(out)).version()

    summary = write_table(spark, options)  # nothing changed: a no-op
    assert (summary.videos_processed, summary.table_version) == (0, None)
    assert DeltaTable(str(out)).version() == compacted

    changed, kept = paths[0], paths[1:]
    shutil.copy(catalog["ntsc_mp4"], changed)
    summary = write_table(spark, options)
    assert (summary.videos_processed, summary.videos_skipped) == (1, len(kept)), summary.line()
    for video in kept:
        assert _rows(out, video).equals(_rows_of(before, video))
    fresh = tmp_path / "fresh"
    only = tmp_path / "only.parquet"
    pq.write_table(pa.table({"video_path": [changed]}), only)
    write_table(
        spark,
        build_options(ClipFramesOptions, {"input": str(only), "output": str(fresh), **FLAGS}),
    )
    assert _rows(out, changed).equals(_rows(fresh))  # replaced: no stale, no doubled rows


def _rows_of(table: pa.Table, video: str) -> pa.Table:
    return table.filter(pc.equal(table["video_path"], video))


def test_the_cli_compacts_and_says_what_it_did(spark, tmp_path, catalog):
    inputs = tmp_path / "in.parquet"
    pq.write_table(pa.table({"video_path": [str(catalog[n]) for n in VIDEOS[:2]]}), inputs)
    out = tmp_path / "frames"
    options = build_options(ClipFramesOptions, {"input": str(inputs), "output": str(out), **FLAGS})
    write_table(spark, options)
    code = "import sys; from sparkframes.cli import main; sys.exit(main(sys.argv[1:]))"

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, *argv], cwd=REPO, capture_output=True, text=True
        )

    done = cli("optimize", str(out))
    assert done.returncode == 0, done.stderr
    assert "frames: 4 files compacted into 2" in done.stdout
    assert len(DeltaTable(str(out)).file_uris()) == 2
    nothing = cli("optimize", str(tmp_path / "none"))
    assert nothing.returncode == 2 and "no frames table here" in nothing.stderr


def test_readers_replay_at_most_100_json_commits(tmp_path):
    loc = TableLocation.of(str(tmp_path / "t"))
    for i in range(130):  # empty commits, as runs that own units but changed nothing make
        replace_units(
            loc, STATE, lambda: ({("v.mp4", "p")}, []), run_id=f"r{i}", commit_when_owned=True
        )
    log = tmp_path / "t" / STATE.subdir / "_delta_log"
    latest = DeltaTable(str(log.parent)).version()
    assert latest >= 130
    checkpoint = json.loads((log / "_last_checkpoint").read_text())["version"]
    commits_after = [p for p in log.glob("*.json") if int(p.name.split(".")[0]) > checkpoint]
    assert len(commits_after) == latest - checkpoint <= 100
    assert (log / f"{checkpoint:020d}.checkpoint.parquet").exists()
