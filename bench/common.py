"""The names ``bench/gpu_bench.py`` imports, kept for it alone.

Every other benchmark runs on ``bench/harness.py`` and writes JSON that ``bench/render.py``
turns into RESULTS.md. gpu_bench.py has an owner of its own and still writes its RESULTS.md
section as prose (``render.py`` keeps that section as it is), so what it imports lives on here
until it moves to the harness too; then this file goes.
"""

from __future__ import annotations

from bench.harness import BENCH_DIR, machine, median, rotated
from bench.harness import measure as timed
from bench.videos import ensure_video, recipes

__all__ = [
    "ensure_video",
    "load_note",
    "machine_info",
    "md_table",
    "median",
    "recipes",
    "rotated",
    "timed",
    "write_section",
]


def machine_info() -> str:
    """The harness's machine facts as one line."""
    return "; ".join(f"{k} {v}" for k, v in machine().items()) + "."


def load_note() -> str:
    import os

    return "Load average at the end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + "."


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def write_section(name: str, body: str) -> None:
    """Put ``body`` between ``name``'s markers in RESULTS.md, leaving the rest alone."""
    path = BENCH_DIR / "RESULTS.md"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text()
    if start in text and end in text:
        text = text.split(start, 1)[0] + block + text.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
