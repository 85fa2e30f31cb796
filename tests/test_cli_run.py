"""What a pipeline operator expects of the command line: a quiet console unless asked, Spark
settings passed through, a version, help with defaults, and a summary a scheduler can read."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes import __version__
from sparkframes.cli import build_parser, main
from tests.cluster import REPO, spark_env


def _cli(*args: str, module: str = "sparkframes.cli") -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env=spark_env(), timeout=300
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, catalog):
    work = tmp_path_factory.mktemp("cli")
    pq.write_table(pa.table({"video_path": [str(catalog["three_frames_mp4"])]}), work / "in.pq")
    return work


def _run_args(work, name: str) -> list[str]:
    out = work / name
    return ["clip-frames", "--input", str(work / "in.pq"), "--output", str(out), "--master"]


def test_version_and_python_dash_m():
    assert __version__ != "0+unknown"
    for module in ("sparkframes", "sparkframes.cli"):
        result = _cli("--version", module=module)
        assert result.returncode == 0 and result.stdout.strip() == f"sparkframes {__version__}"


def test_every_flag_says_its_default():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in ("clip-frames", "video-frames"):
        for action in commands[name]._actions:
            if action.option_strings and action.dest not in ("help",):
                text = action.help or ""
                assert "default" in text or "required" in text, (name, action.dest, text)
    help_text = commands["clip-frames"].format_help()
    assert "(default: incremental)" in help_text and "(default: 3600)" in help_text
    assert "(default: raw)" in help_text and "(default: ffmpeg_cpu)" in help_text


def test_a_quiet_console_unless_asked_and_a_json_summary(inputs):
    quiet = _cli(*_run_args(inputs, "quiet"), "local[1]", "--summary-json", "-")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    summary = json.loads(quiet.stdout)  # stdout is the JSON alone
    assert (summary["videos_processed"], summary["videos_failed"]) == (1, 0)
    assert summary["frames_by_purpose"] == {"embeddings": 1}
    assert "sparkframes run " in quiet.stderr  # the summary line went to stderr
    noise = [line for line in quiet.stderr.splitlines() if " WARN " in line or " INFO " in line]
    assert noise == []
    loud = _cli(*_run_args(inputs, "loud"), "local[1]", "-v")
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert " INFO " in loud.stderr and "sparkframes run " in loud.stdout


def test_conf_reaches_the_session_and_a_summary_file_is_written(inputs):
    """``spark.ui.showConsoleProgress`` is off by default; --conf turns Spark's bar back on."""
    path = inputs / "summary.json"
    args = [*_run_args(inputs, "conf"), "local[1]", "--summary-json", str(path)]
    result = _cli(*args, "--conf", "spark.ui.showConsoleProgress=true")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[Stage " in result.stderr
    assert json.loads(path.read_text())["videos_in_input"] == 1
    assert "sparkframes run " in result.stdout


def test_a_malformed_conf_is_refused_before_spark_starts(inputs, capsys):
    assert main([*_run_args(inputs, "bad"), "local[1]", "--conf", "no-equals-sign"]) == 2
    assert "--conf 'no-equals-sign': must look like key=value" in capsys.readouterr().err
    assert not (inputs / "bad").exists()


def test_vacuum_lists_then_deletes_what_no_version_reads(inputs):
    out = inputs / "vac"
    assert main([*_run_args(inputs, "vac"), "local[1]"]) == 0
    stray = out / "purpose=embeddings" / "part-dead-00000-a0-t0-000000000000.parquet"
    stray.write_bytes(b"an attempt's file that no commit listed")
    listed = _cli("vacuum", str(out), "--retention-hours", "0", "--dry-run")
    assert listed.returncode == 0 and "frames: would delete 1 files" in listed.stdout
    assert stray.name in listed.stdout and stray.exists()
    kept = _cli("vacuum", str(out))  # the default retention keeps a file this young
    assert kept.returncode == 0 and "frames: deleted 0 files" in kept.stdout and stray.exists()
    deleted = _cli("vacuum", str(out), "--retention-hours", "0")
    assert deleted.returncode == 0 and "frames: deleted 1 files" in deleted.stdout
    assert not stray.exists()
    missing = _cli("vacuum", str(inputs / "nothing-here"))
    assert missing.returncode == 2 and "no frames table here" in missing.stderr
