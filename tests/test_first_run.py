"""A new user's first command: the README's demo line, as written, in a fresh copy of the
repository and a fresh virtual environment with no extras.

CI installs the test extra, which would hide a dependency the base install lacks; this test
installs exactly what the README says, so it cannot. pip's local cache makes the install quick.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Python's own warning lines (``FutureWarning: …``, ``UserWarning: …``) and the JVM's.
_PY_WARNING = re.compile(r"\b\w*Warning: ")


def demo_command() -> str:
    """The README's demo line: the fenced shell line that ends in ``sparkframes demo``."""
    lines = [
        line.strip()
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.strip().endswith("sparkframes demo") and "pip install" in line
    ]
    assert len(lines) == 1, f"the README should hold one demo line, found {lines}"
    return lines[0]


def _copy_checkout(dest: Path) -> None:
    """The files a fresh clone of this working tree would have (tracked, and new ones git does
    not ignore), without the local venv, caches or worktrees."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        rel = raw.decode()
        source = ROOT / rel
        if not source.is_file():  # deleted in the working tree
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


@pytest.mark.timeout(1500)
def test_the_readme_demo_line_works_on_a_fresh_checkout(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.fail("the first-run test needs a git checkout to copy (run from the repository)")
    command = demo_command()
    assert command.startswith("python3 -m venv .venv") and "[" not in command  # no extras
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(str(ROOT / ".venv"))
    )
    # The line is "make a venv && install && run the demo": the install's output (pip's own
    # notices) is not the demo's, so the last step runs, and is judged, on its own.
    *install, demo = command.split(" && ")
    assert demo.strip().endswith("sparkframes demo"), command

    def sh(line: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", "-c", line],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            timeout=1400,
        )

    installed = sh(" && ".join(install))
    assert installed.returncode == 0, (installed.stdout + installed.stderr)[-4000:]
    done = sh(demo)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    sheet = checkout / "demo_out" / "contact_sheet.png"
    assert sheet.is_file() and sheet.stat().st_size > 10_000, output[-2000:]
    assert "contact sheet:" in done.stdout
    noisy = [line for line in output.splitlines() if "WARN" in line or _PY_WARNING.search(line)]
    assert not noisy, "\n".join(noisy)
