"""The benchmarks' one harness: timing, peak memory, machine facts, baseline checkouts, JSON.

Why one: the machine is shared and noisy, so every benchmark measures the same way (methods
interleaved in a rotating order, repeated; medians, minima, and ratios taken within a
repetition against a baseline run in the same process) and writes the same JSON
(``bench/results/<name>.json``: machine facts, parameters, measurements), which
``bench/render.py`` turns into ``bench/RESULTS.md``.

Run as a script it is the child side of ``Child``: it imports ``sparkframes`` from the
checkout on ``PYTHONPATH`` (a baseline's, or this one's) and ``bench`` from this repository.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import importlib
import io
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"  # git-ignored: test videos, baseline checkouts, quick results
RESULTS_DIR = BENCH_DIR / "results"
MIB = 1 << 20

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Timing and memory
# --------------------------------------------------------------------------------------------


@dataclass
class Timed:
    """One measured call: wall and CPU seconds, peak RSS added (MiB, when sampled), its value."""

    wall: float
    cpu: float
    value: Any = None
    peak_mib: float = 0.0


def _tree(me: Any) -> list[Any]:
    return [me, *me.children(recursive=True)]


def cpu_seconds(tree: bool = False) -> float:
    """user+sys of this process's threads and its waited-for children; with ``tree``, of every
    live descendant too (psutil): a JVM or a worker pool lives on between calls, so
    ``RUSAGE_CHILDREN`` would miss it."""
    if not tree:  # process_time: finer than RUSAGE_SELF's tick-based accounting
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + kids.ru_utime + kids.ru_stime
    import psutil

    total = 0.0
    for proc in _tree(psutil.Process()):
        try:
            t = proc.cpu_times()
        except psutil.Error:
            continue  # exited meanwhile: its time is in its parent's children_* once reaped
        total += t.user + t.system + t.children_user + t.children_system
    return total


def rss_bytes(tree: bool = False) -> int:
    """RSS of this process, plus its live descendants' with ``tree``."""
    import psutil

    total = 0
    for proc in _tree(psutil.Process()) if tree else [psutil.Process()]:
        with contextlib.suppress(psutil.Error):  # exited meanwhile
            total += proc.memory_info().rss
    return total


def peak_rss_mib(pid: int | str = "self") -> float:
    """``VmHWM`` of a live process, its own peak RSS (``ru_maxrss`` is carried over ``fork`` and
    ``execve``, so a fresh child would report its parent's peak)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def measure(fn: Callable[[], T], *, tree: bool = False, memory: bool = False) -> Timed:
    """Run ``fn`` once. CPU: see ``cpu_seconds``. With ``memory``, RSS (of the tree, with
    ``tree``) is sampled every 5 ms and the peak above the start is kept."""
    stop = threading.Event()
    base = peak = rss_bytes(tree) if memory else 0

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, rss_bytes(tree))

    sampler = threading.Thread(target=sample, daemon=True)
    if memory:
        sampler.start()
    cpu0, t0 = cpu_seconds(tree), time.perf_counter()
    try:
        value = fn()
    finally:
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(tree) - cpu0
        stop.set()
        if memory:
            sampler.join()
    return Timed(wall, cpu, value, (peak - base) / MIB)


def rotated(items: list[T], by: int) -> list[T]:
    """``items`` started at ``by`` (mod len): a different order every repetition."""
    k = by % len(items) if items else 0
    return items[k:] + items[:k]


def interleaved(
    methods: dict[str, Callable[[int], Any]],
    reps: int,
    shift: int = 0,
    label: str = "",
    **how: bool,
) -> dict[str, list[Timed]]:
    """Every method once per repetition (it gets the repetition's index), in an order rotated
    each time, so slow phases of other load spread over all methods; ``how``: see ``measure``."""
    runs: dict[str, list[Timed]] = {name: [] for name in methods}
    for rep in range(reps):
        for name in rotated(list(methods), rep + shift):
            t = measure(lambda name=name, rep=rep: methods[name](rep), **how)
            runs[name].append(t)
            print(f"{label} rep {rep} {name}: {t.wall:.3f} s wall, {t.cpu:.3f} s CPU", flush=True)
    return runs


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def times(runs: list[Timed], per: float = 1.0) -> dict[str, float]:
    """Median and minimum wall time, median CPU time, each divided by ``per``."""
    walls = [t.wall / per for t in runs]
    return {
        "wall s": median(walls),
        "wall min s": min(walls),
        "CPU s": median(t.cpu / per for t in runs),
    }


def ratio(base: list[Timed], other: list[Timed], cpu: bool = False) -> dict[str, float]:
    """t(base) / t(other) per repetition (above 1: ``other`` is faster): median and range."""
    each = [(b.cpu / o.cpu) if cpu else (b.wall / o.wall) for b, o in zip(base, other, strict=True)]
    return {"median": median(each), "min": min(each), "max": max(each)}


# --------------------------------------------------------------------------------------------
# Machine facts, arguments, JSON
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def ffmpeg_exe() -> str:
    """The ffmpeg CLI binary shipped by imageio-ffmpeg (the baselines' tool; optional)."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_cli() -> str:
    try:
        out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True).stdout
    except (ImportError, OSError):
        return "not available"
    return out.split(" Copyright")[0].removeprefix("ffmpeg version ")


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True
        ).stdout

    dirty = (
        " (uncommitted changes)"
        if git("status", "--porcelain", "--", "sparkframes").strip()
        else ""
    )
    return git("rev-parse", "--short", "HEAD").strip() + dirty


