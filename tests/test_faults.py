"""Faults and limits on real Spark: hangs, crashes, killed workers and drivers, speculation,
error budgets, idempotence, and names that must not escape the table."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from sparkframes.errors import DecoderCrashError, InternalError
from sparkframes.extraction.base import Extraction, ExtractOptions
from sparkframes.extraction.worker import IsolatedRunner
from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.spark.summary import exit_code
from sparkframes.table.delta import TableLocation
from sparkframes.table.maintenance import vacuum
from sparkframes.table.reader import read_errors, read_table
from sparkframes.table.state import MAX_TRANSIENT_TRIES
from tests.cluster import REPO, SPARK_HOME, spark_env
from tests.spark_faults import DAEMON_CONF
from tests.spark_faults import ENV as FAULTS_ENV
from tests.tables import read_state

KEY = ["video_path", "clip_id", "target_fps", "frame_index"]


def write_input(path: Path, videos: list[str], clip_ids: list[str | None] | None = None) -> str:
    table = pa.table(
        {"video_path": videos, "clip_id": clip_ids or [None] * len(videos)},
        schema=pa.schema([("video_path", pa.string()), ("clip_id", pa.string())]),
    )
    pq.write_table(table, path)
    return str(path)


def run(spark, input_path: str, output: Path, **flags):
    config = build_options(ClipFramesOptions, {"input": input_path, "output": str(output), **flags})
    return write_table(spark, config)


def rows(output: Path) -> pa.Table:
    table = read_table(str(output))
    return table.sort_by([(k, "ascending") for k in KEY])


@contextlib.contextmanager
def stalled_http_server(hold_s: float = 30.0) -> Iterator[str]:
    """A loopback HTTP server that accepts and then never answers (bounded: hold_s, then stop)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        deadline = time.monotonic() + hold_s
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                held.append(conn)  # read nothing, answer nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/stalled.mp4"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        server.close()


def test_a_hung_decoder_is_stopped_and_recorded(spark, tmp_path, catalog):
    good = str(catalog["h264_mp4"])
    with stalled_http_server() as url:
        inputs = write_input(tmp_path / "in.parquet", [url, good])
        # The server never answers and is closed only after the run: without the time limit the
        # run would not end at all, so its ending with this error is the behaviour under test.
        summary = run(spark, inputs, tmp_path / "out", video_timeout_s=3)
    assert summary.videos_processed == 2 and summary.videos_failed == 1
    errors = read_errors(str(tmp_path / "out")).to_pylist()
    assert [(e["video_path"], e["error_class"]) for e in errors] == [(url, "VideoTimeoutError")]
    assert "time limit of 3 s" in errors[0]["message"]
    assert set(read_table(str(tmp_path / "out"))["video_path"].to_pylist()) == {good}

    # A time limit may pass by itself: the next incremental runs try that video again. The
    # server is gone now, which may pass too ("connection refused"); after three tries in a row
    # the video is left alone until it changes.
    later = [run(spark, inputs, tmp_path / "out", video_timeout_s=3) for _ in range(3)]
    assert [(r.videos_processed, r.videos_skipped) for r in later] == [(1, 1), (1, 1), (0, 2)]
    errors = read_errors(str(tmp_path / "out")).to_pylist()
    assert [(e["video_path"], e["error_class"]) for e in errors] == [(url, "VideoFetchError")]
    assert "cannot reach it: Connection refused" in errors[0]["message"]


class _DiesMidway(Extraction):
    """A real child-process death while decoding (what a segfault in FFmpeg looks like)."""

    def _run(self, choice, output):
        os.kill(os.getpid(), signal.SIGKILL)
        yield []


def test_a_failure_that_may_pass_is_retried_a_few_times_then_left(spark, tmp_path, catalog):
    """A time limit no decode can meet: every run times out; after MAX_TRANSIENT_TRIES runs in a
    row the failure counts as lasting and the video waits for its file to change."""
    inputs = write_input(tmp_path / "in.parquet", [str(catalog["h264_mp4"])])
    out = tmp_path / "out"
    failures = []
    for _ in range(MAX_TRANSIENT_TRIES + 1):
        summary = run(spark, inputs, out, video_timeout_s=0.001)
        (state,) = read_state(TableLocation.of(str(out))).values()
        failures.append((summary.videos_processed, state.transient_failures, state.status))
    # The count of failures in a row is a column of the state table, not a hidden marker.
    assert failures == [(1, n, "failed") for n in range(1, MAX_TRANSIENT_TRIES + 1)] + [
        (0, MAX_TRANSIENT_TRIES, "failed")
    ]
    errors = read_errors(str(out)).to_pylist()
    assert [e["error_class"] for e in errors] == ["VideoTimeoutError"]


