"""Choosing a decoder and opening it: ``ffmpeg_cpu``, ``ffmpeg_gpu`` (FFmpeg's CUDA hwaccel in
the PyAV wheel), ``pynvc`` (NVDEC through PyNvVideoCodec) or ``auto``, with a fallback to the CPU.

A GPU mode that cannot work here (no driver, no device, library missing) falls back to
``ffmpeg_cpu`` with a one-line warning, and the decoder actually used is recorded per video; with
``no_fallback`` it fails instead, with "Frame extraction failed: …" naming the cause. A GPU
decoder that refuses one video (``DecoderRefusedError``) sends that video to the CPU in the same
way; that decision is ``extraction.Extraction``'s, the one place fallback happens.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from dataclasses import dataclass

from av.codec.hwaccel import HWAccel

from sparkframes.decoding.protocol import Decoder
from sparkframes.decoding.pyav_decoder import PyAVDecoder
from sparkframes.decoding.pynvc_decoder import PyNvcDecoder
from sparkframes.decoding.source import VideoSource

log = logging.getLogger("sparkframes")

CPU, FFMPEG_GPU, PYNVC, AUTO = "ffmpeg_cpu", "ffmpeg_gpu", "pynvc", "auto"
GPU_MODES = (FFMPEG_GPU, PYNVC)


class DecoderUnavailableError(RuntimeError):
    """A GPU decoder was required (``no_fallback``) but cannot run here. It crosses process
    boundaries (decode worker, Spark task results) as its two parts, never as its text."""

    def __init__(self, mode: str, cause: str) -> None:
        self.mode, self.cause = mode, cause
        super().__init__(f"Frame extraction failed: decoder {mode} is unavailable: {cause}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.mode, self.cause))


@dataclass(frozen=True)
class DecoderChoice:
    """What will decode: ``mode`` is the decoder used, ``fallback_reason`` why it differs."""

    mode: str
    requested: str
    gpu_id: int = 0
    fallback_reason: str | None = None


@functools.cache
def cuda_devices() -> tuple[int, str | None]:
    """(device count, why none) from the CUDA driver API, without any CUDA Python package."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0, "no NVIDIA driver (libcuda.so.1 cannot be loaded)"
    status = lib.cuInit(0)
    if status != 0:
        return 0, f"the CUDA driver did not initialise (cuInit error {status})"
    count = ctypes.c_int(0)
    status = lib.cuDeviceGetCount(ctypes.byref(count))
    if status != 0 or count.value == 0:
        return 0, "no CUDA device is visible"
    return count.value, None


@functools.cache
def pynvc_missing() -> str | None:
    """Why PyNvVideoCodec cannot be used, or None."""
    try:
        import PyNvVideoCodec  # noqa: F401
    except Exception as exc:  # ImportError, or a missing CUDA runtime library
        return f"PyNvVideoCodec is not importable ({exc}); install sparkframes[gpu]"
    return None


def gpu_unavailable(mode: str, gpu_id: int) -> str | None:
    """Why ``mode`` cannot decode on GPU ``gpu_id`` here, or None if it can try."""
    if mode == PYNVC and (reason := pynvc_missing()):
        return reason
    count, reason = cuda_devices()
    if reason:
        return reason
    if gpu_id >= count:
        return f"GPU {gpu_id} was assigned but only {count} CUDA device(s) are visible"
    return None


_warned: set[tuple[str, str]] = set()


def choose_decoder(requested: str, gpu_id: int = 0, *, no_fallback: bool = False) -> DecoderChoice:
    """The decoder to use for ``requested`` on this machine (see the module docstring)."""
    if requested == CPU:
        return DecoderChoice(CPU, requested)
    if requested == AUTO:
        for mode in (PYNVC, FFMPEG_GPU):
            if gpu_unavailable(mode, gpu_id) is None:
                return DecoderChoice(mode, requested, gpu_id)
        return DecoderChoice(CPU, requested, gpu_id, gpu_unavailable(FFMPEG_GPU, gpu_id))
    if requested not in GPU_MODES:
        raise ValueError(f"unknown decoder mode {requested!r}")
    reason = gpu_unavailable(requested, gpu_id)
    if reason is None:
        return DecoderChoice(requested, requested, gpu_id)
    return fall_back(DecoderChoice(requested, requested, gpu_id), reason, no_fallback=no_fallback)


def fall_back(choice: DecoderChoice, reason: str, *, no_fallback: bool) -> DecoderChoice:
    """The one place a GPU decoder gives way to the CPU: before a run's first video when it
    cannot run here (``choose_decoder``), or for one video it refuses (``Extraction``).

    Returns the CPU choice, after one warning line per process and cause; with ``no_fallback``
    raises ``DecoderUnavailableError`` instead.
    """
    if no_fallback:
        raise DecoderUnavailableError(choice.mode, reason)
    if (choice.mode, reason) not in _warned:
        _warned.add((choice.mode, reason))
        log.warning(
            "sparkframes: %s unavailable (%s); decoding on CPU (ffmpeg_cpu)", choice.mode, reason
        )
    return DecoderChoice(CPU, choice.requested, choice.gpu_id, reason)


def cuda_hwaccel(choice: DecoderChoice) -> HWAccel | None:
    """FFmpeg's CUDA hwaccel on the assigned GPU for ``ffmpeg_gpu``; None otherwise.

    PyAV's own software fallback is off: with it, a stream NVDEC refuses (an unsupported profile
    or size) would be decoded on the CPU silently and recorded as ``ffmpeg_gpu``. Without it the
    decoder fails at its first frame, which is a refusal, and our fallback decodes the video on
    the CPU with a warning and records ``ffmpeg_cpu``.
    """
    if choice.mode != FFMPEG_GPU:
        return None
    return HWAccel("cuda", device=str(choice.gpu_id), allow_software_fallback=False)


def open_decoder(
    choice: DecoderChoice,
    source: VideoSource,
    *,
    frame_count: int,
    skip_unneeded: bool = True,
    batch_size: int = 64,
) -> Decoder:
    """The decoder ``choice`` names on ``source`` (opened with ``cuda_hwaccel(choice)``).

    ``frame_count`` is what the demuxer found (NVDEC refuses a container that would stop it
    short); ``skip_unneeded`` lets the CPU decoder skip what no chosen frame depends on;
    ``batch_size`` is NVDEC's frames per call. Raises ``DecoderRefusedError`` when a GPU
    decoder cannot take the video.
    """
    if choice.mode == PYNVC:
        return PyNvcDecoder(source, choice.gpu_id, batch_size, frame_count)
    return PyAVDecoder(source, skip_unneeded=skip_unneeded, mode=choice.mode)
