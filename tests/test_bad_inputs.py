"""Bad and tricky inputs: each costs a clear error (or decodes anyway), never the job.

Library-level checks per file, then the whole corpus and a fuzz batch through the Spark job.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from fractions import Fraction as F

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes import ExtractionSpec, ExtractOptions, extract_clip_frames, extract_video_frames
from sparkframes.errors import VideoTooLargeError
from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.table.delta import TableLocation
from sparkframes.table.reader import read_errors, read_table
from tests.conftest import oracle_for
from tests.corpus import build_bad_corpus, fuzz_variants
from tests.tables import read_state

SPEC = [ExtractionSpec("embeddings", target_fps=(F(5),))]

#: What the user sees, per file: the error class and words of its message.
EXPECTED_ERRORS = {
    "zero_bytes.mp4": ("VideoOpenError", "empty"),
    "truncated_head.mp4": ("VideoOpenError", "cannot open as a video container"),
    "audio_only.mp4": ("NoVideoStreamError", "no video stream"),
    "image.mp4": ("NotAVideoError", "still image"),
    "text.mp4": ("VideoOpenError", "cannot open as a video container"),
    "directory.mp4": ("VideoOpenError", "directory"),
    "raw_stream.h264": ("EmptyVideoError", "remux it into a container"),
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_bad_corpus(tmp_path_factory.mktemp("bad"))


def run_both(path: str, **options):
    clip = extract_clip_frames(path, SPEC, options=ExtractOptions(**options))
    clip_rows = [r for b in clip for r in b]
    video = extract_video_frames(path, options=ExtractOptions(**options))
    video_rows = [r for b in video for r in b]
    return (clip_rows, clip.report), (video_rows, video.report)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_unusable_files_get_one_clear_error(corpus, name):
    path = str(corpus[name].path)
    for rows, report in run_both(path):
        assert rows == []
        (error,) = report.errors
        error_class, words = EXPECTED_ERRORS[name]
        assert type(error).__name__ == error_class
        assert path in str(error) and words in str(error)


@pytest.mark.parametrize("name", ["corrupt_middle.mkv", "corrupt_middle.mp4"])
def test_damaged_streams_keep_what_decodes_and_say_where_it_failed(corpus, name):
    for rows, report in run_both(str(corpus[name].path)):
        assert rows, "frames before (and after) the damage must be kept"
        assert any(type(e).__name__ == "DecodeError" for e in report.errors)
        assert any("decode" in str(e) and " t = " in str(e) for e in report.errors)


def test_truncated_tail_keeps_the_frames_before_the_cut(corpus):
    (clip_rows, _), (video_rows, _) = run_both(str(corpus["truncated_tail.mkv"].path))
    assert len(video_rows) >= 28 and clip_rows


def test_headers_that_claim_a_huge_frame_are_refused(corpus):
    path = str(corpus["large_frame.mp4"].path)
    for rows, report in run_both(path, max_pixels=1280 * 720):
        assert rows == []
        (error,) = report.errors
        assert isinstance(error, VideoTooLargeError) and "1920x1088" in str(error)
    (rows, report), _ = run_both(path)
    assert rows and not report.errors


@pytest.mark.parametrize("name", ["lying_duration.mp4", "lying_duration.mkv"])
def test_lying_durations_do_not_move_the_timeline(corpus, catalog, name):
    source = "h264_mp4" if name.endswith("mp4") else "h264_mkv"
    oracle = oracle_for(catalog[source])
    (rows, report), (video_rows, _) = run_both(str(corpus[name].path))
    assert not report.errors
    assert {r.clip_end_s for r in rows} == {oracle.end_s}  # 2.4 s, not the claimed 24 s
    assert [r.pts_s for r in video_rows] == [f.pts_s for f in oracle.frames]


@pytest.mark.parametrize("name", ["duplicate_pts.mkv", "nonmonotonic_pts.mkv"])
def test_odd_timestamps_still_give_frames(corpus, name):
    for rows, _report in run_both(str(corpus[name].path)):
        assert rows
    (rows, _), _ = run_both(str(corpus[name].path))
    times = [r.pts_s for r in sorted(rows, key=lambda r: r.frame_index)]
    assert times == sorted(times)


def test_unreadable_files_are_reported(tmp_path, catalog):
    """Root reads anything; drop its capability to bypass file permissions for this check."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to run without read permission as root")
    locked = tmp_path / "locked.mp4"
    shutil.copy(catalog["h264_mp4"], locked)
    locked.chmod(0)
    code = (
        "import sys\nfrom sparkframes import ExtractionSpec, extract_clip_frames\n"
        "ex = extract_clip_frames(sys.argv[1], [ExtractionSpec('embeddings')])\n"
        "print(sum(len(b) for b in ex)); print(ex.report.errors[0])\n"
    )
    cmd = [sys.executable, "-c", code, str(locked)]
    if os.geteuid() == 0:
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--", *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60).stdout
    frames, error = out.strip().splitlines()
    assert frames == "0" and "permission denied" in error and str(locked) in error


def _job(spark, tmp_path, paths: list[str]) -> tuple[object, pa.Table, pa.Table]:
    pq.write_table(pa.table({"video_path": paths}), tmp_path / "in.parquet")
    config = build_options(
        ClipFramesOptions,
        {
            "input": str(tmp_path / "in.parquet"),
            "output": str(tmp_path / "out"),
            "target_res": "32x32",
            "video_timeout_s": 60,
        },
    )
    summary = write_table(spark, config)
    return summary, read_table(str(tmp_path / "out")), read_errors(str(tmp_path / "out"))


def _accounted(paths, frames: pa.Table, errors: pa.Table) -> set[str]:
    with_rows = set(frames["video_path"].to_pylist()) | set(errors["video_path"].to_pylist())
    return set(paths) - with_rows


def test_the_whole_corpus_through_the_job(spark, tmp_path, corpus, catalog):
    good = str(catalog["h264_mp4"])
    paths = [good, *(str(b.path) for b in corpus.values())]
    summary, frames, errors = _job(spark, tmp_path, paths)
    assert _accounted(paths, frames, errors) == set()  # every input: frames or an error
    assert good in frames["video_path"].to_pylist() and good not in errors["video_path"].to_pylist()
    failed = {e["video_path"] for e in errors.to_pylist()} - set(frames["video_path"].to_pylist())
    assert failed == {str(corpus[n].path) for n in EXPECTED_ERRORS}
    assert summary.videos_failed == len(EXPECTED_ERRORS)
    # Every video is in the state, failed or not, so the next run leaves the lasting failures be.
    state = read_state(TableLocation.of(str(tmp_path / "out")))
    assert {path for path, _ in state} == set(paths)
    assert {p for (p, _), s in state.items() if s.status == "failed"} == failed


def test_fuzzed_copies_never_crash_the_session(spark, tmp_path, catalog):
    variants = [
        *fuzz_variants(catalog["h264_mp4"], tmp_path / "fz", 12, seed=7),
        *fuzz_variants(catalog["h264_mkv"], tmp_path / "fz", 12, seed=11),
    ]
    paths = [str(p) for p in variants]
    summary, frames, errors = _job(spark, tmp_path, paths)
    assert summary.videos_processed == len(paths)
    assert _accounted(paths, frames, errors) == set()
    assert spark.range(3).count() == 3  # the session survived
