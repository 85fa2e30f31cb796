"""Scene frames: every frame of a video at 27x48 RGB (TransNetV2's input), ours vs the ffmpeg CLI.

The same request (every frame, 27 high x 48 wide, rgb24) done by

* ours: ``sparkframes.extract_video_frames`` with 2 threads, all batches consumed; and with
  each opt-in that changes pixels slightly: ``skip_loop_filter="all"``, ``resize_filter="area"``
  and both;
* NeMo Curator's CPU method: the ffmpeg CLI writes rawvideo rgb24 at 48x27 to a pipe Python
  reads whole, with ffmpeg's default threads and with ``-threads 2``;
* ``ffmpeg -threads 2 -i V -f null -``: bare decode, no scaling: the floor;
* probes: ours' own decode loop alone, then with its per-frame conversion, to see where the
  time goes.

Then a busy executor (4 decodes, one per core at a time: ours in forked processes with 1
decoder thread, as the Spark job runs with ``spark.task.cpus=1``; the CLI as a process pool),
the conversion alone per frame, the Arrow conversion the Spark job adds, a cProfile of one of
ours, and peak RSS against video length, each in a fresh child process.
Run: ``python -m bench.scene_bench [--quick] [--reps N]``.
"""

from __future__ import annotations

import cProfile
import multiprocessing
import os
import pstats
import subprocess
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter

import sparkframes
from bench.harness import (
    Child,
    Run,
    Timed,
    interleaved,
    measure,
    median,
    peak_rss_mib,
    ratio,
    rotated,
    times,
)
from bench.internals import (
    DEFAULT_BATCH_BYTES,
    SCENE_BATCH_BYTES,
    PyAVDecoder,
    open_video,
    rows_to_batches,
    to_rgb,
)
from bench.videos import VideoInfo, ensure_video, facts, ffmpeg_cmd, recipes, x264

THREADS = 2
HEIGHT, WIDTH = 27, 48
SMALL_BATCH_BYTES = 2 << 20  # below the long RSS videos' pixels: what bounds memory then
MAIN_VIDEOS = ("h264_1080p", "hevc_720p")  # VP9 is left to decode_bench
EXECUTOR_VIDEOS = 4  # decodes per busy-executor measurement (--quick: one per core)


def run_ours(path: str, keep: bool = False, threads: int = THREADS, **opts: Any) -> tuple[int, Any]:
    """The library call a scene-detection job makes: (frames, the batches when kept)."""
    options = sparkframes.ExtractOptions(threads=threads, **opts)
    ex = sparkframes.extract_video_frames(path, (HEIGHT, WIDTH), options=options)
    frames, kept = 0, []
    for batch in ex:
        frames += len(batch)
        if keep:
            kept.append(batch)
    if ex.report.errors:
        raise RuntimeError(f"sparkframes reported errors: {ex.report.errors}")
    return frames, kept if keep else None


def cli_command(path: str, threads: int | None) -> list[str]:
    """NeMo Curator's command (plus quiet logging); ``threads`` goes before ``-i`` (decoder)."""
    out = ("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{WIDTH}x{HEIGHT}", "pipe:1")
    return ffmpeg_cmd(path, *out, threads=threads)


def run_cli(path: str, threads: int | None, keep: bool = False) -> tuple[int, Any]:
    """The pipe read whole, then viewed as (N, 27, 48, 3), as the TransNetV2 reference does."""
    proc = subprocess.run(cli_command(path, threads), capture_output=True)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.decode(errors='replace')[-500:]}")
    video = np.frombuffer(proc.stdout, np.uint8).reshape(-1, HEIGHT, WIDTH, 3)
    return len(video), video if keep else None


def run_null(path: str) -> tuple[int, Any]:
    """The ffmpeg CLI decoding every frame into the null muxer: no scaling, no pipe."""
    subprocess.run(ffmpeg_cmd(path, "-f", "null", "-", threads=THREADS), check=True)
    return -1, None


