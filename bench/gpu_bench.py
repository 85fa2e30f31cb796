"""GPU decoding throughput: ``pynvc`` and ``ffmpeg_gpu`` at 1, 4 and 8 processes per GPU against
``ffmpeg_cpu`` on all of the machine's cores, for scene frames (every frame at 27x48) and clip
frames (1 + 2 fps, native and 224x224), on the same 1080p H.264 video.

    python -m bench.gpu_bench --out DIR [--quick] [--processes 1,4,8] [--repeats N]

Writes ``DIR/gpu_bench.json`` (and ``DIR/dmon-*.txt``, NVDEC use sampled by ``nvidia-smi dmon
-s u`` during each GPU run); prints a summary. Nothing is written to ``RESULTS.md``: numbers
from a GPU machine are reviewed before they are published.

How a run is timed: each process is a fresh interpreter that decodes the workload once to warm
up (imports, CUDA context, NVDEC session, swscale contexts), reports ready, and waits; once all
are ready they start together and the wall time runs until the last one ends. A GPU process
decodes with ``no_fallback``, so a video quietly decoded on the CPU fails the run instead of
passing as a GPU number. A mode that cannot run here, or fails, is recorded with its reason and
the benchmark goes on to the next.

Needs only PyAV, numpy, pyarrow and sparkframes (and PyNvVideoCodec for ``pynvc``): no Spark,
no ffmpeg CLI, no network; its video is generated with PyAV's encoder and cached.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / "bench" / ".cache" / "gpu"  # git-ignored
CPU, FFMPEG_GPU, PYNVC = "ffmpeg_cpu", "ffmpeg_gpu", "pynvc"
WORKLOADS = ("scene", "clip")


@dataclass(frozen=True)
class Video:
    """The benchmark's video, as generated."""

    path: str
    width: int
    height: int
    fps: int
    frames: int
    seconds: float


