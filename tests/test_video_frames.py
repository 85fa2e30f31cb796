"""Full-video (scene) frames against the sequential-decode oracle; decoder fallbacks; memory."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import av
import numpy as np
import pytest

from sparkframes.decoding.backends import (
    CPU,
    FFMPEG_GPU,
    DecoderChoice,
    DecoderUnavailableError,
    choose_decoder,
    cuda_devices,
)
from sparkframes.decoding.pynvc_decoder import nvdec_refusal
from sparkframes.decoding.source import open_video
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.video import VideoFrameExtraction, extract_video_frames
from sparkframes.sampling.specs import NATIVE, ExtractionSpec
from tests.conftest import oracle_for
from tests.videos import VideoSpec, make_video, read_frame_number

NO_GPU = cuda_devices()[0] == 0
SCENE_VIDEOS = [
    "h264_mp4",
    "vfr_mkv",
    "offset_mkv",
    "rot90_mp4",
    "hevc10_mkv",
    "odd_vp9_webm",
    "mpeg4_avi",
    "three_frames_mp4",
]


def rows_of(extraction):
    return [row for batch in extraction for row in batch]


@pytest.mark.parametrize("threads", [1, 2])  # 2: decoding overlaps conversion (prefetch.py)
@pytest.mark.parametrize("name", SCENE_VIDEOS)
def test_every_frame_in_order_at_exactly_h_by_w(catalog, name, threads):
    oracle = oracle_for(catalog[name])
    options = ExtractOptions(threads=threads)
    ex = extract_video_frames(str(catalog[name]), (27, 48), options=options)
    rows = rows_of(ex)
    assert not ex.report.errors
    assert [r.frame_index for r in rows] == list(range(len(oracle.frames)))
    assert [r.pts_s for r in rows] == [f.pts_s for f in oracle.frames]
    assert all(r.image.shape == (27, 48, 3) for r in rows)  # 27 rows by 48 columns, not swapped
    got = [read_frame_number(r.image, oracle.rotation) for r in rows]
    assert got == [f.number for f in oracle.frames]
    assert {(r.clip_start_s, r.clip_end_s) for r in rows} == {(F(0), oracle.end_s)}
    assert {(r.purpose, r.policy, r.target_fps) for r in rows} == {("scene", "all", None)}


def test_pixels_equal_a_resize_of_the_oracle_frame(catalog):
    path = str(catalog["h264_mp4"])
    rows = rows_of(extract_video_frames(path, (27, 48)))
    with av.open(path) as container:
        reference = [
            f.to_ndarray(
                format="rgb24",
                width=48,
                height=27,
                interpolation=av.video.reformatter.Interpolation.BICUBIC,
            )
            for f in container.decode(video=0)
        ]
    assert len(rows) == len(reference)
    for row, ref in zip(rows, reference, strict=True):
        assert np.array_equal(row.image, ref)


def test_gpu_mode_without_a_gpu_falls_back_with_one_warning(catalog, caplog):
    if not NO_GPU:
        pytest.skip("this machine has a GPU: the fallback path is not taken")
    with caplog.at_level(logging.WARNING, logger="sparkframes"):
        choice = choose_decoder(FFMPEG_GPU, 0)
    assert choice.mode == CPU and choice.requested == FFMPEG_GPU and choice.fallback_reason
    ex = extract_video_frames(str(catalog["h264_mp4"]), options=ExtractOptions(decoder=choice))
    assert len(rows_of(ex)) == 60 and ex.report.decoder == CPU
    assert choose_decoder("pynvc", 0).mode == CPU
    assert choose_decoder("auto", 0).mode == CPU


def test_gpu_decoder_failing_at_decode_time_falls_back_per_video(catalog, caplog):
    if not NO_GPU:
        pytest.skip("this machine has a GPU: the hwaccel would not fail")
    forced = DecoderChoice(FFMPEG_GPU, FFMPEG_GPU, 0)  # as if the probe had said yes
    with caplog.at_level(logging.WARNING, logger="sparkframes"):
        ex = extract_video_frames(str(catalog["h264_mp4"]), options=ExtractOptions(decoder=forced))
        rows = rows_of(ex)
    assert len(rows) == 60 and ex.report.decoder == CPU and not ex.report.errors
    assert any("decoding on CPU" in r.message for r in caplog.records)


def test_no_fallback_fails_naming_the_cause(catalog):
    if not NO_GPU:
        pytest.skip("this machine has a GPU")
    with pytest.raises(DecoderUnavailableError, match="Frame extraction failed: decoder pynvc"):
        choose_decoder("pynvc", 0, no_fallback=True)
    forced = DecoderChoice(FFMPEG_GPU, FFMPEG_GPU, 0)
    ex = extract_video_frames(
        str(catalog["h264_mp4"]), options=ExtractOptions(decoder=forced, no_fallback=True)
    )
    with pytest.raises(DecoderUnavailableError, match="Frame extraction failed"):
        rows_of(ex)


class _BugUnderTheGpu(VideoFrameExtraction):
    """A fault that is not a refusal (a bug) raised by the GPU path of the real extraction."""

    def _run(self, choice, output):
        if choice.mode != CPU:
            raise ValueError("a bug, not an unavailable decoder")
        yield from super()._run(choice, output)


@pytest.mark.parametrize("no_fallback", [False, True])
def test_a_bug_under_a_gpu_mode_is_neither_a_fallback_nor_unavailable(catalog, no_fallback):
    """Only a refusal sends a video to the CPU: anything else surfaces as itself, so that the
    task records it as an internal error instead of hiding it behind a CPU decode."""
    forced = DecoderChoice(FFMPEG_GPU, FFMPEG_GPU, 0)
    options = ExtractOptions(decoder=forced, no_fallback=no_fallback)
    with pytest.raises(ValueError, match="a bug"):
        rows_of(_BugUnderTheGpu(str(catalog["h264_mp4"]), options=options))


PEAK_RSS_SCRIPT = """
import json, resource, sys
from fractions import Fraction
from pathlib import Path
from tests.videos import VideoSpec, make_video
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.video import extract_video_frames
n, path = int(sys.argv[1]), Path(sys.argv[2])
make_video(path, VideoSpec("long", "libx264", "mkv", 64, 48, n, fps=Fraction(50), gop=250,
                           bframes=3))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ex = extract_video_frames(str(path), (27, 48), options=ExtractOptions(batch_bytes=1 << 20))
