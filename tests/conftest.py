"""Shared fixtures: the catalog of real encoded test videos and their oracle decodes."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import pytest

from tests.videos import (
    CATALOG,
    OracleVideo,
    VideoSpec,
    build_catalog,
    build_gpu_catalog,
    make_video,
    oracle_decode,
)

#: Set to 1 on a GPU machine: a test marked ``gpu`` that skips then fails instead, with its skip
#: reason. Without it a GPU run where nothing could use the GPU (no driver library mounted,
#: PyNvVideoCodec not importable) would look like a pass.
REQUIRE_GPU_ENV = "SPARKFRAMES_REQUIRE_GPU"


def gpu_required() -> bool:
    return os.environ.get(REQUIRE_GPU_ENV, "") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Under ``SPARKFRAMES_REQUIRE_GPU=1`` a skipped ``gpu`` test is reported as failed."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and gpu_required() and item.get_closest_marker("gpu") is not None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_GPU_ENV}=1 but this GPU test skipped: {reason}"


#: A longer H.264 video with a long GOP and B-frames: clips far apart must be reached by seeking.
LONG_GOP = VideoSpec(
    "long_gop_mp4", "libx264", "mp4", 96, 64, 400, fps=Fraction(25), gop=100, bframes=3
)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def catalog(video_dir: Path) -> dict[str, Path]:
    """Every catalog video, encoded once per test session."""
    return build_catalog(video_dir)


@pytest.fixture(scope="session")
def gpu_catalog(video_dir: Path) -> dict[str, Path]:
    """The GPU test clips (``videos.GPU_CATALOG``), encoded once per test session."""
    return build_gpu_catalog(video_dir)


@pytest.fixture(scope="session")
def long_gop_video(video_dir: Path) -> Path:
    return make_video(video_dir / LONG_GOP.filename(), LONG_GOP)


_ORACLES: dict[Path, OracleVideo] = {}


def oracle_for(path: Path) -> OracleVideo:
    """The sequential-decode oracle of ``path``, computed once per session."""
    if path not in _ORACLES:
        _ORACLES[path] = oracle_decode(path)
    return _ORACLES[path]


VIDEO_NAMES = sorted(CATALOG)


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the tests that need Spark (up to 4 attempts per task).

    Memory-heavy or session-killing cases must not use it: an OOM in local mode kills the
    SparkContext for everyone. Cluster behaviour is tested with a real standalone cluster.
    """
    import os
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from sparkframes.spark.session import get_session

    session = get_session(
        "local[2,4]",
        "sparkframes-tests",
        {"spark.ui.showConsoleProgress": "false", "spark.sql.shuffle.partitions": "2"},
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
