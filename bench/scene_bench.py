"""Scene benchmark: every frame of a whole video at 27x48 RGB (TransNetV2's input), ours vs the CLI.

Issue "full-video frames for scene detection". The same request (every frame, 27 high x 48 wide,
rgb24) done by

* ours: ``sparkframes.extraction.video.extract_video_frames`` with 2 threads, all batches consumed
  (decoding overlaps the RGB conversion in a background thread); and the same with each opt-in
  that changes pixels slightly: ``skip_loop_filter="all"`` (no deblocking),
  ``resize_filter="area"`` (the cheaper scaler), and both;
* NeMo Curator's CPU method: the ffmpeg CLI writes rawvideo rgb24 at 48x27 to a pipe that Python
  reads whole (``ffmpeg -i V -f rawvideo -pix_fmt rgb24 -s 48x27 pipe:1``), with ffmpeg's default
  threads and with ``-threads 2`` before ``-i`` (2 decoder threads);
* ``ffmpeg -threads 2 -i V -f null -``: bare decode, no scaling: the floor.

Why the ratios and not the times: the machine is shared, so each repetition runs every method on a
video back to back in a rotating order, ratios are taken within a repetition and the median over
repetitions is reported, in wall and in CPU time (user+sys, threads and child processes).

Then a busy executor: several decodes at once with every core taken (ours with one decoder thread
per video, as the Spark job runs with ``spark.task.cpus=1``; the CLI as a process pool), which is
the throughput a data-lake job gets. Also measured, because the default (no loop-filter skip)
misses the target: where ours' time goes (its decode loop alone, plus its per-frame RGB
conversion, plus rows; a cProfile of one run; the Arrow conversion the Spark job adds), the
conversion alone, and peak RSS against video length, each run in a fresh child process.
Run: ``python -m bench.scene_bench [--quick] [--reps N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

from bench.common import (
    BENCH_DIR,
    Timed,
    VideoInfo,
    VideoRecipe,
    ensure_video,
    ffmpeg_cmd,
    load_note,
    machine_info,
    md_table,
    median,
    ratio,
    ratio_cell,
    recipes,
    rotated,
    timed,
    write_section,
)
from sparkframes.convert.resize import to_rgb
from sparkframes.decoding.pyav_decoder import PyAVDecoder
from sparkframes.decoding.source import open_video
from sparkframes.extraction.base import DEFAULT_BATCH_BYTES, ExtractedFrame, ExtractOptions
from sparkframes.extraction.video import SCENE_BATCH_BYTES, extract_video_frames
from sparkframes.table.schema import rows_to_batches

THREADS = 2
HEIGHT, WIDTH = 27, 48
FRAME_BYTES = HEIGHT * WIDTH * 3
SECTION = "scene_bench"
#: A batch cap below the long RSS videos' total pixels, to show what bounds memory.
SMALL_BATCH_BYTES = 2 << 20
#: The main videos: common's H.264 1080p and HEVC 720p (VP9 is left to decode_bench).
MAIN_VIDEOS = ("h264_1080p", "hevc_720p")


@dataclass
class Outcome:
    """What one method delivered: frame count, and (when kept) the pixels and our rows."""

    frames: int
    images: np.ndarray | None = None  # (N, 27, 48, 3) uint8
    batches: list[list[ExtractedFrame]] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


def run_ours(
    path: str,
    keep: bool,
    skip_loop_filter: str = "none",
    threads: int = THREADS,
    resize_filter: str = "bicubic",
) -> Outcome:
    """The library call a scene-detection job makes; batches consumed (kept only to check)."""
    options = ExtractOptions(
        threads=threads, skip_loop_filter=skip_loop_filter, resize_filter=resize_filter
    )
    ex = extract_video_frames(path, (HEIGHT, WIDTH), options=options)
    frames = 0
    kept: list[list[ExtractedFrame]] = []
    for batch in ex:
        frames += len(batch)
        if keep:
            kept.append(batch)
    if ex.report.errors:
        raise RuntimeError(f"sparkframes reported errors: {ex.report.errors}")
    images = np.stack([r.image for b in kept for r in b]) if keep else None
    return Outcome(frames, images, kept)


def cli_command(path: str, threads: int | None) -> list[str]:
    """NeMo Curator's command (plus quiet logging); ``threads`` goes before ``-i`` (decoder)."""
    size = f"{WIDTH}x{HEIGHT}"
    args = ("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", size, "pipe:1")
    return ffmpeg_cmd(path, *args, threads=threads)


