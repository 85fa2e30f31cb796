"""Decode: clip frames sampled in one planned pass against decoding every frame (ffmpeg, PyAV).

For each test video the same request, rates 1 and 2 fps on 10 s fixed-stride clips, at native
size and at 224x224, done by

* ours: ``sparkframes.extract_clip_frames`` with 2 threads (and with ``skip_unneeded=False``,
  to show what skipping the packets no sample needs buys);
* (a) ``ffmpeg -threads 2 -i V -f null -``: bare decode of every frame, no conversion: the bar;
* (b) PyAV decoding every frame (2 threads), picking the nearest frame per sample time and
  converting only those: what one would write without a plan;
* (c) the ffmpeg CLI's ``fps=2`` filter (plus ``scale``) writing rgb24 to a pipe Python reads;
* ours' index pass alone (its fixed cost).

Checks outside the timings (first repetition): ours and (b) pick the same frames with the same
pixels; which frame (c) delivers for each sample, relative to ours.
Run: ``python -m bench.decode_bench [--quick] [--reps N]``.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
import numpy as np

import sparkframes
from bench.harness import Run, Timed, interleaved, ratio, times
from bench.internals import open_video
from bench.videos import VideoInfo, ensure_video, facts, ffmpeg_cmd, recipes

THREADS = 2
RATES = (Fraction(1), Fraction(2))
CLIP_S = Fraction(10)
NATIVE = (-1, -1)
SQUARE = (224, 224)


@dataclass
class Outcome:
    """What one method produced: frames decoded, distinct frames delivered, rows."""

    decoded: int
    output: int = 0
    rows: int = 0
    pts: list[float] = field(default_factory=list)  # seconds of the delivered frames
    images: list[np.ndarray] = field(default_factory=list)  # kept only when checking
    stats: dict[str, int] = field(default_factory=dict)


def run_ours(path: str, size: tuple[int, int], skip: bool, keep: bool) -> Outcome:
    """sparkframes: one planned pass, only the needed packets decoded, needed frames converted."""
    spec = sparkframes.ExtractionSpec("embeddings", target_fps=RATES, target_res=size)
    ex = sparkframes.extract_clip_frames(
        path,
        [spec],
        stride=sparkframes.FixedStride(clip_len_s=CLIP_S, stride_s=CLIP_S),
        options=sparkframes.ExtractOptions(threads=THREADS, skip_unneeded=skip),
    )
    rows, seen = 0, {}
    for batch in ex:
        for row in batch:
            rows += 1
            seen.setdefault(row.pts_s, row.image if keep else None)
    if ex.report.errors:
        raise RuntimeError(f"sparkframes reported errors: {ex.report.errors}")
    d, pts = ex.report.decode, sorted(seen)
    stats = {"packets sent": d.packets_sent, "packets read": d.packets_read, "seeks": d.seeks}
    images = [seen[p] for p in pts] if keep else []
    return Outcome(d.frames_decoded, len(seen), rows, [float(p) for p in pts], images, stats)


def _convert(frame: av.VideoFrame, size: tuple[int, int]) -> np.ndarray:
    height, width = (frame.height, frame.width) if size == NATIVE else size
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="BICUBIC")


def _decoding(container: Any) -> Any:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = THREADS
    return stream


def run_pyav_all(path: str, size: tuple[int, int], keep: bool) -> Outcome:
    """(b) Decode every frame; sample times every 1/2 s from each clip start, each served by the
    nearest frame inside the clip (ties to the earlier), converted once. Streaming: a sample is
    settled when the first frame at or after it arrives (or at the end of the stream)."""
    step = 1 / max(RATES)  # the 1 fps samples are every other 2 fps sample
    out = Outcome(0)
    last: av.VideoFrame | None = None

    def take(frame: av.VideoFrame, t: Fraction, sample: Fraction) -> None:
        nonlocal last
        out.rows += sum(1 for r in RATES if (sample * r).denominator == 1)  # rates on it
        if frame is not last:
            out.pts.append(float(t))
            if keep:
                out.images.append(_convert(frame, size))
            else:
                _convert(frame, size)
            last = frame

    with av.open(path) as container:
        stream = _decoding(container)
        tb = Fraction(stream.time_base)
        origin: int | None = None
        prev: tuple[Fraction, av.VideoFrame] | None = None
        k, last_gap = 0, Fraction(0)
        for frame in container.decode(stream):
            out.decoded += 1
            if frame.pts is None:
                continue
            origin = frame.pts if origin is None else origin
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
    out.output = len(out.pts)
    return out


def run_ffmpeg_null(path: str) -> Outcome:
    """(a) the ffmpeg CLI decoding every frame into the null muxer."""
    subprocess.run(ffmpeg_cmd(path, "-f", "null", "-", threads=THREADS), check=True)
    return Outcome(-1)


def run_ffmpeg_fps(
    path: str, size: tuple[int, int], native: tuple[int, int], keep: bool
) -> Outcome:
    """(c) ffmpeg's fps filter picks the frames, scale resizes, Python reads the rgb24 pipe."""
    vf, (height, width) = f"fps={max(RATES)}", native
    if size != NATIVE:
        height, width = size
        vf += f",scale={width}:{height}"
    cmd = ffmpeg_cmd(path, "-vf", vf, "-f", "rawvideo", "-pix_fmt", "rgb24", "-", threads=THREADS)
    out, buf = Outcome(-1), bytearray(height * width * 3)  # one buffer, refilled per frame
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while proc.stdout.readinto(buf) == len(buf):
            out.output += 1
            if keep:
                out.images.append(np.frombuffer(bytes(buf), np.uint8).reshape(height, width, 3))
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(cmd)}")
    return out


