"""Decode benchmark: what sampling clip frames in one pass buys over decoding everything.

Issue "Frame-exact clip sampling in one decode pass". For each test video the same request:
rates 1 and 2 fps on 10 s fixed-stride clips, at native size and at 224x224, done by

* ours: ``sparkframes.extraction.clip.extract_clip_frames`` with 2 threads (and with
  ``skip_unneeded=False`` to show what per-packet NONREF skipping buys);
* (a) ``ffmpeg -threads 2 -i V -f null -``: bare decode of every frame, no conversion: the bar;
* (b) PyAV, decode every frame (2 threads), pick the nearest frame per sample time, convert
  only those to rgb24: what one would write without a plan;
* (c) ffmpeg CLI ``fps=2`` filter (plus ``scale``) writing rgb24 to a pipe that Python reads.

Timings on a shared machine are noisy, so each repetition runs every method on a video back to
back in a rotating order, ratios are taken within a repetition and the median over repetitions
is reported. Run: ``python -m bench.decode_bench [--quick] [--reps N]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from bench.common import (
    Timed,
    VideoInfo,
    ensure_video,
    ffmpeg_cmd,
    load_note,
    machine_info,
    md_table,
    median,
    ratio,
    recipes,
    rotated,
    timed,
    write_section,
)
from sparkframes.decoding.source import open_video
from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
from sparkframes.sampling.spans import FixedStride
from sparkframes.sampling.specs import ExtractionSpec

THREADS = 2
RATES = (Fraction(1), Fraction(2))
CLIP_S = Fraction(10)
NATIVE = (-1, -1)
SQUARE = (224, 224)
SECTION = "decode_bench"


@dataclass
class Outcome:
    """What one method produced: decoded frames vs distinct frames delivered, and rows."""

    decoded: int
    output: int
    rows: int
    pts: list[float] = field(default_factory=list)  # seconds of the delivered frames
    images: list[np.ndarray] = field(default_factory=list)  # kept only when verifying
    extra: str = ""


# --------------------------------------------------------------------------------------------
# Methods
# --------------------------------------------------------------------------------------------


def run_ours(path: str, size: tuple[int, int], skip: bool, keep: bool) -> Outcome:
    """sparkframes: one planned pass, only the needed packets decoded, needed frames converted."""
    spec = ExtractionSpec("embeddings", target_fps=RATES, target_res=size)
    ex = extract_clip_frames(
        path,
        [spec],
        stride=FixedStride(clip_len_s=CLIP_S, stride_s=CLIP_S),
        options=ExtractOptions(threads=THREADS, skip_unneeded=skip),
    )
    rows = 0
    seen: dict[float, np.ndarray] = {}
    for batch in ex:
        for row in batch:
            rows += 1
            if row.pts_s not in seen:
                seen[row.pts_s] = row.image if keep else row.image[:0]
    if ex.report.errors:
        raise RuntimeError(f"sparkframes reported errors: {ex.report.errors}")
    d = ex.report.decode
    pts = sorted(seen)
    return Outcome(
        decoded=d.frames_decoded,
        output=len(seen),
        rows=rows,
        pts=[float(p) for p in pts],
        images=[seen[p] for p in pts] if keep else [],
        extra=f"packets sent {d.packets_sent}/{d.packets_read} read, seeks {d.seeks}",
    )


def _convert(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    height, width = (frame.height, frame.width) if size == NATIVE else size
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC")


def run_pyav_all(path: str, size: tuple[int, int], keep: bool) -> Outcome:
    """Decode every frame; sample times are every 1/2 s from each clip start; the nearest frame
    inside the clip serves each (ties to the earlier), converted once.

    Streaming, so nothing but the previous frame is held: a sample time is settled as soon as
    the first frame at or after it arrives (or at the end of the stream).
    """
    step = 1 / max(RATES)  # the 1 fps samples are every other 2 fps sample
    decoded = rows = 0
    chosen: list[tuple[Fraction, np.ndarray]] = []
    last_converted: av.VideoFrame | None = None

    def take(frame: av.VideoFrame, t: Fraction, sample: Fraction) -> None:
        nonlocal last_converted, rows
        rows += sum(1 for r in RATES if (sample * r).denominator == 1)  # rates on this sample
        if frame is not last_converted:
            image = _convert(frame, size)
            chosen.append((t, image if keep else image[:0]))
            last_converted = frame

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = THREADS
        tb = Fraction(stream.time_base)
        origin: int | None = None
        prev: tuple[Fraction, av.VideoFrame] | None = None
        k = 0
        last_gap = Fraction(0)
        for frame in container.decode(stream):
            decoded += 1
            if frame.pts is None:
                continue
            if origin is None:
                origin = frame.pts
            t = (frame.pts - origin) * tb
            while (k_time := k * step) <= t:
                clip_start = (k_time // CLIP_S) * CLIP_S
                before_ok = prev is not None and prev[0] >= clip_start
                after_ok = t < clip_start + CLIP_S
                if before_ok and (not after_ok or k_time - prev[0] <= t - k_time):  # type: ignore[index]
                    take(prev[1], prev[0], k_time)  # type: ignore[index]
                elif after_ok:
                    take(frame, t, k_time)
                k += 1
            if prev is not None:
                last_gap = t - prev[0]
            prev = (t, frame)
        if prev is not None:  # samples after the last frame's start but before the video's end
            duration = Fraction(prev[1].duration or 0) * tb or last_gap
            while (k_time := k * step) < prev[0] + duration:
                if prev[0] >= (k_time // CLIP_S) * CLIP_S:
                    take(prev[1], prev[0], k_time)
                k += 1
    return Outcome(
        decoded=decoded,
        output=len(chosen),
        rows=rows,
        pts=[float(t) for t, _ in chosen],
        images=[im for _, im in chosen] if keep else [],
    )


def run_ffmpeg_null(path: str) -> Outcome:
    """(a) the ffmpeg CLI decoding every frame into the null muxer."""
    cmd = ffmpeg_cmd(path, "-f", "null", "-", threads=THREADS)
    subprocess.run(cmd, check=True)
    return Outcome(decoded=-1, output=0, rows=0)


def run_ffmpeg_fps(
    path: str, size: tuple[int, int], native: tuple[int, int], keep: bool
) -> Outcome:
    """(c) ffmpeg's fps filter picks the frames, scale resizes, Python reads the rgb24 pipe."""
    vf = f"fps={max(RATES)}"
    height, width = native
    if size != NATIVE:
        height, width = size
        vf += f",scale={width}:{height}"
    cmd = ffmpeg_cmd(path, "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-", threads=THREADS)
    frame_bytes = height * width * 3
    images: list[np.ndarray] = []
    count = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, bufsize=0) as proc:
        assert proc.stdout is not None
        buf = bytearray(frame_bytes)
        view = memoryview(buf)
        while True:
            got = 0
            while got < frame_bytes:
                n = proc.stdout.readinto(view[got:])
                if not n:
                    break
                got += n
            if got < frame_bytes:
                break
            count += 1
            if keep:
                images.append(np.frombuffer(bytes(buf), np.uint8).reshape(height, width, 3))
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(cmd)}")
    return Outcome(decoded=-1, output=count, rows=0, images=images)