def make_video(width: int, height: int, fps: int, seconds: int, codec: str = "libx264") -> Video:
    """A cached H.264 (or ``codec``) video with moving, textured content, so that the decoder
    works as on footage: a panning noise texture, a travelling colour gradient, film grain."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{codec}_{width}x{height}_{fps}fps_{seconds}s.mp4"
    frames = fps * seconds
    if not path.exists():
        rng = np.random.default_rng(7)
        texture = rng.integers(0, 256, (height // 8 + 1, (width + 8 * frames) // 8 + 1), np.uint8)
        texture = np.kron(texture, np.ones((8, 8), np.uint8))
        ramp = np.linspace(0, 255, width, dtype=np.float32)
        part = path.with_suffix(".part.mp4")
        with av.open(str(part), "w") as out:
            stream = out.add_stream(codec, rate=fps, options={"preset": "veryfast", "crf": "23"})
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.codec_context.thread_count = os.cpu_count() or 1
            for i in range(frames):
                luma = texture[:height, 4 * i : 4 * i + width].astype(np.float32)
                hue = np.roll(ramp, 6 * i)[None, :]
                grain = rng.normal(0, 6, (height, width))
                rgb = np.stack(
                    [0.6 * luma + 0.4 * hue, 0.5 * luma + 0.5 * (255 - hue), luma], axis=-1
                )
                rgb = np.clip(rgb + grain[..., None], 0, 255).astype(np.uint8)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        part.replace(path)
    return Video(str(path), width, height, fps, frames, frames / fps)


# ---------------------------------------------------------------------------------------------
# One process's work (``--worker``): warm up, wait for the start, decode, report.
# ---------------------------------------------------------------------------------------------


def run_workload(path: str, workload: str, mode: str, threads: int) -> dict[str, int]:
    """Decode ``path`` once with ``mode``; (output frames, decoded frames). Raises when the
    video was not decoded by ``mode`` or had errors: such a run measured something else."""
    from sparkframes.decoding.backends import choose_decoder
    from sparkframes.extraction.base import ExtractOptions

    choice = choose_decoder(mode, 0, no_fallback=True)
    options = ExtractOptions(threads=threads, decoder=choice, no_fallback=True)
    if workload == "scene":
        from sparkframes.extraction.video import extract_video_frames

        extraction = extract_video_frames(path, (27, 48), options=options)
    else:
        from sparkframes.extraction.clip import extract_clip_frames
        from sparkframes.sampling.specs import NATIVE, ExtractionSpec

        rates = (Fraction(1), Fraction(2))
        specs = [
            ExtractionSpec("embeddings", target_fps=rates, target_res=(224, 224)),
            ExtractionSpec("native", target_fps=rates, target_res=NATIVE),
        ]
        extraction = extract_clip_frames(path, specs, options=options)
    output = sum(len(batch) for batch in extraction)
    report = extraction.report
    if report.errors or report.decoder != mode:
        raise RuntimeError(f"decoded by {report.decoder}, errors: {report.errors}")
    return {"output": output, "decoded": report.decode.frames_decoded}


def worker(spec: dict[str, Any]) -> int:
    """Body of one benchmark process: warm-up, "ready", wait for "go", timed repeats, result."""
    result: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        run_workload(spec["path"], spec["workload"], spec["mode"], spec["threads"])
        result["warmup_s"] = time.perf_counter() - started
    except BaseException as exc:
        print(json.dumps({"error": f"warm-up: {type(exc).__name__}: {exc}"}), flush=True)
        return 1
    print(json.dumps({"ready": True}), flush=True)
    if sys.stdin.readline().strip() != "go":
        return 1
    output = decoded = 0
    try:
        started = time.perf_counter()
        for _ in range(spec["repeats"]):
            counts = run_workload(spec["path"], spec["workload"], spec["mode"], spec["threads"])
            output += counts["output"]
            decoded += counts["decoded"]
        result.update(seconds=time.perf_counter() - started, output=output, decoded=decoded)
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(result), flush=True)
    return 0 if "error" not in result else 1


# ---------------------------------------------------------------------------------------------
# The parent: machine facts, NVDEC sampling, one timed run per (workload, mode, processes).
# ---------------------------------------------------------------------------------------------


def nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output, or None where there is none (no GPU, no driver)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        run = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return run.stdout.strip() if run.returncode == 0 else None


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    from sparkframes.decoding.backends import PYNVC as _PYNVC
    from sparkframes.decoding.backends import driver_libraries, gpu_gap

    info: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pyav": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
        "driver_libraries": driver_libraries(),
        "gpus": nvidia_smi(
            "--query-gpu=index,name,uuid,driver_version,memory.total", "--format=csv,noheader"
        ),
    }
    gap = gpu_gap(_PYNVC, 0)
    if gap is None:
        import PyNvVideoCodec

        info["pynvc"] = getattr(PyNvVideoCodec, "__version__", "unknown")
    return info


@dataclass
class Dmon:
    """``nvidia-smi dmon -s u`` (utilisation, ``dec`` is NVDEC's) sampled into ``path`` while
    a GPU run lasts; nothing where there is no nvidia-smi."""

    path: Path
    proc: subprocess.Popen | None = None
    samples: list[dict[str, str]] = field(default_factory=list)

    def __enter__(self) -> Dmon:
        exe = shutil.which("nvidia-smi")
        if exe is not None:
            self.proc = subprocess.Popen(
                [exe, "dmon", "-s", "u", "-o", "T", "-d", "1"],
                stdout=self.path.open("w"),
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.samples = parse_dmon(self.path.read_text())

    def summary(self) -> dict[str, Any] | None:
        """Mean and peak NVDEC (``dec``) and SM use over the run's samples, in percent."""
        if self.proc is None:
            return None
        out: dict[str, Any] = {"file": self.path.name, "samples": len(self.samples)}
        for column in ("dec", "sm"):
            values = [float(s[column]) for s in self.samples if s.get(column, "-").isdigit()]
            if values:
                out[f"{column}_mean"] = round(sum(values) / len(values), 1)
                out[f"{column}_max"] = max(values)
        return out


def parse_dmon(text: str) -> list[dict[str, str]]:
    """Rows of ``nvidia-smi dmon`` output as {column: value}, by its ``#`` header line."""
    columns: list[str] = []
    rows = []
    for line in text.splitlines():
        if line.startswith("#"):
            names = line.lstrip("#").split()
            if "gpu" in names:
                columns = names
            continue
        values = line.split()
        if columns and len(values) == len(columns):
            rows.append(dict(zip(columns, values, strict=True)))
    return rows


def timed_run(
    video: Video,
    workload: str,
    mode: str,
    processes: int,
    threads: int,
    repeats: int,
    out: Path,
    timeout_s: float,
) -> dict[str, Any]:
    """``processes`` fresh processes each decoding ``video`` ``repeats`` times with ``mode``,
    started together after their warm-up; their summed counts over the common wall time."""
    run: dict[str, Any] = {
        "workload": workload,
        "mode": mode,
        "processes": processes,
        "threads": threads,
        "repeats": repeats,
    }
    spec = {"path": video.path, "workload": workload, "mode": mode}
    spec.update(threads=threads, repeats=repeats)
    python_path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": python_path}
    command = [sys.executable, "-m", "bench.gpu_bench", "--worker", json.dumps(spec)]
    name = f"{workload}-{mode}-{processes}p"
    logs = out / "logs"
    logs.mkdir(exist_ok=True)
    stderr_files = [(logs / f"{name}-{i}.stderr.txt").open("w") for i in range(processes)]
    procs = [
        subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=REPO,
            env=env,
        )
        for stderr in stderr_files
    ]
    # A process stuck in a native call is killed: its pipe then ends and the run fails.
    watchdog = threading.Timer(timeout_s, lambda: [p.kill() for p in procs if p.poll() is None])
    watchdog.start()
    try:
        for i, proc in enumerate(procs):  # warm-up
            line = proc.stdout.readline()
            message = json.loads(line) if line.strip() else {"error": "exited during warm-up"}
            if "error" in message:
                log = (logs / f"{name}-{i}.stderr.txt").read_text()[-1500:]
                raise RuntimeError(f"{message['error']} {log}".strip())
        dmon = Dmon(out / f"dmon-{name}.txt") if mode != CPU else None
        with dmon if dmon is not None else contextlib.nullcontext():
            started = time.perf_counter()
            for proc in procs:
                proc.stdin.write("go\n")
                proc.stdin.flush()
            results = []
            for proc in procs:
                stdout, _ = proc.communicate()
                lines = [x for x in stdout.splitlines() if x.strip()]
                results.append(json.loads(lines[-1]) if lines else {"error": "no result"})
            wall = time.perf_counter() - started
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise RuntimeError("; ".join(errors))
        output = sum(r["output"] for r in results)
        decoded = sum(r["decoded"] for r in results)
        run.update(
            status="ok",
            wall_s=round(wall, 3),
            warmup_s=[round(r["warmup_s"], 3) for r in results],
            output_frames=output,
            decoded_frames=decoded,
            decoded_fps=round(decoded / wall, 1),
            output_fps=round(output / wall, 1),
            videos_per_s=round(processes * repeats / wall, 3),
            realtime_x=round(processes * repeats * video.seconds / wall, 1),
        )
        if dmon is not None and (usage := dmon.summary()):
            run["nvdec"] = usage
    except Exception as exc:  # a failing mode is recorded, and the benchmark goes on
        run.update(status="failed", error=f"{type(exc).__name__}: {exc}")
    finally:
        watchdog.cancel()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        for stderr in stderr_files:
            stderr.close()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="folder for gpu_bench.json (created)")
    parser.add_argument("--quick", action="store_true", help="small video, one repeat, 1 process")
    parser.add_argument("--processes", default="1,4,8", help="processes per GPU mode")
    parser.add_argument("--repeats", type=int, default=0, help="decodes per process (0: auto)")
    parser.add_argument("--modes", default=f"{FFMPEG_GPU},{PYNVC}", help="GPU modes to run")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    cores = os.cpu_count() or 1
    parser.add_argument("--cpu-threads", type=int, default=min(2, cores))
    parser.add_argument(
        "--cpu-processes", type=int, default=0, help="CPU baseline processes (0: all cores)"
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(json.loads(args.worker))
    if args.out is None:
        parser.error("--out is required")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        video = make_video(320, 180, 30, 2)
        processes, repeats = [1], args.repeats or 1
    else:
        video = make_video(1920, 1080, 30, 10)
        processes = [int(p) for p in args.processes.split(",") if p]
        repeats = args.repeats or 3
    cpu_processes = args.cpu_processes or max(1, cores // max(1, args.cpu_threads))
    modes = [m for m in args.modes.split(",") if m]
    workloads = [w for w in args.workloads.split(",") if w]

    from sparkframes.decoding.backends import gpu_gap

    report: dict[str, Any] = {"machine": machine(), "video": asdict(video), "runs": []}
    path = args.out / "gpu_bench.json"

    def record(run: dict[str, Any]) -> None:
        report["runs"].append(run)
        path.write_text(json.dumps(report, indent=2) + "\n")  # whatever happens next, kept
        shown = {k: run[k] for k in run if k not in ("warmup_s", "nvdec")}
        print(json.dumps(shown), flush=True)

    for workload in workloads:
        record(
            timed_run(
                video,
                workload,
                CPU,
                cpu_processes,
                args.cpu_threads,
                repeats,
                args.out,
                args.timeout,
            )
            | {"baseline": f"all {cores} cores"}
        )
        for mode in modes:
            gap = gpu_gap(mode, 0)
            for count in processes:
                if gap is not None:
                    record(
                        {
                            "workload": workload,
                            "mode": mode,
                            "processes": count,
                            "status": "unavailable",
                            "gap": gap.gap.value,
                            "error": str(gap),
                        }
                    )
                    continue
                # Each GPU process decodes with one thread and converts with another.
                run = timed_run(video, workload, mode, count, 2, repeats, args.out, args.timeout)
                record(run)
    ok = [r for r in report["runs"] if r["status"] == "ok"]
    print(f"{len(ok)} of {len(report['runs'])} runs measured; JSON in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
