"""Overlapping runs on one table: real concurrent writers, on local disk and on S3 (loopback).

Two levels: the commit itself, from several processes released at the same instant so that
their commits collide; and whole runs, two ``sparkframes clip-frames`` processes side by side.
After either, every (video, purpose) unit's rows must be in the table exactly once, from one
run, with that run's state row.
"""

from __future__ import annotations

import multiprocessing as mp
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable

from sparkframes.table.commit import AttemptResult, commit_run
from sparkframes.table.delta import ERRORS, FRAMES, TableLocation, ensure_table
from sparkframes.table.files import AttemptWriter
from sparkframes.table.reader import read_errors, read_table
from sparkframes.table.schema import FRAMES_SCHEMA, errors_to_batch
from sparkframes.table.state import UnitState
from tests.cluster import REPO
from tests.s3 import s3_server
from tests.tables import read_state

WRITERS = 6
SHARED = [f"/videos/shared-{i}.mp4" for i in range(3)]  # every writer extracts these


def frame_rows(video: str, run: str, n: int) -> pa.RecordBatch:
    """``n`` frame rows of ``video`` whose clip id names the run that made them."""
    rows = [
        {
            "video_path": video,
            "clip_id": run,
            "clip_start_s": 0.0,
            "clip_end_s": 1.0,
            "policy": "sequence",
            "target_fps": 2.0,
            "frame_index": i,
            "pts_s": i / 2,
            "height": 2,
            "width": 2,
            "decoder": "ffmpeg_cpu",
            "frame": bytes(12),
            "frame_encoding": "raw",
        }
        for i in range(n)
    ]
    return pa.RecordBatch.from_pylist(rows, schema=FRAMES_SCHEMA)


def _one_run(output: str, index: int, barrier, results) -> None:
    """A run's files and commit, in a process of its own; the commit waits for the others."""
    run_id = f"run{index}"
    loc = TableLocation.of(output)
    writer = AttemptWriter(loc.fs, loc.root, loc.root_of(ERRORS), f"part-{run_id}")
    units = []
    for video in [*SHARED, f"/videos/own-{index}.mp4"]:
        writer.write_frames("embeddings", frame_rows(video, run_id, 2 + index), video)
        units.append(UnitState(video, "embeddings", 100, 1, "key", frames=2 + index))
    if index == 0:  # only this writer has an error row for a shared video (a partial decode)
        partial = FileNotFoundError(f"{SHARED[0]}: part of it is gone (run0)")
        batch = errors_to_batch([partial], SHARED[0], run_id, "embeddings")
        writer.write_errors("embeddings", batch, SHARED[0])
        units[0] = UnitState(SHARED[0], "embeddings", 100, 1, "key", frames=2, errors=1)
    failed = f"/videos/failed-{index % 2}.mp4"  # every other writer fails the same video
    error = FileNotFoundError(f"{failed}: no such file ({run_id})")
    writer.write_errors(
        "embeddings", errors_to_batch([error], failed, run_id, "embeddings"), failed
    )
    units.append(UnitState(failed, "embeddings", -1, -1, "key", errors=1))
    frame_files, error_files = writer.close()
    barrier.wait(timeout=120)
    committed = commit_run(
        loc,
        run_id,
        [AttemptResult(frame_files, error_files, units)],
        overwrite=False,
        metadata={},
    )
    results.put((index, committed.tries, committed.units_lost))


def _check_each_unit_once(output: str) -> None:
    frames = read_table(output, columns=["video_path", "clip_id", "frame_index"])
    runs_per_video = {}
    for row in frames.group_by(["video_path", "clip_id"]).aggregate([]).to_pylist():
        runs_per_video.setdefault(row["video_path"], []).append(row["clip_id"])
    videos = {*SHARED, *(f"/videos/own-{i}.mp4" for i in range(WRITERS))}
    assert set(runs_per_video) == videos  # nothing lost
    assert all(len(runs) == 1 for runs in runs_per_video.values()), runs_per_video  # no doubles
    for video, (run,) in runs_per_video.items():
        mine = frames.filter(pc.equal(frames["video_path"], video))
        assert sorted(mine["frame_index"].to_pylist()) == list(range(2 + int(run[3:])))
    state = read_state(TableLocation.of(output))
    assert {v for v, _ in state} == videos | {"/videos/failed-0.mp4", "/videos/failed-1.mp4"}
    for (video, _), unit in state.items():
        if video in runs_per_video:  # the state describes the frames that are there
            assert unit.frames == 2 + int(runs_per_video[video][0][3:])
    errors = Counter(read_errors(output)["video_path"].to_pylist())
    # A shared video's error rows are there exactly when the run whose frames are there had some.
    partial = {SHARED[0]: 1} if runs_per_video[SHARED[0]] == ["run0"] else {}
    assert errors == {"/videos/failed-0.mp4": 1, "/videos/failed-1.mp4": 1, **partial}
    assert state[(SHARED[0], "embeddings")].errors == len(partial)


