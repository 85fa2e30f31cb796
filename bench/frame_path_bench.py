"""What a frame costs between the decoder and the Parquet writer: bytes of fresh memory per frame
and the job's throughput at native size, this checkout against a baseline commit, side by side.

Memory: each side extracts clip frames of a 1080p H.264 video through the decode worker (as a
Spark task does) into record batches, at native size and at 224x224. Bytes allocated are counted
as fresh pages touched (minor page faults x 4 KiB) in the parent and in its decode worker, with
glibc's mmap threshold pinned at 64 KiB and Arrow on the system allocator, so that every
allocation of a frame's size is fresh memory. Divided by the frame's size, that is how many times
the pixels were written: the converted picture, then each copy.

Throughput: the clip-frames job on a local Spark (``local[2]``), native size at 2 fps, over six
40 s 1080p videos, wall time of the run as its summary reports it.

Keyframes: ``--policy keyframes`` against decoding every frame (scene frames at 27x48) of one of
those videos, in this checkout, in process.

    python bench/frame_path_bench.py [--quick] [--baseline REV] [--out bench/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache"
#: main before the redesign that made frames columnar.
DEFAULT_BASELINE = "3b5b331b6d048d23cbde40ec11d72cd844708b70"
PAGE = os.sysconf("SC_PAGE_SIZE")

#: Run in a child per side: extract twice through one decode worker (the first run warms up the
#: fork server and the caches), count fresh pages of the second in both processes.
_MEASURE = r"""
import json, resource, sys
import psutil
import sparkframes
from sparkframes import ExtractionSpec, extract_clip_frames
try:
    from sparkframes.extraction.worker import IsolatedRunner
except ImportError:
    from sparkframes.isolation import IsolatedRunner

video, res, fps = sys.argv[1], tuple(json.loads(sys.argv[2])), int(sys.argv[3])

def faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])

def worker():
    (w,) = [p for p in psutil.Process().children(recursive=True) if p.name() == "sf-decode"]
    return w.pid

with IsolatedRunner() as runner:
    spec = [ExtractionSpec("embeddings", target_fps=(fps,), target_res=res)]
    list(runner.run(extract_clip_frames(video, spec), 600))
    pid = worker()
    parent0, worker0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, faults(pid)
    frames = 0
    for _, batch in runner.run(extract_clip_frames(video, spec), 600):
        frames += batch.num_rows
        height, width = batch.column("height")[0].as_py(), batch.column("width")[0].as_py()
        del batch
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - parent0
    child = faults(pid) - worker0
print(json.dumps({"frames": frames, "frame_bytes": height * width * 3, "parent_pages": parent,
                  "worker_pages": child, "code": sparkframes.__file__}))
"""


def checkout(rev: str) -> Path:
    """The baseline's files, from ``git archive`` (made once, under the cache)."""
    path = CACHE / f"baseline-{rev[:12]}"
    if not (path / "sparkframes").exists():
        data = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", rev],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=BytesIO(data)) as tar:
            tar.extractall(path, filter="data")
    return path


def make_video(path: Path, seconds: int, size: tuple[int, int] = (1080, 1920)) -> Path:
    """An H.264 video with moving content (PyAV's libx264), made once."""
    if path.exists():
        return path
    import av
    import numpy as np

    height, width = size
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    base = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "28", "g": "60"}
        for i in range(seconds * 30):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 8 * i, axis=1), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    tmp.rename(path)
    return path


def _env(code: Path, *, count_pages: bool) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(code), "PYSPARK_PYTHON": sys.executable}
    if count_pages:
        env |= {"MALLOC_MMAP_THRESHOLD_": "65536", "ARROW_DEFAULT_MEMORY_POOL": "system"}
    return env


def measure_memory(code: Path, video: Path, res: tuple[int, int], fps: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(video), json.dumps(list(res)), str(fps)],
        cwd=code,
        env=_env(code, count_pages=True),
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["code"].startswith(str(code)), got["code"]  # the side we meant really ran
    per_frame = (got["parent_pages"] + got["worker_pages"]) * PAGE / got["frames"]
    return {
        **{k: got[k] for k in ("frames", "frame_bytes", "parent_pages", "worker_pages")},
        "bytes_per_frame": round(per_frame),
        "frame_writes": round(per_frame / got["frame_bytes"], 2),
    }


