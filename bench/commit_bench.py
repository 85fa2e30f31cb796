"""Committing a run and refreshing a table: Delta Lake against the protocol it replaced.

    python -m bench.commit_bench [--quick] [--baseline REV]

Two measurements, each with the old protocol (Parquet files, our own manifest, staging renames;
the code of ``--baseline``, the last commit that had it) measured in the same run:

1. **Commit of a run adding 1,000 files** (one small frames file per video, as 1,000 tasks of
   one video each would leave them), on local disk and on the loopback S3 server (moto, in a
   process of its own). Time of the commit alone (the files are written before the clock
   starts), and the bytes it copies: S3 has no rename, so pyarrow's ``move`` of a staged file is
   a server-side copy of every byte.
2. **A no-op incremental refresh over 2,000 up-to-date videos** (hard links of one tiny video,
   extracted once beforehand, not timed): the time of the run on a warm local Spark session,
   and the memory it adds to the driver's Python process (its RSS sampled every 5 ms).

Each protocol runs in a child process of its own (the old one with the baseline checkout first
on ``PYTHONPATH``), the two interleaved over repetitions; times are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / "bench" / ".cache"
BASELINE_REV = "7e7b8d9"  # the last commit with the Parquet + manifest protocol
FRAME_HW = (64, 64)


# --------------------------------------------------------------------------------------------
# Children: one measurement with one protocol. They import only sparkframes and pyarrow, so
# that they run against either checkout.
# --------------------------------------------------------------------------------------------


def _frames_batch(video: str, schema):
    import pyarrow as pa

    h, w = FRAME_HW
    rows = [
        {
            "video_path": video,
            "clip_id": "c",
            "clip_start_s": 0.0,
            "clip_end_s": 1.0,
            "policy": "sequence",
            "target_fps": 2.0,
            "frame_index": i,
            "pts_s": i / 2,
            "height": h,
            "width": w,
            "decoder": "ffmpeg_cpu",
            "frame": bytes(h * w * 3),
            "frame_encoding": "raw",  # a column the old protocol's schema does not have
        }
        for i in range(2)
    ]
    return pa.RecordBatch.from_pylist(
        [{k: v for k, v in r.items() if k in schema.names} for r in rows], schema=schema
    )


def _child_commit_new(output: str, files: int) -> dict:
    from sparkframes.table.commit import AttemptResult, commit_run
    from sparkframes.table.delta import ERRORS, FRAMES, STATE, TableLocation, ensure_table
    from sparkframes.table.files import AttemptWriter
    from sparkframes.table.schema import FRAMES_SCHEMA
    from sparkframes.table.state import UnitState

    loc = TableLocation.of(output)
    for kind in (FRAMES, ERRORS, STATE):
        ensure_table(loc, kind)
    writer = AttemptWriter(loc.fs, loc.root, loc.root_of(ERRORS), "part-bench")
    units = []
    for i in range(files):
        video = f"/videos/v{i:05d}.mp4"
        writer.write_frames("embeddings", _frames_batch(video, FRAMES_SCHEMA), video)
        writer.end_video()
        units.append(UnitState(video, "embeddings", 1000, 1, "key", frames=2))
    frame_files, error_files = writer.close()
    data_bytes = sum(f.size for f in frame_files)
    log_before = _tree_bytes(loc, "_delta_log") + _tree_bytes(loc, "_state")
    started = time.perf_counter()
    commit_run(
        loc, "bench", [AttemptResult(frame_files, error_files, units)], overwrite=False, metadata={}
    )
    seconds = time.perf_counter() - started
    written = _tree_bytes(loc, "_delta_log") + _tree_bytes(loc, "_state") - log_before
    listed = len(_listed_files(loc))
    assert listed == files, listed
    return {"seconds": seconds, "copied": 0, "written": written, "data": data_bytes}


def _listed_files(loc) -> list[str]:
    from deltalake import DeltaTable

    return DeltaTable(loc.uri, storage_options=loc.storage_options).file_uris()


def _child_commit_old(output: str, files: int) -> dict:
    import posixpath

    from sparkframes.table.writer import StagingWriter

    from sparkframes.filesystems import resolve
    from sparkframes.table.commit import (
        AttemptResult,
        UnitKey,
        UnitResult,
        commit_run,
        staging_location,
    )
    from sparkframes.table.schema import FRAMES_SCHEMA

    fs, root = resolve(output)
    _, staging = resolve(staging_location(output))
    attempts = []
    for i in range(files):  # one task per video: one staged file each
        video = f"/videos/v{i:05d}.mp4"
        folder = posixpath.join(staging, "bench", f"p{i:05d}-a0-t{i}")
        writer = StagingWriter(fs, folder, f"part-bench-{i:05d}")
        writer.write_frames("embeddings", _frames_batch(video, FRAMES_SCHEMA), video)
        unit = UnitResult(video, "embeddings", UnitKey(1000, 1, "key"))
        attempts.append(AttemptResult(folder, [unit], writer.close()))
    data_bytes = sum(
        fs.get_file_info(posixpath.join(a.staging_dir, f.relpath)).size
        for a in attempts
        for f in a.files
    )
    started = time.perf_counter()
    commit_run(fs, root, "bench", attempts, overwrite=False)
    seconds = time.perf_counter() - started
    manifest = fs.get_file_info(posixpath.join(root, "_sparkframes/manifest.parquet")).size
    copied = 0 if type(fs).__name__ == "LocalFileSystem" else data_bytes
    return {"seconds": seconds, "copied": copied, "written": manifest, "data": data_bytes}


def _tree_bytes(loc, sub: str) -> int:
    import posixpath

    from pyarrow import fs as pafs

    selector = pafs.FileSelector(
        posixpath.join(loc.root, sub), recursive=True, allow_not_found=True
    )
    return sum(i.size or 0 for i in loc.fs.get_file_info(selector) if i.type == pafs.FileType.File)


def _child_refresh(input_path: str, output: str) -> dict:
    """Run clip-frames (policy middle) twice on one session: the first run warms it up (or, on
    a new table, extracts every video); the second is timed and its RSS sampled."""
    import psutil

    from sparkframes.options import ClipFramesConfig, build_config
    from sparkframes.spark.job import run_clip_frames
    from sparkframes.spark.session import get_session

    spark = get_session("local[2]", "commit-bench", {"spark.ui.showConsoleProgress": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    values = {"input": input_path, "output": output, "policy": "middle", "progress": False}
    config = build_config(ClipFramesConfig, {**values, "video_timeout_s": 0})
    run_clip_frames(spark, config)
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    summary = run_clip_frames(spark, config)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    spark.stop()
    return {
        "seconds": seconds,
        "added_mib": (peak[0] - base) / 2**20,
        "processed": summary.videos_processed,
        "skipped": summary.videos_skipped,
    }


def _child(args: argparse.Namespace) -> int:
    if args.child == "commit":
        fn = _child_commit_new if args.protocol == "new" else _child_commit_old
        result = fn(args.output, args.files)
    else:
        result = _child_refresh(args.input, args.output)
    print("RESULT " + json.dumps(result))
    return 0


# --------------------------------------------------------------------------------------------
# Parent: set-up, interleaving, report
# --------------------------------------------------------------------------------------------


def _run_child(protocol: str, baseline: Path, argv: list[str], env: dict | None = None) -> dict:
    # The checkout is both first on the path and the working folder: Spark's Python workers
    # find modules from the latter too.
    checkout = baseline if protocol == "old" else REPO
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": str(checkout)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", *argv, "--protocol", protocol]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=child_env, cwd=checkout, timeout=1800
    )
    if out.returncode != 0:
        raise RuntimeError(f"{protocol} child failed: {out.stderr[-3000:]}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 files, 200 videos, 1 repetition")
    parser.add_argument("--baseline", default=BASELINE_REV, help="git rev of the old protocol")
    parser.add_argument("--child", choices=["commit", "refresh"], help=argparse.SUPPRESS)
    parser.add_argument("--protocol", choices=["old", "new"], help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--files", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    from bench.common import (
        baseline_checkout,
        load_note,
        machine_info,
        md_table,
        median,
        tiny_videos_input,
        write_section,
    )
    from tests.s3 import s3_server

    files = 100 if args.quick else 1000
    videos = 200 if args.quick else 2000
    reps = 1 if args.quick else 3
    baseline = baseline_checkout(args.baseline)
    work = CACHE / "commit_bench"
    import shutil

    shutil.rmtree(work / "tables", ignore_errors=True)
    (work / "tables").mkdir(parents=True)
    header = machine_info()
    started = time.perf_counter()

    commits: dict[tuple[str, str], list[dict]] = {}
    with s3_server("bench") as s3_env:
        for rep in range(reps):
            order = ["old", "new"] if rep % 2 == 0 else ["new", "old"]
            for store in ("local", "s3"):
                for protocol in order:
                    name = f"{protocol}-{rep}"
                    output = (
                        str(work / "tables" / store / name)
                        if store == "local"
                        else f"s3://bench/{name}/frames"
                    )
                    argv = ["commit", "--output", output, "--files", str(files)]
                    env = s3_env if store == "s3" else None
                    result = _run_child(protocol, baseline, argv, env)
                    commits.setdefault((store, protocol), []).append(result)

    inputs = tiny_videos_input(work, videos)
    refreshes: dict[str, list[dict]] = {}
    for protocol in ("old", "new"):  # set-up: one extraction of every video, not timed
        _run_child(
            protocol,
            baseline,
            [
                "refresh",
                "--input",
                str(inputs),
                "--output",
                str(work / "tables" / f"refresh-{protocol}"),
            ],
        )
    for rep in range(reps):
        for protocol in ["old", "new"] if rep % 2 == 0 else ["new", "old"]:
            argv = [
                "refresh",
                "--input",
                str(inputs),
                "--output",
                str(work / "tables" / f"refresh-{protocol}"),
            ]
            result = _run_child(protocol, baseline, argv)
            assert result["processed"] == 0 and result["skipped"] == videos, result
            refreshes.setdefault(protocol, []).append(result)

    data = {"commits": {f"{s}/{p}": v for (s, p), v in commits.items()}, "refresh": refreshes}
    (work / "results.json").write_text(json.dumps(data, indent=2))
    _report(
        header,
        commits,
        refreshes,
        files,
        videos,
        reps,
        time.perf_counter() - started,
        md_table,
        median,
        load_note,
        write_section,
        args.baseline,
    )
    return 0


def _report(
    header,
    commits,
    refreshes,
    files,
    videos,
    reps,
    seconds,
    md_table,
    median,
    load_note,
    write_section,
    rev,
) -> None:
    def mib(n: float) -> str:
        return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"

    rows = []
    for store in ("local", "s3"):
        old, new = commits[(store, "old")], commits[(store, "new")]
        t_old, t_new = median(r["seconds"] for r in old), median(r["seconds"] for r in new)
        rows.append(
            [
                store,
                f"{t_old:.2f}",
                f"{t_new:.2f}",
                f"{t_old / t_new:.1f}x",
                mib(old[0]["copied"]),
                mib(new[0]["copied"]),
                mib(old[0]["written"]),
                mib(new[0]["written"]),
                mib(new[0]["data"]),
            ]
        )
    commit_table = md_table(
        [
            "store",
            "old s",
            "Delta s",
            "Delta faster",
            "old copied",
            "Delta copied",
            "old metadata written",
            "Delta metadata written",
            "data in the files",
        ],
        rows,
    )
    old, new = refreshes["old"], refreshes["new"]
    t_old, t_new = median(r["seconds"] for r in old), median(r["seconds"] for r in new)
    m_old, m_new = median(r["added_mib"] for r in old), median(r["added_mib"] for r in new)
    refresh_table = md_table(
        ["protocol", "no-op refresh s", "driver memory added"],
        [
            [f"old (`{rev}`: manifest)", f"{t_old:.2f}", f"{m_old:.1f} MiB"],
            ["Delta (`_state` table)", f"{t_new:.2f}", f"{m_new:.1f} MiB"],
            ["Delta / old", f"{t_new / t_old:.2f}x", f"{m_new / m_old:.2f}x" if m_old else "-"],
        ],
    )
    body = f"""## Commits and refreshes: Delta vs the manifest protocol (`bench/commit_bench.py`)

{header}

{reps} repetition(s), the two protocols interleaved in child processes; medians. Whole run
{seconds:.0f} s. The old protocol is the code of `{rev}`.

Commit of a run adding {files} files (one per video, {FRAME_HW[0]}x{FRAME_HW[1]} frames, 2 rows
each), the files already written; S3 is moto's server on loopback. *copied*: data bytes the
commit moves (S3 has no rename: the old protocol's move is a copy of every byte);
*metadata written*: the manifest, or the new Delta log entries and `_state` files.

{commit_table}

A no-op incremental refresh over {videos} up-to-date videos (policy `middle`, the table made
once beforehand), on a warm local[2] session: time of the run, and the memory it adds to the
driver's Python process (peak RSS during the run minus RSS before it, sampled every 5 ms).

{refresh_table}

{load_note()}
"""
    write_section("commit_bench", body)


if __name__ == "__main__":
    sys.exit(main())
