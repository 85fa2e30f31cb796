"""Videos and tables away from local disk: object stores (s3://, s3a://) and HTTP servers.

The S3 endpoint is moto's S3 server on loopback, spoken to over HTTP by pyarrow's real S3
client (the AWS C++ SDK), as a data lake's object store would be. The HTTP server is Python's
own file server on loopback.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes.decoding import remote
from sparkframes.decoding.source import open_video
from sparkframes.errors import VideoFetchError, VideoOpenError
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.video import extract_video_frames
from sparkframes.extraction.worker import IsolatedRunner
from sparkframes.filesystems import UNKNOWN_STATE, file_states, http_stat, resolve
from sparkframes.options import VideoFramesOptions, build_options
from sparkframes.sampling.specs import ExtractionSpec
from sparkframes.spark.job import write_table
from sparkframes.table.reader import frames_to_numpy, read_errors, read_frames
from sparkframes.tools.inspection import inspect_video
from sparkframes.tools.preview.keyframes import video_contact_sheet
from tests.s3 import s3_server

BUCKET = "lake"
VIDEOS = ["h264_mp4", "vfr_mkv"]


@pytest.fixture(scope="module")
def s3(catalog):
    """An S3 endpoint on loopback holding some catalog videos; yields {name: s3 URI}."""
    import boto3

    with s3_server(BUCKET) as env:
        client = boto3.client("s3")
        uris = {}
        for name in VIDEOS:
            key = f"videos/{catalog[name].name}"
            client.upload_file(str(catalog[name]), BUCKET, key)
            # Hadoop's s3a:// (what Spark-written lakes hold) for one of them.
            scheme = "s3a" if name == "vfr_mkv" else "s3"
            uris[name] = f"{scheme}://{BUCKET}/{key}"
        client.put_object(Bucket=BUCKET, Key="videos/empty.mp4", Body=b"")
        yield {"uris": uris, "env": env}


@pytest.fixture()
def scratch(tmp_path, monkeypatch):
    """A scratch directory of its own, so a test can see that copies are deleted."""
    path = tmp_path / "scratch"
    monkeypatch.setenv("SPARKFRAMES_SCRATCH_DIR", str(path))
    return path


def _frames(extraction) -> list:
    return [row for batch in extraction for row in batch]


def test_which_paths_are_fetched():
    assert remote.needs_local_copy("s3://b/v.mp4") and remote.needs_local_copy("gs://b/v.mp4")
    assert remote.needs_local_copy("hdfs://nn:8020/v.mp4") and remote.needs_local_copy("s3a://b/v")
    for readable in ("/data/v.mp4", "v.mp4", "https://host/v.mp4", "file:///data/v.mp4"):
        assert not remote.needs_local_copy(readable)


def test_scratch_space_follows_the_cluster_managers_local_dirs(monkeypatch, tmp_path):
    for variable in ("SPARKFRAMES_SCRATCH_DIR", "SPARK_LOCAL_DIRS", "LOCAL_DIRS"):
        monkeypatch.delenv(variable, raising=False)
    assert remote.scratch_dir() == tempfile.gettempdir()
    monkeypatch.setenv("LOCAL_DIRS", "/yarn/a,/yarn/b")  # YARN
    assert remote.scratch_dir() == "/yarn/a"
    monkeypatch.setenv("SPARK_LOCAL_DIRS", "/spark/x")  # standalone, Kubernetes
    assert remote.scratch_dir() == "/spark/x"
    monkeypatch.setenv("SPARKFRAMES_SCRATCH_DIR", str(tmp_path))
    assert remote.scratch_dir() == str(tmp_path)


@pytest.mark.parametrize("name", VIDEOS)
def test_clip_frames_from_s3_equal_the_local_files(s3, scratch, catalog, name):
    uri = s3["uris"][name]
    spec = ExtractionSpec("embeddings", (2.0,), "sequence", (32, 48))
    remote_rows = _frames(extract_clip_frames(uri, [spec]))
    local_rows = _frames(extract_clip_frames(str(catalog[name]), [spec]))
    assert remote_rows and len(remote_rows) == len(local_rows)
    for r, loc in zip(remote_rows, local_rows, strict=True):
        assert r.video_path == uri  # returned exactly as given
        assert (r.clip_start_s, r.clip_end_s, r.frame_index, r.pts_s) == (
            loc.clip_start_s,
            loc.clip_end_s,
            loc.frame_index,
            loc.pts_s,
        )
        assert np.array_equal(r.image, loc.image)
    assert list(scratch.iterdir()) == []  # the copy is gone


def test_isolated_scene_frames_from_s3_fetch_in_the_parent(s3, scratch, catalog):
    uri = s3["uris"]["h264_mp4"]
    extraction = extract_video_frames(uri, (27, 48))
    batches = _isolated(extraction, 120)
    assert not extraction.report.errors
    got = pa.Table.from_batches([b for _, b in batches])
    want = [
        float(r.pts_s) for r in _frames(extract_video_frames(str(catalog["h264_mp4"]), (27, 48)))
    ]
    assert got.column("pts_s").to_pylist() == want
    assert set(got.column("video_path").to_pylist()) == {uri}
    assert extraction.local_copy is None and list(scratch.iterdir()) == []


def test_inspect_and_previews_read_videos_on_s3(s3, scratch, catalog, tmp_path):
    """The tools a person reaches for when a lake video misbehaves work on its URI."""
    uri = s3["uris"]["h264_mp4"]
    remote_info = inspect_video(uri)
    local_info = inspect_video(catalog["h264_mp4"])
    assert remote_info["video"] == local_info["video"]
    assert remote_info["format"]["size_bytes"] == catalog["h264_mp4"].stat().st_size
    sheet = video_contact_sheet([uri], tmp_path / "sheet.png", max_frames=4)
    assert (tmp_path / "sheet.png").stat().st_size > 0
    ((row,),) = [sheet.rows]
    assert row.video_path == uri and len(row.thumbs) > 0
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize(
    ("uri", "cause"),
    [
        (f"s3://{BUCKET}/videos/missing.mp4", "no such file"),
        (f"s3://{BUCKET}/videos/empty.mp4", "file is empty"),
        (f"s3://{BUCKET}/videos", "is a directory"),
        ("nosuchfs://host/v.mp4", "no filesystem for 'nosuchfs://'"),
    ],
)
def test_unreadable_remote_videos_name_the_uri_and_cause(s3, scratch, uri, cause):
    with pytest.raises(VideoOpenError, match=cause) as info:
        open_video(uri)
    assert uri in str(info.value)
    extraction = extract_video_frames(uri, (27, 48))
    assert _isolated(extraction, 60) == []
    assert [type(e) for e in extraction.report.errors] == [VideoOpenError]
    assert not scratch.exists() or list(scratch.iterdir()) == []


def test_an_unusable_scratch_directory_is_named(s3, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("SPARKFRAMES_SCRATCH_DIR", str(tmp_path / "a_file" / "scratch"))
    with pytest.raises(VideoFetchError, match=r"cannot use scratch space .*a_file/scratch"):
        open_video(s3["uris"]["h264_mp4"])


def test_a_video_larger_than_the_free_scratch_space_is_refused(s3, scratch, monkeypatch):
    monkeypatch.setattr(remote, "SCRATCH_HEADROOM_BYTES", 1 << 62)  # no disk has this free
    with pytest.raises(VideoOpenError, match="MiB of scratch space") as info:
        open_video(s3["uris"]["h264_mp4"])
    assert "SPARKFRAMES_SCRATCH_DIR" in str(info.value)
    assert list(scratch.iterdir()) == []


def test_scene_job_reads_videos_from_s3_and_writes_the_table_there(spark, s3, scratch, catalog):
    """Input table, videos and output table on S3: the data-lake refresh, run again."""
    env = {**s3["env"], "SPARKFRAMES_SCRATCH_DIR": str(scratch)}
    executor_env = spark.sparkContext.environment  # passed to Python workers of later jobs
    saved = dict(executor_env)
    executor_env.update(env)
    try:
        paths = [*s3["uris"].values(), f"s3://{BUCKET}/videos/missing.mp4"]
        table = pa.table({"video_path": pa.array(paths, pa.string())})
        fs, key = resolve(f"s3://{BUCKET}/tables/videos.parquet")
        with fs.open_output_stream(key) as sink:
            pq.write_table(table, sink)
        out = f"s3://{BUCKET}/tables/frames"
        # The input in Hadoop's spelling, as Spark-written lakes name it.
        config = build_options(
            VideoFramesOptions, {"input": f"s3a://{BUCKET}/tables/videos.parquet", "output": out}
        )
        first = write_table(spark, config)
        assert (first.videos_processed, first.videos_failed) == (3, 1)
        frames = read_frames(out, purpose="scene")
        for name, uri in s3["uris"].items():
            mine = frames.filter(pa.compute.equal(frames["video_path"], uri))
            local = _frames(extract_video_frames(str(catalog[name]), (27, 48)))
            assert mine["pts_s"].to_pylist() == [float(r.pts_s) for r in local]
            assert np.array_equal(frames_to_numpy(mine), np.stack([r.image for r in local]))
        errors = read_errors(out).to_pylist()
        assert [(e["video_path"], e["stage"]) for e in errors] == [(paths[-1], "open")]
        assert "no such file" in errors[0]["message"]

        again = write_table(spark, config)  # incremental: S3 sizes and mtimes unchanged
        assert (again.videos_processed, again.videos_skipped) == (0, 3)

        import boto3  # the missing video appears: the next run extracts it, and only it

        boto3.client("s3").upload_file(str(catalog["h264_mp4"]), BUCKET, "videos/missing.mp4")
        third = write_table(spark, config)
        assert (third.videos_processed, third.videos_failed) == (1, 0)
        h264_frames = len(_frames(extract_video_frames(str(catalog["h264_mp4"]), (27, 48))))
        assert read_frames(out, purpose="scene").num_rows == frames.num_rows + h264_frames
        assert read_errors(out).num_rows == 0  # the video's old error row is replaced
    finally:
        executor_env.clear()
        executor_env.update(saved)
    assert not scratch.exists() or list(scratch.iterdir()) == []


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output readable
        pass


@pytest.fixture()
def http_video(tmp_path, catalog):
    """A video served over HTTP on loopback (Content-Length and Last-Modified, as CDNs send)."""
    root = tmp_path / "www"
    root.mkdir()
    shutil.copy(catalog["vfr_mkv"], root / "a.mkv")
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root / "a.mkv", f"http://127.0.0.1:{server.server_port}/a.mkv"
    finally:
        server.shutdown()
        server.server_close()


class _Failing(SimpleHTTPRequestHandler):
    """A server having a bad moment: 503 for everything."""

    def do_GET(self) -> None:
        self.send_error(503, "try later")

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


def test_a_server_error_may_pass_a_missing_file_does_not(http_video):
    _, url = http_video  # a 404 from a working server: lasting
    with pytest.raises(VideoOpenError) as missing:
        open_video(url.replace("a.mkv", "missing.mkv"))
    assert not missing.value.transient
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(VideoFetchError, match="cannot reach it") as failing:
            open_video(f"http://127.0.0.1:{server.server_port}/a.mkv")
    finally:
        server.shutdown()
        server.server_close()
    assert failing.value.transient


def test_http_videos_are_stated_from_their_headers(http_video):
    local, url = http_video
    size, mtime_ns = http_stat(url)
    assert size == local.stat().st_size
    assert mtime_ns == int(local.stat().st_mtime) * 10**9  # Last-Modified has whole seconds
    assert http_stat(url.replace("a.mkv", "missing.mkv")) is None
    # Malformed URLs (a space, a bad port, an open bracket) are an unknown state, not a crash of
    # the driver's planning: the extraction then records what is wrong with each.
    bad = ["http://h/my video.mp4", "http://h:abc/x.mp4", "http://[::1/x.mp4"]
    assert file_states(bad) == dict.fromkeys(bad, UNKNOWN_STATE)


def test_scene_job_refreshes_an_http_video_when_the_server_says_it_changed(
    spark, tmp_path, http_video
):
    local, url = http_video
    pq.write_table(pa.table({"video_path": [url]}), tmp_path / "in.parquet")
    values = {"input": str(tmp_path / "in.parquet"), "output": str(tmp_path / "out")}
    config = build_options(VideoFramesOptions, values)
    first = write_table(spark, config)
    assert (first.videos_processed, first.videos_failed) == (1, 0)
    assert write_table(spark, config).videos_skipped == 1  # unchanged: left alone
    stat = local.stat()
    os.utime(local, (stat.st_atime, stat.st_mtime + 60))  # the file is replaced upstream
    assert write_table(spark, config).videos_processed == 1
    frames = read_frames(str(tmp_path / "out"), purpose="scene")
    assert set(frames["video_path"].to_pylist()) == {url}
    assert frames.num_rows == len(_frames(extract_video_frames(str(local), (27, 48))))  # no dups


def _isolated(extraction, timeout_s: float) -> list:
    """One video's batches from a decode worker of its own."""
    with IsolatedRunner() as runner:
        return list(runner.run(extraction, timeout_s))
