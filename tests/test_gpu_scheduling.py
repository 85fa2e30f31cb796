"""GPU scheduling plumbing on a real standalone cluster.

With fake GPUs (a discovery script that reports two), each task must still be assigned a GPU
address by Spark through the stage's ResourceProfile, then fall back to CPU decoding cleanly
and say so. These run on any machine: CUDA is hidden from the cluster (an empty
CUDA_VISIBLE_DEVICES), so a real GPU does not turn them into skips. On a GPU machine the last
test schedules the real GPU, found by ``conf/gpu-discovery.sh``, and decodes on it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes.decoding.backends import FFMPEG_GPU, gpu_gap
from sparkframes.table.reader import read_frames
from tests.cluster import REPO, spark_submit, standalone_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture
def no_cuda(monkeypatch):
    """Every process the test starts (master, worker, executors, driver) sees no CUDA device."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")


def test_gpu_tasks_get_addresses_and_fall_back_to_cpu(tmp_path, catalog, no_cuda):
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


def test_no_fallback_fails_the_job_with_a_clear_message(tmp_path, catalog, no_cuda):
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


@pytest.mark.gpu
def test_real_gpu_is_scheduled_and_decodes(tmp_path, gpu_catalog):
    """On a GPU machine: the discovery script finds the GPU, Spark assigns it, tasks decode on
    it (``decoder = ffmpeg_gpu`` on every row), two streams sharing it."""
    gap = gpu_gap(FFMPEG_GPU, 0)
    if gap is not None:
        pytest.skip(f"ffmpeg_gpu cannot run here: {gap}")
    script = REPO / "conf" / "gpu-discovery.sh"
    videos = [str(gpu_catalog[n]) for n in ("h264_gpu_mp4", "hevc_gpu_mp4", "ntsc_gpu_mp4")]
    pq.write_table(pa.table({"video_path": videos}), tmp_path / "in.parquet")
    out = tmp_path / "out"
    args = ["--input", str(tmp_path / "in.parquet"), "--output", str(out)]
    args += ["--decoder-mode", "ffmpeg_gpu", "--streams-per-gpu", "2", "--no-fallback"]
    worker_opts = (
        f"-Dspark.worker.resource.gpu.amount=1 -Dspark.worker.resource.gpu.discoveryScript={script}"
    )
    with standalone_cluster(tmp_path / "cluster", cores=2, worker_opts=worker_opts) as master:
        result = spark_submit(
            master,
            "jobs/video_frames.py",
            args,
            conf={
                "spark.executor.resource.gpu.amount": "1",
                "spark.executor.resource.gpu.discoveryScript": str(script),
                "spark.executor.memory": "1g",
            },
        )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = next(line for line in result.stdout.splitlines() if "sparkframes run" in line)
    assert "decoders ffmpeg_gpu=3" in summary, summary
    table = read_frames(str(out), purpose="scene")
    assert set(table["decoder"].to_pylist()) == {"ffmpeg_gpu"}
