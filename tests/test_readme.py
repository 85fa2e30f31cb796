"""The README, run as a new user would: its commands and every code snippet, against real output.

The two set-up commands themselves are what CI runs (`.ci/run`) and what `demo` exercises here.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cluster import REPO, spark_env

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def commands(body: str) -> list[list[str]]:
    """Shell lines of a block, continuations joined."""
    joined = body.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    test_command = next(b for b in blocks("bash") if "pytest" in b).strip()
    assert test_command in ci


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """``sparkframes demo`` as the README says, then the README's own working files."""
    work = tmp_path_factory.mktemp("readme")
    result = subprocess.run(
        [sys.executable, "-m", "sparkframes.cli", "demo", "--workdir", str(work / "demo")],
        capture_output=True,
        text=True,
        env=spark_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "read back: 24 embeddings frames" in result.stdout
    assert (work / "demo" / "contact_sheet.png").exists()
    shutil.copy(work / "demo" / "sample.mp4", work / "video.mp4")
    pq.write_table(pa.table({"video_path": [str(work / "video.mp4")]}), work / "videos.parquet")
    return work


@pytest.fixture(scope="module")
def table(workdir) -> Path:
    """The README's two commands, run as written in the folder that has videos.parquet."""
    block = next(b for b in blocks("bash") if "clip-frames" in b)
    for argv in commands(block):
        assert argv[0] == "sparkframes"
        result = subprocess.run(
            [sys.executable, "-m", "sparkframes.cli", *argv[1:]],
            cwd=workdir,
            capture_output=True,
            text=True,
            env=spark_env(),
            timeout=300,
        )
        assert result.returncode == 0, (argv, result.stderr[-3000:])
        assert "1 videos processed" in result.stdout
    return workdir / "frames"


def test_the_two_commands_run_as_written(table):
    assert {p.name for p in table.iterdir() if p.name.startswith("purpose=")} == {
        "purpose=embeddings",
        "purpose=aesthetics",
        "purpose=scene",
    }


def test_the_preview_and_inspect_commands_run(table):
    for body in blocks("bash"):
        for argv in commands(body):
            if argv[:2] in (["sparkframes", "preview"], ["sparkframes", "inspect"]):
                result = subprocess.run(
                    [sys.executable, "-m", "sparkframes.cli", *argv[1:]],
                    cwd=table.parent,
                    capture_output=True,
                    text=True,
                    env=spark_env(),
                    timeout=300,
                )
                assert result.returncode == 0, (argv, result.stderr[-3000:])
    assert (table.parent / "sheet.png").stat().st_size > 0
    assert "<img" in (table.parent / "preview.html").read_text()


def test_the_example_script_runs(table):
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "explore_frames.py"), str(table)],
        capture_output=True,
        text=True,
        env=spark_env(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "contact sheet:" in result.stdout and "first clip as (T, H, W, 3)" in result.stdout


def test_the_code_snippets_run(table, spark, monkeypatch):
    """Relative paths as written; Spark's JVM has its own working folder, so they are made
    absolute (the same text with the folder in front)."""
    monkeypatch.chdir(table.parent)

    def absolute(body: str) -> str:
        return body.replace('"frames/', f'"{table}/').replace("'frames/", f"'{table}/")

    for body in blocks("python"):
        exec(compile(absolute(body), "README.md", "exec"), {"spark": spark})
    for body in blocks("sql"):
        assert duckdb.sql(absolute(body)).fetchall()
