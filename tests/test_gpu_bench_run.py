"""Issue 24, item 10: ``bench/gpu_bench.py`` keeps going past a mode that fails or cannot run,
and writes what it measured as JSON; here with its CPU baseline only, in a tiny setting."""

from __future__ import annotations

import json

from bench.gpu_bench import CPU, Video, main, parse_dmon, timed_run
from sparkframes.decoding.backends import FFMPEG_GPU, PYNVC, driver_libraries, gpu_gap

# --- item 10: the benchmark records a failing run and goes on -------------------------------


def test_gpu_bench_records_failures_and_writes_json(tmp_path):
    missing = Video(str(tmp_path / "missing.mp4"), 320, 180, 30, 60, 2.0)
    run = timed_run(missing, "scene", CPU, 1, 1, 1, tmp_path, timeout_s=120)
    assert run["status"] == "failed" and "warm-up" in run["error"]
    out = tmp_path / "out"
    assert main(["--out", str(out), "--quick", "--workloads", "clip", "--cpu-threads", "1"]) == 0
    report = json.loads((out / "gpu_bench.json").read_text())
    runs = {(r["mode"], r["status"]) for r in report["runs"]}
    assert (CPU, "ok") in runs
    for mode in (FFMPEG_GPU, PYNVC):
        gap = gpu_gap(mode, 0)
        expected = "unavailable" if gap is not None else "ok"
        assert (mode, expected) in runs
    cpu = next(r for r in report["runs"] if r["mode"] == CPU)
    assert cpu["output_frames"] > 0 and cpu["decoded_fps"] > 0
    assert report["machine"]["driver_libraries"] == driver_libraries()


_DMON = """\
#Time        gpu     sm    mem    enc    dec    jpg    ofa
#HH:MM:SS    Idx      %      %      %      %      %      %
 10:00:01      0      3      1      0     45      0      0
 10:00:02      0      4      1      0     52      -      -
"""


def test_nvdec_use_is_read_from_nvidia_smi_dmon():
    rows = parse_dmon(_DMON)
    assert [row["dec"] for row in rows] == ["45", "52"]
    assert rows[0]["gpu"] == "0" and rows[1]["jpg"] == "-"
