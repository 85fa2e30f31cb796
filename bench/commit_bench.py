"""Commits and refreshes: Delta Lake against the manifest protocol it replaced.

Two measurements, each with the old protocol (Parquet files, our own manifest, staging renames:
the code of ``--baseline``, the last commit that had it) run beside the current code:

1. the commit of a run adding 1,000 files (one small frames file per video, as 1,000 tasks of
   one video each would leave them), on local disk and on the loopback S3 server (moto, in a
   process of its own): the commit alone (the files are written before the clock starts), and
   the bytes it copies (S3 has no rename: the old protocol's move is a copy of every byte) and
   the metadata it writes;
2. a no-op incremental refresh over 2,000 up-to-date videos (hard links of one tiny video,
   extracted once beforehand), run with the ``sparkframes`` command on a warm local[2]
   session: its time, and the memory it adds to the driver's Python process.

Each protocol runs in a child process of its own on its checkout, the two interleaved.
Run: ``python -m bench.commit_bench [--quick] [--reps N] [--baseline REV]``.
"""

from __future__ import annotations

import posixpath
import shutil
from contextlib import ExitStack
from typing import Any

from bench.harness import CACHE_DIR, REPO, Child, Run, baseline_checkout, cli_job, measure, median
from bench.videos import tiny_videos_input

BASELINE_REV = "7e7b8d9"  # the last commit with the Parquet + manifest protocol
FRAME_HW = (64, 64)


def _frames_batch(video: str, schema: Any) -> Any:
    """Two rows of a video, in whichever frames schema the checkout has."""
    import pyarrow as pa

    h, w = FRAME_HW
    row = {"video_path": video, "clip_id": "c", "clip_start_s": 0.0, "clip_end_s": 1.0}
    row |= {"policy": "sequence", "target_fps": 2.0, "height": h, "width": w}
    row |= {"decoder": "ffmpeg_cpu", "frame": bytes(h * w * 3), "frame_encoding": "raw"}
    rows = [{**row, "frame_index": i, "pts_s": i / 2} for i in range(2)]
    return pa.RecordBatch.from_pylist(
        [{k: v for k, v in r.items() if k in schema.names} for r in rows], schema=schema
    )


def _tree_bytes(fs: Any, root: str) -> int:
    from pyarrow import fs as pafs

    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    return sum(i.size or 0 for i in fs.get_file_info(selector) if i.type == pafs.FileType.File)


def commit_new(output: str, files: int) -> dict[str, Any]:
    """Delta: stage ``files`` one-video files, then time the commit (log entries, ``_state``)."""
    from deltalake import DeltaTable

    from bench import internals as sf

    loc = sf.TableLocation.of(output)
    for kind in (sf.FRAMES, sf.ERRORS, sf.STATE):
        sf.ensure_table(loc, kind)
    videos = [f"/videos/v{i:05d}.mp4" for i in range(files)]
    batches = [("embeddings", _frames_batch(v, sf.FRAMES_SCHEMA), v) for v in videos]
    _, frame_files, error_files = sf.stage(output, batches)
    units = [sf.UnitState(v, "embeddings", 1000, 1, "key", frames=2) for v in videos]

    def metadata() -> int:
        return sum(
            _tree_bytes(loc.fs, posixpath.join(loc.root, d)) for d in ("_delta_log", "_state")
        )

    before = metadata()
    t = measure(lambda: sf.commit(loc, frame_files, error_files, units, overwrite=False))
    listed = DeltaTable(loc.uri, storage_options=loc.storage_options).file_uris()
    assert len(listed) == files, len(listed)
    data = sum(f.size for f in frame_files)
    return {"seconds": t.wall, "copied": 0, "written": metadata() - before, "data": data}


def commit_old(output: str, files: int) -> dict[str, Any]:
    """The manifest protocol of the baseline checkout (its own internals, frozen there): one
    staged file per task, then time the commit (moves and the manifest)."""
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
    for i in range(files):
        video = f"/videos/v{i:05d}.mp4"
        folder = posixpath.join(staging, "bench", f"p{i:05d}-a0-t{i}")
        writer = StagingWriter(fs, folder, f"part-bench-{i:05d}")
        writer.write_frames("embeddings", _frames_batch(video, FRAMES_SCHEMA), video)
        unit = UnitResult(video, "embeddings", UnitKey(1000, 1, "key"))
        attempts.append(AttemptResult(folder, [unit], writer.close()))
    data = sum(
        fs.get_file_info(posixpath.join(a.staging_dir, f.relpath)).size
        for a in attempts
        for f in a.files
    )
    t = measure(lambda: commit_run(fs, root, "bench", attempts, overwrite=False))
    manifest = fs.get_file_info(posixpath.join(root, "_sparkframes/manifest.parquet")).size
    copied = 0 if type(fs).__name__ == "LocalFileSystem" else data
    return {"seconds": t.wall, "copied": copied, "written": manifest, "data": data}


