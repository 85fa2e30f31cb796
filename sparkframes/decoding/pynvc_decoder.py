"""Decoding on NVDEC through PyNvVideoCodec (the optional ``gpu`` extra).

Every frame is decoded in order, in batches, with its presentation timestamp (stream time-base
units, as the demuxer reports them), so frame choice is identical to the CPU path. NVDEC hands
out its native output (NV12 for 8-bit 4:2:0) in host memory; each frame a caller wants is
wrapped as an FFmpeg frame tagged with the stream's colorspace and range, and goes through the
CPU path's own conversion and resize (``convert.resize.to_rgb``). So GPU pixels are the CPU's:
NVDEC's own RGB conversion would treat an untagged matrix as BT.709, always assume limited
range and take the nearest chroma sample, where swscale honours the stream's tags.

Written against the PyNvVideoCodec 2.x ``SimpleDecoder`` API (read in its sources; not yet run
on hardware by this project). Facts of that API that shape this module:

* ``get_batch_frames`` stops at the container's header frame count (``nb_frames``), not when the
  stream runs out. Where the header has no count (Matroska, WebM) it returns nothing at all; where
  the count is short it drops the tail silently. ``nvdec_refusal`` catches both before decoding,
  so such a video falls back to the CPU instead of coming out short.
* A stream NVDEC cannot take (a size below its minimum, an unsupported profile) is found inside
  the parser's callback during the first ``get_batch_frames``, not when the decoder is made; that
  first call's error is the decoder's refusal, so the CPU takes the video.
* Frames live in host buffers the decoder reuses on its next batch, and a batch keeps all its
  frames alive: only the wanted frames are copied out (after their pts chose them), and the
  batch is bounded in bytes (``MAX_BATCH_BYTES``).
* Host frames are ``(H * 3 / 2, W)`` uint8 for NV12 and ``(3 * H, W)`` for 8-bit 4:4:4. The
  16-bit surfaces (P016, YUV444_16Bit; 10- and 12-bit video) and 4:2:2 ones are decoded on the
  CPU: their host DLPack strides in the 2.x sources do not describe a plain array.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from sparkframes.convert.resize import DEFAULT_RESIZE_FILTER, quarter_turns, to_rgb
from sparkframes.decoding.protocol import (
    DecodeFailure,
    DecoderRefusedError,
    DecodeStats,
)
from sparkframes.decoding.source import VideoSource

PYNVC_MODE = "pynvc"

#: Host memory one ``get_batch_frames`` call may hold (the decoder keeps every frame of a batch
#: alive until the next call): 21 NV12 frames at 1080p, 5 at 4K, the requested batch below that.
MAX_BATCH_BYTES = 64 << 20


class NvdecRefusedError(DecoderRefusedError):
    """NVDEC through PyNvVideoCodec would not deliver every frame of this video."""


def nvdec_refusal(header_frames: int, demuxed_frames: int, playlist: bool = False) -> str | None:
    """Why PyNvVideoCodec cannot be trusted with a video, or None.

    ``header_frames`` is the container's own frame count (PyAV's ``stream.frames``, 0 when the
    container has none); ``demuxed_frames`` the frames found by reading every packet.
    ``playlist``: the video is a playlist opened under ``allow_playlists``.
    """
    if playlist:
        return (
            "a playlist is decoded on the CPU: PyNvVideoCodec would open its files itself, "
            "past the check that keeps them to the playlist's folder"
        )
    if header_frames <= 0:
        return "the container has no frame count, which PyNvVideoCodec needs to read to the end"
    if header_frames != demuxed_frames:
        return (
            f"the container says {header_frames} frames but {demuxed_frames} were found; "
            "PyNvVideoCodec would stop at the header's count"
        )
    return None


#: The CPU decoder's pixel formats whose NVDEC output this module wraps (NV12 or 8-bit 4:4:4).
WRAPPED_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p", "yuv444p", "yuvj444p"})


def surface_refusal(pix_fmt: str | None) -> str | None:
    """Why NVDEC's output for a stream of ``pix_fmt`` (PyAV's name) is left to the CPU, or
    None: only 8-bit 4:2:0 and 4:4:4 surfaces are wrapped (see the module docstring)."""
    if pix_fmt in WRAPPED_PIXEL_FORMATS:
        return None
    return (
        f"NVDEC's output for {pix_fmt or 'an unknown pixel format'} is not read back here "
        "(only 8-bit 4:2:0 and 4:4:4 are); the CPU decodes it"
    )


def bounded_batch(batch_size: int, width: int, height: int) -> int:
    """Frames per ``get_batch_frames`` call: ``batch_size``, cut so that a batch of NV12 host
    frames stays within ``MAX_BATCH_BYTES`` (at least one frame)."""
    frame_bytes = max(1, width * height * 3 // 2)
    return max(1, min(batch_size, MAX_BATCH_BYTES // frame_bytes))


@dataclass(frozen=True)
class StreamLook:
    """How the CPU decoder sees the stream's pictures, which NVDEC does not report: rotation
    (counter-clockwise quarter turns) and the colour tags swscale converts by."""

    turns: int
    colorspace: int
    color_range: int
    color_primaries: int
    color_trc: int

    def tag(self, frame: av.VideoFrame) -> av.VideoFrame:
        """``frame`` (NVDEC's pixels) tagged as the CPU decoder tags the same picture."""
        frame.colorspace = self.colorspace
        frame.color_range = self.color_range
        frame.color_primaries = self.color_primaries
        frame.color_trc = self.color_trc
        return frame


def stream_look(source: VideoSource) -> StreamLook:
    """The stream's rotation and colour tags, read off its first frame decoded on the CPU (the
    bitstream's tags win over the container's, as in the CPU path); reopens the container."""
    source.reopen()
    try:
        frame = next(source.container.decode(source.stream), None)
    except av.error.FFmpegError:
        frame = None
    source.reopen()
    if frame is None:  # nothing decodes on the CPU either: the container's tags
        context = source.stream.codec_context
        return StreamLook(
            0, context.colorspace, context.color_range, context.color_primaries, context.color_trc
        )
    return StreamLook(
        quarter_turns(frame),
        frame.colorspace,
        frame.color_range,
        frame.color_primaries,
        frame.color_trc,
    )


#: NVDEC's host surface formats this module wraps (``Pixel_Format`` names) and the FFmpeg
#: pixel format each one is.
HOST_FORMATS: dict[str, str] = {"NV12": "nv12", "YUV444": "yuv444p"}


def host_frame(pixels: np.ndarray, surface: str, look: StreamLook) -> av.VideoFrame:
    """An FFmpeg frame holding a copy of NVDEC's host ``pixels`` of ``surface`` format (a
    ``HOST_FORMATS`` key), tagged with the stream's colour (``look``).

    Raises ``ValueError`` for a surface or shape it cannot wrap.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 2:
        raise ValueError(f"NVDEC {surface} frame is {pixels.dtype} {pixels.shape}, not 2-D uint8")
    if surface == "NV12":
        height = pixels.shape[0] * 2 // 3
        if pixels.shape[0] != height * 3 // 2 or height % 2 or pixels.shape[1] % 2:
            raise ValueError(f"NVDEC NV12 frame of shape {pixels.shape} has an odd size")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="nv12")
    elif surface == "YUV444":
        if pixels.shape[0] % 3:
            raise ValueError(f"NVDEC YUV444 frame of shape {pixels.shape} is not three planes")
        planes = np.ascontiguousarray(pixels).reshape(3, pixels.shape[0] // 3, pixels.shape[1])
        frame = av.VideoFrame.from_ndarray(planes, format="yuv444p")
    else:
        raise ValueError(f"NVDEC's {surface} output is decoded on the CPU instead")
    return look.tag(frame)


@dataclass(frozen=True)
class HostPicture:
    """A frame NVDEC decoded, copied out of its buffer as an FFmpeg frame in its native format,
    converted to RGB (and rotated) only when asked, by the CPU path's own conversion."""

    pts: int
    frame: av.VideoFrame
    turns: int

    def rgb(self, size: tuple[int, int], resize_filter: str = DEFAULT_RESIZE_FILTER) -> np.ndarray:
        return to_rgb(self.frame, size, self.turns, resize_filter)


def surface_name(decoded: Any) -> str:
    """The ``Pixel_Format`` name of a PyNvVideoCodec ``DecodedFrame`` (``"NV12"``…)."""
    fmt = decoded.format
    return str(getattr(fmt, "name", str(fmt).rsplit(".", 1)[-1]))


def host_pixels(decoded: Any) -> np.ndarray:
    """A view of a ``DecodedFrame``'s host memory (valid until the decoder's next batch)."""
    return np.from_dlpack(decoded)


class PyNvcDecoder:
    """Sequential NVDEC decode of one file on GPU ``gpu_id``, as a ``Decoder``.

    ``frame_count`` is the number of frames the demuxer found (the timeline's length, or the
    scan's count without an index): a video whose container would make NVDEC stop short is
    refused here, before any frame, so it can go to the CPU. Frames are decoded in order and
    the chosen ones picked by pts before anything is copied.
    """

    mode = PYNVC_MODE

    def __init__(self, source: VideoSource, gpu_id: int, batch_size: int, frame_count: int) -> None:
        if refusal := nvdec_refusal(source.stream.frames, frame_count, source.is_playlist):
            raise NvdecRefusedError(refusal)
        context = source.stream.codec_context
        if refusal := surface_refusal(context.pix_fmt):
            raise NvdecRefusedError(refusal)
        import PyNvVideoCodec as nvc

        self.source = source
        self.batch_size = bounded_batch(max(1, batch_size), context.width, context.height)
        self.stats = DecodeStats()
        self.failures: list[DecodeFailure] = []
        self.missing: list[int] = []
        self.look = stream_look(source)  # NVDEC reports neither the display matrix nor tags
        self._handed_out = 0
        try:
            self._decoder = nvc.SimpleDecoder(
                source.readable_path,
                gpu_id=gpu_id,
                use_device_memory=False,  # frames in host memory
                output_color_type=nvc.OutputColorType.NATIVE,  # NV12: converted as on the CPU
            )
        except Exception as exc:  # the library's own errors: a codec or size it cannot take
            raise NvdecRefusedError(f"PyNvVideoCodec cannot open it: {exc}") from exc

    def _batches(self) -> Iterator[list[Any]]:
        """NVDEC's frames, batch by batch, until the stream (or the header's count) ends.

        Before anything was handed out, a failure is a refusal (``NvdecRefusedError``): the
        library reports a stream it cannot take only from inside its first decode call, and an
        empty first batch means nothing was decoded. After that a failure is damage, recorded
        in ``failures``, and the decode ends there.
        """
        while True:
            try:
                batch = self._decoder.get_batch_frames(self.batch_size)
            except Exception as exc:  # raised through the library's parser callback
                if self._handed_out == 0:
                    raise NvdecRefusedError(f"NVDEC cannot decode it: {exc}") from exc
                self.failures.append(DecodeFailure(None, f"NVDEC stopped: {exc}"))
                return
            if not batch:
                if self.stats.frames_decoded == 0:
                    raise NvdecRefusedError("NVDEC returned no frame")
                return
            self.stats.frames_decoded += len(batch)
            yield batch

    def _picture(self, decoded: Any) -> HostPicture:
        """The one copy of a frame: out of NVDEC's reused buffer into an FFmpeg frame."""
        try:
            frame = host_frame(host_pixels(decoded), surface_name(decoded), self.look)
        except ValueError as exc:
            if self._handed_out == 0:  # every frame of a stream has the same surface
                raise NvdecRefusedError(str(exc)) from exc
            raise
        self._handed_out += 1
        return HostPicture(int(decoded.getPTS()), frame, self.look.turns)

    def every(self) -> Iterator[HostPicture]:
        """Every frame in presentation order (``NvdecRefusedError`` before the first one when
        NVDEC cannot take the stream)."""
        for batch in self._batches():
            for decoded in batch:
                yield self._picture(decoded)

    def chosen(self, positions: Iterable[int]) -> Iterator[tuple[int, HostPicture]]:
        """The wanted positions' frames, picked by pts from the full decode; a frame no
        position wants is never copied."""
        timeline = self.source.timeline
        assert timeline is not None, "chosen frames need the index"
        wanted = {timeline.pts[p]: p for p in positions}
        if wanted:
            for batch in self._batches():
                for decoded in batch:
                    position = wanted.pop(int(decoded.getPTS()), None)
                    if position is not None:
                        yield position, self._picture(decoded)
                if not wanted:
                    break
        self.missing = sorted(wanted.values())