def decoded_frames(path: str, limit: int | None = None) -> Any:
    """Ours' own decode loop (``open_video`` + ``PyAVDecoder.all_frames``), frame by frame."""
    with open_video(path, threads=THREADS, index=False) as src:
        for i, frame in enumerate(PyAVDecoder(src, skip_unneeded=False).all_frames()):
            if i == limit:
                return
            yield frame


def run_probe(path: str, convert: bool) -> tuple[int, Any]:
    """The decode loop in one thread, with sparkframes' ``to_rgb`` per frame or without."""
    frames = 0
    for frame in decoded_frames(path):
        if convert:
            to_rgb(frame, (HEIGHT, WIDTH))
        frames += 1
    return frames, None


METHODS = {
    "ours": lambda p, keep: run_ours(p, keep),
    "ours, opt-in skip_loop_filter=all": lambda p, keep: run_ours(p, keep, skip_loop_filter="all"),
    "ours, opt-in resize_filter=area": lambda p, keep: run_ours(p, keep, resize_filter="area"),
    "ours, both opt-ins": lambda p, _: run_ours(p, skip_loop_filter="all", resize_filter="area"),
    "CLI pipe, default threads": lambda p, keep: run_cli(p, None, keep),
    "CLI pipe, -threads 2": lambda p, keep: run_cli(p, THREADS, keep),
    "ffmpeg -threads 2 -f null (bare decode)": lambda p, _: run_null(p),
    "probe: decode loop alone": lambda p, _: run_probe(p, False),
    "probe: + to_rgb per frame": lambda p, _: run_probe(p, True),
}
CLI = "CLI pipe, default threads"
#: Pixel comparisons (first repetition): pairs of methods.
PAIRS = [
    ("ours", CLI),
    (CLI, "CLI pipe, -threads 2"),
    ("ours", "ours, opt-in skip_loop_filter=all"),
    ("ours, opt-in resize_filter=area", CLI),
]


def _ours_one_thread(path: str, opts: dict[str, str]) -> int:
    return run_ours(path, threads=1, **opts)[0]


def run_executor(path: str, method: str, workers: int, decodes: int) -> list[int]:
    """``decodes`` decodes of ``path``, ``workers`` at a time, every core taken: ours in forked
    processes (as Spark's Python workers are), the CLI processes started from threads."""
    jobs = [path] * decodes
    if method.startswith("ours"):
        opts = {"skip_loop_filter": "all"} if "skip" in method else {}
        opts |= {"resize_filter": "area"} if "area" in method else {}
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_ours_one_thread, jobs, [opts] * len(jobs)))
    threads = None if method == CLI else 1
    with ThreadPoolExecutor(workers) as pool:
        return [n for n, _ in pool.map(lambda p: run_cli(p, threads), jobs)]


EXECUTOR = (
    "ours, 1 thread per video",
    "ours, 1 thread, opt-in skip_loop_filter=all",
    "ours, 1 thread, opt-in resize_filter=area",
    CLI,
    "CLI pipe, -threads 1",
)


