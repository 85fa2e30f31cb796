"""The Python API on Spark: frames as lazy DataFrames and the table write, on a classic session
here and on a Spark Connect session in a child process; the same rows as the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import functions as F

from sparkframes.cli import main
from sparkframes.spark import clip_frames, video_frames, write_clip_frames, write_video_frames
from sparkframes.table.delta import TableLocation
from sparkframes.table.reader import read_errors, read_table
from tests.cluster import REPO, spark_env
from tests.connect_run import OPTIONS
from tests.tables import read_state
from tests.videos import read_frame_number

VIDEOS = ["h264_mp4", "vfr_mkv", "hevc_mp4"]
KEY = ["purpose", "video_path", "clip_id", "target_fps", "frame_index", "pts_s"]


def _sorted_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in KEY))


@pytest.fixture(scope="module")
def cli_table(tmp_path_factory, catalog):
    """The same videos through ``sparkframes clip-frames``, for comparison."""
    work = tmp_path_factory.mktemp("api")
    pq.write_table(pa.table({"video_path": [str(catalog[n]) for n in VIDEOS]}), work / "in.pq")
    argv = ["clip-frames", "--input", str(work / "in.pq"), "--output", str(work / "cli")]
    argv += ["--purpose", "embeddings,aesthetics", "--target-res", "24x32", "--target-fps", "1,2"]
    assert main([*argv, "--master", "local[2]"]) == 0
    return work


def _videos(spark, catalog, names=VIDEOS):
    return spark.createDataFrame([(str(catalog[n]),) for n in names], "video_path string")


def test_clip_frames_is_lazy_and_gives_the_clis_rows(spark, catalog, cli_table):
    frames = clip_frames(_videos(spark, catalog), **OPTIONS)
    # A DataFrame with the table's columns and purpose, and a Spark plan, not rows yet.
    assert frames.columns == [*read_table(str(cli_table / "cli")).column_names, "error"]
    assert "MapInArrow" in frames._jdf.queryExecution().logical().toString()
    chained = frames.where(F.col("purpose") == "embeddings").groupBy("video_path").count()
    assert {r["video_path"] for r in chained.collect()} == {str(catalog[n]) for n in VIDEOS}
    got = _sorted_rows([r.asDict() for r in frames.collect()])
    want = _sorted_rows(read_table(str(cli_table / "cli")).to_pylist())
    assert [{k: r[k] for k in KEY} for r in got] == [{k: r[k] for k in KEY} for r in want]
    assert all(g["frame"] == w["frame"] for g, w in zip(got, want, strict=True))  # same pixels
    one = got[0]
    img = np.frombuffer(one["frame"], np.uint8).reshape(one["height"], one["width"], 3)
    read_frame_number(img)


def test_failures_are_never_silent(spark, catalog, tmp_path):
    good, missing = str(catalog["h264_mp4"]), str(tmp_path / "gone.mp4")
    schema = "video_path string, clip_id string, start_s double, end_s double"
    videos = spark.createDataFrame(
        [(good, "all", None, None), (good, "late", 500.0, 501.0), (missing, None, None, None)],
        schema,
    )
    options = {"purpose": ["embeddings", "aesthetics"], "target_res": (24, 32)}
    rows = [r.asDict(recursive=True) for r in clip_frames(videos, **options).collect()]
    failed = sorted(
        (
            (r["video_path"], r["clip_id"], r["purpose"], r["error"]["error_class"])
            for r in rows
            if r["error"] is not None
        ),
        key=str,
    )
    assert failed == sorted(
        [
            (good, "late", "aesthetics", "SpanError"),
            (good, "late", "embeddings", "SpanError"),
            (missing, None, "aesthetics", "VideoOpenError"),
            (missing, None, "embeddings", "VideoOpenError"),
        ],
        key=str,
    )
    for r in rows:  # an error row has no frame; a frame row has no error
        assert (r["frame"] is None) == (r["error"] is not None)
        if r["error"] is not None:
            assert r["video_path"] in r["error"]["message"] and r["error"]["stage"]
    frames = [r for r in rows if r["error"] is None]
    assert frames and {r["clip_id"] for r in frames} == {"all"}

    dropped = clip_frames(videos, mode="DROPMALFORMED", **options).collect()
    assert sorted(r["pts_s"] for r in dropped) == sorted(r["pts_s"] for r in frames)
    assert all(r["error"] is None for r in dropped)

    only_missing = videos.where(F.col("video_path") == missing)
    with pytest.raises(Exception, match=r"VideoOpenError: .*gone\.mp4"):
        clip_frames(only_missing, mode="failfast", **options).collect()
    with pytest.raises(ValueError, match="mode must be one of"):
        video_frames(videos, mode="LENIENT")


def test_timestamps_from_the_input_table(spark, catalog, tmp_path):
    """``timestamps_s`` (list<double>) read from Parquet by pyarrow for the table write, and from
    a DataFrame for the lazy frames: the same rows, an error row per time out of range."""
    video = str(catalog["h264_mp4"])
    schema = pa.schema([("video_path", pa.string()), ("timestamps_s", pa.list_(pa.float64()))])
    table = pa.table({"video_path": [video], "timestamps_s": [[0.5, 0.1, 99.0, 0.5]]}, schema)
    pq.write_table(table, tmp_path / "in.parquet")
    summary = write_clip_frames(
        str(tmp_path / "in.parquet"), str(tmp_path / "out"), spark=spark, policy="timestamps"
    )
    assert (summary.frames, summary.errors) == (3, 1), summary.line()
    written = read_table(str(tmp_path / "out")).sort_by("frame_index")
    assert written["frame_index"].to_pylist() == [0, 1, 3]
    assert written["pts_s"].to_pylist()[0] == written["pts_s"].to_pylist()[2]  # same time twice
    assert "timestamps_s[2] = 99" in read_errors(str(tmp_path / "out"))["message"][0].as_py()
    lazy = clip_frames(spark.createDataFrame(table.to_pandas()), policy="timestamps").collect()
    frames = sorted((r["frame_index"], r["pts_s"]) for r in lazy if r["error"] is None)
    index, pts = written["frame_index"].to_pylist(), written["pts_s"].to_pylist()
    assert frames == list(zip(index, pts, strict=True))
    assert [r["error"]["error_class"] for r in lazy if r["error"] is not None] == ["SpanError"]


def test_bad_options_are_refused_before_any_job(spark, catalog):
    videos = _videos(spark, catalog)
    jobs = spark.sparkContext.statusTracker().getJobIdsForGroup()
    for bad, message in [
        ({"target_fps": "2fps"}, "is not a number"),
        ({"target_res": (224,)}, "must look like HxW"),
        ({"policy": "middle", "target_fps": [2]}, "only with --policy sequence"),
        ({"purpose": ["scene"]}, "video-frames"),
        ({"nonsense": 1}, "unknown option"),
        ({"output": "x"}, "not an option of this call"),
    ]:
        with pytest.raises(ValueError, match=message):
            clip_frames(videos, **bad)
    with pytest.raises(ValueError, match="decoder-mode must be one of"):
        video_frames(videos, decoder_mode="gpu")
    assert spark.sparkContext.statusTracker().getJobIdsForGroup() == jobs


def test_video_frames_gives_every_frame(spark, catalog):
    frames = video_frames(_videos(spark, catalog, ["h264_mp4"]), output_hw=(27, 48))
    rows = frames.select("purpose", "policy", "height", "width", "frame_index").collect()
    assert {(r["purpose"], r["policy"], r["height"], r["width"]) for r in rows} == {
        ("scene", "all", 27, 48)
    }
    assert sorted(r["frame_index"] for r in rows) == list(range(len(rows)))


def test_write_from_a_dataframe_and_from_a_path_match_the_cli(spark, catalog, cli_table, tmp_path):
    from_df = write_clip_frames(_videos(spark, catalog), str(tmp_path / "df"), **OPTIONS)
    from_path = write_clip_frames(str(cli_table / "in.pq"), str(tmp_path / "path"), **OPTIONS)
    assert from_df.videos_processed == from_path.videos_processed == len(VIDEOS)
    want = _sorted_rows(read_table(str(cli_table / "cli")).drop_columns(["frame"]).to_pylist())
    for name in ("df", "path"):
        got = read_table(str(tmp_path / name)).drop_columns(["frame"]).to_pylist()
        assert [{k: r[k] for k in KEY} for r in _sorted_rows(got)] == [
            {k: r[k] for k in KEY} for r in want
        ]
    # The write and the command line share the state: the CLI's table is up to date for it.
    again = write_clip_frames(_videos(spark, catalog), str(cli_table / "cli"), **OPTIONS)
    assert (again.videos_processed, again.videos_skipped) == (0, len(VIDEOS))
    assert json.loads(json.dumps(again.as_dict()))["table_version"] is None
    scene = write_video_frames(_videos(spark, catalog, ["h264_mp4"]), str(tmp_path / "scene"))
    assert scene.frames_by_purpose.keys() == {"scene"}


def test_rows_without_a_video_path_get_error_rows(spark, catalog, tmp_path):
    rows = [(str(catalog["h264_mp4"]), None), (None, "lost"), ("", None)]
    videos = spark.createDataFrame(rows, "video_path string, clip_id string")
    out = str(tmp_path / "out")
    summary = write_clip_frames(videos, out, target_res=(24, 32))
    assert (summary.videos_in_input, summary.videos_failed) == (2, 1)
    errors = read_errors(out).to_pylist()
    assert sorted((e["video_path"], str(e["clip_id"]), e["error_class"]) for e in errors) == [
        ("", "None", "MissingVideoPathError"),
        ("", "lost", "MissingVideoPathError"),
    ]
    assert "an input row has no video_path (clip_id 'lost')" in {e["message"] for e in errors}
    assert read_state(TableLocation.of(out))[("", "embeddings")].status == "failed"
    again = write_clip_frames(videos, out, target_res=(24, 32))
    assert (again.videos_processed, again.videos_skipped) == (0, 2)  # nothing new to say


def test_a_spark_connect_session_gives_the_same_rows(catalog, cli_table, tmp_path):
    """``clip_frames`` and ``write_clip_frames`` on ``SparkSession.builder.remote("local[2]")``,
    in a child process: the rows of the command line, and an incremental second write."""
    env = spark_env({"PYTHONPATH": str(REPO)})
    proc = subprocess.run(
        [sys.executable, "-m", "tests.connect_run", str(cli_table / "in.pq"), str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    want = _sorted_rows(read_table(str(cli_table / "cli")).to_pylist())
    lazy = _sorted_rows(pq.read_table(tmp_path / "lazy.parquet").to_pylist())
    assert [{k: r[k] for k in KEY} for r in lazy] == [{k: r[k] for k in KEY} for r in want]
    assert all(g["frame"] == w["frame"] for g, w in zip(lazy, want, strict=True))
    assert {r["nbytes"] for r in lazy} == {24 * 32 * 3}  # the chained column was computed
    written = _sorted_rows(read_table(str(tmp_path / "table")).to_pylist())
    assert [{k: r[k] for k in KEY} for r in written] == [{k: r[k] for k in KEY} for r in want]
    first, again = json.loads((tmp_path / "summary.json").read_text())
    assert (first["videos_processed"], again["videos_processed"]) == (len(VIDEOS), 0)
    assert again["videos_skipped"] == len(VIDEOS)


def test_no_rdd_api_on_the_connect_path():
    """The extraction path imports no RDD machinery: it would fail on Connect."""
    sources = ["spark/api.py", "spark/job.py", "spark/planning.py", "spark/tasks.py"]
    for name in sources:
        text = (REPO / "sparkframes" / name).read_text()
        for word in ("parallelize", "mapPartitions", ".rdd", "withResources"):
            assert word not in text, (name, word)
