"""The Delta tables themselves: a task's videos in shared files, statistics that skip files, a
unit replaced in one commit, tables of the old format refused or replaced."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.table import files
from sparkframes.table.delta import ERRORS, FRAMES, TableLocation, file_paths
from sparkframes.table.files import AttemptWriter
from sparkframes.table.reader import read_frames, read_table
from tests.test_concurrent_runs import frame_rows

VIDEOS = ["h264_mp4", "hevc_mp4", "vfr_mkv"]


def run(spark, inputs: Path, output: Path, **flags):
    values = {"input": str(inputs), "output": str(output), "target_res": "24x32", **flags}
    return write_table(spark, build_options(ClipFramesOptions, values))


@pytest.fixture()
def table(spark, tmp_path, catalog) -> Path:
    inputs = tmp_path / "in.parquet"
    pq.write_table(pa.table({"video_path": [str(catalog[n]) for n in VIDEOS]}), inputs)
    run(spark, inputs, tmp_path / "out", purpose="embeddings,aesthetics")
    return tmp_path / "out"


def test_a_tasks_videos_share_a_file_per_purpose(spark, tmp_path, catalog):
    """One task (``partitions=1``), three videos, two purposes: two files, each holding every
    video's rows of its purpose, its statistics spanning the three paths."""
    inputs = tmp_path / "in.parquet"
    pq.write_table(pa.table({"video_path": [str(catalog[n]) for n in VIDEOS]}), inputs)
    out = tmp_path / "one_task"
    run(spark, inputs, out, purpose="embeddings,aesthetics", partitions=1)
    actions = pa.table(DeltaTable(str(out)).get_add_actions(flatten=True)).to_pylist()
    assert sorted(a["partition.purpose"] for a in actions) == ["aesthetics", "embeddings"]
    paths = sorted(str(catalog[n]) for n in VIDEOS)
    for a in actions:
        assert (a["min.video_path"], a["max.video_path"]) == (paths[0], paths[-1])
        rows = pq.read_table(out / a["path"], columns=["video_path"])["video_path"].to_pylist()
        assert rows == sorted(rows) and set(rows) == set(paths)  # in path order, every video
        assert a["num_records"] == len(rows)
    assert read_table(str(out)).num_rows == read_table(str(out)).num_rows > 0


def test_a_file_rolls_over_at_its_target_size(tmp_path, monkeypatch):
    """A task's file closes once it passes ``FILE_TARGET_BYTES`` (here made small), also in the
    middle of a video, and each file says how many rows of each unit it holds."""
    monkeypatch.setattr(files, "ROW_GROUP_BYTES", 1)
    monkeypatch.setattr(files, "FILE_TARGET_BYTES", 3 * frame_rows("/v/a.mp4", "r", 1).nbytes)
    loc = TableLocation.of(str(tmp_path / "t"))
    writer = AttemptWriter(loc.fs, loc.root, loc.root_of(ERRORS), "part-x")
    for video, n in (("/v/a.mp4", 2), ("/v/b.mp4", 3), ("/v/c.mp4", 1)):
        for _ in range(n):
            writer.write_frames("embeddings", frame_rows(video, "r", 1), video)
    written, _ = writer.close()
    assert [f.rows for f in written] == [
        {("/v/a.mp4", "embeddings"): 2, ("/v/b.mp4", "embeddings"): 1},
        {("/v/b.mp4", "embeddings"): 2, ("/v/c.mp4", "embeddings"): 1},
    ]
    for f in written:
        rows = pq.read_table(tmp_path / "t" / f.path)["video_path"].to_pylist()
        assert {(v, "embeddings"): rows.count(v) for v in set(rows)} == f.rows


def test_statistics_let_a_reader_open_only_one_videos_files(table, catalog):
    loc = TableLocation.of(str(table))
    dt = DeltaTable(str(table))
    video = str(catalog["hevc_mp4"])
    prune = [("video_path", "=", video), ("purpose", "=", "embeddings")]
    opened = file_paths(dt, loc, FRAMES, prune)
    every = file_paths(dt, loc, FRAMES, [("purpose", "=", "embeddings")])
    assert 1 <= len(opened) < len(every)  # the other tasks' files are skipped
    assert all(video in pq.read_table(p)["video_path"].to_pylist() for p in opened)
    for op in ("=", "=="):  # pyarrow's spelling of equality too
        rows = read_frames(str(table), purpose="embeddings", filters=[("video_path", op, video)])
        assert set(rows["video_path"].to_pylist()) == {video} and rows.num_rows > 0


def test_a_changed_request_replaces_its_units_in_one_commit(spark, table, tmp_path, catalog):
    """Readers of the latest version never see both versions of a unit: the removal of the old
    files and the addition of the new ones are one commit."""
    before = DeltaTable(str(table)).version()
    inputs = tmp_path / "in.parquet"
    summary = run(spark, inputs, table, purpose="embeddings,aesthetics", target_res="16x16")
    assert summary.videos_processed == len(VIDEOS)
    dt = DeltaTable(str(table))
    assert dt.version() == before + 1 == summary.table_version
    old_files = set(DeltaTable(str(table), version=before).file_uris())
    assert old_files and dt.file_uris()
    assert old_files.isdisjoint(dt.file_uris())  # every file replaced, in that one version
    assert set(read_table(str(table), columns=["height"])["height"].to_pylist()) == {16}
    old = read_table(str(table), columns=["height"], version=before)
    assert set(old["height"].to_pylist()) == {24}


def test_an_attempt_that_gives_up_describes_no_file(tmp_path):
    """A task that fails midway (``abort``) leaves its streams closed and names no file, so no
    commit can list a half-written one."""
    loc = TableLocation.of(str(tmp_path / "t"))
    writer = AttemptWriter(loc.fs, loc.root, loc.root_of(ERRORS), "part-x")
    writer.write_frames("embeddings", frame_rows("/videos/a.mp4", "r", 2), "/videos/a.mp4")
    writer.write_frames("embeddings", frame_rows("/videos/b.mp4", "r", 2), "/videos/b.mp4")
    writer.abort()
    assert writer.close() == ([], [])