frames = sum(len(b) for b in ex)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"frames": frames, "growth_kib": peak - before}))
"""


def test_memory_stays_flat_as_the_video_gets_longer(tmp_path):
    """Peak RSS while streaming 500 vs 2,000 frames: the difference must stay small."""
    results = {}
    for n in (500, 2000):
        out = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_SCRIPT, str(n), str(tmp_path / f"v{n}.mkv")],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
        results[n] = json.loads(out.stdout.strip().splitlines()[-1])
    assert results[500]["frames"] == 500 and results[2000]["frames"] == 2000
    # 1,500 more frames are 5.8 MiB of output; streaming must not keep them.
    assert results[2000]["growth_kib"] - results[500]["growth_kib"] < 4 * 1024, results


#: Coarse quantisation (crf 36) so that H.264's deblocking filter has something to smooth.
DEBLOCKED = VideoSpec(
    "deblocked_mp4", "libx264", "mp4", 320, 240, 48, bframes=2, options={"crf": "36"}
)


@pytest.fixture(scope="module")
def deblocked_video(video_dir: Path) -> Path:
    return make_video(video_dir / DEBLOCKED.filename(), DEBLOCKED)


def _extract_with(path: str, kind: str, size: tuple[int, int], **option: str) -> list:
    options = ExtractOptions(**option)
    if kind == "scene":
        return rows_of(extract_video_frames(path, (27, 48), options=options))
    spec = ExtractionSpec("embeddings", target_fps=(F(5),), target_res=size)
    return rows_of(extract_clip_frames(path, [spec], options=options))


def _same_frames_pixel_diffs(exact: list, changed: list) -> list[float]:
    """Per-row mean pixel difference, after checking both runs chose the same frames."""
    assert [r.pts_s for r in changed] == [r.pts_s for r in exact]
    frames = [read_frame_number(r.image) for r in exact]
    assert [read_frame_number(r.image) for r in changed] == frames
    return [
        np.abs(a.image.astype(np.int16) - b.image).mean()
        for a, b in zip(changed, exact, strict=True)
    ]


@pytest.mark.parametrize("kind", ["scene", "clip"])
def test_skip_loop_filter_changes_pixels_slightly_and_never_the_frames(deblocked_video, kind):
    """The opt-in speed-up reaches the decoder (pixels move) and keeps the frame choice."""
    path = str(deblocked_video)
    exact = _extract_with(path, kind, NATIVE, skip_loop_filter="none")
    diffs = _same_frames_pixel_diffs(
        exact, _extract_with(path, kind, NATIVE, skip_loop_filter="all")
    )
    assert max(diffs) > 0  # the option took effect
    assert np.mean(diffs) < 1.0  # and stays small (documented in docs/decoding.md)


@pytest.mark.parametrize("kind", ["scene", "clip"])
def test_the_area_scaler_moves_pixels_a_little_and_never_the_frames(catalog, kind):
    """The opt-in cheaper scaler reaches swscale (pixels move) and keeps the frame choice."""
    path, size = str(catalog["h264_mp4"]), (24, 32)
    exact = _extract_with(path, kind, size, resize_filter="bicubic")
    diffs = _same_frames_pixel_diffs(exact, _extract_with(path, kind, size, resize_filter="area"))
    assert max(diffs) > 0  # the option took effect
    # Measured 0.4 (scene) and 2.1 (clip) on the tests' sharp-edged patterns, a worst case.
    assert np.mean(diffs) < 4.0


def test_skip_loop_filter_rejects_unknown_levels(catalog):
    with pytest.raises(ValueError, match="skip_loop_filter must be one of"):
        open_video(str(catalog["h264_mp4"]), skip_loop_filter="most")


@pytest.mark.parametrize(
    ("name", "refused"), [("h264_mp4", False), ("vfr_mkv", True), ("odd_vp9_webm", True)]
)
def test_nvdec_is_refused_where_the_header_has_no_true_frame_count(catalog, name, refused):
    """PyNvVideoCodec reads up to the header's frame count: Matroska/WebM have none."""
    with av.open(str(catalog[name])) as container:
        header = container.streams.video[0].frames
        demuxed = sum(1 for p in container.demux(video=0) if p.size)
    assert (nvdec_refusal(header, demuxed) is not None) is refused
    assert "says 10 frames but 12" in (nvdec_refusal(10, 12) or "")
