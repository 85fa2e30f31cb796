"""Choosing a decoder and opening it: ``ffmpeg_cpu``, ``ffmpeg_gpu`` (FFmpeg's CUDA hwaccel in
the PyAV wheel), ``pynvc`` (NVDEC through PyNvVideoCodec) or ``auto``, with a fallback to the CPU.

A GPU mode that cannot work here (no driver, no device, library missing) falls back to
``ffmpeg_cpu`` with a one-line warning, and the decoder actually used is recorded per video; with
``no_fallback`` it fails instead, with "Frame extraction failed: …" naming the cause. A GPU
decoder that refuses one video (``DecoderRefusedError``) sends that video to the CPU in the same
way; that decision is ``extraction.Extraction``'s, the one place fallback happens.

Why a GPU mode cannot run is a typed value (``gpu_gap``: a ``Gap`` and the missing library, if
that is the cause), checked down the stack: the driver's libraries (``libcuda``, and the video
libraries ``libnvcuvid`` and ``libnvidia-encode`` that containers mount only with the video
capability), CUDA, the device, PyNvVideoCodec's import. The words go into warnings and errors.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import logging
from collections.abc import Mapping
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


class Gap(enum.Enum):
    """Why a GPU mode cannot decode here, as a value callers can branch on (never parse text)."""

    NO_DRIVER = "no_driver"  # libcuda.so.1 does not load: no NVIDIA driver in this environment
    NO_VIDEO_LIBRARY = "no_video_library"  # a driver library for video is not mounted
    CUDA_INIT_FAILED = "cuda_init_failed"  # cuInit refused (no device visible, driver mismatch)
    NO_DEVICE = "no_device"  # the driver sees no CUDA device
    DEVICE_OUT_OF_RANGE = "device_out_of_range"  # the assigned ordinal is not a visible device
    UNMAPPED_ADDRESS = "unmapped_address"  # Spark's GPU address names no visible CUDA device
    PYNVC_NOT_IMPORTABLE = "pynvc_not_importable"  # PyNvVideoCodec is not installed or fails


@dataclass(frozen=True)
class Unavailable:
    """Why a GPU mode cannot run here: ``gap`` to branch on, ``detail`` to show a person, and
    ``library``, the shared object that is missing where that is the cause."""

    gap: Gap
    detail: str
    library: str | None = None

    def __str__(self) -> str:
        return self.detail


@dataclass(frozen=True)
class DriverLibrary:
    """A shared object of the NVIDIA driver that a GPU mode loads at run time."""

    soname: str
    modes: tuple[str, ...]  # the GPU modes that cannot run without it
    role: str


#: What each GPU mode needs from the driver, in the order they are checked. Containers mount
#: ``libnvcuvid`` and ``libnvidia-encode`` only when the driver's ``video`` capability is on
#: (``NVIDIA_DRIVER_CAPABILITIES`` must include ``video``, not only ``compute,utility``), so a
#: node where CUDA works can still lack them.
DRIVER_LIBRARIES: tuple[DriverLibrary, ...] = (
    DriverLibrary("libcuda.so.1", (FFMPEG_GPU, PYNVC), "the CUDA driver API"),
    DriverLibrary("libnvcuvid.so.1", (FFMPEG_GPU, PYNVC), "NVDEC, the driver's video decoder"),
    DriverLibrary(
        "libnvidia-encode.so.1", (PYNVC,), "NVENC, which `import PyNvVideoCodec` links against"
    ),
)


@functools.cache
def loadable(soname: str) -> bool:
    """Whether the dynamic loader finds and loads ``soname`` in this process (as the GPU
    libraries will: ``find_library`` would miss the driver's versioned names in containers)."""
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def driver_libraries() -> dict[str, bool]:
    """Every driver library a GPU mode needs, and whether it loads here (for reports)."""
    return {lib.soname: loadable(lib.soname) for lib in DRIVER_LIBRARIES}


def missing_library(mode: str, present: Mapping[str, bool]) -> Unavailable | None:
    """The first driver library ``mode`` needs that ``present`` marks missing, as a gap."""
    for lib in DRIVER_LIBRARIES:
        if mode in lib.modes and not present.get(lib.soname, False):
            gap = Gap.NO_DRIVER if lib.soname == "libcuda.so.1" else Gap.NO_VIDEO_LIBRARY
            detail = f"{lib.soname} ({lib.role}) cannot be loaded"
            if gap is Gap.NO_DRIVER:
                detail = f"no NVIDIA driver: {detail}"
            else:
                detail += (
                    ": the driver's video libraries are missing; in a container, enable the "
                    "video driver capability (NVIDIA_DRIVER_CAPABILITIES=compute,utility,video)"
                )
            return Unavailable(gap, detail, lib.soname)
    return None


@functools.cache
def cuda_probe() -> tuple[int, Unavailable | None]:
    """(device count, why none) from the CUDA driver API, without any CUDA Python package."""
    if not loadable("libcuda.so.1"):
        return 0, missing_library(FFMPEG_GPU, {})
    lib = ctypes.CDLL("libcuda.so.1")
    status = lib.cuInit(0)
    if status != 0:
        return 0, Unavailable(
            Gap.CUDA_INIT_FAILED, f"the CUDA driver did not initialise (cuInit error {status})"
        )
    count = ctypes.c_int(0)
    status = lib.cuDeviceGetCount(ctypes.byref(count))
    if status != 0 or count.value == 0:
        return 0, Unavailable(Gap.NO_DEVICE, "no CUDA device is visible")
    return count.value, None


def cuda_devices() -> tuple[int, str | None]:
    """(device count, why none, in words): ``cuda_probe`` for callers that only show it."""
    count, gap = cuda_probe()
    return count, None if gap is None else str(gap)


@functools.cache
def cuda_device_uuids() -> tuple[str, ...]:
    """Each visible CUDA device's UUID (lower-case hex, no prefix), by CUDA ordinal; empty
    where there is no driver or device. Spark may name GPUs by UUID (``GPU-…``, ``MIG-…``)."""
    count, gap = cuda_probe()
    if gap is not None:
        return ()
    lib = ctypes.CDLL("libcuda.so.1")
    # cuDeviceGetUuid_v2 reports a MIG instance's own UUID; the first version its parent's.
    get_uuid = getattr(lib, "cuDeviceGetUuid_v2", None) or lib.cuDeviceGetUuid
    uuids = []
    for ordinal in range(count):
        device = ctypes.c_int(0)
        raw = (ctypes.c_ubyte * 16)()
        if lib.cuDeviceGet(ctypes.byref(device), ordinal) != 0 or get_uuid(raw, device) != 0:
            uuids.append("")
            continue
        uuids.append(bytes(raw).hex())
    return tuple(uuids)


@functools.cache
def pynvc_probe() -> Unavailable | None:
    """Why PyNvVideoCodec cannot be used, or None."""
    try:
        import PyNvVideoCodec  # noqa: F401
    except Exception as exc:  # ImportError, or a missing CUDA or driver library
        return Unavailable(
            Gap.PYNVC_NOT_IMPORTABLE,
            f"PyNvVideoCodec is not importable ({exc}); install sparkframes[gpu]",
        )
    return None


def pynvc_missing() -> str | None:
    """Why PyNvVideoCodec cannot be used, in words, or None."""
    gap = pynvc_probe()
    return None if gap is None else str(gap)


def gpu_gap(mode: str, gpu_id: int) -> Unavailable | None:
    """Why ``mode`` cannot decode on CUDA device ``gpu_id`` here, or None if it can try.

    Checked cheapest and most telling first: the driver's libraries (which one is missing),
    then CUDA itself, then the device, then PyNvVideoCodec's import. A negative ``gpu_id`` is
    a Spark address that could not be mapped to a device (``spark.resources``).
    """
    if gap := missing_library(mode, driver_libraries()):
        return gap
    count, gap = cuda_probe()
    if gap is not None:
        return gap
    if gpu_id < 0:
        return Unavailable(
            Gap.UNMAPPED_ADDRESS, "the GPU address Spark assigned names no visible CUDA device"
        )
    if gpu_id >= count:
        return Unavailable(
            Gap.DEVICE_OUT_OF_RANGE,
            f"GPU {gpu_id} was assigned but only {count} CUDA device(s) are visible",
        )
    if mode == PYNVC and (gap := pynvc_probe()):
        return gap
    return None


def gpu_unavailable(mode: str, gpu_id: int) -> str | None:
    """Why ``mode`` cannot decode on GPU ``gpu_id`` here, in words, or None if it can try."""
    gap = gpu_gap(mode, gpu_id)
    return None if gap is None else str(gap)


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

    ``primary_ctx``: every ``av.open`` creates its own device context from these settings (the
    open, ``scan_extent``'s reopen, each seek restart). With the device's primary CUDA context
    they all share the one context the driver keeps per device (as PyNvVideoCodec does),
    instead of creating and tearing down a context, and its memory, each time.
    """
    if choice.mode != FFMPEG_GPU:
        return None
    return HWAccel(
        "cuda",
        device=str(choice.gpu_id),
        allow_software_fallback=False,
        options=CUDA_DEVICE_OPTIONS,
    )


#: FFmpeg's CUDA device options (``av_hwdevice_ctx_create``): share the primary context.
CUDA_DEVICE_OPTIONS: dict[str, str] = {"primary_ctx": "1"}


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
