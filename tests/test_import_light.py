"""Issue 24, item 1: the decode path imports with only PyAV, numpy and pyarrow (a GPU node
checking decodes may have no deltalake, pyspark, pandas or Java), and ``import sparkframes``
itself is cheap: every CLI call pays for it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sparkframes

REPO = Path(__file__).resolve().parents[1]


def _python(code: str, *args: str, env: dict[str, str] | None = None, path: list[Path] = ()):
    """Run ``code`` in a fresh interpreter with the checkout (and ``path``) importable."""
    python_path = os.pathsep.join([*(str(p) for p in path), str(REPO)])
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "PYTHONPATH": python_path},
        timeout=150,
        cwd=REPO,
    )


# --- item 1: the decode path imports with only av, numpy, pyarrow ---------------------------

_BLOCKED_RUN = """
import importlib, importlib.abc, json, pkgutil, sys
BLOCKED = {"deltalake", "pyspark", "pandas", "PIL", "polars", "duckdb", "imageio_ffmpeg"}

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for this test: {name}")
        return None

sys.meta_path.insert(0, Block())
import sparkframes
import sparkframes.decoding
for module in pkgutil.iter_modules(sparkframes.decoding.__path__):
    importlib.import_module("sparkframes.decoding." + module.name)
from sparkframes import ExtractionSpec, extract_clip_frames, extract_video_frames
clip = extract_clip_frames(sys.argv[1], [ExtractionSpec("embeddings", target_fps=(1, 2))])
video = extract_video_frames(sys.argv[1], (27, 48))
print(json.dumps({
    "clip_frames": sum(len(b) for b in clip),
    "video_frames": sum(len(b) for b in video),
    "errors": [str(e) for e in clip.report.errors + video.report.errors],
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
}))
"""


def test_decode_path_runs_without_table_spark_or_pandas(catalog):
    """A GPU node checking decodes may have no deltalake, pyspark, pandas (or Java)."""
    run = _python(_BLOCKED_RUN, str(catalog["h264_mp4"]))
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [] and result["errors"] == []
    assert result["clip_frames"] > 0 and result["video_frames"] == 60


def test_import_sparkframes_is_cheap():
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sparkframes"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    line = next(x for x in run.stderr.splitlines() if re.search(r"\|\s+sparkframes$", x))
    cumulative_us = int(line.split("|")[1])
    assert cumulative_us <= 150_000, line
    imported = {x.split("|")[2].strip() for x in run.stderr.splitlines() if x.count("|") == 2}
    assert not imported & {"av", "numpy", "pyarrow", "deltalake", "pyspark", "pandas"}


def test_every_public_name_still_imports():
    pytest.importorskip("deltalake", reason="the table readers need deltalake (a decode-only node)")
    namespace: dict[str, object] = {}
    exec("from sparkframes import *", namespace)
    for name in sparkframes.__all__:
        assert getattr(sparkframes, name) is namespace[name]
        assert name in dir(sparkframes)
    assert sparkframes.extract_clip_frames.__module__ == "sparkframes.extraction.clip"
    assert isinstance(sparkframes.__version__, str) and sparkframes.__version__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        sparkframes.nope  # noqa: B018