def run_index(path: str) -> Outcome:
    """Ours' first step alone: open and demux the whole file to build the timeline."""
    with open_video(path, threads=THREADS):
        return Outcome(0)


#: FFmpeg's AVPictureType values (PyAV 18 gives the bare int).
_PICT_TYPES = {0: "?", 1: "I", 2: "P", 3: "B", 4: "S", 5: "SI", 6: "SP", 7: "BI"}


def _all_frames_small(path: str) -> tuple[list[np.ndarray], str]:
    """Every frame at 224x224 in presentation order, and the mix of picture types."""
    types: Counter[str] = Counter()
    frames = []
    with av.open(path) as container:
        for frame in container.decode(_decoding(container)):
            types[_PICT_TYPES.get(int(frame.pict_type), str(frame.pict_type))] += 1
            frames.append(_convert(frame, SQUARE))
    return frames, ", ".join(f"{n} {k}" for k, n in sorted(types.items()))


def _check(video: VideoInfo, size: tuple[int, int], kept: dict[str, Outcome]) -> dict[str, Any]:
    """Ours and (b) pick the same frames (and pixels, when kept); which frame (c) delivers for
    each of ours: the median offset in frames, and the mean abs pixel difference there."""
    ours, mine, fps = kept["ours"], kept["b_pyav_all"], kept["c_ffmpeg_fps"]
    row: dict[str, Any] = {"video": video.name, "size": _label(size)}
    row["ours and (b) same frames"] = ours.pts == mine.pts
    row["(c) frames"], row["ours frames"] = fps.output, ours.output
    if ours.images and len(ours.images) == len(mine.images):
        pairs = zip(ours.images, mine.images, strict=True)
        row["ours and (b) same pixels"] = all(np.array_equal(x, y) for x, y in pairs)
        frames, row["picture types"] = _all_frames_small(video.path)
        offsets, diffs = [], []
        for t, image in zip(ours.pts, fps.images, strict=False):
            mine_i = round(t * video.fps)
            lo, hi = max(0, mine_i - 20), min(len(frames), mine_i + 21)
            scores = [np.abs(frames[j].astype(np.int16) - image).mean() for j in range(lo, hi)]
            offsets.append(lo + int(np.argmin(scores)) - mine_i)
            diffs.append(float(min(scores)))
        row["(c) frame offset vs ours"] = float(np.median(offsets))
        row["(c) mean abs diff /255"] = float(np.mean(diffs))
    return row


def _label(size: tuple[int, int]) -> str:
    return "native" if size == NATIVE else f"{size[0]}x{size[1]}"


def measure_video(video: VideoInfo, reps: int, shift: int) -> tuple[list[dict], list[dict]]:
    """Every method on one video, interleaved: (method rows, check rows)."""
    path, native = video.path, (video.height, video.width)
    methods = {
        "a_ffmpeg_null": lambda rep: run_ffmpeg_null(path),
        "index": lambda rep: run_index(path),
    }
    for size in (NATIVE, SQUARE):
        # Images kept in the first repetition at 224x224 only (cheap), to compare pixels.
        def keep(rep: int, size: tuple[int, int] = size) -> bool:
            return rep == 0 and size == SQUARE

        methods |= {
            f"ours {_label(size)}": lambda r, s=size: run_ours(path, s, True, keep(r, s)),
            f"ours_noskip {_label(size)}": lambda r, s=size: run_ours(path, s, False, False),
            f"b_pyav_all {_label(size)}": lambda r, s=size: run_pyav_all(path, s, keep(r, s)),
            f"c_ffmpeg_fps {_label(size)}": lambda r, s=size: run_ffmpeg_fps(
                path, s, native, keep(r, s)
            ),
        }
    runs = interleaved(methods, reps, shift, label=video.name)
    a = runs["a_ffmpeg_null"]
    rows, checks = [], []
    for name, ts in runs.items():
        method, _, size = name.partition(" ")
        out: Outcome = ts[0].value
        ours: list[Timed] = runs.get(f"ours {size}", ts)
        row = {"video": video.name, "size": size or "-", "method": method, **times(ts)}
        if name != "index":
            row |= {"vs (a) wall": ratio(a, ts), "vs (a) CPU": ratio(a, ts, cpu=True)}
            row |= {"ours is": ratio(ts, ours) if size and method != "ours" else None}
            row |= {"decoded": video.frames if out.decoded < 0 else out.decoded}
            row |= {"output": out.output, **out.stats}
        rows.append(row)
    for size in (NATIVE, SQUARE):
        kept = {
            m: runs[f"{m} {_label(size)}"][0].value for m in ("ours", "b_pyav_all", "c_ffmpeg_fps")
        }
        checks.append(_check(video, size, kept))
    return rows, checks


def main(argv: list[str] | None = None) -> int:
    run = Run(__file__, __doc__, reps=3, argv=argv)
    videos = [ensure_video(r) for r in recipes(run.quick)]
    rows, checks = [], []
    for i, video in enumerate(videos):
        video_rows, video_checks = measure_video(video, run.reps, shift=3 * i)
        rows += video_rows
        checks += video_checks
    parameters = {
        "rates fps": [str(r) for r in RATES],
        "clip s": str(CLIP_S),
        "sizes": ["native", _label(SQUARE)],
        "decoder threads": THREADS,
    }
    run.save(parameters, {"videos": [facts(v) for v in videos], "methods": rows, "checks": checks})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