def run_cli(path: str, threads: int | None, keep: bool) -> Outcome:
    """The pipe read whole, then viewed as (N, 27, 48, 3), as the TransNetV2 reference does."""
    proc = subprocess.run(cli_command(path, threads), capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-500:]}")
    video = np.frombuffer(proc.stdout, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)
    return Outcome(len(video), video if keep else None)


def run_null(path: str) -> Outcome:
    """The ffmpeg CLI decoding every frame into the null muxer: no scaling, no pipe."""
    subprocess.run(ffmpeg_cmd(path, "-f", "null", "-", threads=THREADS), check=True)
    return Outcome(-1)


def _small(reformatter: VideoReformatter, frame: av.VideoFrame) -> np.ndarray:
    """One frame to 27x48 rgb24 with a reused swscale context, 1 swscale thread."""
    return reformatter.reformat(
        frame,
        format="rgb24",
        width=WIDTH,
        height=HEIGHT,
        interpolation=Interpolation.BICUBIC,
        threads=1,
    ).to_ndarray()


def run_probe(path: str, convert: str, keep: bool) -> Outcome:
    """Ours' own decode loop (``open_video`` + ``PyAVDecoder.all_frames``) in one thread, with
    the conversion ``none`` (decode only) or ``per_frame`` (sparkframes' ``to_rgb``)."""
    frames = 0
    kept: list[np.ndarray] = []
    with open_video(path, threads=THREADS, index=False) as src:
        decoder = PyAVDecoder(src, skip_unneeded=False)
        for frame in decoder.all_frames():
            image = None
            if convert == "per_frame":
                image = to_rgb(frame, (HEIGHT, WIDTH))
            frames += 1
            if keep and image is not None:
                kept.append(image)
    return Outcome(frames, np.stack(kept) if kept else None)


METHODS = {
    "ours": "ours (extract_video_frames, 2 threads)",
    "ours_nolf": "ours, opt-in `skip_loop_filter=all`",
    "ours_area": "ours, opt-in `resize_filter=area`",
    "ours_area_nolf": "ours, opt-in `resize_filter=area` and `skip_loop_filter=all`",
    "cli": "ffmpeg CLI -> rgb24 pipe, default threads",
    "cli_t2": "ffmpeg CLI -> rgb24 pipe, -threads 2",
    "null": "ffmpeg -threads 2 -f null (bare decode)",
    "p_decode": "probe: ours' decode loop alone",
    "p_per_frame": "probe: + to_rgb per frame (as ours)",
}
KEEP = ("ours", "ours_nolf", "ours_area", "cli", "cli_t2")
#: The rows of the headline table: ours with its defaults and with each opt-in.
HEADLINE = {
    "ours": "ours",
    "ours_nolf": "ours, `skip_loop_filter=all`",
    "ours_area": "ours, `resize_filter=area`",
    "ours_area_nolf": "ours, both",
}


def _call(method: str, path: str, keep: bool) -> Callable[[], Outcome]:
    return {
        "ours": lambda: run_ours(path, keep),
        "ours_nolf": lambda: run_ours(path, keep, "all"),
        "ours_area": lambda: run_ours(path, keep, resize_filter="area"),
        "ours_area_nolf": lambda: run_ours(path, keep, "all", resize_filter="area"),
        "cli": lambda: run_cli(path, None, keep),
        "cli_t2": lambda: run_cli(path, THREADS, keep),
        "null": lambda: run_null(path),
        "p_decode": lambda: run_probe(path, "none", keep),
        "p_per_frame": lambda: run_probe(path, "per_frame", keep),
    }[method]


# --------------------------------------------------------------------------------------------
# A busy executor: several videos at once, every core taken
# --------------------------------------------------------------------------------------------

#: Videos per executor measurement, decoded ``WORKERS`` at a time.
EXECUTOR_VIDEOS = 4
EXECUTOR_METHODS = {
    "ours_t1": "ours, 1 thread per video (the job with spark.task.cpus=1)",
    "ours_t1_nolf": "ours, 1 thread, opt-in `skip_loop_filter=all`",
    "ours_t1_area": "ours, 1 thread, opt-in `resize_filter=area`",
    "cli": "ffmpeg CLI -> rgb24 pipe, default threads",
    "cli_t1": "ffmpeg CLI -> rgb24 pipe, -threads 1",
}


