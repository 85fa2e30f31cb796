"""A progress line for local runs: videos done / to do, frames/s, errors.

Spark's own bar counts tasks, and a task holds many videos. In local mode the executors share
the driver's disk, so each task attempt keeps a tiny JSON file of its counts in a temporary
folder of the run's and a driver thread sums the newest attempt of each partition once a
second. A task says how many videos it has to do when it starts, so the total is known once
every task has started (until then the line says "at least"). On a cluster the Spark UI shows
progress and the run ends with the summary line.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TextIO


def write_progress(folder: str, partition: int, attempt: int, counts: dict[str, int]) -> None:
    """Executor side: replace this attempt's counts (atomic rename, readers never see half)."""
    path = Path(folder) / f"p{partition:05d}.json"
    tmp = path.with_suffix(f".{attempt}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps({"attempt": attempt, **counts}))
        os.replace(tmp, path)
    except OSError:
        pass  # progress is best effort; never fail a task for it


def read_progress(folder: str) -> dict[str, int]:
    totals = {"tasks": 0, "todo": 0, "videos": 0, "frames": 0, "errors": 0}
    for path in Path(folder).glob("p*.json"):
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        totals["tasks"] += 1
        for key in ("todo", "videos", "frames", "errors"):
            totals[key] += int(counts.get(key, 0))
    return totals


class ProgressLine:
    """Driver side: a thread printing ``videos 3/10 | 120 frames (45.0/s) | 1 errors`` (``3/10+``
    while some of the ``tasks`` have not started)."""

    def __init__(self, folder: str, tasks: int, stream: TextIO = sys.stderr) -> None:
        self.folder, self.tasks, self.stream = folder, tasks, stream
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._started = time.monotonic()
        self._tty = stream.isatty()
        self._last: str | None = None

    def __enter__(self) -> ProgressLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self._print(final=True)
        shutil.rmtree(self.folder, ignore_errors=True)  # the counts were only for this line

    def _loop(self) -> None:
        interval = 1.0 if self._tty else 10.0  # a log file gets a line every 10 s
        while not self._stop.wait(interval):
            self._print()

    def _print(self, final: bool = False) -> None:
        counts = read_progress(self.folder)
        elapsed = max(time.monotonic() - self._started, 1e-9)
        more = "+" if counts["tasks"] < self.tasks and not final else ""
        line = (
            f"[sparkframes] videos {counts['videos']}/{counts['todo']}{more} | "
            f"{counts['frames']} frames "
            f"({counts['frames'] / elapsed:.1f}/s) | {counts['errors']} errors"
        )
        if line == self._last and not final:
            return
        self._last = line
        if self._tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