def diff(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Mean and max absolute difference of two (N, H, W, 3) stacks, and the share equal."""
    if a.shape != b.shape:
        return {"shapes": f"{a.shape} vs {b.shape}"}
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {
        "mean abs diff /255": float(d.mean()),
        "max": int(d.max()),
        "% equal": float((d == 0).mean() * 100),
        "% within 1": float((d <= 1).mean() * 100),
    }


def profile(path: str, top: int = 8) -> list[dict[str, Any]]:
    """cProfile of one ours run: the functions with the most own time (main thread only)."""
    profiler = cProfile.Profile()
    profiler.runcall(run_ours, path)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.values())
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    return [
        {
            "function": func,
            "where": "built-in" if file == "~" else f"{Path(file).name}:{line}",
            "calls": calls,
            "own s": own,
            "own share": own / total,
            "cumulative s": cum,
        }
        for (file, line, func), (_, calls, own, cum, _) in rows
    ]


def conversion_cost(path: str, frames: int = 30, repeats: int = 3) -> dict[str, Timed]:
    """The RGB conversion alone, per frame, on ``frames`` freshly decoded frames held in memory
    (no decoding in the timing); medians of ``repeats``."""
    ways = {
        "to_rgb, sparkframes' conversion": lambda f, r: to_rgb(f, (HEIGHT, WIDTH)),
        "one reused context, 1 swscale thread": lambda f, r: _reformat(f, r, threads=1),
        "one reused context, automatic swscale threads": lambda f, r: _reformat(f, r),
    }
    per: dict[str, list[Timed]] = {k: [] for k in ways}
    for rep in range(repeats):
        for name in rotated(list(ways), rep):
            decoded, reformatter = list(decoded_frames(path, frames)), VideoReformatter()
            t = measure(lambda name=name, d=decoded, r=reformatter: [ways[name](f, r) for f in d])
            per[name].append(Timed(t.wall / len(decoded), t.cpu / len(decoded)))
    return {k: Timed(median(t.wall for t in v), median(t.cpu for t in v)) for k, v in per.items()}


def _reformat(frame: Any, reformatter: VideoReformatter, **threads: int) -> np.ndarray:
    return reformatter.reformat(
        frame,
        format="rgb24",
        width=WIDTH,
        height=HEIGHT,
        interpolation=Interpolation.BICUBIC,
        **threads,
    ).to_ndarray()


def serve(request: dict[str, Any]) -> dict[str, float]:
    """In a fresh child (``Child``): one method on one video, then this process's peak RSS and,
    for the CLI, ffmpeg's, sampled while it runs."""
    method, path, frames, ffmpeg_peak = request["method"], request["path"], 0, 0.0
    if method == "import":
        with open_video(path, threads=THREADS, index=False):
            pass
    elif method.startswith("ours"):
        batch = DEFAULT_BATCH_BYTES if method == "ours" else SMALL_BATCH_BYTES
        opts = sparkframes.ExtractOptions(threads=THREADS, batch_bytes=batch)
        for rows in sparkframes.extract_video_frames(path, (HEIGHT, WIDTH), options=opts):
            frames += len(rows)  # a consumer that drops each batch when done with it
    else:
        chunks = []
        with subprocess.Popen(cli_command(path, None), stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            while chunk := proc.stdout.read(1 << 20):
                chunks.append(chunk)
                ffmpeg_peak = max(ffmpeg_peak, peak_rss_mib(proc.pid))
        frames = len(b"".join(chunks)) // (HEIGHT * WIDTH * 3)
    return {"frames": frames, "self": peak_rss_mib(), "ffmpeg": ffmpeg_peak}


def peak_rss(video: VideoInfo) -> dict[str, Any]:
    """Peak RSS (MiB) of each way on ``video``, each in a fresh child process."""
    row: dict[str, Any] = {"length s": video.seconds, "frames": video.frames}
    row["all pixels MiB"] = video.frames * HEIGHT * WIDTH * 3 / 2**20
    labels = {
        "import": "imports + open the video only (floor)",
        "ours": f"ours, default batches ({min(DEFAULT_BATCH_BYTES, SCENE_BATCH_BYTES) >> 20} MiB)",
        "ours_small": f"ours, batch_bytes={SMALL_BATCH_BYTES >> 20} MiB",
        "cli": "CLI pipe read whole: Python",
    }
    for method, label in labels.items():
        with Child("bench.scene_bench") as child:
            got = child.ask(method=method, path=video.path)
        if method != "import" and got["frames"] != video.frames:
            raise RuntimeError(f"RSS run {method}: {got['frames']} of {video.frames} frames")
        row[label] = got["self"]
    row["CLI pipe: ffmpeg"] = got["ffmpeg"]
    return row


def vs(base: list[Timed], runs: list[Timed], name: str) -> dict[str, Any]:
    return {f"{name} wall": ratio(base, runs), f"{name} CPU": ratio(base, runs, cpu=True)}


def measure_video(
    video: VideoInfo, reps: int, shift: int, workers: int, decodes: int
) -> dict[str, list[dict]]:
    """Every method on one video, interleaved; then the busy executor, the checks, where the
    time goes, the conversion alone and a profile."""
    path, frames, name = video.path, video.frames, video.name

    def method(key: str, rep: int) -> tuple[int, Any]:
        got = METHODS[key](path, rep == 0)
        if got[0] not in (-1, frames):
            raise RuntimeError(f"{name} {key}: {got[0]} of {frames} frames")
        return got

    runs = interleaved({k: lambda rep, k=k: method(k, rep) for k in METHODS}, reps, shift, name)
    out: dict[str, list[dict]] = {"methods": [], "busy executor": []}
    for key, ts in runs.items():
        out["methods"].append(
            {"video": name, "method": key, **times(ts), **vs(runs[CLI], ts, "CLI / method")}
        )
    busy = {k: lambda rep, k=k: run_executor(path, k, workers, decodes) for k in EXECUTOR}
    busy_runs = interleaved(busy, reps, shift, f"{name} executor")
    for key, ts in busy_runs.items():
        if any(n != frames for t in ts for n in t.value):
            raise RuntimeError(f"{name} executor {key}: {[t.value for t in ts]}")
        row = {"video": name, "method": key, **times(ts)}
        row["videos / hour"] = decodes * 3600 / row["wall s"]
        out["busy executor"].append(row | vs(busy_runs[CLI], ts, "CLI / method"))

    kept = {k: ts[0].value[1] for k, ts in runs.items()}
    kept = {
        k: np.stack([r.image for b in v for r in b]) if isinstance(v, list) else v
        for k, v in kept.items()
    }
    out["checks"] = [
        {"video": name, "pair": f"{a} vs {b}", **diff(kept[a], kept[b])} for a, b in PAIRS
    ]

    def med(key: str) -> tuple[float, float]:
        return median(t.wall for t in runs[key]), median(t.cpu for t in runs[key])

    arrow = measure(lambda: [rows_to_batches(b, "ffmpeg_cpu") for b in runs["ours"][0].value[1]])
    decode, per_frame, ours = (
        med("probe: decode loop alone"),
        med("probe: + to_rgb per frame"),
        med("ours"),
    )
    steps = {
        "decode (ours' loop, no conversion)": decode,
        "+ to_rgb per frame (delta)": (per_frame[0] - decode[0], per_frame[1] - decode[1]),
        "+ rows, batching, overlap with decoding (delta)": (
            ours[0] - per_frame[0],
            ours[1] - per_frame[1],
        ),
        "= ours": ours,
        "Arrow record batches (Spark job only)": (arrow.wall, arrow.cpu),
    }
    out["where ours' time goes"] = [
        {
            "video": name,
            "step": step,
            "wall s": wall,
            "CPU s": cpu,
            "CPU ms / frame": cpu / frames * 1e3,
            "of ours' CPU": cpu / ours[1],
        }
        for step, (wall, cpu) in steps.items()
    ]
    out["conversion alone"] = [
        {
            "video": name,
            "conversion": k,
            "wall ms / frame": t.wall * 1e3,
            "CPU ms / frame": t.cpu * 1e3,
        }
        for k, t in conversion_cost(path).items()
    ]
    out[f"cProfile {name}"] = profile(path)
    return out


def main(argv: list[str] | None = None) -> int:
    run = Run(__file__, __doc__, reps=5, argv=argv)
    videos = [ensure_video(r) for r in recipes(run.quick) if r.name in MAIN_VIDEOS]
    lengths = (20,) if run.quick else (20, 80, 320)
    rss_videos = [ensure_video(x264("h264_360p", 640, 360, s)) for s in lengths]
    workers = len(os.sched_getaffinity(0))
    decodes = workers if run.quick else EXECUTOR_VIDEOS
    measurements: dict[str, list[dict]] = {"videos": [facts(v) for v in videos + rss_videos]}
    for i, video in enumerate(videos):
        for key, rows in measure_video(video, run.reps, 2 * i, workers, decodes).items():
            measurements[key] = measurements.get(key, []) + rows
    measurements["peak RSS MiB"] = [peak_rss(v) for v in rss_videos]
    parameters = {"request": f"every frame, {HEIGHT}x{WIDTH} rgb24", "decoder threads": THREADS}
    parameters["busy executor"] = f"{decodes} decodes, {workers} at a time"
    run.save(parameters, measurements)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
