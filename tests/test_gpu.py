"""GPU decoders on real hardware: the CPU's frame choice (pts) and the CPU's pixels.

Skipped, with the reason, where no NVIDIA GPU (or a driver library, or PyNvVideoCodec, for
pynvc) is present. On a GPU machine run with ``SPARKFRAMES_REQUIRE_GPU=1``: a skip then fails
(``tests/conftest.py``), so a GPU run where nothing reached the GPU cannot pass. Nothing here
is mocked: these tests mean something only where they ran on a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction as F
from pathlib import Path

import numpy as np
import pytest

from sparkframes.decoding.backends import (
    CPU,
    FFMPEG_GPU,
    PYNVC,
    choose_decoder,
    cuda_hwaccel,
    gpu_gap,
    open_decoder,
)
from sparkframes.decoding.source import HWACCEL_THREADS, open_video
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.video import extract_video_frames
from sparkframes.sampling.specs import NATIVE, ExtractionSpec
from tests.videos import GPU_CATALOG, NVDEC_TOO_SMALL, read_frame_number, spec_path

pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[1]

#: Mean absolute difference per channel value allowed between a GPU and the CPU decode of the
#: same grey code frame (FFmpeg's NV12 and planar paths round chroma slightly differently).
PIXEL_TOLERANCE = 4.0
#: The same on the colourful BT.709 clips: a BT.709 picture converted as BT.601 is about 7
#: levels off, limited range taken as full more (``test_gpu_readiness`` checks that this bound
#: catches both on the CPU).
COLOUR_TOLERANCE = 2.0

CODE_CLIPS = ["h264_gpu_mp4", "hevc_gpu_mp4", "ntsc_gpu_mp4", "rot90_gpu_mp4"]
COLOUR_CLIPS = ["colour709_gpu_mp4", "colour709_hevc_gpu_mp4"]


def _need(mode: str) -> None:
    gap = gpu_gap(mode, 0)
    if gap is not None:
        pytest.skip(f"{mode} cannot run here ({gap.gap.value}): {gap}")


def _gpu_options(mode: str, **kwargs) -> ExtractOptions:
    choice = choose_decoder(mode, 0, no_fallback=True)
    return ExtractOptions(decoder=choice, no_fallback=True, **kwargs)


def _rows(extraction):
    return [r for b in extraction for r in b]


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
def test_gpu_mode_is_usable(mode):
    """The cheap gate: every driver library loads, CUDA sees a device, the mode is chosen."""
    _need(mode)
    assert choose_decoder(mode, 0, no_fallback=True).mode == mode


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
@pytest.mark.parametrize("name", CODE_CLIPS)
def test_scene_frames_match_cpu(gpu_catalog, mode, name):
    _need(mode)
    path = str(gpu_catalog[name])
    rotation = GPU_CATALOG[name].rotation
    cpu = _rows(extract_video_frames(path, (27, 48)))
    ex = extract_video_frames(path, (27, 48), options=_gpu_options(mode, threads=4))
    gpu = _rows(ex)
    assert ex.report.decoder == mode and not ex.report.errors
    assert [r.pts_s for r in gpu] == [r.pts_s for r in cpu]
    for a, b in zip(gpu, cpu, strict=True):
        assert _diff(a.image, b.image) <= PIXEL_TOLERANCE
        number = read_frame_number(a.image, rotation=rotation)
        assert number == read_frame_number(b.image, rotation=rotation) == a.frame_index


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
@pytest.mark.parametrize("name", ["h264_gpu_mp4", "colour709_gpu_mp4"])
def test_clip_frames_match_cpu(gpu_catalog, mode, name):
    """Clip frames at 1+2 fps, native and 224x224: the same frames and the same pixels."""
    _need(mode)
    path = str(gpu_catalog[name])
    specs = [
        ExtractionSpec("embeddings", target_fps=(F(1), F(2)), target_res=(224, 224)),
        ExtractionSpec("native", target_fps=(F(1), F(2)), target_res=NATIVE),
    ]
    cpu = _rows(extract_clip_frames(path, specs))
    ex = extract_clip_frames(path, specs, options=_gpu_options(mode, threads=4))
    gpu = _rows(ex)
    assert ex.report.decoder == mode and not ex.report.errors

    def key(r):
        return (r.purpose, r.target_fps, r.clip_id, r.frame_index)

    gpu, cpu = sorted(gpu, key=key), sorted(cpu, key=key)
    assert [(key(r), r.pts_s) for r in gpu] == [(key(r), r.pts_s) for r in cpu]
    tolerance = COLOUR_TOLERANCE if name in COLOUR_CLIPS else PIXEL_TOLERANCE
    for a, b in zip(gpu, cpu, strict=True):
        assert _diff(a.image, b.image) <= tolerance, key(a)


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
@pytest.mark.parametrize("name", COLOUR_CLIPS)
def test_colours_match_cpu(gpu_catalog, mode, name):
    """BT.709, limited range: converted as the CPU converts it, channel by channel."""
    _need(mode)
    path = str(gpu_catalog[name])
    size = (GPU_CATALOG[name].height, GPU_CATALOG[name].width)
    cpu = _rows(extract_video_frames(path, size))
    ex = extract_video_frames(path, size, options=_gpu_options(mode))
    gpu = _rows(ex)
    assert ex.report.decoder == mode
    assert [r.pts_s for r in gpu] == [r.pts_s for r in cpu]
    for a, b in zip(gpu, cpu, strict=True):
        for channel in range(3):
            assert _diff(a.image[..., channel], b.image[..., channel]) <= COLOUR_TOLERANCE


def test_first_ffmpeg_gpu_frame_came_from_the_gpu(gpu_catalog):
    """NVDEC ran: the stream is decoded by a hwaccel context with one thread (however many the
    task has), and its frames arrive as NV12, CUDA's download format, where the CPU decoder
    of the same yuv420p stream gives yuv420p."""
    _need(FFMPEG_GPU)
    path = str(gpu_catalog["h264_gpu_mp4"])
    choice = choose_decoder(FFMPEG_GPU, 0, no_fallback=True)
    with open_video(path, threads=16, hwaccel=cuda_hwaccel(choice)) as src:
        context = src.stream.codec_context
        assert context.is_hwaccel and context.thread_count == HWACCEL_THREADS
        decoder = open_decoder(choice, src, frame_count=len(src.timeline))
        first = next(iter(decoder.every()))
        assert first.frame.format.name == "nv12"
    with open_video(path, threads=2) as src:
        cpu = open_decoder(choose_decoder(CPU), src, frame_count=len(src.timeline))
        assert next(iter(cpu.every())).frame.format.name == "yuv420p"


def test_ten_bit_video_on_each_gpu_mode(gpu_catalog, caplog):
    """10-bit HEVC: ffmpeg_gpu decodes it on the GPU (P010 download) with the CPU's pixels;
    pynvc leaves it to the CPU (its 16-bit host surfaces are not read back), saying so."""
    path = str(gpu_catalog["hevc10_gpu_mp4"])
    cpu = _rows(extract_video_frames(path, (27, 48)))
    _need(FFMPEG_GPU)
    ex = extract_video_frames(path, (27, 48), options=_gpu_options(FFMPEG_GPU))
    gpu = _rows(ex)
    assert ex.report.decoder == FFMPEG_GPU
    assert [r.pts_s for r in gpu] == [r.pts_s for r in cpu]
    assert all(_diff(a.image, b.image) <= PIXEL_TOLERANCE for a, b in zip(gpu, cpu, strict=True))
    _need(PYNVC)
    ex = extract_video_frames(path, (27, 48), options=ExtractOptions(decoder=choose_decoder(PYNVC)))
    assert ex.report.decoder == CPU and [r.pts_s for r in _rows(ex)] == [r.pts_s for r in cpu]
    assert "yuv420p10le is not read back" in caplog.text


_REFUSAL_RUN = """
import json, logging, sys
from sparkframes.decoding.backends import PYNVC, choose_decoder
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.video import extract_video_frames
logging.basicConfig(level=logging.WARNING)
options = ExtractOptions(decoder=choose_decoder(PYNVC, 0))
ex = extract_video_frames(sys.argv[1], (27, 48), options=options)
rows = [r for b in ex for r in b]
cpu = [r for b in extract_video_frames(sys.argv[1], (27, 48)) for r in b]
print(json.dumps({"decoder": ex.report.decoder, "errors": [str(e) for e in ex.report.errors],
                  "same": [r.pts_s for r in rows] == [r.pts_s for r in cpu]}))
"""


def test_pynvc_refuses_a_clip_below_nvdec_minimum(video_dir):
    """A picture smaller than NVDEC takes fails inside PyNvVideoCodec's first decode call: that
    is a refusal, and the CPU decodes the video. In a subprocess, in case the library takes
    the process down instead."""
    _need(PYNVC)
    path = spec_path(video_dir, NVDEC_TOO_SMALL)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-c", _REFUSAL_RUN, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"decoder": CPU, "errors": [], "same": True}
    assert "pynvc unavailable" in run.stderr


def test_pynvc_leaves_matroska_to_the_cpu_with_a_warning(catalog, caplog):
    """PyNvVideoCodec stops at the header's frame count, which Matroska lacks: CPU fallback."""
    _need(PYNVC)
    path = str(catalog["vfr_mkv"])
    ex = extract_video_frames(
        path, (27, 48), options=ExtractOptions(decoder=choose_decoder(PYNVC, 0))
    )
    rows = _rows(ex)
    assert ex.report.decoder == CPU and not ex.report.errors
    assert [r.pts_s for r in rows] == [r.pts_s for r in _rows(extract_video_frames(path, (27, 48)))]
    assert "frame count" in caplog.text
