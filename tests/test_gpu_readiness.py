"""What of the GPU decoders a CPU machine can check (issue 24, items 2-8): which driver library
is missing, the test clips' sizes, the refusal and copy logic, PyAV 18, the decoder's threads
and CUDA context on the GPU, and the NV12 conversion. Whether the GPU decoders work is
``test_gpu.py``'s, on a GPU.

Where a fake stands in for PyNvVideoCodec (``_FAKE_PYNVC``), it runs in a subprocess, only where
the real library cannot run, and never in a pixel comparison.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import av
import numpy as np
import pytest
from av.codec.hwaccel import HWAccel

from sparkframes.convert.resize import to_rgb
from sparkframes.decoding.backends import (
    CPU,
    DRIVER_LIBRARIES,
    FFMPEG_GPU,
    PYNVC,
    DecoderChoice,
    DecoderUnavailableError,
    Gap,
    choose_decoder,
    cuda_hwaccel,
    driver_libraries,
    gpu_gap,
    missing_library,
)
from sparkframes.decoding.pynvc_decoder import (
    MAX_BATCH_BYTES,
    HostPicture,
    StreamLook,
    bounded_batch,
    host_frame,
    stream_look,
    surface_refusal,
)
from sparkframes.decoding.source import HWACCEL_THREADS, decode_threads, open_video
from sparkframes.sampling.specs import NATIVE
from tests.test_gpu import COLOUR_CLIPS, COLOUR_TOLERANCE
from tests.test_import_light import _python
from tests.videos import GPU_CATALOG, NVDEC_TOO_SMALL, spec_path

REPO = Path(__file__).resolve().parents[1]


# --- item 2: which driver library is missing ----------------------------------------------


def test_missing_driver_libraries_are_named():
    none: dict[str, bool] = {}
    gap = missing_library(FFMPEG_GPU, none)
    assert gap is not None and gap.gap is Gap.NO_DRIVER and gap.library == "libcuda.so.1"
    cuda_only = {"libcuda.so.1": True}
    for mode in (FFMPEG_GPU, PYNVC):
        gap = missing_library(mode, cuda_only)
        assert gap.gap is Gap.NO_VIDEO_LIBRARY and gap.library == "libnvcuvid.so.1"
        assert "video driver capability" in gap.detail
    decode = {"libcuda.so.1": True, "libnvcuvid.so.1": True}
    assert missing_library(FFMPEG_GPU, decode) is None
    assert missing_library(PYNVC, decode).library == "libnvidia-encode.so.1"
    every = {lib.soname: True for lib in DRIVER_LIBRARIES}
    assert missing_library(FFMPEG_GPU, every) is None and missing_library(PYNVC, every) is None


@pytest.mark.parametrize("mode", [FFMPEG_GPU, PYNVC])
def test_this_machine_reports_the_first_missing_library(mode):
    """Whatever this machine has: the reason a mode cannot run names the library it lacks."""
    present = driver_libraries()
    gap = gpu_gap(mode, 0)
    expected = missing_library(mode, present)
    if expected is not None:
        assert gap == expected
        with pytest.raises(DecoderUnavailableError, match=re.escape(expected.library)):
            choose_decoder(mode, 0, no_fallback=True)
        fallback = choose_decoder(mode, 0)
        assert fallback.mode == CPU and expected.library in fallback.fallback_reason
    elif gap is not None:
        assert gap.library is None  # every library loads: CUDA, the device or the import


# --- item 3: GPU test clips NVDEC takes, and the too-small one it refuses -----------------


def test_gpu_clips_are_above_nvdec_minimum(gpu_catalog):
    for name, path in gpu_catalog.items():
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.width >= 256 and stream.height >= 160, name
            assert stream.frames > 0, name  # PyNvVideoCodec needs the header's count
    assert NVDEC_TOO_SMALL.width * NVDEC_TOO_SMALL.height < 144 * 144


_FAKE_PYNVC = '''
"""Stands in for PyNvVideoCodec where no GPU exists: NV12 host frames from a CPU decode."""
import os
import av

CALLS = {"copies": 0, "batches": []}


class OutputColorType:
    NATIVE, RGB, RGBP = "NATIVE", "RGB", "RGBP"


class _Surface:
    name = "NV12"


class DecodedFrame:
    format = _Surface()

    def __init__(self, pts, pixels):
        self._pts, self._pixels = pts, pixels

    def getPTS(self):
        return self._pts

    def __dlpack__(self, **kwargs):
        CALLS["copies"] += 1
        return self._pixels.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._pixels.__dlpack_device__()


class SimpleDecoder:
    def __init__(self, path, gpu_id=0, use_device_memory=True, output_color_type=None):
        with av.open(path) as container:
            self._frames = [
                (f.pts, f.reformat(format="nv12").to_ndarray()) for f in container.decode(video=0)
            ]
        self._next = 0

    def get_batch_frames(self, count):
        CALLS["batches"].append(count)
        if os.environ.get("FAKE_NVDEC") == "refuse":  # as NVDEC's parser callback reports it
            raise RuntimeError("resolution 128x96 is below the decoder's minimum 144x144")
        batch = self._frames[self._next : self._next + count]
        self._next += count
        return [DecodedFrame(pts, pixels) for pts, pixels in batch]
'''

_FAKE_RUN = """
import json, logging, sys
import PyNvVideoCodec
from sparkframes.decoding.backends import PYNVC, DecoderChoice, DecoderUnavailableError
from sparkframes.extraction.base import ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.sampling.specs import ExtractionSpec
logging.basicConfig(level=logging.WARNING)
path, no_fallback = sys.argv[1], sys.argv[2] == "1"
specs = [ExtractionSpec("embeddings", target_fps=(1, 2), target_res=(64, 64))]
options = ExtractOptions(decoder=DecoderChoice(PYNVC, PYNVC, 0), no_fallback=no_fallback)
try:
    ex = extract_clip_frames(path, specs, options=options)
    rows = [r for b in ex for r in b]