def test_failures_in_a_row_are_counted_per_purpose(spark, tmp_path, catalog):
    """A purpose added to a video that keeps failing starts its own count: its tries are not
    used up by the failures of the purposes asked before it."""
    inputs = write_input(tmp_path / "in.parquet", [str(catalog["h264_mp4"])])
    out = tmp_path / "out"
    run(spark, inputs, out, video_timeout_s=0.001, purpose=["embeddings"])
    run(spark, inputs, out, video_timeout_s=0.001, purpose=["embeddings", "aesthetics"])
    state = read_state(TableLocation.of(str(out)))
    counts = {purpose: s.transient_failures for (_, purpose), s in state.items()}
    assert counts == {"embeddings": 2, "aesthetics": 1}


class _RaisesInside(Extraction):
    """An exception no extraction code expects (a bug, a resource running out)."""

    def _run(self, choice, output):
        raise KeyError("no such plane")
        yield []


def test_an_unexpected_error_in_the_child_is_recorded_with_its_cause(tmp_path):
    extraction = _RaisesInside(str(tmp_path / "v.mp4"), ExtractOptions())
    assert _isolated(extraction, 30) == []
    (error,) = extraction.report.errors
    assert isinstance(error, InternalError) and error.transient
    assert "KeyError: 'no such plane' at " in str(error) and "test_faults.py" in str(error)


def test_a_crashing_decoder_process_costs_one_video(tmp_path):
    extraction = _DiesMidway(str(tmp_path / "v.mp4"), ExtractOptions())
    assert _isolated(extraction, 30) == []
    (error,) = extraction.report.errors
    assert isinstance(error, DecoderCrashError) and "signal 9" in str(error)


def _submitted_run(tmp_path: Path, inputs: str, output: Path, faults: str) -> None:
    """A spark-submit run whose chosen tasks' first attempts go wrong (tests/spark_faults.py)."""
    proc = _submit_local(
        ["--input", inputs, "--output", str(output), "--partitions", "2"],
        DAEMON_CONF,
        {FAULTS_ENV: faults},
    )
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]


@pytest.mark.parametrize("faults", ["kill=0,1", "fail=0,1"])
def test_retried_attempts_add_no_duplicates_and_lose_nothing(spark, tmp_path, catalog, faults):
    """Each task's first attempt writes its files and then kills its Python worker (or raises):
    Spark retries it, and only the retry's files are committed."""
    videos = [str(catalog[n]) for n in ("h264_mp4", "hevc_mp4", "vp9_webm", "ntsc_mp4")]
    inputs = write_input(tmp_path / "in.parquet", videos)
    run(spark, inputs, tmp_path / "clean", partitions=2)
    _submitted_run(tmp_path, inputs, tmp_path / "faulty", faults)
    assert rows(tmp_path / "faulty").equals(rows(tmp_path / "clean"))
    listed = DeltaTable(str(tmp_path / "faulty")).file_uris()
    assert len(listed) == len(DeltaTable(str(tmp_path / "clean")).file_uris())
    # The first attempts' files are on disk, in no version, until a vacuum deletes them.
    on_disk = set(map(str, (tmp_path / "faulty").rglob("purpose=*/*.parquet")))
    assert on_disk > set(listed)
    removed = vacuum(TableLocation.of(str(tmp_path / "faulty")), retention_hours=0)
    assert len(removed["frames"]) == len(on_disk) - len(listed)
    assert set(map(str, (tmp_path / "faulty").rglob("purpose=*/*.parquet"))) == set(listed)
    assert rows(tmp_path / "faulty").equals(rows(tmp_path / "clean"))


def test_the_same_run_twice_gives_identical_content(spark, tmp_path, catalog):
    videos = [str(catalog[n]) for n in ("h264_mp4", "vfr_mkv", "rot90_mp4")]
    inputs = write_input(tmp_path / "in.parquet", videos)
    run(spark, inputs, tmp_path / "a", target_res="40x40")
    run(spark, inputs, tmp_path / "b", target_res="40x40")
    assert rows(tmp_path / "a").equals(rows(tmp_path / "b"))


def test_error_budget_sets_the_exit_code(spark, tmp_path, catalog):
    inputs = write_input(
        tmp_path / "in.parquet", [str(catalog["h264_mp4"]), str(tmp_path / "gone.mp4")]
    )
    summary = run(spark, inputs, tmp_path / "out")
    assert summary.videos_failed == 1 and summary.error_rate == 0.5
    assert "1 failed" in summary.line()
    assert exit_code(summary, max_error_rate=0.25) == 3
    assert exit_code(summary, max_error_rate=0.5) == 0


def test_names_never_escape_the_output(spark, tmp_path, catalog):
    evil = "../../../escaped"
    inputs = write_input(tmp_path / "in.parquet", [str(catalog["h264_mp4"])], [evil])
    run(spark, inputs, tmp_path / "out")
    assert read_table(str(tmp_path / "out"))["clip_id"].to_pylist()[0] == evil
    outside = {p for p in tmp_path.rglob("*") if "out" not in p.relative_to(tmp_path).parts[:1]}
    assert outside == {tmp_path / "in.parquet"}
    with pytest.raises(ValueError, match="becomes a folder name"):
        build_options(ClipFramesOptions, {"input": inputs, "output": "o", "purpose": "../x"})