def serve(request: dict[str, Any]) -> dict[str, Any]:
    """In a ``Child`` on one checkout: a commit, or a run of the job (timed, with the driver's
    peak RSS above its start)."""
    if request["do"] == "commit":
        commit = commit_new if request["protocol"] == "new" else commit_old
        return commit(request["output"], request["files"])
    args = ["clip-frames", "--input", request["input"], "--output", request["output"]]
    args += ["--master", "local[2]", "--policy", "middle", "--video-timeout-s", "0"]
    t = measure(lambda: cli_job(*args), memory=True)
    return {"seconds": t.wall, "added_mib": t.peak_mib, **t.value}


def main(argv: list[str] | None = None) -> int:
    from tests.s3 import s3_server

    baseline = {"default": BASELINE_REV, "help": "git rev of the old protocol"}
    run = Run(__file__, __doc__, reps=3, argv=argv, baseline=baseline)
    files, videos = (50, 50) if run.quick else (1000, 2000)
    checkouts = {"old": baseline_checkout(run.args.baseline), "new": REPO}
    work = CACHE_DIR / "commit_bench"
    shutil.rmtree(work / "tables", ignore_errors=True)
    inputs = str(tiny_videos_input(work, videos))
    commits: dict[tuple[str, str], list[dict]] = {}
    refreshes: dict[str, list[dict]] = {"old": [], "new": []}
    with s3_server("bench") as s3_env, ExitStack() as stack:
        children = {
            p: stack.enter_context(Child("bench.commit_bench", checkout, s3_env))
            for p, checkout in checkouts.items()
        }
        for protocol, child in children.items():  # set-up: every video extracted, not timed
            child.ask(
                do="refresh", input=inputs, output=str(work / "tables" / f"refresh-{protocol}")
            )
        for rep in range(run.reps):
            order = ["old", "new"] if rep % 2 == 0 else ["new", "old"]
            for store in ("local", "s3"):
                for protocol in order:
                    name = f"{protocol}-{rep}"
                    output = (
                        str(work / "tables" / store / name)
                        if store == "local"
                        else f"s3://bench/{name}/frames"
                    )
                    got = children[protocol].ask(
                        do="commit", protocol=protocol, output=output, files=files
                    )
                    commits.setdefault((store, protocol), []).append(got)
            for protocol in order:
                output = str(work / "tables" / f"refresh-{protocol}")
                got = children[protocol].ask(do="refresh", input=inputs, output=output)
                assert got["processed"] == 0 and got["skipped"] == videos, got
                refreshes[protocol].append(got)

    def mid(runs: list[dict], key: str) -> float:
        return median(r[key] for r in runs)

    commit_rows = []
    for store in ("local", "s3"):
        old, new = commits[(store, "old")], commits[(store, "new")]
        row: dict[str, Any] = {
            "store": store,
            "old s": mid(old, "seconds"),
            "Delta s": mid(new, "seconds"),
        }
        row["Delta faster"] = {"median": row["old s"] / row["Delta s"]}
        row |= {
            "old copied MiB": old[0]["copied"] / 2**20,
            "Delta copied MiB": new[0]["copied"] / 2**20,
        }
        row |= {
            "old metadata written KiB": old[0]["written"] / 1024,
            "Delta metadata written KiB": new[0]["written"] / 1024,
        }
        commit_rows.append(row | {"data in the files MiB": new[0]["data"] / 2**20})
    refresh_rows = [
        {
            "protocol": label,
            "no-op refresh s": mid(refreshes[p], "seconds"),
            "driver MiB added": mid(refreshes[p], "added_mib"),
        }
        for p, label in (
            ("old", f"old ({run.args.baseline}: manifest)"),
            ("new", "Delta (_state table)"),
        )
    ]
    parameters = {"old protocol": run.args.baseline, "files": files, "refresh videos": videos}
    parameters |= {
        "frames per file": f"2 rows of {FRAME_HW[0]}x{FRAME_HW[1]}",
        "s3": "moto's server on loopback",
    }
    run.save(parameters, {"commit": commit_rows, "no-op refresh": refresh_rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
