"""Small videos: what per-video isolation costs the Spark job, fork per video vs one worker.

The clip-frames job (the ``sparkframes`` command on ``local[2]``, policy ``middle``, mode
overwrite into a fresh table) on N tiny videos (3 frames of 64x48 H.264, hard links of one
file), so that a video's cost is all per-video overhead. Three ways:

* isolation off: ``--video-timeout-s 0``, each video decoded in the Spark Python worker;
* worker: the default, this checkout: each task's videos in one long-lived worker process;
* fork per video: the default with the code of ``--baseline`` (the last commit that forked a
  child per video), the baseline.

Each checkout runs in a child process of its own with one SparkSession, warmed up with one run
of each of its ways, taking runs as requests (the baseline child runs isolated only: in Python
workers that have decoded in-process its forked children hang). Wall: the command's time. CPU:
user+sys of the child's whole process tree from psutil, split by kind of process.
Run: ``python -m bench.small_videos_bench [--quick] [--videos N] [--reps N] [--baseline REV]``.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from typing import Any

from bench.harness import (
    CACHE_DIR,
    REPO,
    Child,
    Run,
    Timed,
    baseline_checkout,
    cli_job,
    interleaved,
    measure,
    median,
    ratio,
    table_digest,
    times,
)
from bench.videos import tiny_videos_input

BASELINE_REV = "037e370"  # the last commit with a forked child per video
WORK = CACHE_DIR / "small_videos_bench"
#: way -> (checkout, --video-timeout-s)
OFF, FORK = "isolation off (--video-timeout-s 0)", "isolation on: a forked child per video"
WAYS = {
    OFF: ("new", "0"),
    "isolation on: one worker per task": ("new", "3600"),
    FORK: ("old", "3600"),
}
KINDS = ("driver", "JVM", "Spark Python workers", "fork servers and their workers")


def cpu_by_kind() -> dict[str, float]:
    """user+sys seconds of this process and its descendants, live or reaped by them, by kind."""
    import psutil

    me, totals = psutil.Process(), dict.fromkeys(KINDS, 0.0)
    for proc in [me, *me.children(recursive=True)]:
        try:
            t, name, cmdline = proc.cpu_times(), proc.name(), " ".join(proc.cmdline())
        except psutil.Error:
            continue  # exited meanwhile: its time is in its parent's children_* once reaped
        if proc.pid == me.pid:
            totals["driver"] += t.user + t.system  # its children are counted below
            continue
        kind = (
            "JVM"
            if name == "java"
            else "Spark Python workers"
            if "pyspark.daemon" in cmdline
            else KINDS[3]
        )
        totals[kind] += t.user + t.system + t.children_user + t.children_system
    return totals


def serve(request: dict[str, Any]) -> dict[str, Any]:
    """In a ``Child`` on one checkout: one run of the job; its wall time, CPU by kind of
    process, and (asked) a hash of every row's identity and pixels."""
    args = ["clip-frames", "--input", request["input"], "--output", request["output"]]
    args += ["--master", "local[2]", "--policy", "middle", "--mode", "overwrite"]
    before = cpu_by_kind()
    t = measure(lambda: cli_job(*args, "--video-timeout-s", request["timeout_s"]))
    cpu = {k: v - before[k] for k, v in cpu_by_kind().items()}
    result = {"wall": t.wall, "cpu": sum(cpu.values()), **{f"CPU {k}": v for k, v in cpu.items()}}
    if request["digest"]:
        result["digest"] = table_digest(request["output"])
    shutil.rmtree(request["output"], ignore_errors=True)
    return {**result, "frames": t.value["frames"]}


def main(argv: list[str] | None = None) -> int:
    baseline = {"default": BASELINE_REV, "help": "git rev of fork per video"}
    count = {"type": int, "help": "tiny videos (default 400, --quick 40)"}
    run = Run(__file__, __doc__, reps=5, argv=argv, baseline=baseline, videos=count)
    videos = run.args.videos or (40 if run.quick else 400)
    checkouts = {"new": REPO, "old": baseline_checkout(run.args.baseline)}
    inputs = str(tiny_videos_input(WORK, videos))
    with ExitStack() as stack:
        children = {
            k: stack.enter_context(Child("bench.small_videos_bench", c))
            for k, c in checkouts.items()
        }

        def way(name: str, rep: int) -> dict[str, Any]:
            checkout, timeout = WAYS[name]
            out = str(WORK / "tables" / f"{checkout}-{timeout}-{rep}")
            return children[checkout].ask(
                input=inputs, output=out, timeout_s=timeout, digest=rep == 0
            )

        warm = measure(lambda: [way(name, -1) for name in WAYS])  # JIT, Python workers, imports
        runs = interleaved(
            {name: lambda rep, n=name: way(n, rep) for name in WAYS}, run.reps, label="small"
        )
    # The child's own timing of the command and its process tree's CPU, not this process's.
    results = {name: [t.value for t in ts] for name, ts in runs.items()}
    own = {name: [Timed(r["wall"], r["cpu"]) for r in rs] for name, rs in results.items()}
    base, off = own[FORK], own[OFF]
    rows, cpu_rows, checks = [], [], []
    for name, rs in results.items():
        if {r["frames"] for r in rs} != {videos}:
            raise RuntimeError(f"{name}: frames {[r['frames'] for r in rs]}, expected {videos}")
        row = {
            "way": name,
            **{
                f"{k.removesuffix(' s')} ms per video": v * 1e3
                for k, v in times(own[name], per=videos).items()
            },
        }
        row |= {"faster than fork per video, wall": ratio(base, own[name])}
        row |= {
            "CPU": ratio(base, own[name], cpu=True),
            "t / t(isolation off)": ratio(own[name], off),
        }
        rows.append(row)
        per_kind = {
            f"{k} CPU ms per video": median(r[f"CPU {k}"] for r in rs) / videos * 1e3 for k in KINDS
        }
        cpu_rows.append({"way": name, **per_kind})
        checks.append({"way": name, "rows": rs[0]["frames"], "hash": rs[0]["digest"]})
    parameters = {"videos": videos, "fork per video baseline": run.args.baseline}
    parameters |= {
        "video": "3 frames of 64x48 H.264, hard links of one file",
        "warm-up s (not timed)": warm.wall,
    }
    run.save(parameters, {"ways": rows, "CPU by process": cpu_rows, "check": checks})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
