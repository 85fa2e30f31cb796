"""Keyframe benchmark: what a keyframe-only preview saves over exact thumbnails.

For a long-GOP H.264 video (x264 keyint 250, B-frames, scene cuts, moving textured content;
generated with PyAV and cached in ``bench/.cache/``), 12 thumbnails 96 px high by

* keyframe mode: ``sparkframes.tools.preview.keyframe_thumbnails``: index pass, then only the
  keyframes nearest the 12 target times are decoded (seeking between them);
* exact mode: ``sparkframes.tools.preview.exact_thumbnails``: the same target times, each served by
  its exact nearest frame through the library's planned one-pass decode;
* and the index pass alone (``open_video``), the fixed cost both modes share.

Both modes use 2 decoder threads. Each repetition runs the methods back to back in a rotating
order; ratios are taken within a repetition and the median over repetitions is reported. The
price of keyframe mode (fewer, shifted thumbnails) is reported beside its speed.
Run: ``python -m bench.keyframe_bench [--quick] [--reps N] [--no-write]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.common import (
    Timed,
    VideoInfo,
    VideoRecipe,
    ensure_video,
    machine_info,
    md_table,
    median,
    rotated,
    timed,
    write_section,
)
from sparkframes.decoding.protocol import DecodeStats
from sparkframes.decoding.source import open_video
from sparkframes.tools.preview import exact_thumbnails, keyframe_thumbnails
from sparkframes.tools.preview.keyframes import target_times

THREADS = 2
THUMBS = 12
HEIGHT = 96
SECTION = "keyframe_bench"


def recipe(quick: bool) -> VideoRecipe:
    """720p30 H.264, x264 default structure with a 250-frame GOP."""
    return VideoRecipe(
        "h264_720p_gop250",
        "libx264",
        ".mp4",
        1280,
        720,
        30,
        12 if quick else 24,
        (("preset", "veryfast"),),
        "libx264 preset veryfast, crf 23, keyint 250, bframes 3, b-pyramid normal, scenecut on",
        gop=250,
    )


def _index_only(path: str) -> int:
    with open_video(path, threads=THREADS) as source:
        return len(source.timeline or ())


def _keyframes(path: str, stats: DecodeStats) -> list:
    return keyframe_thumbnails(path, THUMBS, HEIGHT, threads=THREADS, stats=stats)


def _exact(path: str, stats: DecodeStats) -> list:
    return exact_thumbnails(path, THUMBS, HEIGHT, threads=THREADS, stats=stats)


def _price(path: str, keyframe_times: list[float]) -> dict[str, float | int]:
    """How far keyframe thumbnails sit from the target times (seconds) and how many there are."""
    with open_video(path) as source:
        timeline = source.timeline
        assert timeline is not None
        targets = [float(t) for t in target_times(timeline.end_s, THUMBS)]
        keys = sorted(
            float(timeline.seconds(p.pts))  # type: ignore[arg-type]
            for p in timeline.packets
            if p.is_keyframe and p.is_frame
        )
    offsets = [min(abs(k - t) for k in keyframe_times) for t in targets]
    return {
        "keyframes_in_video": len(keys),
        "mean_offset_s": sum(offsets) / len(offsets),
        "max_offset_s": max(offsets),
    }


def run(info: VideoInfo, reps: int) -> dict:
    methods: dict[str, Callable[[DecodeStats], object]] = {
        "keyframe": lambda s: _keyframes(info.path, s),
        "exact": lambda s: _exact(info.path, s),
        "index": lambda s: _index_only(info.path),
    }
    # Warm the page cache and imports once, outside the timings.
    for method in methods.values():
        method(DecodeStats())
    times: dict[str, list[Timed]] = {k: [] for k in methods}
    stats: dict[str, DecodeStats] = {}
    values: dict[str, object] = {}
    ratios: list[float] = []
    for rep in range(reps):
        for name in rotated(list(methods), rep):
            s = DecodeStats()
            t = timed(lambda name=name, s=s: methods[name](s))
            times[name].append(Timed(t.wall, t.cpu, None))
            if rep == 0:
                stats[name], values[name] = s, t.value
            print(f"rep {rep} {name:>8}: {t.wall:6.3f} s wall, {t.cpu:6.3f} s CPU", flush=True)
        ratios.append(times["exact"][-1].wall / times["keyframe"][-1].wall)
    key_thumbs, exact_thumbs = values["keyframe"], values["exact"]
    assert isinstance(key_thumbs, list) and isinstance(exact_thumbs, list)
    key_times = [t.pts_s for t in key_thumbs]
    return {
        "times": times,
        "stats": stats,
        "ratio": median(ratios),
        "ratios": ratios,
        "cpu_ratio": median(
            e.cpu / k.cpu for e, k in zip(times["exact"], times["keyframe"], strict=True)
        ),
        "key_times": key_times,
        "exact_times": [t.pts_s for t in exact_thumbs],
        "price": _price(info.path, key_times),
    }


def _seek_note(stats: DecodeStats) -> str:
    """Why keyframe mode demuxes more packets than it decodes, when it does."""
    if stats.packets_read <= stats.packets_sent:
        return ""
    return (
        f"\nKeyframe mode demuxes {stats.packets_read} packets to send {stats.packets_sent} to "
        "the decoder: the shared decoder (`PyAVDecoder`) seeks to a keyframe's *dts*, which "
        "FFmpeg's MP4 and Matroska demuxers resolve to the keyframe before it when B-frames make "
        "dts < pts (seeking to the pts lands on the keyframe itself), so "
        "each seek reads through one GOP of packets (read and dropped, not decoded).\n"
    )


def _counts(stats: DecodeStats) -> str:
    return f"{stats.packets_read} / {stats.packets_sent} / {stats.frames_decoded}"


def _report(info: VideoInfo, result: dict, reps: int, machine: str, total: float) -> str:
    times, stats, price = result["times"], result["stats"], result["price"]
    key_stats, exact_stats = stats["keyframe"], stats["exact"]
    video = md_table(
        ["video", "size", "length", "Mbit/s", "keyframes", "encoder", "encoder's settings"],
        [
            [
                info.name,
                f"{info.width}x{info.height}@{info.fps}",
                f"{info.seconds:g} s / {info.frames} frames",
                f"{info.mbps}",
                f"{info.keyframes}",
                info.note,
                f"`{info.encoder_settings}`",
            ]
        ],
    )

    def row(name: str, label: str, thumbs: str, decoded: str) -> list[str]:
        wall = median(t.wall for t in times[name])
        cpu = median(t.cpu for t in times[name])
        return [label, f"{wall:.3f}", f"{cpu:.3f}", thumbs, decoded]

    n_key, n_exact = len(result["key_times"]), len(result["exact_times"])
    table = md_table(
        ["method", "wall s", "CPU s", "thumbnails", "packets read / sent / frames decoded"],
        [
            row(
                "keyframe",
                "keyframe mode (`keyframe_thumbnails`)",
                f"{n_key} distinct",
                _counts(key_stats),
            ),
            row(
                "exact",
                "exact mode (`exact_thumbnails`)",
                f"{n_exact}",
                _counts(exact_stats),
            ),
            row("index", "index pass alone (`open_video`, shared by both)", "-", "all / 0 / 0"),
        ],
    )
    per_rep = ", ".join(f"{r:.1f}x" for r in result["ratios"])
    verdict = "meets" if result["ratio"] >= 10 else "MISSES"
    key_list = ", ".join(f"{t:.2f}" for t in result["key_times"])
    exact_list = ", ".join(f"{t:.2f}" for t in result["exact_times"])
    return f"""## Keyframe previews vs exact thumbnails (`bench/keyframe_bench.py`)

