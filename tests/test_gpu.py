"""GPU decoders on real hardware: same frame choice (pts) as the CPU, pixels within tolerance.

Skipped, with the reason, where no NVIDIA GPU (or PyNvVideoCodec, for pynvc) is present.
"""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from sparkframes.decoding.backends import FFMPEG_GPU, PYNVC, choose_decoder, gpu_unavailable
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.video import extract_video_frames
from sparkframes.sampling.specs import ExtractionSpec
from tests.videos import read_frame_number

pytestmark = pytest.mark.gpu

#: Mean absolute difference per channel value allowed between a GPU and the CPU decode of the
#: same frame (NVDEC's and FFmpeg's YUV->RGB conversions round differently).
PIXEL_TOLERANCE = 4.0


def _need(mode: str) -> None:
    reason = gpu_unavailable(mode, 0)
    if reason:
        pytest.skip(f"{mode} cannot run here: {reason}")


def _rows(extraction):
    return [r for b in extraction for r in b]


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
@pytest.mark.parametrize("name", ["h264_mp4", "hevc_mp4", "ntsc_mp4"])
def test_scene_frames_match_cpu(catalog, mode, name):
    _need(mode)
    path = str(catalog[name])
    cpu = _rows(extract_video_frames(path, (27, 48)))
    options = ExtractOptions(decoder=choose_decoder(mode, 0, no_fallback=True), no_fallback=True)
    ex = extract_video_frames(path, (27, 48), options=options)
    gpu = _rows(ex)
    assert ex.report.decoder == mode
    assert [r.pts_s for r in gpu] == [r.pts_s for r in cpu]
    for a, b in zip(gpu, cpu, strict=True):
        diff = np.abs(a.image.astype(np.int16) - b.image.astype(np.int16)).mean()
        assert diff <= PIXEL_TOLERANCE
        assert read_frame_number(a.image) == read_frame_number(b.image)


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
def test_clip_frames_match_cpu(catalog, mode):
    _need(mode)
    path = str(catalog["h264_mp4"])
    spec = [ExtractionSpec("embeddings", target_fps=(F(1), F(2)), target_res=(64, 64))]
    cpu = _rows(extract_clip_frames(path, spec))
    options = ExtractOptions(decoder=choose_decoder(mode, 0, no_fallback=True), no_fallback=True)
    gpu = _rows(extract_clip_frames(path, spec, options=options))
    key = lambda r: (r.target_fps, r.frame_index)  # noqa: E731
    assert [(key(r), r.pts_s) for r in sorted(gpu, key=key)] == [
        (key(r), r.pts_s) for r in sorted(cpu, key=key)
    ]


def test_pynvc_leaves_matroska_to_the_cpu_with_a_warning(catalog, caplog):
    """PyNvVideoCodec stops at the header's frame count, which Matroska lacks: CPU fallback."""
    _need(PYNVC)
    path = str(catalog["vfr_mkv"])
    ex = extract_video_frames(
        path, (27, 48), options=ExtractOptions(decoder=choose_decoder(PYNVC, 0))
    )
    rows = _rows(ex)
    assert ex.report.decoder == "ffmpeg_cpu" and not ex.report.errors
    assert [r.pts_s for r in rows] == [r.pts_s for r in _rows(extract_video_frames(path, (27, 48)))]
    assert "frame count" in caplog.text
