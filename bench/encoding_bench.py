"""What a frames table costs to keep: raw, JPEG and PNG frames, per hour of video.

    python -m bench.encoding_bench [--quick] [--reps N]

For each video and size (224x224, and native 720p and 1080p), the frames at 2 fps are
extracted once (timed: decode and conversion), then for each encoding:

* stored: the rows become Arrow batches in that encoding (timed: the encode cost, which runs in
  the extraction task), are written with the table's own writer and committed to a Delta table;
  its data files' size, per hour of video at 2 fps (7,200 frames), against raw;
* read back: ``read_frames`` on that table, decoded frames per second (timed);
* error: the mean absolute difference to the raw pixels, per channel value (0-255).

Timings are medians over repetitions; the encode share is encode / (extract + encode).
"""

from __future__ import annotations

import argparse
import shutil
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from bench.common import (
    CACHE_DIR,
    ensure_video,
    load_note,
    machine_info,
    md_table,
    median,
    recipes,
    write_section,
)
from sparkframes.extraction.base import ExtractedFrame
from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
from sparkframes.sampling.specs import ExtractionSpec
from sparkframes.table.commit import AttemptResult, commit_run
from sparkframes.table.delta import ERRORS, TableLocation
from sparkframes.table.encodings import FrameEncoding
from sparkframes.table.files import AttemptWriter
from sparkframes.table.reader import frames_to_numpy, read_frames
from sparkframes.table.schema import frames_to_batch
from sparkframes.table.state import UnitState

ENCODINGS = [
    ("raw", FrameEncoding("raw")),
    ("jpeg q95 (default)", FrameEncoding("jpeg", 95)),
    ("jpeg q90", FrameEncoding("jpeg", 90)),
    ("png", FrameEncoding("png")),
]
RATE = Fraction(2)
FRAMES_PER_HOUR = int(3600 * RATE)


def extract(path: str, size: tuple[int, int]) -> tuple[list[ExtractedFrame], float]:
    """Every 2 fps frame of the video at ``size``, and the seconds it took."""
    spec = ExtractionSpec("embeddings", (RATE,), "sequence", size)
    started = time.perf_counter()
    rows = [
        r for b in extract_clip_frames(path, [spec], options=ExtractOptions(threads=2)) for r in b
    ]
    return rows, time.perf_counter() - started


def store(rows: list[ExtractedFrame], encoding: FrameEncoding, table: Path) -> tuple[float, int]:
    """(seconds to encode into batches, bytes of the committed table's data files)."""
    started = time.perf_counter()
    batches = [
        frames_to_batch(rows[i : i + 64], "ffmpeg_cpu", encoding) for i in range(0, len(rows), 64)
    ]
    encode_s = time.perf_counter() - started
    shutil.rmtree(table, ignore_errors=True)
    loc = TableLocation.of(str(table))
    writer = AttemptWriter(loc.fs, loc.root, loc.root_of(ERRORS), "part-bench")
    video = rows[0].video_path
    for batch in batches:
        writer.write_frames("embeddings", batch, video)
    frame_files, error_files = writer.close()
    unit = UnitState(video, "embeddings", 0, 0, "bench", frames=len(rows))
    commit_run(
        loc,
        "bench",
        [AttemptResult(frame_files, error_files, [unit])],
        overwrite=False,
        metadata={},
    )
    return encode_s, sum(f.size for f in frame_files)


def read_back(table: Path) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    pixels = frames_to_numpy(read_frames(str(table), purpose="embeddings"))
    return pixels, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short videos, one repetition")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    reps = 1 if args.quick else args.reps
    by_name = {r.name: r for r in recipes(args.quick)}
    h264, hevc = ensure_video(by_name["h264_1080p"]), ensure_video(by_name["hevc_720p"])
    cases = [
        (f"{h264.name}, 224x224", h264, (224, 224)),
        (f"{hevc.name}, 224x224", hevc, (224, 224)),
        (f"{hevc.name}, native 720p", hevc, (-1, -1)),
        (f"{h264.name}, native 1080p", h264, (-1, -1)),
    ]
    header = machine_info()
    started = time.perf_counter()
    work = CACHE_DIR / "encoding_bench"
    rows_out = []
    for label, video, size in cases:
        extract_s, encode_s, read_s = (
            [],
            {n: [] for n, _ in ENCODINGS},
            {n: [] for n, _ in ENCODINGS},
        )
        sizes, errors = {}, {}
        for _ in range(reps):
            rows, seconds = extract(video.path, size)
            extract_s.append(seconds)
            raw_pixels = None
            for name, encoding in ENCODINGS:
                table = work / "table"
                enc_s, nbytes = store(rows, encoding, table)
                pixels, rd_s = read_back(table)
                encode_s[name].append(enc_s)
                read_s[name].append(rd_s)
                sizes[name] = nbytes
                if raw_pixels is None:
                    raw_pixels = pixels
                errors[name] = float(np.abs(pixels.astype(np.int16) - raw_pixels).mean())
            frames = len(rows)
        seconds_of_video = video.seconds
        for name, _ in ENCODINGS:
            per_hour = sizes[name] / seconds_of_video * 3600
            enc = median(encode_s[name])
            ext = median(extract_s)
            rows_out.append(
                [
                    label,
                    name,
                    f"{per_hour / 1e9:.2f}",
                    f"{sizes['raw'] / sizes[name]:.1f}x",
                    f"{enc / frames * 1000:.2f}",
                    f"{enc / (ext + enc):.0%}",
                    f"{frames / median(read_s[name]):.0f}",
                    f"{errors[name]:.2f}",
                ]
            )
    shutil.rmtree(work, ignore_errors=True)
    table = md_table(
        [
            "video, size",
            "encoding",
            "GB per hour (2 fps)",
            "smaller than raw",
            "encode ms/frame",
            "encode share of extraction",
            "read_frames frames/s",
            "mean abs diff (0-255)",
        ],
        rows_out,
        left=2,
    )
    videos = ", ".join(f"{v.name}: {v.note}, {v.seconds:.0f} s" for v in (h264, hevc))
    body = f"""## Frame encodings: what a table costs to keep (`bench/encoding_bench.py`)

{header}

Videos (synthetic scenes with texture and motion, encoded with PyAV's encoders): {videos}.
Frames at 2 fps over the whole video, {reps} repetition(s), timings are medians. *GB per hour*:
the committed table's data files per hour of video at 2 fps. *encode share*: the encode time
over extraction (decode + convert, 2 decoder threads) plus encode. *read_frames frames/s*:
reading the table back to one numpy array, decoding included. Whole run
{time.perf_counter() - started:.0f} s.

{table}

{load_note()}
"""
    write_section("encoding_bench", body)
    print(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