def run_index(path: str) -> Outcome:
    """sparkframes' first step alone: open and demux the whole file to build the timeline."""
    with open_video(path, threads=THREADS) as src:
        return Outcome(decoded=0, output=0, rows=0, extra=f"{len(src.timeline)} frames indexed")


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

METHODS = {
    "ours": "ours (sparkframes, 2 threads)",
    "ours_noskip": "ours, skip_unneeded=False",
    "a_ffmpeg_null": "(a) ffmpeg -f null (bare decode)",
    "b_pyav_all": "(b) PyAV decode all + pick",
    "c_ffmpeg_fps": "(c) ffmpeg fps=2 -> rgb24 pipe",
    "index": "ours' index pass alone (open_video)",
}


def _size_label(size: tuple[int, int]) -> str:
    return "native" if size == NATIVE else f"{size[0]}x{size[1]}"


def _tasks(video: VideoInfo, sizes: list[tuple[int, int]]) -> list[tuple[str, tuple[int, int]]]:
    tasks: list[tuple[str, tuple[int, int]]] = [("a_ffmpeg_null", NATIVE), ("index", NATIVE)]
    for size in sizes:
        tasks += [(m, size) for m in ("ours", "ours_noskip", "b_pyav_all", "c_ffmpeg_fps")]
    return tasks


def _call(
    method: str, video: VideoInfo, size: tuple[int, int], keep: bool
) -> Callable[[], Outcome]:
    path = video.path
    return {
        "ours": lambda: run_ours(path, size, True, keep),
        "ours_noskip": lambda: run_ours(path, size, False, keep),
        "a_ffmpeg_null": lambda: run_ffmpeg_null(path),
        "b_pyav_all": lambda: run_pyav_all(path, size, keep),
        "c_ffmpeg_fps": lambda: run_ffmpeg_fps(path, size, (video.height, video.width), keep),
        "index": lambda: run_index(path),
    }[method]


#: FFmpeg's AVPictureType values (PyAV 18 gives the bare int).
_PICT_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


def _all_frames_small(path: str) -> tuple[list[np.ndarray], Counter[str]]:
    """Every frame of ``path`` at 224x224 in presentation order, and the count of each picture
    type (for the checks only)."""
    types: Counter[str] = Counter()
    frames: list[np.ndarray] = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = THREADS
        for frame in container.decode(stream):
            types[_PICT_TYPES.get(int(frame.pict_type), str(frame.pict_type))] += 1
            frames.append(_convert(frame, SQUARE))
    return frames, types


