"""GPU decoding: NVDEC frames/s at 1080p for ``pynvc`` and ``ffmpeg_gpu`` against ``ffmpeg_cpu``
on the same machine, for full-video (scene) frames at 27x48.

    python -m bench.gpu_bench [--quick] [--reps N] [--no-write]

Meant for a machine with an NVIDIA GPU (the project's CI has none). A GPU mode that cannot run
here is listed with the reason and no number. The section names the GPU it ran on.
"""

from __future__ import annotations

import argparse
import subprocess

from bench.common import (
    ensure_video,
    load_note,
    machine_info,
    md_table,
    median,
    recipes,
    rotated,
    timed,
    write_section,
)
from sparkframes.decoding.backends import CPU, FFMPEG_GPU, PYNVC, choose_decoder, gpu_unavailable
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.video import extract_video_frames

SECTION = "gpu_bench"
MODES = (CPU, FFMPEG_GPU, PYNVC)


def gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        return out.splitlines()[0] if out else "no GPU"
    except (OSError, subprocess.TimeoutExpired):
        return "no GPU (nvidia-smi not found)"


def scene_frames(path: str, mode: str, threads: int) -> int:
    """Every frame at 27x48 with ``mode`` (no fallback: a failure must not pass as a GPU run)."""
    choice = choose_decoder(mode, 0, no_fallback=True)
    options = ExtractOptions(threads=threads, decoder=choice, no_fallback=True)
    extraction = extract_video_frames(path, (27, 48), options=options)
    frames = sum(len(batch) for batch in extraction)
    if extraction.report.errors or extraction.report.decoder != mode:
        raise RuntimeError(f"{mode}: {extraction.report.errors} ({extraction.report.decoder})")
    return frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="CPU decoder threads")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    video = ensure_video(recipes(args.quick)[0])  # H.264 1080p30
    available = {m: (None if m == CPU else gpu_unavailable(m, 0)) for m in MODES}
    runnable = [m for m in MODES if available[m] is None]
    times: dict[str, list] = {m: [] for m in runnable}
    for rep in range(1 if args.quick else args.reps):
        for mode in rotated(runnable, rep):
            times[mode].append(timed(lambda m=mode: scene_frames(video.path, m, args.threads)))
    cpu_wall = median(t.wall for t in times[CPU])
    rows = []
    for mode in MODES:
        if mode not in times:
            rows.append([mode, "-", "-", "-", f"not run: {available[mode]}"])
            continue
        wall = median(t.wall for t in times[mode])
        frames = times[mode][0].value
        rows.append([mode, f"{frames}", f"{frames / wall:.0f}", f"{cpu_wall / wall:.2f}x", ""])
    body = "\n\n".join(
        [
            "## GPU decoding: scene frames at 27x48 (`bench/gpu_bench.py`)",
            f"Reproduce: `python -m bench.gpu_bench`. GPU: **{gpu_name()}**. {machine_info()}",
            f"Video: {video.name} ({video.width}x{video.height}, {video.frames} frames). "
            f"CPU decoder threads: {args.threads}. Median of {len(times[CPU])} run(s), "
            "modes interleaved.",
            md_table(["decoder", "frames", "frames/s", "vs ffmpeg_cpu", "note"], rows),
            load_note(),
        ]
    )
    print(body)
    if not args.no_write and len(runnable) > 1:
        write_section(SECTION, body)
    elif len(runnable) == 1:
        print("\nNo GPU mode could run here: RESULTS.md left unchanged.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