except DecoderUnavailableError as exc:
    print(json.dumps({"unavailable": str(exc)}))
    raise SystemExit(0)
cpu = [r for b in extract_clip_frames(path, specs) for r in b]
key = lambda r: (r.target_fps, r.frame_index, r.pts_s)
print(json.dumps({
    "decoder": ex.report.decoder,
    "same_frames": sorted(map(key, rows)) == sorted(map(key, cpu)),
    "rows": len(rows),
    "decoded": ex.report.decode.frames_decoded,
    "copies": PyNvVideoCodec.CALLS["copies"],
    "batches": PyNvVideoCodec.CALLS["batches"],
}))
"""


def _fake_pynvc(tmp_path: Path) -> Path:
    if gpu_gap(PYNVC, 0) is None:
        pytest.skip("a real PyNvVideoCodec runs here: tests/test_gpu.py tests it for real")
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "PyNvVideoCodec.py").write_text(_FAKE_PYNVC)
    return folder


def test_first_batch_failure_is_a_refusal_and_the_cpu_decodes(tmp_path, video_dir):
    """PyNvVideoCodec reports a stream NVDEC cannot take from its first ``get_batch_frames``:
    the video goes to the CPU (or, under ``no_fallback``, the run fails naming the cause)."""
    fake = _fake_pynvc(tmp_path)
    path = str(spec_path(video_dir, NVDEC_TOO_SMALL))
    env = {"FAKE_NVDEC": "refuse"}
    run = _python(_FAKE_RUN, path, "0", env=env, path=[fake])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["decoder"] == CPU and result["same_frames"] and result["rows"] > 0
    assert "pynvc unavailable (NVDEC cannot decode it: resolution 128x96" in run.stderr
    strict = _python(_FAKE_RUN, path, "1", env=env, path=[fake])
    assert strict.returncode == 0, strict.stderr[-3000:]
    message = json.loads(strict.stdout.strip().splitlines()[-1])["unavailable"]
    assert message.startswith("Frame extraction failed: decoder pynvc is unavailable: NVDEC")


# --- item 8: pick by pts, then copy; batches bounded in bytes -----------------------------


def test_only_chosen_frames_are_copied_out_of_nvdec(tmp_path, gpu_catalog):
    fake = _fake_pynvc(tmp_path)
    run = _python(_FAKE_RUN, str(gpu_catalog["h264_gpu_mp4"]), "0", path=[fake])
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["decoder"] == PYNVC and result["same_frames"]
    # 60 frames at 25 fps, sampled at 1 and 2 fps: a handful of frames, each copied once.
    assert 0 < result["copies"] < result["decoded"] / 4
    assert result["copies"] <= result["rows"]
    assert result["batches"] and set(result["batches"]) == {bounded_batch(64, 256, 160)}


def test_batches_are_bounded_in_bytes():
    assert bounded_batch(64, 256, 160) == 64
    assert bounded_batch(64, 1920, 1080) == MAX_BATCH_BYTES // (1920 * 1080 * 3 // 2) == 21
    assert bounded_batch(64, 3840, 2160) == 5
    assert bounded_batch(64, 16384, 16384) == 1
    assert bounded_batch(8, 1920, 1080) == 8


# --- item 4: PyAV 18 ------------------------------------------------------------------------


def test_pyav_18_is_required_and_installed():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    av_requirement = next(d for d in project["dependencies"] if re.match(r"av\b", d))
    assert re.match(r"av>=(\d+)", av_requirement).group(1) == "18"
    assert int(av.__version__.split(".")[0]) >= 18


# --- items 5 and 6: one decoder thread on the GPU, the primary CUDA context -----------------


def test_gpu_decoding_runs_one_thread_whatever_the_task_has():
    device = HWAccel("cuda", device="0", allow_software_fallback=False)
    assert decode_threads(16, device) == HWACCEL_THREADS == 1
    assert decode_threads(16, None) == 16 and decode_threads(0, None) == 1


def test_ffmpeg_gpu_shares_the_primary_context_and_never_falls_back_silently():
    hwaccel = cuda_hwaccel(DecoderChoice(FFMPEG_GPU, FFMPEG_GPU, 3))
    assert hwaccel.options == {"primary_ctx": "1"}
    assert hwaccel.allow_software_fallback is False and hwaccel.device_id == 3
    assert cuda_hwaccel(DecoderChoice(CPU, CPU)) is None
    assert cuda_hwaccel(DecoderChoice(PYNVC, PYNVC, 0)) is None


# --- item 7: NVDEC's NV12 converted as the CPU converts -------------------------------------


def _nv12_like_nvdec(frame: av.VideoFrame) -> np.ndarray:
    """The frame as NVDEC hands NV12 to host memory: (H * 3 / 2, W) uint8, untagged."""
    return frame.reformat(format="nv12").to_ndarray()


def _yuv444_like_nvdec(frame: av.VideoFrame) -> np.ndarray:
    """The frame as NVDEC hands 8-bit 4:4:4 to host memory: (3 * H, W) uint8, planar."""
    planes = frame.reformat(format="yuv444p").to_ndarray()  # (3, H, W)
    return planes.reshape(3 * frame.height, frame.width)


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


@pytest.mark.parametrize("name", [*COLOUR_CLIPS, "rot90_gpu_mp4"])
def test_nvdec_surfaces_convert_like_the_cpu(gpu_catalog, name):
    """The NV12 (and 4:4:4) host frames, wrapped with the stream's tags, give the CPU path's
    pixels at native size and resized, rotated as a player shows them."""
    with open_video(str(gpu_catalog[name])) as src:
        look = stream_look(src)
        assert look.turns == GPU_CATALOG[name].rotation // 90
        if GPU_CATALOG[name].bt709:
            assert (look.colorspace, look.color_range) == (1, 1)  # BT.709, limited
        frames = list(src.container.decode(src.stream))[:6]
    for frame in frames:
        for size in (NATIVE, (224, 224)):
            cpu = to_rgb(frame, size)
            # NV12 holds the decoder's own samples, only laid out differently. The 4:4:4 frame
            # here is chroma upsampled from 4:2:0 (a 4:4:4 stream's CPU decode would have it).
            for surface, pixels, tolerance in (
                ("NV12", _nv12_like_nvdec(frame), 1.0),
                ("YUV444", _yuv444_like_nvdec(frame), COLOUR_TOLERANCE),
            ):
                picture = HostPicture(frame.pts, host_frame(pixels, surface, look), look.turns)
                assert _diff(picture.rgb(size), cpu) <= tolerance, (surface, size)


@pytest.mark.parametrize("name", COLOUR_CLIPS)
def test_colour_clips_catch_a_wrong_matrix_or_range(gpu_catalog, name):
    """The GPU tests' colour tolerance is tight enough to fail NVDEC's own conversion's
    assumptions: the matrix ignored (read as BT.601) or full range assumed."""
    with open_video(str(gpu_catalog[name])) as src:
        look = stream_look(src)
        frame = next(src.container.decode(src.stream))
    cpu = to_rgb(frame)
    pixels = _nv12_like_nvdec(frame)
    as_601 = StreamLook(0, 5, look.color_range, look.color_primaries, look.color_trc)
    as_full = StreamLook(0, look.colorspace, 2, look.color_primaries, look.color_trc)
    for wrong in (as_601, as_full):
        picture = HostPicture(frame.pts, host_frame(pixels, "NV12", wrong), 0)
        assert _diff(picture.rgb(NATIVE), cpu) > 2 * COLOUR_TOLERANCE


def test_pixel_formats_nvdec_output_is_read_back_for():
    for pix_fmt in ("yuv420p", "yuvj420p", "yuv444p"):
        assert surface_refusal(pix_fmt) is None
    for pix_fmt in ("yuv420p10le", "yuv422p", "gray", None):
        assert "the CPU decodes it" in surface_refusal(pix_fmt)


def test_surfaces_not_wrapped_are_refused_by_type():
    look = StreamLook(0, 2, 0, 2, 2)
    with pytest.raises(ValueError, match="P016"):
        host_frame(np.zeros((240, 256), np.uint8), "P016", look)
    with pytest.raises(ValueError, match="odd size"):
        host_frame(np.zeros((241, 256), np.uint8), "NV12", look)
