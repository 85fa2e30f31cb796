"""Small videos: what per-video isolation costs the Spark job, fork per video vs one worker.

    python -m bench.small_videos_bench [--quick] [--baseline REV] [--videos N] [--reps N]

Issue 13 ("Speed: small videos"). The clip-frames job (``run_clip_frames`` on ``local[2]``,
policy ``middle``, mode overwrite into a fresh table) on N tiny videos (3 frames of 64x48 H.264,
hard links of one file: ``bench.common.tiny_videos_input``), so that a video's cost is all
per-video overhead. Three ways:

* **isolation off**: ``video_timeout_s=0``, each video decoded in the Spark Python worker;
* **worker**: the default ``video_timeout_s=3600`` with this checkout: each task's videos in one
  long-lived worker process, forked from a fork server;
* **fork per video**: the same with the code of ``--baseline`` (the last commit that forked a
  child per video), the baseline.

Each checkout runs in a child process of its own with one SparkSession, warmed up with one run
of each of its ways and then kept, taking runs over stdin (the baseline checkout first on
``PYTHONPATH`` and the working folder, so Spark's Python workers import it too, as in
``commit_bench``). The baseline child runs isolated only: in Python workers that have decoded
in-process its forked children hang (``sparkframes/extraction/worker.py`` says why). The three ways run
interleaved, in a rotating order, over the repetitions; medians. Wall: the time of
``run_clip_frames``. CPU: user+sys of the child's whole process tree (JVM, Python workers, fork
servers and workers, forked children) from psutil, split by kind of process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
WORK = CACHE / "small_videos_bench"
BASELINE_REV = "037e370"  # the last commit with a forked child per video
SECTION = "small_videos_bench"
MASTER = "local[2]"
ISOLATED_TIMEOUT_S = 3600.0  # the job's default video_timeout_s
#: way -> (checkout, video_timeout_s)
WAYS = {
    "off": ("new", 0.0),
    "worker": ("new", ISOLATED_TIMEOUT_S),
    "fork": ("old", ISOLATED_TIMEOUT_S),
}
LABELS = {
    "off": "isolation off (`--video-timeout-s 0`)",
    "worker": "isolation on: one worker per task (this change)",
    "fork": "isolation on: a forked child per video (baseline)",
}
#: Kinds of process in a child's tree, for the CPU split.
KINDS = ("driver", "jvm", "python_workers", "isolation")


# --------------------------------------------------------------------------------------------
# Child: one checkout, one SparkSession, runs asked for on stdin. It imports only what both
# checkouts have.
# --------------------------------------------------------------------------------------------


def _cpu_by_kind() -> dict[str, float]:
    """user+sys seconds of this process and its descendants, live or reaped by them, by kind."""
    import psutil

    me = psutil.Process()
    totals = dict.fromkeys(KINDS, 0.0)
    for proc in [me, *me.children(recursive=True)]:
        try:
            t = proc.cpu_times()
            name, cmdline = proc.name(), " ".join(proc.cmdline())
        except psutil.Error:
            continue  # exited meanwhile: its time is in its parent's children_* once reaped
        if proc.pid == me.pid:
            kind, seconds = "driver", t.user + t.system  # its children are counted below
        else:
            seconds = t.user + t.system + t.children_user + t.children_system
            if name == "java":
                kind = "jvm"
            elif "pyspark.daemon" in cmdline:
                kind = "python_workers"  # with their reaped children (forked per video)
            else:
                kind = "isolation"  # fork servers, with their reaped workers
        totals[kind] += seconds
    return totals


def _child(baseline: bool) -> int:
    from bench.spark_bench import StepClock, digest, frame_files
    from sparkframes.options import ClipFramesConfig, build_config
    from sparkframes.spark.job import run_clip_frames
    from sparkframes.spark.session import get_session

    spark = get_session(MASTER, "small-videos-bench", {"spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")

    def run(request: dict) -> dict:
        values = {
            "input": request["input"],
            "output": request["output"],
            "policy": "middle",
            "mode": "overwrite",
            "progress": False,
            "video_timeout_s": request["timeout_s"],
        }
        config = build_config(ClipFramesConfig, values)
        before = _cpu_by_kind()
        with StepClock() as clock:
            started = time.perf_counter()
            summary = run_clip_frames(spark, config)
            wall = time.perf_counter() - started
        cpu = {k: v - before[k] for k, v in _cpu_by_kind().items()}
        if summary.errors or summary.videos_failed:
            raise RuntimeError(f"the job reported errors: {summary.line()}")
        result = {"wall": wall, "cpu": cpu, "steps": clock.seconds, "frames": summary.frames}
        if request.get("digest"):
            result["digest"] = digest(frame_files(Path(request["output"])))
        shutil.rmtree(request["output"], ignore_errors=True)
        return result

    print("READY", flush=True)
    for line in sys.stdin:
        print("RESULT " + json.dumps(run(json.loads(line))), flush=True)
    spark.stop()
    return 0


# --------------------------------------------------------------------------------------------
# Parent: set-up, interleaving, report
# --------------------------------------------------------------------------------------------


class Child:
    """A child process running one checkout's SparkSession."""

    def __init__(self, checkout: Path, baseline: bool) -> None:
        env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child"]
        cmd += ["--baseline-child"] if baseline else []
        self.name = "baseline" if baseline else "this checkout"
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=checkout
        )
        self._read("READY")

    def _read(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()
        raise RuntimeError(f"{self.name} child ended (exit {self.proc.wait()}); see its stderr")

    def run(self, request: dict) -> dict:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._read("RESULT "))

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 videos, 1 repetition")
    parser.add_argument("--baseline", default=BASELINE_REV, help="git rev of fork per video")
    parser.add_argument("--videos", type=int, default=None, help="tiny videos (default 400)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.baseline_child)

    from bench.common import (
        baseline_checkout,
        load_note,
        machine_info,
        tiny_videos_input,
        write_section,
    )

    videos = args.videos or (100 if args.quick else 400)
    reps = args.reps or (1 if args.quick else 5)
    header = machine_info()
    print(header, flush=True)
    baseline = baseline_checkout(args.baseline)
    inputs = str(tiny_videos_input(WORK, videos))
    outputs = WORK / "tables"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir(parents=True)

    started = time.perf_counter()
    children = {"new": Child(REPO, baseline=False), "old": Child(baseline, baseline=True)}
    results: dict[str, list[dict]] = {way: [] for way in WAYS}
    try:
        for way, (checkout, timeout_s) in WAYS.items():  # warm-up: JIT, Python workers, imports
            request = {"input": inputs, "output": str(outputs / f"warm-{way}")}
            children[checkout].run({**request, "timeout_s": timeout_s})
        warm_s = time.perf_counter() - started
        for rep in range(reps):
            order = list(WAYS)[rep % len(WAYS) :] + list(WAYS)[: rep % len(WAYS)]
            for way in order:
                checkout, timeout_s = WAYS[way]
                request = {
                    "input": inputs,
                    "output": str(outputs / f"{way}-{rep}"),
                    "timeout_s": timeout_s,
                    "digest": rep == 0,
                }
                result = children[checkout].run(request)
                results[way].append(result)
                print(
                    f"rep {rep} {way:>6}: {result['wall'] / videos * 1e3:6.1f} ms/video wall, "
                    f"{sum(result['cpu'].values()) / videos * 1e3:6.1f} ms/video CPU",
                    flush=True,
                )
    finally:
        for child in children.values():
            child.close()
    total_s = time.perf_counter() - started
    for way, runs in results.items():
        if {r["frames"] for r in runs} != {videos}:
            raise RuntimeError(f"{way}: frames {[r['frames'] for r in runs]}, expected {videos}")
    WORK.mkdir(parents=True, exist_ok=True)
    data = {"videos": videos, "reps": reps, "baseline": args.baseline, "results": results}
    (WORK / "results.json").write_text(json.dumps(data, indent=1))

    body = _report(header, results, videos, reps, args, warm_s, total_s, load_note())
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, body)}")
    return 0