def machine() -> dict[str, Any]:
    """Where and on what a run happens: date, cores, CPU, load, versions, the commit."""
    import av

    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores usable": usable,
        "cores online": os.cpu_count(),
        "cpu": _cpu_model(),
        "load at start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "pyav": f"{av.__version__} (FFmpeg {av.ffmpeg_version_info})",
        "ffmpeg cli": _ffmpeg_cli(),
        "numpy": _package("numpy"),
        "pyarrow": _package("pyarrow"),
        "pyspark": _package("pyspark"),
        "commit": _commit(),
    }


def _rounded(value: Any) -> Any:
    """Floats to 4 significant digits (the noise is far above that), recursively."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


class Run:
    """One benchmark run: its arguments (``--quick``, ``--reps``, ``--out`` and the module's
    own ``flags``), the machine facts at its start, and its JSON at the end."""

    def __init__(
        self,
        module_file: str,
        doc: str | None,
        reps: int,
        argv: list[str] | None = None,
        **flags: dict[str, Any],
    ) -> None:
        self.name = Path(module_file).stem
        parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
        parser.add_argument("--quick", action="store_true", help="a smoke run: small, 1 repetition")
        parser.add_argument("--reps", type=int, default=None, help=f"repetitions (default {reps})")
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="results folder (default bench/results; "
            "bench/.cache/results with --quick, so a smoke run never replaces published numbers)",
        )
        for flag, how in flags.items():  # the module's own: dir=dict(type=Path, help=...)
            parser.add_argument(f"--{flag}", **how)
        self.args = parser.parse_args(argv)
        self.quick: bool = self.args.quick
        self.reps: int = self.args.reps or (1 if self.quick else reps)
        self.out: Path = self.args.out or (CACHE_DIR / "results" if self.quick else RESULTS_DIR)
        self.facts = machine()
        self.started = time.perf_counter()
        print(json.dumps(self.facts), flush=True)

    def save(self, parameters: dict[str, Any], measurements: dict[str, list[dict]]) -> Path:
        """Write ``<out>/<name>.json``: facts, parameters, measurements (tables of records)."""
        facts = {**self.facts, "load at end": [round(x, 2) for x in os.getloadavg()]}
        facts["run s"] = time.perf_counter() - self.started
        doc = {
            "benchmark": self.name,
            "source": "run",
            "machine": facts,
            "parameters": {"quick": self.quick, "repetitions": self.reps, **parameters},
            "measurements": measurements,
        }
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{self.name}.json"
        path.write_text(json.dumps(_rounded(doc), indent=1) + "\n")
        print(f"wrote {path}", flush=True)
        return path


# --------------------------------------------------------------------------------------------
# Baselines and child processes
# --------------------------------------------------------------------------------------------


def baseline_checkout(rev: str) -> Path:
    """A git worktree of ``rev`` under the cache, made once: a baseline that runs in a ``Child``
    beside the current code."""
    path = CACHE_DIR / f"baseline-{rev}"
    if not (path / "sparkframes").exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        git = ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev]
        subprocess.run(git, check=True)
    return path


class Child:
    """``module``'s ``serve(request) -> dict`` in a child process on ``checkout``'s sparkframes,
    answering JSON requests one line at a time: how a baseline runs beside the current code
    (also for Spark's Python workers, which find it through ``PYTHONPATH`` and the working
    folder), and how a measurement gets a fresh process."""

    def __init__(self, module: str, checkout: Path = REPO, env: dict[str, str] | None = None):
        env = {**os.environ, **(env or {}), "PYTHONPATH": str(checkout), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, str(BENCH_DIR / "harness.py"), module]
        self.name = f"{module} on {checkout}"
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=checkout
        )
        self.sparkframes = self._read("READY ")

    def _read(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # anything else it prints (a job's summary line) is skipped
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
        raise RuntimeError(f"{self.name} ended (exit {self.proc.wait()}); see its stderr")

    def ask(self, **request: Any) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read("RESULT "))

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(300)


def local_spark(cores: int = 2, app: str = "sparkframes-bench") -> Any:
    """A ``local[cores]`` session from pyspark's own builder (no sparkframes internals): Python
    workers on this interpreter, no console progress bar, errors only. The job's entry points
    reuse it (``getOrCreate``)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(f"local[{cores}]").appName(app)
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    spark = builder.config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def cli_job(*argv: str) -> dict[str, int]:
    """The ``sparkframes`` command run in this process (so it reuses a warm session), progress
    line off, its summary line read back: the public way to run the job that old checkouts
    have too."""
    import sparkframes.cli

    config = CACHE_DIR / "bench_job.toml"
    if not config.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        config.write_text("progress = false\n")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = sparkframes.cli.main([*argv, "--config", str(config)])
    line = out.getvalue()
    found = re.search(
        r"(\d+) videos processed, (\d+) up to date, (\d+) failed;.*? frames ([^;]*);", line
    )
    if code or not found:
        raise RuntimeError(f"sparkframes {' '.join(argv)}: exit {code}: {line[-500:]}")
    frames = sum(int(p.split("=")[1]) for p in found[4].split(", ") if "=" in p)
    return {
        "processed": int(found[1]),
        "skipped": int(found[2]),
        "failed": int(found[3]),
        "frames": frames,
    }


def table_digest(table: str) -> str:
    """A hash of every row's identity and pixels in a frames table, order-independent, through
    the public reader (old checkouts have it too): the same rows give the same hash."""
    import hashlib

    import sparkframes

    cols = sparkframes.read_table(table).to_pydict()
    identity = ("video_path", "clip_id", "target_fps", "frame_index", "pts_s")
    keys = sorted(
        "|".join(str(cols[c][i]) for c in identity) + "|" + hashlib.sha1(frame).hexdigest()
        for i, frame in enumerate(cols["frame"])
    )
    return hashlib.sha1("\n".join(keys).encode()).hexdigest()[:12]


def _serve(module_name: str) -> None:
    """The child side of ``Child``: sparkframes from ``PYTHONPATH``, then bench from here."""
    import sparkframes

    sys.path[0] = str(REPO)  # was this folder (the script's): bench as a package instead
    module = importlib.import_module(module_name)
    print("READY " + str(Path(sparkframes.__file__).parent.parent), flush=True)
    for line in sys.stdin:
        print("RESULT " + json.dumps(module.serve(json.loads(line))), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1])
