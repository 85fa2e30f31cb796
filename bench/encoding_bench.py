"""Frame encodings: what a frames table costs to keep, raw, JPEG or PNG, per hour of video.

For each video and size (224x224, and native 720p and 1080p), the frames at 2 fps are
extracted (``sparkframes.extract_clip_frames``, 2 decoder threads; timed), then for each
encoding:

* stored: the rows become Arrow batches in that encoding (timed: the encode cost, which runs in
  the extraction task), written with the table's own writer and committed to a Delta table;
  its data files' size per hour of video at 2 fps, against raw;
* read back: ``sparkframes.read_frames`` and ``frames_to_numpy``, frames per second (timed);
* error: the mean absolute difference to the raw pixels, per channel value (0-255).

The encode share is encode / (extract + encode).
Run: ``python -m bench.encoding_bench [--quick] [--reps N]``.
"""

from __future__ import annotations

import shutil
from fractions import Fraction

import numpy as np

import sparkframes
from bench.harness import CACHE_DIR, Run, Timed, measure, median
from bench.internals import FrameEncoding, UnitState, commit, frames_to_batch, stage
from bench.videos import VideoInfo, ensure_video, recipes

ENCODINGS = {
    "raw": ("raw", None),
    "jpeg q95 (default)": ("jpeg", 95),
    "jpeg q90": ("jpeg", 90),
    "png": ("png", None),
}
RATE = Fraction(2)


def extract(path: str, size: tuple[int, int]) -> list[sparkframes.ExtractedFrame]:
    """Every 2 fps frame of the video at ``size``."""
    spec = sparkframes.ExtractionSpec("embeddings", (RATE,), "sequence", size)
    options = sparkframes.ExtractOptions(threads=2)
    return [r for b in sparkframes.extract_clip_frames(path, [spec], options=options) for r in b]


def store(rows: list, encoding: object, table: str) -> tuple[Timed, int]:
    """(the encode into batches, timed; bytes of the committed table's data files)."""
    encoded = measure(
        lambda: [
            frames_to_batch(rows[i : i + 64], "ffmpeg_cpu", encoding)
            for i in range(0, len(rows), 64)
        ]
    )
    shutil.rmtree(table, ignore_errors=True)
    video = rows[0].video_path
    loc, frame_files, error_files = stage(table, [("embeddings", b, video) for b in encoded.value])
    units = [UnitState(video, "embeddings", 0, 0, "bench", frames=len(rows))]
    commit(loc, frame_files, error_files, units, overwrite=False)
    return encoded, sum(f.size for f in frame_files)


def measure_case(video: VideoInfo, size: tuple[int, int], label: str, reps: int) -> list[dict]:
    table = str(CACHE_DIR / "encoding_bench" / "table")
    extracts, encodes, reads = [], {k: [] for k in ENCODINGS}, {k: [] for k in ENCODINGS}
    sizes, errors = {}, {}
    for _ in range(reps):
        extracted = measure(lambda: extract(video.path, size))
        extracts.append(extracted)
        rows, raw = extracted.value, None
        for name, (kind, quality) in ENCODINGS.items():
            args = (kind,) if quality is None else (kind, quality)
            encoded, sizes[name] = store(rows, FrameEncoding(*args), table)
            read = measure(
                lambda: sparkframes.frames_to_numpy(
                    sparkframes.read_frames(table, purpose="embeddings")
                )
            )
            encodes[name].append(encoded)
            reads[name].append(read)
            raw = read.value if raw is None else raw
            errors[name] = float(np.abs(read.value.astype(np.int16) - raw).mean())
    frames, extract_s = len(extracts[0].value), median(t.wall for t in extracts)
    out = []
    for name in ENCODINGS:
        encode_s = median(t.wall for t in encodes[name])
        out.append(
            {
                "video, size": label,
                "encoding": name,
                "GB per hour (2 fps)": sizes[name] / video.seconds * 3600 / 1e9,
                "smaller than raw": {"median": sizes["raw"] / sizes[name]},
                "encode ms/frame": encode_s / frames * 1000,
                "encode share of extraction": encode_s / (extract_s + encode_s),
                "read_frames frames/s": frames / median(t.wall for t in reads[name]),
                "mean abs diff (0-255)": errors[name],
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    run = Run(__file__, __doc__, reps=3, argv=argv)
    by_name = {r.name: r for r in recipes(run.quick)}
    h264, hevc = ensure_video(by_name["h264_1080p"]), ensure_video(by_name["hevc_720p"])
    cases = [
        (h264, (224, 224), f"{h264.name}, 224x224"),
        (hevc, (224, 224), f"{hevc.name}, 224x224"),
        (hevc, (-1, -1), f"{hevc.name}, native 720p"),
        (h264, (-1, -1), f"{h264.name}, native 1080p"),
    ]
    rows = [
        row for video, size, label in cases for row in measure_case(video, size, label, run.reps)
    ]
    shutil.rmtree(CACHE_DIR / "encoding_bench", ignore_errors=True)
    videos = {v.name: f"{v.seconds:g} s" for v in (h264, hevc)}
    run.save({"videos": videos, "rate fps": str(RATE), "decoder threads": 2}, {"encodings": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
