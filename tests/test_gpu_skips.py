"""Issue 24, item 9: on a GPU machine (``SPARKFRAMES_REQUIRE_GPU=1``) a skipped GPU test fails,
so a GPU run where nothing reached the GPU cannot pass as green."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# --- item 9: a skipped GPU test fails where a GPU is required -------------------------------

_SKIPPING_TESTS = """
import pytest

@pytest.mark.gpu
def test_needs_a_gpu():
    pytest.skip("no NVIDIA driver here")

def test_skips_for_another_reason():
    pytest.skip("not a GPU matter")
"""


@pytest.mark.parametrize("required", [False, True])
def test_require_gpu_turns_gpu_skips_into_failures(tmp_path, required):
    (tmp_path / "test_skipping.py").write_text(_SKIPPING_TESTS)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SPARKFRAMES_REQUIRE_GPU", None)
    if required:
        env["SPARKFRAMES_REQUIRE_GPU"] = "1"
    plugins = ["-p", "tests.conftest", "-p", "no:cacheprovider"]
    quiet = ["-q", "-rfs", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, *quiet, "test_skipping.py"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    if required:
        assert run.returncode == 1, run.stdout
        assert "1 failed, 1 skipped" in run.stdout
        assert "SPARKFRAMES_REQUIRE_GPU=1 but this GPU test skipped" in run.stdout
        assert "no NVIDIA driver here" in run.stdout
    else:
        assert run.returncode == 0, run.stdout
        assert "2 skipped" in run.stdout