def _ours_one_thread(path: str, skip_loop_filter: str, resize_filter: str) -> int:
    return run_ours(path, False, skip_loop_filter, threads=1, resize_filter=resize_filter).frames


def run_executor(method: str, path: str, workers: int) -> list[int]:
    """``EXECUTOR_VIDEOS`` decodes of ``path``, ``workers`` at a time: how a Spark executor
    with one core per task (or a pool of CLI processes, as NeMo Curator runs them) spends its
    cores. Ours runs in forked worker processes, as Spark's Python workers are; the CLI
    processes are started from threads. Returns each decode's frame count."""
    jobs = [path] * EXECUTOR_VIDEOS
    if method.startswith("ours"):
        skip = "all" if method.endswith("nolf") else "none"
        scaler = "area" if method.endswith("area") else "bicubic"
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            n = len(jobs)
            return list(pool.map(_ours_one_thread, jobs, [skip] * n, [scaler] * n))
    threads = None if method == "cli" else 1
    with ThreadPoolExecutor(workers) as pool:
        return [o.frames for o in pool.map(lambda p: run_cli(p, threads, False), jobs)]


# --------------------------------------------------------------------------------------------
# Checks and profile (outside the timings)
# --------------------------------------------------------------------------------------------


def _diff(a: np.ndarray | None, b: np.ndarray | None) -> str:
    """Mean and max absolute difference of two (N, H, W, 3) stacks, and the share equal."""
    if a is None or b is None:
        return "not kept"
    if a.shape != b.shape:
        return f"shapes differ {a.shape} vs {b.shape}"
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return (
        f"mean abs diff {d.mean():.3f}/255, max {int(d.max())}, "
        f"{(d == 0).mean():.1%} of values equal, {(d <= 1).mean():.1%} within 1"
    )