def _commit_at_once(output: str) -> list[tuple[int, int, int]]:
    ensure_table(TableLocation.of(output), FRAMES)
    ctx = mp.get_context("spawn")  # no forked copies of delta-rs's runtime
    barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
    procs = [
        ctx.Process(target=_one_run, args=(output, i, barrier, results)) for i in range(WRITERS)
    ]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 240
    for p in procs:
        p.join(timeout=max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return [results.get(timeout=5) for _ in procs]


def test_commits_released_at_once_keep_every_unit_once_on_local_disk(tmp_path):
    output = str(tmp_path / "frames")
    outcomes = _commit_at_once(output)
    assert max(tries for _, tries, _ in outcomes) > 1  # the commits really collided
    _check_each_unit_once(output)
    history = DeltaTable(output).history()
    assert sum(1 for h in history if "sparkframes" in h) == WRITERS


def test_commits_released_at_once_keep_every_unit_once_on_s3():
    with s3_server("lake"):
        output = "s3://lake/tables/frames"
        outcomes = _commit_at_once(output)
        assert max(tries for _, tries, _ in outcomes) > 1
        _check_each_unit_once(output)


def _cli_run(inputs: Path, output: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    code = "import sys; from sparkframes.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["clip-frames", "--input", str(inputs), "--output", output, "--master", "local[1]"]
    return subprocess.Popen(
        [sys.executable, "-c", code, *args, "--target-res", "24x32", "--partitions", "2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _two_runs_side_by_side(tmp_path: Path, catalog, output: str, env=None) -> list[str]:
    names = ["h264_mp4", "hevc_mp4", "vfr_mkv", "ntsc_mp4"]
    videos = [str(catalog[n]) for n in names]
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pq.write_table(pa.table({"video_path": videos[:3]}), first)  # overlapping: 2 in common
    pq.write_table(pa.table({"video_path": videos[1:]}), second)
    procs = [_cli_run(first, output, env), _cli_run(second, output, env)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=400)
        assert proc.returncode == 0, stderr[-3000:]
    return videos


def _check_runs(spark, tmp_path, catalog, output: str, videos: list[str]) -> None:
    key = ["video_path", "clip_id", "target_fps", "frame_index", "pts_s"]
    got = read_table(output, columns=key).sort_by([(k, "ascending") for k in key])
    # The same videos extracted by one run alone, for comparison.
    from sparkframes.options import ClipFramesOptions, build_options
    from sparkframes.spark.job import write_table

    pq.write_table(pa.table({"video_path": videos}), tmp_path / "all.parquet")
    values = {"input": str(tmp_path / "all.parquet"), "output": str(tmp_path / "alone")}
    write_table(spark, build_options(ClipFramesOptions, {**values, "target_res": "24x32"}))
    want = read_table(str(tmp_path / "alone"), columns=key).sort_by([(k, "ascending") for k in key])
    assert got.equals(want)
    state = read_state(TableLocation.of(output))
    assert sorted(state) == sorted((v, "embeddings") for v in videos)


def test_two_overlapping_runs_on_local_disk(spark, tmp_path, catalog):
    output = str(tmp_path / "frames")
    videos = _two_runs_side_by_side(tmp_path, catalog, output)
    _check_runs(spark, tmp_path, catalog, output, videos)


def test_two_overlapping_runs_on_s3(spark, tmp_path, catalog):
    import os

    with s3_server("lake") as s3_env:
        output = "s3://lake/tables/frames"
        env = {**os.environ, **s3_env}
        videos = _two_runs_side_by_side(tmp_path, catalog, output, env)
        _check_runs(spark, tmp_path, catalog, output, videos)