def measure_job(code: Path, inputs: Path, out: Path) -> float:
    """Wall time of one clip-frames run, as its summary reports it."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    argv = ["clip-frames", "--input", str(inputs), "--output", str(out), "--master", "local[2]"]
    argv += ["--target-fps", "2", "--summary-json", "-"]
    code_line = "import sys; from sparkframes.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code_line, *argv],
        cwd=code,
        env=_env(code, count_pages=False),
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    )
    return float(json.loads(done.stdout)["seconds"])


def measure_keyframes(video: Path, repeat: int) -> dict:
    """Seconds for the keyframes of ``video`` against every frame of it, best of ``repeat``."""
    from sparkframes import (
        ExtractionSpec,
        ExtractOptions,
        extract_clip_frames,
        extract_video_frames,
    )

    def timed(make) -> tuple[float, int]:
        best, rows = float("inf"), 0
        for _ in range(repeat):
            started = time.perf_counter()
            extraction = make()
            rows = sum(len(batch) for batch in extraction)
            best = min(best, time.perf_counter() - started)
        return best, rows

    options = ExtractOptions(threads=os.cpu_count() or 1)
    spec = [ExtractionSpec("thumbs", policy="keyframes", target_res=(224, 224))]
    keys_s, keys = timed(lambda: extract_clip_frames(str(video), spec, options=options))
    all_s, frames = timed(lambda: extract_video_frames(str(video), options=options))
    return {
        "keyframes": keys,
        "keyframes_s": round(keys_s, 3),
        "every_frame": frames,
        "every_frame_s": round(all_s, 3),
        "speedup": round(all_s / keys_s, 1),
    }


def as_harness_result(
    parameters: dict, memory: dict[str, dict], runs: dict[str, list[float]], keyframes: dict
) -> dict:
    """The measurements in the form ``bench/render.py`` renders (tables of records)."""
    best = {name: min(times) for name, times in runs.items()}
    return {
        "benchmark": "frame_path_bench",
        "source": "run",
        "machine": {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "parameters": parameters,
        "measurements": {
            "fresh memory per frame, through the decode worker": [
                {"size and side": key, **value} for key, value in memory.items()
            ],
            "the job, native size, 2 fps": [
                {"side": name, "wall s": runs[name], "best s": best[name]} for name in runs
            ]
            + [{"side": "current / baseline (best)", "best s": best["current"] / best["baseline"]}],
            "--policy keyframes against every frame": [keyframes],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short videos, one repetition")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--out", default=str(REPO / "bench" / "results"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    sides = {"baseline": checkout(args.baseline), "current": REPO}
    short = make_video(CACHE / "frame_path_1080p_4s.mp4", 4)
    memory = {
        f"{label} {name}": measure_memory(code, short, res, 10)
        for label, res in (("native", (-1, -1)), ("224x224", (224, 224)))
        for name, code in sides.items()
    }
    seconds = 10 if args.quick else 40
    videos = [make_video(CACHE / f"frame_path_1080p_{seconds}s_{i}.mp4", seconds) for i in range(6)]
    import pyarrow as pa
    import pyarrow.parquet as pq

    inputs = CACHE / f"frame_path_inputs_{seconds}s.parquet"
    pq.write_table(pa.table({"video_path": [str(v) for v in videos]}), inputs)
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeat):  # interleaved, so both sides see the same machine
        for name, code in sides.items():
            runs[name].append(measure_job(code, inputs, CACHE / f"frame_path_out_{name}"))
    keyframes = measure_keyframes(videos[0], repeat)
    result = as_harness_result(
        {
            "baseline": args.baseline,
            "repetitions": repeat,
            "videos": len(videos),
            "seconds_each": seconds,
        },
        memory,
        runs,
        keyframes,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "frame_path_bench.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
