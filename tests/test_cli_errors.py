"""The command line's refusals that happen before Spark starts: one line naming the cause, exit 2,
no traceback. Run as the installed command would be, in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.errors import PySparkRuntimeError

from sparkframes.cli import java_problem, output_problem

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    cmd = [sys.executable, "-m", "sparkframes.cli", *args]
    return subprocess.run(
        cmd, capture_output=True, text=True, cwd=REPO, env=env or base, timeout=120
    )


def _refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    # The last line: Spark's launcher may print its own reason first ("JAVA_HOME is not set").
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"sparkframes: {message}"), result.stderr[-3000:]
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_is_named(tmp_path):
    missing = tmp_path / "nope.toml"
    result = _cli("clip-frames", "--config", str(missing))
    _refused(result, f"{missing}: no such config file")


def test_a_config_file_value_of_the_wrong_type_is_named(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text('input = "i"\noutput = "o"\nno-fallback = "false"\n')
    result = _cli("video-frames", "--config", str(path))
    _refused(result, f"{path}: no-fallback must be true or false, not 'false'")


def test_an_unparseable_rate_names_the_flag():
    result = _cli("clip-frames", "--input", "i", "--output", "o", "--target-fps", "2fps")
    _refused(result, "--target-fps: '2fps' is not a number")


@pytest.mark.parametrize("kind", ["scheme", "file_in_the_way"])
def test_an_output_that_cannot_be_written_is_refused_before_spark(tmp_path, kind):
    (tmp_path / "a_file").write_text("")
    output = "bogus://bucket/frames" if kind == "scheme" else str(tmp_path / "a_file" / "frames")
    result = _cli("clip-frames", "--input", str(tmp_path / "in.parquet"), "--output", output)
    _refused(result, f"--output {output}: ")
    assert "Unrecognized filesystem" in result.stderr or "is not a folder" in result.stderr


def test_output_problem_accepts_new_and_existing_folders_and_refuses_files(tmp_path):
    assert output_problem(str(tmp_path / "new" / "table")) is None
    assert output_problem(str(tmp_path)) is None
    assert output_problem(f"file://{tmp_path}/table") is None
    (tmp_path / "f").write_text("")
    assert output_problem(str(tmp_path / "f")) == "is a file, not a folder"
    assert "Unrecognized filesystem" in (output_problem("nope://x/y") or "")


def _output_problem_as_a_plain_user(output: Path) -> str:
    """``output_problem`` in a child without root's power to write through permissions."""
    code = (
        "import sys\nfrom sparkframes.cli import output_problem\nprint(output_problem(sys.argv[1]))"
    )
    cmd = [sys.executable, "-c", code, str(output)]
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to run without write permission as root")
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout


def test_output_problem_refuses_a_folder_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    try:
        out = _output_problem_as_a_plain_user(locked / "table")
    finally:
        locked.chmod(0o755)
    assert out.strip() == f"permission denied: cannot write in {locked}"


def test_output_problem_looks_at_the_tables_own_folder_when_it_exists(tmp_path):
    """Everything a run writes goes inside the table, so only that folder must be writable."""
    parent = tmp_path / "parent"
    table = parent / "table"
    table.mkdir(parents=True)
    parent.chmod(0o555)
    try:
        assert _output_problem_as_a_plain_user(table).strip() == "None"
    finally:
        parent.chmod(0o755)
    table.chmod(0o555)
    try:
        out = _output_problem_as_a_plain_user(table)
    finally:
        table.chmod(0o755)
    assert out.strip() == f"permission denied: cannot write in {table}"


def test_java_problem_recognises_only_a_jvm_that_did_not_start():
    assert java_problem(ValueError("something else")) is None
    assert java_problem(RuntimeError("[JAVA_GATEWAY_EXITED] Java gateway process exited.")) is None
    exited = PySparkRuntimeError(errorClass="JAVA_GATEWAY_EXITED", messageParameters={})
    message = java_problem(exited)
    assert message is not None and message.startswith("Spark needs Java 17 or 21 (")


def test_without_java_the_cli_says_spark_needs_java(tmp_path):
    """PATH becomes a folder of links to every program on it except ``java``: the Spark launcher
    scripts still find bash and coreutils, but no JVM."""
    if shutil.which("bash") is None:
        pytest.skip("Spark's launcher scripts need bash")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for entry in os.scandir(folder):
            target = bin_dir / entry.name
            if entry.name != "java" and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PYSPARK_GATEWAY_PORT")}
    env["PATH"] = str(bin_dir)
    result = _cli(
        "clip-frames",
        "--input",
        str(tmp_path / "in.parquet"),
        "--output",
        str(tmp_path / "out"),
        env=env,
    )
    _refused(result, "Spark needs Java 17 or 21 (java not found on PATH / JAVA_HOME unset): ")
    assert "JAVA_GATEWAY_EXITED" in result.stderr