def _fps_filter_offsets(
    video: VideoInfo, frames: list[np.ndarray], ours: Outcome, theirs: Outcome, window: int = 20
) -> tuple[float, float]:
    """Which frame (c) delivered for each sample, relative to ours: (median offset in frames,
    mean abs pixel difference at the best match), found by matching against every frame."""
    offsets: list[int] = []
    diffs: list[float] = []
    for t, image in zip(ours.pts, theirs.images, strict=False):
        mine = round(t * video.fps)
        lo, hi = max(0, mine - window), min(len(frames), mine + window + 1)
        scores = [np.abs(frames[j].astype(np.int16) - image).mean() for j in range(lo, hi)]
        best = int(np.argmin(scores))
        offsets.append(lo + best - mine)
        diffs.append(float(scores[best]))
    return float(np.median(offsets)), float(np.mean(diffs))


def _verify(video: VideoInfo, results: dict[tuple[str, tuple[int, int]], Outcome]) -> list[str]:
    """Ours and (b) must pick the same frames and, at 224x224, produce the same pixels; and
    which frames does ffmpeg's fps filter (c) pick?"""
    notes: list[str] = []
    for size in (NATIVE, SQUARE):
        ours, mine = results.get(("ours", size)), results.get(("b_pyav_all", size))
        if ours is None or mine is None:
            continue
        same_pts = ours.pts == mine.pts
        line = f"{video.name} {_size_label(size)}: ours and (b) pick the same frames: {same_pts}"
        if ours.images and mine.images and len(ours.images) == len(mine.images):
            equal = all(np.array_equal(x, y) for x, y in zip(ours.images, mine.images, strict=True))
            line += f", identical pixels: {equal}"
        fps = results.get(("c_ffmpeg_fps", size))
        if fps is not None:
            line += f"; (c) delivered {fps.output} frames vs ours {ours.output}"
            if fps.images and ours.pts:
                frames, types = _all_frames_small(video.path)
                offset, diff = _fps_filter_offsets(video, frames, ours, fps)
                mix = ", ".join(f"{n} {k}" for k, n in sorted(types.items()))
                notes.append(f"{video.name} picture types of all {len(frames)} frames: {mix}")
                line += (
                    f", each the frame {offset:+g} from ours (median; mean abs pixel diff at "
                    f"that frame {diff:.2f}/255)"
                )
        notes.append(line)
    return notes


def _fmtratio(x: float) -> str:
    return f"{x:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short videos, 1 repetition")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args(argv)
    reps = args.reps or (1 if args.quick else 3)
    machine = machine_info()
    print(machine, flush=True)

    videos: list[VideoInfo] = []
    for recipe in recipes(args.quick):
        info = ensure_video(recipe)
        state = "generated" if info.generated_now else "cached; generated"
        print(
            f"{info.name}: {info.frames} frames, {info.mbps} Mbit/s, {info.keyframes} keyframes "
            f"({state} in {info.generation_s:.1f} s)",
            flush=True,
        )
        videos.append(info)

    sizes = [NATIVE, SQUARE]
    # times[(video, method, size)] = list of Timed, one per repetition
    times: dict[tuple[str, str, tuple[int, int]], list[Timed]] = {}
    verify_notes: list[str] = []
    started = time.perf_counter()
    for rep in range(reps):
        for v_index, video in enumerate(videos):
            tasks = rotated(_tasks(video, sizes), rep * 3 + v_index)
            kept: dict[tuple[str, tuple[int, int]], Outcome] = {}
            for method, size in tasks:
                # Keep images only in the first repetition at 224x224 (cheap), to check pixels.
                keep = rep == 0 and size == SQUARE
                result = timed(_call(method, video, size, keep))
                times.setdefault((video.name, method, size), []).append(result)
                if rep == 0:
                    kept[(method, size)] = result.value
                print(
                    f"rep {rep} {video.name:>10} {_size_label(size):>7} {method:>13}: "
                    f"{result.wall:6.2f} s wall {result.cpu:6.2f} s cpu",
                    flush=True,
                )
            if rep == 0:
                verify_notes += _verify(video, kept)
    total = time.perf_counter() - started
    for note in verify_notes:
        print(note)

    body = _report(videos, sizes, times, reps, machine, verify_notes, total, args.quick)
    print(body)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, body)}")
    return 0


