"""The isolated runner on real processes: one worker per runner, a fresh one after a time-out,
a crash or an unexpected error, and no worker left behind by a runner, a task or a killed
Python worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes.decoding.backends import (
    FFMPEG_GPU,
    DecoderChoice,
    DecoderUnavailableError,
    cuda_devices,
)
from sparkframes.errors import DecoderCrashError, InternalError, VideoTimeoutError
from sparkframes.extraction.base import Extraction, ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.worker import IsolatedRunner
from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.sampling.specs import ExtractionSpec, Policy
from sparkframes.spark.job import write_table
from sparkframes.table.reader import read_table
from tests.cluster import REPO

WORKER_NAME = "sf-decode"  # what the workers call themselves (isolation._set_process_name)
SPEC = ExtractionSpec("embeddings", target_fps=(2,))  # native size: swscale's threaded path


class _Hangs(Extraction):
    """A decoder that never returns (what a stalled read looks like from outside)."""

    def _run(self, choice, output):
        time.sleep(600)
        yield []


class _DiesMidway(Extraction):
    """A real worker death while decoding (what a segfault in FFmpeg looks like)."""

    def _run(self, choice, output):
        os.kill(os.getpid(), signal.SIGKILL)
        yield []


class _RaisesInside(Extraction):
    def _run(self, choice, output):
        raise MemoryError("no room for the frame")
        yield []


def _extraction(path: Path) -> Extraction:
    return extract_clip_frames(str(path), [SPEC])


def _table(batches: list[tuple[str, pa.RecordBatch]]) -> pa.Table:
    return pa.Table.from_batches([b for _, b in batches])


def _inline(path: Path) -> pa.Table:
    return _table(list(_extraction(path).record_batches()))


def _workers(root: int | None = None) -> list[psutil.Process]:
    """Live decode workers among the descendants of ``root`` (default: this process)."""
    found = []
    for proc in psutil.Process(root).children(recursive=True):
        try:
            if proc.name() == WORKER_NAME and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:
            continue
    return found


def _worker_pid() -> int | None:
    """The decode worker now serving this process's runner, if one is alive."""
    pids = [p.pid for p in _workers()]
    assert len(pids) <= 1, pids
    return pids[0] if pids else None


def _gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_one_worker_serves_every_video_of_a_runner(catalog):
    names = ["h264_mp4", "hevc_mp4", "vp9_webm", "h264_mp4"]
    with IsolatedRunner() as runner:
        assert _worker_pid() is None  # started with the first video, not before
        pids = []
        for name in names:
            extraction = _extraction(catalog[name])
            got = _table(list(runner.run(extraction, timeout_s=60)))
            assert not extraction.report.errors
            assert extraction.report.frames_output == got.num_rows > 0
            assert got.equals(_inline(catalog[name]))
            pids.append(_worker_pid())
        assert len(set(pids)) == 1 and pids[0] != os.getpid()
        assert [p.pid for p in _workers()] == pids[:1]
    assert _worker_pid() is None and _gone(pids[0]) and _workers() == []


@pytest.mark.parametrize(
    ("failing", "error", "says"),
    [
        (_Hangs, VideoTimeoutError, "time limit of 1 s (0 frames kept)"),
        (_DiesMidway, DecoderCrashError, "the decoding process died (signal 9)"),
        (_RaisesInside, InternalError, "MemoryError: no room for the frame at "),
    ],
)
def test_after_a_failure_the_next_video_gets_a_new_worker(catalog, failing, error, says):
    good = catalog["h264_mp4"]
    with IsolatedRunner() as runner:
        list(runner.run(_extraction(good), timeout_s=60))
        first = _worker_pid()
        bad = failing(str(catalog["hevc_mp4"]), ExtractOptions())
        assert list(runner.run(bad, timeout_s=1)) == []
        (err,) = bad.report.errors
        assert isinstance(err, error) and says in str(err)
        assert _worker_pid() is None and _gone(first)  # killed (or exited) and reaped
        extraction = _extraction(good)
        got = _table(list(runner.run(extraction, timeout_s=60)))
        assert not extraction.report.errors and got.equals(_inline(good))
        assert _worker_pid() not in (None, first)
    assert _workers() == []