def _profile(path: str, top: int = 8) -> list[list[str]]:
    """cProfile of one ours run: the functions with the most own time (main thread only)."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_ours(path, keep=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    items = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    for (filename, line, func), (_, calls, own, cum, _) in items[:top]:
        where = "built-in" if filename == "~" else f"{Path(filename).name}:{line}"
        rows.append(
            [f"`{func}`", where, str(calls), f"{own:.2f}", f"{own / total:.0%}", f"{cum:.2f}"]
        )
    return rows


def _arrow_cost(batches: list[list[ExtractedFrame]]) -> Timed:
    """What the Spark job adds after extraction: rows to Arrow record batches."""
    return timed(lambda: [rows_to_batches(b, "ffmpeg_cpu") for b in batches])


CONVERSIONS = {
    "to_rgb": "`to_rgb`, sparkframes' conversion, as ours calls it",
    "reused_1": "one reused context, 1 swscale thread",
    "reused_auto": "one reused context, automatic swscale threads (PyAV's default)",
}


def conversion_cost(path: str, frames: int = 30, repeats: int = 3) -> dict[str, Timed]:
    """The RGB conversion alone, per frame, without decoding noise: ``frames`` freshly decoded
    frames (each converted once, as in the pipeline) per variant and repeat; medians."""
    per: dict[str, list[Timed]] = {k: [] for k in CONVERSIONS}
    for rep in range(repeats):
        for name in rotated(list(CONVERSIONS), rep):
            with open_video(path, threads=THREADS, index=False) as src:
                decoded = []
                for frame in PyAVDecoder(src, skip_unneeded=False).all_frames():
                    decoded.append(frame)
                    if len(decoded) == frames:
                        break
            reformatter = VideoReformatter()

            def convert(
                name: str = name,
                decoded: list = decoded,
                reformatter: VideoReformatter = reformatter,
            ) -> None:
                for frame in decoded:
                    if name == "to_rgb":
                        to_rgb(frame, (HEIGHT, WIDTH))
                    elif name == "reused_1":
                        _small(reformatter, frame)
                    else:
                        reformatter.reformat(
                            frame,
                            format="rgb24",
                            width=WIDTH,
                            height=HEIGHT,
                            interpolation=Interpolation.BICUBIC,
                        ).to_ndarray()

            t = timed(convert)
            per[name].append(Timed(t.wall / len(decoded), t.cpu / len(decoded), None))
    return {
        k: Timed(median(t.wall for t in v), median(t.cpu for t in v), None) for k, v in per.items()
    }


# --------------------------------------------------------------------------------------------
# Peak RSS against video length (each measurement in a fresh child process)
# --------------------------------------------------------------------------------------------


def rss_recipe(seconds: int) -> VideoRecipe:
    """640x360 H.264 of ``seconds``: small, quick to make, long enough to show growth."""
    return VideoRecipe(
        "h264_360p",
        "libx264",
        ".mp4",
        640,
        360,
        30,
        seconds,
        (("preset", "veryfast"),),
        "libx264 preset veryfast, crf 23, x264 default GOP structure",
    )


RSS_METHODS = {
    "import": "imports + open the video only (floor)",
    "ours": f"ours, default batches ({min(DEFAULT_BATCH_BYTES, SCENE_BATCH_BYTES) >> 20} MiB)",
    "ours_small": f"ours, batch_bytes={SMALL_BATCH_BYTES >> 20} MiB",
    "cli": "CLI pipe read whole: Python / ffmpeg",
}


def _peak_rss_mib(pid: int | str = "self") -> float:
    """``VmHWM`` of a live process: its own peak RSS. (``ru_maxrss`` would not do: Linux carries
    it over ``fork`` and ``execve``, so a child would report its parent's peak.)"""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _cli_read_whole(path: str) -> tuple[int, float]:
    """The CLI method reading its pipe whole, sampling ffmpeg's peak RSS while it runs."""
    chunks: list[bytes] = []
    ffmpeg_peak = 0.0
    with subprocess.Popen(cli_command(path, None), stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            chunks.append(chunk)
            ffmpeg_peak = max(ffmpeg_peak, _peak_rss_mib(proc.pid))
    video = np.frombuffer(b"".join(chunks), np.uint8).reshape(-1, HEIGHT, WIDTH, 3)
    return len(video), ffmpeg_peak


def rss_child(method: str, path: str) -> dict[str, float]:
    """Runs inside the child: one method, then this process's (and ffmpeg's) peak RSS."""
    t0 = time.perf_counter()
    frames, ffmpeg_peak = 0, 0.0
    if method == "import":
        with open_video(path, threads=THREADS, index=False):
            pass
    elif method in ("ours", "ours_small"):
        batch = DEFAULT_BATCH_BYTES if method == "ours" else SMALL_BATCH_BYTES
        opts = ExtractOptions(threads=THREADS, batch_bytes=batch)
        for rows in extract_video_frames(path, (HEIGHT, WIDTH), options=opts):
            frames += len(rows)  # a consumer that drops each batch when done with it
    else:
        frames, ffmpeg_peak = _cli_read_whole(path)
    return {
        "frames": frames,
        "self_mib": _peak_rss_mib(),
        "ffmpeg_mib": ffmpeg_peak,
        "wall": time.perf_counter() - t0,
    }


def measure_rss(method: str, path: str) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench.scene_bench", "--rss-child", method, path]
    out = subprocess.run(cmd, cwd=BENCH_DIR.parent, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short videos, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    parser.add_argument("--rss-child", nargs=2, metavar=("METHOD", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        print(json.dumps(rss_child(*args.rss_child)))
        return 0
    reps = args.reps or (1 if args.quick else 5)
    machine = machine_info()
    print(machine, flush=True)

    videos = [ensure_video(r) for r in recipes(args.quick) if r.name in MAIN_VIDEOS]
    rss_lengths = (20, 80) if args.quick else (20, 80, 320)
    rss_videos = [ensure_video(rss_recipe(s)) for s in rss_lengths]
    for v in [*videos, *rss_videos]:
        state = "generated" if v.generated_now else "cached"
        print(f"{v.name} {v.seconds:g} s: {v.frames} frames ({state})", flush=True)

    started = time.perf_counter()
    times: dict[tuple[str, str], list[Timed]] = {}
    kept: dict[tuple[str, str], Outcome] = {}
    bad_counts: list[str] = []
    for rep in range(reps):
        for v_index, video in enumerate(videos):
            for method in rotated(list(METHODS), rep * 2 + v_index):
                keep = rep == 0 and method in KEEP
                t = timed(_call(method, video.path, keep))
                times.setdefault((video.name, method), []).append(Timed(t.wall, t.cpu, None))
                out: Outcome = t.value
                if out.frames >= 0 and out.frames != video.frames:
                    bad_counts.append(f"{video.name} {method} rep {rep}: {out.frames} frames")
                if keep:
                    kept[(video.name, method)] = out
                print(
                    f"rep {rep} {video.name:>10} {method:>11}: {t.wall:6.2f} s wall "
                    f"{t.cpu:6.2f} s CPU, {out.frames} frames",
                    flush=True,
                )
    timing_s = time.perf_counter() - started

    workers = len(os.sched_getaffinity(0))
    executor: dict[tuple[str, str], list[Timed]] = {}
    for rep in range(reps):
        for v_index, video in enumerate(videos):
            for method in rotated(list(EXECUTOR_METHODS), rep + v_index):
                t = timed(lambda m=method, p=video.path: run_executor(m, p, workers))
                executor.setdefault((video.name, method), []).append(Timed(t.wall, t.cpu, None))
                if any(n != video.frames for n in t.value):
                    bad_counts.append(f"{video.name} executor {method} rep {rep}: {t.value}")
                print(
                    f"rep {rep} {video.name:>10} executor {method:>12}: {t.wall:6.2f} s wall "
                    f"{t.cpu:6.2f} s CPU",
                    flush=True,
                )

    checks: list[str] = []
    arrow: dict[str, Timed] = {}
    profiles: dict[str, list[list[str]]] = {}
    conversions: dict[str, dict[str, Timed]] = {}
    for video in videos:
        ours = kept[(video.name, "ours")]
        cli = kept[(video.name, "cli")].images
        checks.append(f"{video.name}: ours vs CLI (default threads): {_diff(ours.images, cli)}")
        checks.append(
            f"{video.name}: CLI default threads vs -threads 2: "
            f"{_diff(kept[(video.name, 'cli')].images, kept[(video.name, 'cli_t2')].images)}"
        )
        theirs = kept[(video.name, "ours_nolf")].images
        checks.append(f"{video.name}: ours vs {METHODS['ours_nolf']}: {_diff(ours.images, theirs)}")
        area = kept[(video.name, "ours_area")].images
        checks.append(f"{video.name}: {METHODS['ours_area']} vs CLI: {_diff(area, cli)}")
        arrow[video.name] = _arrow_cost(ours.batches)
        conversions[video.name] = conversion_cost(video.path)
        profiles[video.name] = _profile(video.path)
        print(f"{video.name}: checks and profile done", flush=True)

    rss: dict[tuple[int, str], dict[str, float]] = {}
    for v in rss_videos:
        for method in RSS_METHODS:
            rss[(v.frames, method)] = r = measure_rss(method, v.path)
            print(f"rss {v.seconds:g} s {method:>10}: {r}", flush=True)
    for v in rss_videos:
        for method in ("ours", "ours_small", "cli"):
            got = int(rss[(v.frames, method)]["frames"])
            if got != v.frames:
                bad_counts.append(f"RSS run {v.seconds:g} s {method}: {got} frames")

    body = _report(
        machine,
        videos,
        rss_videos,
        times,
        reps,
        args.quick,
        timing_s,
        bad_counts,
        checks,
        arrow,
        conversions,
        profiles,
        rss,
        executor,
        workers,
    )
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, body)}")
    return 0


def _report(
    machine: str,
    videos: list[VideoInfo],
    rss_videos: list[VideoInfo],
    times: dict[tuple[str, str], list[Timed]],
    reps: int,
    quick: bool,
    timing_s: float,
    bad_counts: list[str],
    checks: list[str],
    arrow: dict[str, Timed],
    conversions: dict[str, dict[str, Timed]],
    profiles: dict[str, list[list[str]]],
    rss: dict[tuple[int, str], dict[str, float]],
    executor: dict[tuple[str, str], list[Timed]],
    workers: int,
) -> str:
    def med(video: str, method: str, cpu: bool = False) -> float:
        return median(t.cpu if cpu else t.wall for t in times[(video, method)])

    lines = [
        "## Scene frames: every frame at 27x48, ours vs the ffmpeg CLI pipe "
        "(`bench/scene_bench.py`)",
        "",
        "Reproduce: `python -m bench.scene_bench` (`--quick` for a smoke run, `--reps N`, "
        "`--no-write` to leave this file alone).",
        "",
        machine,
        "",
        f"Request: every frame, {HEIGHT} high x {WIDTH} wide, rgb24. {reps} repetition(s)"
        f"{' (--quick)' if quick else ''}, methods interleaved in a rotating order; times are "
        "medians, ratios are medians of per-repetition ratios; CPU = user+sys of all threads "
        f"and child processes. Timed part {timing_s:.0f} s.",
        "",
        "Videos (generated with PyAV's encoders, cached in `bench/.cache/`):",
        "",
    ]
    vrows = [
        [v.name, v.note, f"{v.width}x{v.height}@{v.fps}", f"{v.seconds:g} s / {v.frames}"]
        for v in [*videos, *rss_videos]
    ]
    lines += [md_table(["video", "encoder", "size", "length / frames"], vrows, left=2), ""]

    lines += [
        "Headline: how many times faster ours is than NeMo Curator's CLI method "
        "(t(CLI) / t(ours); target 1.2x); median of the per-repetition ratios, their range "
        "in brackets:",
        "",
    ]
    hrows = []
    for v in videos:
        for method, label in HEADLINE.items():
            ours = times[(v.name, method)]
            row = [v.name, label]
            for base in ("cli", "cli_t2", "null"):
                b = times[(v.name, base)]
                row += [ratio_cell(b, ours), ratio_cell(b, ours, cpu=True)]
            row.append("yes" if ratio(times[(v.name, "cli")], ours) >= 1.2 else "**no**")
            hrows.append(row)
    hheader = ["video", "ours", "vs CLI wall", "vs CLI CPU", "vs CLI -threads 2 wall"]
    hheader += ["vs CLI -threads 2 CPU", "vs bare decode wall", "vs bare decode CPU"]
    hheader += ["1.2x met (wall, vs CLI)"]
    lines += [md_table(hheader, hrows, left=2), ""]

    lines += [
        f"A busy executor: {EXECUTOR_VIDEOS} decodes of the video, {workers} at a time "
        f"({workers} = the usable cores), so every core is taken, as on a Spark executor "
        "running one task per core, or a pool of CLI processes. This is the throughput a "
        "data-lake job gets; *CLI / method* above 1 means more videos per hour than the CLI "
        "method (default threads). Ours runs in forked worker processes with 1 decoder "
        "thread each (the job's setting with `spark.task.cpus=1`).",
        "",
    ]
    erows = []
    for v in videos:
        cli = executor[(v.name, "cli")]
        for method, label in EXECUTOR_METHODS.items():
            ts = executor[(v.name, method)]
            wall = median(t.wall for t in ts)
            erows.append(
                [
                    v.name,
                    label,
                    f"{wall:.2f}",
                    f"{median(t.cpu for t in ts):.2f}",
                    f"{EXECUTOR_VIDEOS * 3600 / wall:.0f}",
                    ratio_cell(cli, ts),
                    ratio_cell(cli, ts, cpu=True),
                ]
            )
    eheader = ["video", "method", "wall s", "CPU s", "videos / hour"]
    eheader += ["CLI / method wall", "CLI / method CPU"]
    lines += [md_table(eheader, erows, left=2), ""]

    lines += [
        "All methods. *CLI / method*: t(CLI default threads) / t(method), above 1 is faster "
        "than the CLI method. *frames*: frames delivered (every repetition is checked against "
        "the video's frame count from a demux pass).",
        "",
    ]
    rows = []
    for v in videos:
        cli = times[(v.name, "cli")]
        for method, label in METHODS.items():
            ts = times[(v.name, method)]
            rows.append(
                [
                    v.name,
                    label,
                    f"{med(v.name, method):.2f}",
                    f"{med(v.name, method, cpu=True):.2f}",
                    f"{ratio(cli, ts):.2f}x",
                    f"{ratio(cli, ts, cpu=True):.2f}x",
                    "- (no output)" if method == "null" else f"{v.frames}",
                ]
            )
    header = ["video", "method", "wall s", "CPU s", "CLI / method wall", "CLI / method CPU"]
    lines += [md_table([*header, "frames"], rows, left=2), ""]
    lines += ["Checks (first repetition):", ""]
    if bad_counts:
        lines += [f"- **frame count mismatch**: {b}" for b in bad_counts]
    else:
        lines += [
            "- every method delivered exactly the video's frame count in every repetition "
            "(and so did each RSS run below)"
        ]
    lines += [f"- {c}" for c in checks]
    lines += [""]

    lines += [
        "Where ours' time goes (medians; each probe runs ours' own `open_video` + "
        "`PyAVDecoder.all_frames` loop, so differences isolate one step; a delta is a "
        "difference of two noisy medians, so read small ones against the ranges above):",
        "",
    ]
    arows = []
    for v in videos:
        our_c = med(v.name, "ours", cpu=True)

        def step(
            label: str, wall: float, cpu: float, v: VideoInfo = v, ours: float = our_c
        ) -> None:
            spec = "+.3f" if label.startswith("+") else ".3f"
            cells = [format(wall, spec), format(cpu, spec)]
            cells += [f"{cpu / v.frames * 1e3:.2f}", f"{cpu / ours:.0%}"]
            arows.append([v.name, label, *cells])

        dec = med(v.name, "p_decode"), med(v.name, "p_decode", cpu=True)
        pf = med(v.name, "p_per_frame"), med(v.name, "p_per_frame", cpu=True)
        ours = med(v.name, "ours"), our_c
        step("decode (ours' loop, no conversion)", *dec)
        step("+ to_rgb per frame (delta)", pf[0] - dec[0], pf[1] - dec[1])
        step("+ rows, batching, extent scan; overlap (delta)", ours[0] - pf[0], ours[1] - pf[1])
        step("= ours", *ours)
        step("Arrow record batches (Spark job only)", arrow[v.name].wall, arrow[v.name].cpu)
    aheader = ["video", "step", "wall s", "CPU s", "CPU ms / frame", "of ours' CPU"]
    lines += [md_table(aheader, arows, left=2), ""]
    lines += [
        "The probes run decode and conversion one after the other in one thread; ours "
        "decodes in a background thread while the caller converts (with 2 or more decoder "
        "threads, `sparkframes/decoding/prefetch.py`), so its wall time is below the probes' "
        "sum and the last delta can be negative.",
        "",
    ]
    lines += [
        "The conversion alone (27x48 rgb24, bicubic), per frame, on freshly decoded frames "
        "held in memory (no decoding in the timing; medians of 3 runs of 30 frames):",
        "",
    ]
    crows = []
    for v in videos:
        for k, label in CONVERSIONS.items():
            c = conversions[v.name][k]
            crows.append([v.name, label, f"{c.wall * 1e3:.2f}", f"{c.cpu * 1e3:.2f}"])
    lines += [md_table(["video", "conversion", "wall ms / frame", "CPU ms / frame"], crows, 2)]
    lines += [""]
    for v in videos:
        lines += [
            f"cProfile of one ours run on {v.name} (main thread; native decoder threads not "
            "shown; own time sorted):",
            "",
            md_table(
                ["function", "where", "calls", "own s", "own share", "cumulative s"],
                profiles[v.name],
                left=2,
            ),
            "",
        ]

    lines += [
        "Peak RSS in MiB against video length (each figure a fresh child process's `VmHWM`; "
        "for the "
        "CLI method the Python reader's and ffmpeg's separately, ffmpeg's sampled while it "
        "runs):",
        "",
    ]
    rrows = []
    for v in rss_videos:
        r = {m: rss[(v.frames, m)] for m in RSS_METHODS}
        rrows.append(
            [
                f"{v.seconds:g} s",
                str(v.frames),
                f"{v.frames * FRAME_BYTES / 2**20:.1f}",
                f"{r['import']['self_mib']:.0f}",
                f"{r['ours']['self_mib']:.0f}",
                f"{r['ours_small']['self_mib']:.0f}",
                f"{r['cli']['self_mib']:.0f} / {r['cli']['ffmpeg_mib']:.0f}",
            ]
        )
    rheader = ["length", "frames", "all pixels MiB", *RSS_METHODS.values()]
    lines += [md_table(rheader, rrows, left=1), ""]
    scene_batch = min(DEFAULT_BATCH_BYTES, SCENE_BATCH_BYTES)
    per_batch = scene_batch // FRAME_BYTES
    lines += [
        f"A batch holds up to `batch_bytes` of pixels: with the scene default "
        f"{scene_batch >> 20} MiB that is {per_batch} frames at 27x48 "
        f"({per_batch / 30 / 60:.1f} min at 30 fps), so below that length the whole video is "
        "one batch and memory follows the length up to that cap; the small-batch column shows "
        "the bound when the cap is below the video's size.",
        "",
        load_note(),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