def _report(
    videos: list[VideoInfo],
    sizes: list[tuple[int, int]],
    times: dict[tuple[str, str, tuple[int, int]], list[Timed]],
    reps: int,
    machine: str,
    verify_notes: list[str],
    total_s: float,
    quick: bool,
) -> str:
    lines = [
        "## Decode: clip frames in one pass vs decoding everything (`bench/decode_bench.py`)",
        "",
        machine,
        "",
        f"Request: rates {', '.join(str(r) for r in RATES)} fps on {CLIP_S} s fixed-stride clips "
        f"(the 1 fps samples are a subset of the 2 fps ones), {THREADS} decoder threads "
        f"everywhere. {reps} repetition(s){' (--quick)' if quick else ''}, methods interleaved in "
        f"a rotating order; times are medians, ratios are medians of per-repetition ratios. "
        f"Whole run {total_s:.0f} s.",
        "",
        "Videos (generated with PyAV's encoders, cached in `bench/.cache/`):",
        "",
    ]
    vrows = [
        [
            v.name,
            v.note,
            f"`{v.encoder_settings}`" if v.encoder_settings else "",
            f"{v.width}x{v.height}@{v.fps}",
            f"{v.seconds:g} s / {v.frames}",
            f"{v.mbps}",
            str(v.keyframes),
            f"{v.generation_s:.1f} s",
        ]
        for v in videos
    ]
    vheader = ["video", "encoder", "encoder's own settings string", "size", "length / frames"]
    vheader += ["Mbit/s", "keyframes", "generated in"]
    lines += [md_table(vheader, vrows, left=3), ""]

    lines += ["Headline, ours against (a) the bare `ffmpeg -f null` decode of every frame:", ""]
    hrows: list[list[str]] = []
    for v in videos:
        a = times[(v.name, "a_ffmpeg_null", NATIVE)]
        for size in sizes:
            ours = times[(v.name, "ours", size)]
            out: Outcome = ours[0].value
            hrows.append(
                [
                    v.name,
                    _size_label(size),
                    _fmtratio(ratio(a, ours)),
                    _fmtratio(ratio(a, ours, cpu=True)),
                    f"{out.decoded} of {v.frames} ({out.decoded / v.frames:.0%})",
                ]
            )
    hheader = ["video", "size", "ours faster (wall)", "ours faster (CPU)", "frames decoded"]
    lines += [md_table(hheader, hrows, left=2), ""]

    lines += [
        "All methods. *vs (a)*: t(a) / t(method), above 1 is faster than the bare ffmpeg decode "
        "(wall, and CPU = user+sys of all threads and child processes). *ours is*: "
        "t(method) / t(ours) in wall time, how many times longer the method takes than ours. "
        "*decoded / output*: frames the decoder produced (ours: `report.decode.frames_decoded`; "
        "a baseline decodes every frame) vs distinct frames delivered.",
        "",
    ]
    header = ["video", "size", "method", "wall s", "CPU s", "vs (a) wall", "vs (a) CPU"]
    header += ["ours is", "decoded / output", "notes"]
    rows: list[list[str]] = []
    for v in videos:
        a = times[(v.name, "a_ffmpeg_null", NATIVE)]
        rows.append(
            [
                v.name,
                "-",
                METHODS["a_ffmpeg_null"],
                f"{median(t.wall for t in a):.2f}",
                f"{median(t.cpu for t in a):.2f}",
                "1.00x",
                "1.00x",
                "",
                f"{v.frames} / 0",
                "",
            ]
        )
        idx = times[(v.name, "index", NATIVE)]
        share = median(
            i.wall / o.wall for i, o in zip(idx, times[(v.name, "ours", NATIVE)], strict=True)
        )
        rows.append(
            [
                v.name,
                "-",
                METHODS["index"],
                f"{median(t.wall for t in idx):.3f}",
                f"{median(t.cpu for t in idx):.3f}",
                "",
                "",
                "",
                "",
                f"demuxes all {v.frames} packets; {share:.1%} of ours (native)",
            ]
        )
        for size in sizes:
            ours = times[(v.name, "ours", size)]
            for method in ("ours", "ours_noskip", "b_pyav_all", "c_ffmpeg_fps"):
                ts = times[(v.name, method, size)]
                out = ts[0].value
                decoded = v.frames if out.decoded < 0 else out.decoded
                rows.append(
                    [
                        v.name,
                        _size_label(size),
                        METHODS[method],
                        f"{median(t.wall for t in ts):.2f}",
                        f"{median(t.cpu for t in ts):.2f}",
                        _fmtratio(ratio(a, ts)),
                        _fmtratio(ratio(a, ts, cpu=True)),
                        "" if method == "ours" else _fmtratio(ratio(ts, ours)),
                        f"{decoded} / {out.output}",
                        out.extra,
                    ]
                )
    lines += [md_table(header, rows, left=3), ""]
    lines += ["Checks (first repetition, outside the timings):", ""]
    lines += [f"- {note}" for note in verify_notes] or ["- none"]
    lines += [""]
    lines += [load_note(), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
