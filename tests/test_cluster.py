"""spark-submit against a real standalone cluster on loopback, and the console command."""

from __future__ import annotations

import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes.table.reader import read_errors, read_table
from tests.cluster import spark_env, spark_submit, standalone_cluster

pytestmark = pytest.mark.cluster


def test_spark_submit_on_a_standalone_cluster(tmp_path, catalog):
    videos = [str(catalog[n]) for n in ("h264_mp4", "hevc_mp4", "vp9_webm", "av1_mkv")]
    pq.write_table(
        pa.table({"video_path": [*videos, str(tmp_path / "nope.mp4")]}), tmp_path / "in.parquet"
    )
    out = tmp_path / "out"
    with standalone_cluster(tmp_path / "cluster") as master:
        result = spark_submit(
            master,
            "jobs/clip_frames.py",
            [
                "--input",
                str(tmp_path / "in.parquet"),
                "--output",
                str(out),
                "--purpose",
                "embeddings",
                "--target-res",
                "64x64",
                "--partitions",
                "3",
            ],
            conf={"spark.executor.memory": "1g", "spark.task.cpus": "1"},
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "5 videos processed" in result.stdout and "1 failed" in result.stdout
    table = read_table(str(out))
    assert set(table["video_path"].to_pylist()) == set(videos)
    assert read_errors(str(out))["video_path"].to_pylist() == [str(tmp_path / "nope.mp4")]


def test_console_command_with_a_config_file(tmp_path, catalog):
    pq.write_table(pa.table({"video_path": [str(catalog["h264_mp4"])]}), tmp_path / "in.parquet")
    config = tmp_path / "job.toml"
    config.write_text(
        f'input = "{tmp_path / "in.parquet"}"\noutput = "{tmp_path / "out"}"\n'
        'purpose = ["embeddings", "aesthetics"]\ntarget-res = "32x48"\nmin-frames = 4\n'
    )
    cmd = [
        sys.executable,
        "-m",
        "sparkframes.cli",
        "clip-frames",
        "--config",
        str(config),
        "--target-fps",
        "3",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=spark_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    table = read_table(str(tmp_path / "out"))
    assert set(table["target_fps"].to_pylist()) == {3.0}  # the flag beats the file
    assert set(zip(table["height"].to_pylist(), table["width"].to_pylist(), strict=True)) == {
        (32, 48)
    }
    assert "1 videos processed" in result.stdout
    assert "[sparkframes] videos 1/1 |" in result.stderr  # the local progress line


def test_cli_rejects_bad_flags_with_a_clear_message(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "sparkframes.cli",
        "clip-frames",
        "--input",
        "x",
        "--output",
        str(tmp_path / "o"),
        "--target-res",
        "224",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=spark_env(), timeout=60)
    assert result.returncode == 2
    assert "must look like HxW" in result.stderr