{machine}

Request: {THUMBS} thumbnails {HEIGHT} px high, evenly over the video (target times
k x duration / {THUMBS}), {THREADS} decoder threads in both modes. {reps} repetition(s), methods
interleaved in a rotating order; times are medians, the ratio is the median of per-repetition
ratios. Whole run {total:.0f} s. Reproduce: `python -m bench.keyframe_bench`.

{video}

{table}

**Keyframe mode is {result["ratio"]:.1f}x faster than exact mode** in wall time (per repetition:
{per_rep}; CPU time {result["cpu_ratio"]:.1f}x), which {verdict} the 10x target.

The price: thumbnails snap to keyframes. This video has {price["keyframes_in_video"]} keyframes,
so the {THUMBS} targets collapse onto {n_key} distinct keyframe thumbnails, on average
{price["mean_offset_s"]:.2f} s (at most {price["max_offset_s"]:.2f} s) from their target times.

- keyframe mode times (s): {key_list}
- exact mode times (s): {exact_list}
{_seek_note(key_stats)}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 12 s video, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 5)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 5)
    machine = machine_info()
    print(machine, flush=True)
    info = ensure_video(recipe(args.quick))
    made = f"generated in {info.generation_s} s" if info.generated_now else "cached"
    print(f"{info.name}: {info.path} ({made}), {info.keyframes} keyframes", flush=True)
    started = time.perf_counter()
    result = run(info, reps)
    body = _report(info, result, reps, machine, time.perf_counter() - started)
    print(body)
    if not args.no_write and not args.quick:
        print(f"wrote {write_section(SECTION, body)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