def test_a_consumer_that_stops_early_leaves_no_worker_mid_video(catalog):
    """A worker abandoned mid-stream would send the rest of that video as the next one's."""
    extraction = extract_clip_frames(
        str(catalog["h264_mp4"]),
        [ExtractionSpec("embeddings", target_fps=(30,))],
        options=ExtractOptions(batch_bytes=1),  # one batch per frame
    )
    with IsolatedRunner() as runner:
        stream = runner.run(extraction, timeout_s=60)
        next(stream)
        pid = _worker_pid()
        stream.close()
        assert _worker_pid() is None and _gone(pid)
        extraction = _extraction(catalog["vp9_webm"])
        got = _table(list(runner.run(extraction, timeout_s=60)))
        assert got.equals(_inline(catalog["vp9_webm"]))


def test_a_worker_decodes_after_its_parent_decoded_in_process(catalog):
    """A fork of a process that has run swscale at native size waits forever for its threads;
    workers come from a fork server that never decodes, so this is no time-out."""
    before = _inline(catalog["h264_mp4"])  # swscale contexts now live in this process
    extraction = _extraction(catalog["h264_mp4"])
    with IsolatedRunner() as runner:
        got = _table(list(runner.run(extraction, timeout_s=20)))
    assert not extraction.report.errors and got.equals(before)


def test_an_unavailable_decoder_fails_loudly_and_keeps_the_worker(catalog):
    if cuda_devices()[0]:
        pytest.skip("this machine has a GPU: ffmpeg_gpu may well be available")
    forced = DecoderChoice(FFMPEG_GPU, FFMPEG_GPU, 0)  # as if the probe had found a GPU
    options = ExtractOptions(decoder=forced, no_fallback=True)
    with IsolatedRunner() as runner:
        list(runner.run(_extraction(catalog["h264_mp4"]), timeout_s=60))
        pid = _worker_pid()
        unavailable = extract_clip_frames(str(catalog["h264_mp4"]), [SPEC], options=options)
        with pytest.raises(
            DecoderUnavailableError, match="Frame extraction failed: decoder ffmpeg"
        ):
            list(runner.run(unavailable, timeout_s=60))
        assert _worker_pid() == pid  # the worker is fine; the task is what fails


HOLDER = """
import sys, time
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.worker import IsolatedRunner
from tests.test_isolation import _Hangs, _worker_pid
runner = IsolatedRunner()
stream = runner.run(_Hangs(sys.argv[1], ExtractOptions()), timeout_s=600)
import threading
threading.Thread(target=lambda: list(stream), daemon=True).start()
while _worker_pid() is None:
    time.sleep(0.01)
print(_worker_pid(), flush=True)
time.sleep(600)
"""


def test_a_worker_stuck_in_a_video_dies_with_its_python_worker(catalog):
    """The Python worker is killed (as Spark kills one) while its worker hangs in a video."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(catalog["h264_mp4"])],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    try:
        pid = int(holder.stdout.readline())
        assert psutil.Process(pid).name() == WORKER_NAME
        holder.kill()
        holder.wait(10)
        assert _gone(pid), "the decode worker outlived its Python worker"
    finally:
        holder.kill()
        holder.wait(10)


def test_no_worker_is_left_after_the_tasks(spark, tmp_path, catalog):
    videos = [str(catalog[n]) for n in ("h264_mp4", "hevc_mp4", "vp9_webm", "h264_mp4")]
    pq.write_table(pa.table({"video_path": videos[:3]}), tmp_path / "in.parquet")
    config = build_options(
        ClipFramesOptions,
        {
            "input": str(tmp_path / "in.parquet"),
            "output": str(tmp_path / "out"),
            "policy": Policy.MIDDLE.value,
            "partitions": 1,  # one task: one worker for the three videos
        },
    )
    summary = write_table(spark, config)
    assert summary.videos_processed == 3 and not summary.videos_failed
    assert set(read_table(str(tmp_path / "out"))["video_path"].to_pylist()) == set(videos[:3])
    assert _workers() == []


@pytest.mark.parametrize("rows", [None, 1])
def test_no_worker_is_left_by_the_frames_dataframe(spark, catalog, rows):
    """Also when Spark stops reading a task's rows early (``limit``)."""
    from sparkframes.spark.api import clip_frames

    videos = spark.createDataFrame(
        [(str(catalog[n]),) for n in ("h264_mp4", "hevc_mp4", "vp9_webm")], "video_path string"
    ).coalesce(1)
    frames = clip_frames(videos, policy="middle", video_timeout_s=60)
    got = frames.limit(rows).collect() if rows else frames.collect()
    assert len(got) == (rows or 3)
    assert _workers() == []