def _report(
    header: str,
    results: dict[str, list[dict]],
    videos: int,
    reps: int,
    args: argparse.Namespace,
    warm_s: float,
    total_s: float,
    load_note: str,
) -> str:
    from bench.common import md_table, median

    def ms(seconds: float) -> str:
        return f"{seconds / videos * 1e3:.1f}"

    def cpu(run: dict) -> float:
        return sum(run["cpu"].values())

    def ratio(base: str, other: str, of=lambda r: r["wall"]) -> str:
        """Median and range of t(base) / t(other) over the repetitions."""
        each = [of(b) / of(o) for b, o in zip(results[base], results[other], strict=True)]
        return f"{median(each):.2f}x ({min(each):.2f}-{max(each):.2f})"

    rows = []
    for way, label in LABELS.items():
        runs = results[way]
        rows.append(
            [
                label,
                ms(median(r["wall"] for r in runs)),
                ms(median(cpu(r) for r in runs)),
                "1.00x" if way == "fork" else ratio("fork", way),
                "1.00x" if way == "fork" else ratio("fork", way, cpu),
                "1.00x" if way == "off" else ratio(way, "off"),
            ]
        )
    headline = md_table(
        [
            "way",
            "ms per video",
            "CPU ms per video",
            "faster than fork per video, wall",
            "CPU",
            "t / t(isolation off)",
        ],
        rows,
    )
    kind_labels = {
        "driver": "driver (this Python process)",
        "jvm": "JVM (planning, scheduling, Arrow transfer)",
        "python_workers": "Spark Python workers (task bodies; with their forked children)",
        "isolation": "fork servers and their workers",
    }
    cpu_rows = [
        [label, *(ms(median(r["cpu"][kind] for r in results[way])) for way in LABELS)]
        for kind, label in kind_labels.items()
    ]
    cpu_table = md_table(["CPU ms per video", *LABELS], cpu_rows)
    step_labels = {
        "read_input": "read the input table",
        "counts": "plan in Spark (stat, request keys, up-to-date join, counts)",
        "collect": "tasks (`collect`: extraction, Parquet per video, results)",
        "commit_run": "commit (Delta)",
        "video_s": "of which per-video extraction, as the tasks time it (summed over 2 slots)",
    }
    step_rows = [
        [label, *(ms(median(r["steps"].get(step, 0.0) for r in results[way])) for way in LABELS)]
        for step, label in step_labels.items()
    ]
    step_table = md_table(["wall ms per video", *LABELS], step_rows)
    digests = {way: tuple(runs[0]["digest"]) for way, runs in results.items()}
    same = len(set(digests.values())) == 1
    quick = " (--quick)" if args.quick else ""
    return f"""## Small videos: per-video isolation in the Spark job (`bench/small_videos_bench.py`)

Reproduce: `python -m bench.small_videos_bench` (`--quick` for a smoke run, `--videos N`,
`--reps N`, `--baseline REV`, `--no-write`).

{header}

The clip-frames job (`run_clip_frames`, `{MASTER}`, policy `middle`, a fresh table each run) on
{videos} tiny videos (3 frames of 64x48 H.264 each, hard links of one file), so that a video
costs only per-video overhead. Fork per video is the code of `{args.baseline}`. Each checkout
has its own SparkSession in a child process, warmed up with one run of each way ({warm_s:.0f} s,
not timed); {reps} repetition(s){quick}, the ways in a rotating order; medians, and ratios as
medians (ranges) of per-repetition ratios. CPU: user+sys of the child's process tree. Whole
run {total_s:.0f} s.

{headline}

Where the CPU goes, by process (medians):

{cpu_table}

Where the wall time goes, by step of the job (medians; the task steps run on 2 slots):

{step_table}

Check (first repetition): frames rows and a hash of every row's identity and pixels:
{", ".join(f"{way} {n} rows `{h}`" for way, (n, h) in digests.items())}
{"(identical)." if same else "(**they differ**)."}

{load_note}
"""


if __name__ == "__main__":
    sys.exit(main())