def _submit_local(
    args: list[str], conf: dict[str, str], env: dict[str, str] | None = None
) -> subprocess.Popen:
    cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", "local[2,4]"]
    for k, v in conf.items():
        cmd += ["--conf", f"{k}={v}"]
    cmd += [str(REPO / "jobs" / "clip_frames.py"), *args]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=spark_env(env),
        start_new_session=True,
    )


def test_killed_driver_leaves_the_previous_table_and_the_next_run_completes(tmp_path, catalog):
    out = tmp_path / "out"
    first = [str(catalog["h264_mp4"])]
    more = first + [str(catalog[n]) for n in ("hevc_mp4", "vp9_webm", "av1_mkv", "ntsc_mp4")]
    args = ["--output", str(out), "--partitions", "5"]
    proc = _submit_local(["--input", write_input(tmp_path / "a.parquet", first), *args], {})
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    before, version = rows(out), DeltaTable(str(out)).version()
    committed = set(out.rglob("purpose=*/*.parquet"))
    # Second run, with slow tasks: kill the driver once tasks have written files.
    proc = _submit_local(
        ["--input", write_input(tmp_path / "b.parquet", more), *args],
        DAEMON_CONF,
        {FAULTS_ENV: "slow=0,1,2,3,4"},
    )

    def written() -> set[Path]:
        return set(out.rglob("purpose=*/*.parquet")) - committed

    deadline = time.monotonic() + 240
    while not written() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert written(), "the run was killed before it wrote anything"
    # Readers still see the previous version, whole: the files are in the table's folder but
    # in no version of its log.
    assert rows(out).equals(before) and DeltaTable(str(out)).version() == version
    proc = _submit_local(["--input", str(tmp_path / "b.parquet"), *args], {})
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert "4 videos processed, 1 up to date" in stdout
    assert set(read_table(str(out))["video_path"].to_pylist()) == set(more)


def test_speculative_attempts_change_nothing(tmp_path, catalog):
    """Speculation is off in local mode, so this runs on a real standalone cluster."""
    from tests.cluster import spark_submit, standalone_cluster

    videos = [str(catalog[n]) for n in ("h264_mp4", "hevc_mp4", "vp9_webm", "ntsc_mp4")]
    inputs = write_input(tmp_path / "in.parquet", videos)
    base = ["--input", inputs, "--partitions", "4"]
    events = tmp_path / "events"
    events.mkdir()
    speculative = {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.compress": "false",
        "spark.speculation": "true",
        "spark.speculation.interval": "100ms",
        "spark.speculation.multiplier": "1.5",
        "spark.speculation.quantile": "0.5",
        "spark.speculation.minTaskRuntime": "500ms",
        "spark.speculation.efficiency.enabled": "false",
        # Attempt 0 of partition 3 writes its files, then stalls: a speculative copy overtakes.
        **DAEMON_CONF,
        f"spark.executorEnv.{FAULTS_ENV}": "slow=3",
        "spark.executor.memory": "1g",
    }
    # Two workers on two loopback hosts, one core each: the copy runs beside the stalled original.
    with standalone_cluster(tmp_path / "cluster", cores=1, memory="1g", workers=2) as master:
        plain = spark_submit(
            master,
            "jobs/clip_frames.py",
            [*base, "--output", str(tmp_path / "plain")],
            conf={"spark.executor.memory": "1g"},
        )
        assert plain.returncode == 0, plain.stderr[-3000:]
        spec = spark_submit(
            master,
            "jobs/clip_frames.py",
            [*base, "--output", str(tmp_path / "spec")],
            conf=speculative,
        )
    assert spec.returncode == 0, spec.stderr[-3000:]
    # The speculative copy won, as Spark's own event log tells (not the wall clock, which a
    # loaded machine stretches): partition 3 first succeeded in its speculative attempt.
    assert _successful_attempts(events, partition=3)[:1] == [True]
    assert rows(tmp_path / "spec").equals(rows(tmp_path / "plain"))
    listed = DeltaTable(str(tmp_path / "spec")).file_uris()
    assert len(listed) == len(DeltaTable(str(tmp_path / "plain")).file_uris())


def _successful_attempts(events: Path, partition: int) -> list[bool]:
    """Whether each successful attempt of task ``partition`` was speculative, in the order the
    event logs in ``events`` record them, for the stages where that task was speculated."""
    ends = [
        json.loads(line)
        for log in sorted(events.rglob("*"))  # Spark 4 writes rolling logs in a folder
        if log.is_file()
        for line in log.read_text().splitlines()
        if '"SparkListenerTaskEnd"' in line
    ]
    mine = [e for e in ends if e["Task Info"]["Index"] == partition]
    stages = {e["Stage ID"] for e in mine if e["Task Info"]["Speculative"]}
    return [
        e["Task Info"]["Speculative"]
        for e in mine
        if e["Stage ID"] in stages and e["Task End Reason"]["Reason"] == "Success"
    ]


def _isolated(extraction, timeout_s: float) -> list:
    """One video's batches from a decode worker of its own."""
    with IsolatedRunner() as runner:
        return list(runner.run(extraction, timeout_s))
