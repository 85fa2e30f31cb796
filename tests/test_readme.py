"""The README and the pages in docs/, run as a new user would: their commands and every code
snippet, against real output.

The two set-up commands themselves are what CI runs (`.ci/run`) and what `demo` exercises here.
The set-up and the two extraction commands are read from the README, which is where a new user
starts; the other commands and the snippets from whichever page holds them.
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

#: The README, then every page in docs/, by their paths from the repository root.
PAGES = {
    path.relative_to(REPO).as_posix(): path.read_text()
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
}


def blocks(language: str, page: str | None = None) -> list[tuple[str, str]]:
    """(page, body) of the fenced blocks in ``language``, of one page or of all of them."""
    return [
        (name, body)
        for name, text in PAGES.items()
        if page in (None, name)
        for lang, body in re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)
        if lang == language
    ]


def commands(body: str) -> list[list[str]]:
    """Shell lines of a block, continuations joined."""
    joined = body.replace("\\\n", " ")
    return [shlex.split(line) for line in joined.splitlines() if line.strip()]


def unfenced(text: str) -> str:
    """A page without its fenced blocks, where headings are."""
    return re.sub(r"```.*?```", "", text, flags=re.S)


def prose(text: str) -> str:
    """A page without its fenced blocks and inline code, where links are."""
    return re.sub(r"`[^`\n]*`", "", unfenced(text))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_pages_resolve():
    """The README sends readers on to docs/: every relative link names a file that exists, and
    a section of it that exists."""
    links = 0
    for name, text in PAGES.items():
        page = REPO / name
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(text)):
            if re.match(r"[a-z]+:", target):
                continue
            links += 1
            path, _, section = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), (name, target)
            if section:
                headings = re.findall(r"^#+ (.+)$", unfenced(linked.read_text()), flags=re.M)
                assert section in {anchor(h) for h in headings}, (name, target)
    assert links > 0


def test_the_readme_keeps_a_recipe_per_reader():
    """The front door shows each way in; the other tests here run what it shows."""
    code = "\n".join(body for _, body in blocks("python", "README.md"))
    for call in ("read_frames(", "frames_to_numpy(", "duckdb.sql(", "pl.scan_delta(", "spark.read"):
        assert call in code, call
    assert "sparkframes.spark import clip_frames" in code


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    test_command = next(b for _, b in blocks("bash", "README.md") if "pytest" in b).strip()
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
    block = next(b for _, b in blocks("bash", "README.md") if "clip-frames" in b)
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
    """docs/preview.md's commands, run as written beside the README's table."""
    ran = set()
    for _, body in blocks("bash", "docs/preview.md"):
        for argv in commands(body):
            if argv[:2] in (["sparkframes", "preview"], ["sparkframes", "inspect"]):
                ran.add(argv[1])
                result = subprocess.run(
                    [sys.executable, "-m", "sparkframes.cli", *argv[1:]],
                    cwd=table.parent,
                    capture_output=True,
                    text=True,
                    env=spark_env(),
                    timeout=300,
                )
                assert result.returncode == 0, (argv, result.stderr[-3000:])
    assert ran == {"preview", "inspect"}
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
    """Every page's snippets, in page order. Relative paths as written; Spark's JVM has its own
    working folder, so they are made absolute (the same text with the folder in front)."""
    monkeypatch.chdir(table.parent)

    def absolute(body: str) -> str:
        return body.replace('"frames/', f'"{table}/').replace("'frames/", f"'{table}/")

    snippets = blocks("python")
    assert {"README.md", "docs/preview.md", "docs/python-api.md"} <= {p for p, _ in snippets}
    for page, body in snippets:
        exec(compile(absolute(body), page, "exec"), {"spark": spark})
    for _, body in blocks("sql"):
        assert duckdb.sql(absolute(body)).fetchall()
