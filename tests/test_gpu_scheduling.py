"""GPU scheduling plumbing on a real standalone cluster whose worker reports fake GPUs.

No GPU here: each task must still be assigned a GPU address by Spark through the stage's
ResourceProfile, then fall back to CPU decoding cleanly and say so.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes.decoding.backends import cuda_devices
from sparkframes.table.reader import read_frames
from tests.cluster import spark_submit, standalone_cluster

pytestmark = pytest.mark.cluster


def test_gpu_tasks_get_addresses_and_fall_back_to_cpu(tmp_path, catalog):
    if cuda_devices()[0]:
        pytest.skip("a real GPU is present: the fallback would not happen")
    script = tmp_path / "fake-gpus.sh"
    script.write_text('#!/bin/sh\necho \'{"name": "gpu", "addresses": ["0", "1"]}\'\n')
    script.chmod(0o755)
    videos = [str(catalog[n]) for n in ("h264_mp4", "hevc_mp4", "vp9_webm", "ntsc_mp4")]
    pq.write_table(pa.table({"video_path": videos}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    worker_opts = (
        f"-Dspark.worker.resource.gpu.amount=2 -Dspark.worker.resource.gpu.discoveryScript={script}"
    )
    with standalone_cluster(tmp_path / "cluster", cores=2, worker_opts=worker_opts) as master:
        result = spark_submit(
            master,
            "jobs/video_frames.py",
            [
                "--input",
                str(tmp_path / "in.parquet"),
                "--output",
                str(out),
                "--decoder-mode",
                "ffmpeg_gpu",
                "--streams-per-gpu",
                "2",
                "--partitions",
                "4",
            ],
            conf={
                "spark.executor.resource.gpu.amount": "2",
                "spark.executor.resource.gpu.discoveryScript": str(script),
                "spark.executor.memory": "1g",
            },
        )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = next(line for line in result.stdout.splitlines() if "sparkframes run" in line)
    assert "4 videos processed" in summary
    assert "decoders ffmpeg_cpu=4" in summary  # fell back, and says so per video
    assert "GPUs assigned 0" in summary or "GPUs assigned 1" in summary, summary
    table = read_frames(str(out), purpose="scene")
    assert set(table["decoder"].to_pylist()) == {"ffmpeg_cpu"}
    assert table.schema.field("frame").type.shape == [27, 48, 3]


def test_no_fallback_fails_the_job_with_a_clear_message(tmp_path, catalog):
    if cuda_devices()[0]:
        pytest.skip("a real GPU is present")
    import subprocess
    import sys

    from tests.cluster import spark_env

    pq.write_table(pa.table({"video_path": [str(catalog["h264_mp4"])]}), tmp_path / "in.parquet")
    cmd = [
        sys.executable,
        "-m",
        "sparkframes.cli",
        "video-frames",
        "--input",
        str(tmp_path / "in.parquet"),
        "--output",
        str(tmp_path / "out"),
        "--decoder-mode",
        "pynvc",
        "--no-fallback",
        "--master",
        "local[1]",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, env=spark_env(), timeout=300)
    assert result.returncode == 4, result.stderr[-3000:]
    assert "Frame extraction failed: decoder pynvc is unavailable" in result.stderr
    assert not (tmp_path / "out" / "purpose=scene").exists()
