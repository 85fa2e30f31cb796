"""Tiny real test videos whose pixels carry their frame number, plus an oracle.

Why: tests of the library decode, resize and rotate frames and must find out
*which* source frame they got.  Every frame is encoded (with PyAV's own FFmpeg
encoders) as a grid of black/white cells that fills the whole picture, so the
frame number survives lossy coding, 10-bit to 8-bit conversion, colour
conversion and any resize (down to 24x24, non-uniform stretch included).

The grid is ``GRID_ROWS`` x ``GRID_COLS`` = 4 x 5 cells.  Corners are fixed
markers (top-left white, the other three black), so any rotation or mirror that
was applied wrongly is caught; the 16 other cells hold 11 bits of frame number
plus a 5-bit CRC.  ``read_frame_number`` raises ``ValueError`` on anything that
does not carry a valid code (noise, a wrongly rotated frame, a blend).

Rotation convention (checked with PyAV 18.1 and the FFmpeg 9 CLI's autorotate):

* ``VideoSpec.rotation`` is passed to ``VideoStream.set_display_rotation``,
  whose angle is counter-clockwise, and decoding reports it back unchanged in
  ``VideoFrame.rotation`` (normalised to [-180, 180]: 270 reads back as -90,
  180 as -180).
* A player (``ffmpeg -i in.mp4 ...`` autorotates by default) shows
  ``np.rot90(decoded, k=(frame.rotation // 90) % 4)``: +90 means the picture
  is turned a quarter counter-clockwise (the coded top-right corner ends up at
  the top-left; width and height swap).  This is how the library should apply
  rotation.
* ``read_frame_number(displayed, rotation=frame.rotation)`` undoes exactly that.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

# --------------------------------------------------------------------------
# The pixel code
# --------------------------------------------------------------------------

GRID_ROWS = 4
GRID_COLS = 5
NUMBER_BITS = 11
CHECK_BITS = 5
MAX_FRAMES = 1 << NUMBER_BITS

#: Fixed marker cells (row, col) -> white?  Only the top-left one is white, so
#: every rotation and every mirror except the main-diagonal transpose moves a
#: black marker into its place; the CRC catches the transpose.
_MARKERS: dict[tuple[int, int], bool] = {
    (0, 0): True,
    (0, GRID_COLS - 1): False,
    (GRID_ROWS - 1, 0): False,
    (GRID_ROWS - 1, GRID_COLS - 1): False,
}
_DATA_CELLS: tuple[tuple[int, int], ...] = tuple(
    (r, c) for r in range(GRID_ROWS) for c in range(GRID_COLS) if (r, c) not in _MARKERS
)
assert len(_DATA_CELLS) == NUMBER_BITS + CHECK_BITS

# Cell means (0..255, grey) below/above these are black/white; anything in
# between is "not a code cell" and rejects the frame.  Limited-range output
# (16..235) and resize blur stay well clear of the band.
_BLACK_MAX = 90.0
_WHITE_MIN = 165.0
# Only the central part of each cell is read, so blurred borders don't count.
_CELL_MARGIN = 0.3


def _crc5(value: int) -> int:
    """CRC-5 (x^5 + x^2 + 1, init 0b11111) of the 11-bit number, so frame 0 is
    not all black and single/double bit errors are always caught."""
    reg = 0b11111
    for i in reversed(range(NUMBER_BITS)):
        top = ((reg >> 4) & 1) ^ ((value >> i) & 1)
        reg = (reg << 1) & 0b11111
        if top:
            reg ^= 0b00101
    return reg


def _code_bits(number: int) -> list[bool]:
    """Data-cell colours for ``number``: 11 number bits (LSB first), 5 CRC bits."""
    if not 0 <= number < MAX_FRAMES:
        raise ValueError(f"frame number {number} outside 0..{MAX_FRAMES - 1}")
    crc = _crc5(number)
    return [bool((number >> i) & 1) for i in range(NUMBER_BITS)] + [
        bool((crc >> i) & 1) for i in range(CHECK_BITS)
    ]


def _edges(n: int, size: int) -> list[int]:
    """Integer pixel boundaries splitting ``size`` into ``n`` near-equal cells."""
    return [(i * size + n // 2) // n for i in range(n + 1)]


def frame_pattern(number: int, height: int, width: int) -> np.ndarray:
    """The HxW uint8 grey picture of frame ``number`` (0 or 255 per cell).

    Why: the grid always fills the frame, so relative cell positions survive
    any stretch of the picture.
    """
    if height < 2 * GRID_ROWS or width < 2 * GRID_COLS:
        raise ValueError(f"{width}x{height} too small for the {GRID_COLS}x{GRID_ROWS} grid")
    cells = np.zeros((GRID_ROWS, GRID_COLS), dtype=bool)
    for (r, c), white in _MARKERS.items():
        cells[r, c] = white
    for (r, c), white in zip(_DATA_CELLS, _code_bits(number), strict=True):
        cells[r, c] = white
    ys, xs = _edges(GRID_ROWS, height), _edges(GRID_COLS, width)
    rows = np.repeat(np.arange(GRID_ROWS), np.diff(ys))
    cols = np.repeat(np.arange(GRID_COLS), np.diff(xs))
    return np.where(cells[rows[:, None], cols[None, :]], 255, 0).astype(np.uint8)


def colour_pattern(number: int, height: int, width: int) -> np.ndarray:
    """The HxWx3 uint8 RGB picture of frame ``number`` in a colourful clip.

    Why: saturated hues are where converters disagree (a BT.709 matrix read as BT.601 moves
    them by several levels, limited range read as full by more), while grey code cells convert
    the same under any matrix. The hue wheel runs across the width and scrolls 8 pixels a frame,
    so a frame taken for its neighbour differs too; brightness falls off towards the top.
    """
    x = (np.arange(width)[None, :] + 8 * number) % width
    hue = 6.0 * x / width
    red = np.clip(np.abs(hue - 3) - 1, 0, 1)
    green = np.clip(2 - np.abs(hue - 2), 0, 1)
    blue = np.clip(2 - np.abs(hue - 4), 0, 1)
    light = (0.35 + 0.65 * np.arange(height) / max(1, height - 1))[:, None, None]
    rgb = np.stack([red, green, blue], axis=-1) * light
    return np.round(rgb * 255).astype(np.uint8)


def quarter_turns(rotation: int) -> int:
    """``k`` for ``np.rot90(decoded, k)`` that shows a frame like a player does.

    Why: ``frame.rotation`` is counter-clockwise degrees in [-180, 180] and
    ``np.rot90`` with positive ``k`` also turns counter-clockwise.
    """
    if rotation % 90:
        raise ValueError(f"rotation {rotation} is not a multiple of 90 degrees")
    return (rotation // 90) % 4


def _central_slice(lo: float, hi: float) -> slice:
    """Pixels whose centres lie in the middle of the cell span [lo, hi)."""
    a = lo + _CELL_MARGIN * (hi - lo)
    b = hi - _CELL_MARGIN * (hi - lo)
    first = int(np.ceil(a - 0.5))
    last = int(np.floor(b - 0.5))
    if last < first:  # tiny cell: take the pixel nearest its centre
        first = last = int(np.floor((lo + hi) / 2))
    return slice(first, last + 1)


def read_frame_number(rgb: np.ndarray, rotation: int = 0) -> int:
    """Frame number carried by a frame as a player shows it.

    ``rgb`` is HxWx3 (or HxW grey), any size >= 8x10 after un-rotation, any
    stretch.  ``rotation`` is the video's ``frame.rotation`` (counter-clockwise
    degrees, as given to ``set_display_rotation``) when ``rgb`` was displayed
    with ``np.rot90(decoded, k=quarter_turns(rotation))``; pass 0 for a frame
    as decoded.  Raises ``ValueError`` when the picture carries no valid code,
    so garbage, wrong rotation or mixed frames are never mistaken for a number.
    """
    arr = np.asarray(rgb)
    if arr.ndim == 3 and arr.shape[2] >= 3:
        grey = arr[..., :3].astype(np.float64).mean(axis=2)
    elif arr.ndim == 2:
        grey = arr.astype(np.float64)
    else:
        raise ValueError(f"expected an HxWx3 or HxW array, got shape {arr.shape}")
    grey = np.rot90(grey, -quarter_turns(rotation))
    height, width = grey.shape
    if height < 2 * GRID_ROWS or width < 2 * GRID_COLS:
        raise ValueError(f"frame {width}x{height} too small to read")
    means = np.empty((GRID_ROWS, GRID_COLS))
    for r in range(GRID_ROWS):
        ys = _central_slice(r * height / GRID_ROWS, (r + 1) * height / GRID_ROWS)
        for c in range(GRID_COLS):
            xs = _central_slice(c * width / GRID_COLS, (c + 1) * width / GRID_COLS)
            means[r, c] = grey[ys, xs].mean()
    unclear = (means > _BLACK_MAX) & (means < _WHITE_MIN)
    if unclear.any():
        levels = np.round(means).astype(int).tolist()
        raise ValueError(f"cells are neither black nor white: {levels}")
    white = means >= _WHITE_MIN
    for (r, c), expected in _MARKERS.items():
        if white[r, c] != expected:
            raise ValueError("marker cells wrong: rotated, mirrored or not a code frame")
    bits = [bool(white[r, c]) for r, c in _DATA_CELLS]
    number = sum(1 << i for i, b in enumerate(bits[:NUMBER_BITS]) if b)
    crc = sum(1 << i for i, b in enumerate(bits[NUMBER_BITS:]) if b)
    if crc != _crc5(number):
        raise ValueError(f"check bits wrong for number {number}: not a code frame")
    return number


# --------------------------------------------------------------------------
# Specs and encoding
# --------------------------------------------------------------------------

Codec = Literal[
    "libx264",
    "libx265",
    "libvpx",
    "libvpx-vp9",
    "libsvtav1",
    "libaom-av1",
    "mpeg4",
    "mpeg2video",
    "mpeg1video",
    "mjpeg",
    "prores",
]
Container = Literal["mp4", "mov", "mkv", "webm", "ts", "avi"]


def _exact(value: float | Fraction | int | str) -> Fraction:
    """Seconds as an exact Fraction; floats mean their shortest decimal (0.1 -> 1/10)."""
    if isinstance(value, float):
        return Fraction(repr(value))
    return Fraction(value)


@dataclass(frozen=True)
class VideoSpec:
    """How to encode one test video.

    ``pts_s`` (VFR) lists each frame's presentation time in seconds; only the
    differences matter (``pts_s[0]`` is subtracted).  Without it frames are
    ``1/fps`` apart.  ``start_offset_s`` is then added to every time, so the
    container's first pts is non-zero.  ``fps`` is also the stream's nominal
    rate for VFR specs.  ``rotation`` is display-matrix metadata only (pixels stay in
    the coded orientation); see the module docstring for its direction.
    ``open_gop`` asks x264/x265 for open GOPs (leading pictures that reference the GOP
    before); None keeps the encoder's default (x264 closed, x265 open).
    ``options`` are codec options that override the defaults chosen here.
    ``content`` is ``"code"`` (grey cells carrying the frame number) or ``"colour"``
    (``colour_pattern``); ``bt709`` converts RGB with the BT.709 matrix (limited range) and
    tags the stream so (matrix, primaries, transfer), instead of leaving it untagged.
    """

    name: str
    codec: Codec
    container: Container
    width: int
    height: int
    n_frames: int
    fps: Fraction = Fraction(25)
    pts_s: tuple[float, ...] | None = None
    start_offset_s: float = 0.0
    rotation: int = 0
    pix_fmt: str = "yuv420p"
    gop: int = 12
    bframes: int = 0
    time_base: Fraction | None = None
    open_gop: bool | None = None
    options: Mapping[str, str] = field(default_factory=dict, hash=False)
    content: Literal["code", "colour"] = "code"
    bt709: bool = False

    def __post_init__(self) -> None:
        """Reject specs that could not round-trip, before any encoding."""
        if not 1 <= self.n_frames <= MAX_FRAMES:
            raise ValueError(f"{self.name}: n_frames must be 1..{MAX_FRAMES}")
        if self.pts_s is not None:
            if len(self.pts_s) != self.n_frames:
                raise ValueError(f"{self.name}: pts_s needs one entry per frame")
            times = [_exact(t) for t in self.pts_s]
            if any(b <= a for a, b in itertools.pairwise(times)):
                raise ValueError(f"{self.name}: pts_s must strictly increase")
        if self.rotation % 90:
            raise ValueError(f"{self.name}: rotation must be a multiple of 90")

    def frame_times(self) -> list[Fraction]:
        """Intended presentation time of each frame relative to the first (seconds)."""
        if self.pts_s is not None:
            times = [_exact(t) for t in self.pts_s]
            return [t - times[0] for t in times]
        return [Fraction(i) / self.fps for i in range(self.n_frames)]

    def frame_duration(self, index: int) -> Fraction:
        """How long frame ``index`` is shown (the last VFR frame repeats the last gap)."""
        times = self.frame_times()
        if index + 1 < len(times):
            return times[index + 1] - times[index]
        if self.pts_s is not None and len(times) > 1:
            return times[-1] - times[-2]
        return 1 / self.fps

    def duration_s(self) -> Fraction:
        """Intended end of the video: last frame time plus its duration."""
        return self.frame_times()[-1] + self.frame_duration(self.n_frames - 1)

    def encoder_time_base(self) -> Fraction:
        """Coarsest of 1/fps, 1/1000, 1/90000 in which every timestamp is exact."""
        if self.time_base is not None:
            return self.time_base
        offset = _exact(self.start_offset_s)
        stamps = [offset + t for t in self.frame_times()]
        stamps += [t + self.frame_duration(i) for i, t in enumerate(stamps)]
        for tb in (1 / self.fps, Fraction(1, 1000), Fraction(1, 90000)):
            if all((s / tb).denominator == 1 for s in stamps):
                return tb
        raise ValueError(f"{self.name}: no time base makes all timestamps exact; set time_base")

    def filename(self) -> str:
        """Cache-safe file name: changes whenever the spec or the code format does."""
        digest = hashlib.sha1(
            repr((_FORMAT_VERSION, self, sorted(self.options.items()))).encode()
        ).hexdigest()[:10]
        return f"{self.name}-{digest}.{self.container}"


_FORMAT_VERSION = 1
#: FFmpeg's code for BT.709 in AVColorSpace, AVColorPrimaries and AVColorTransferCharacteristic.
BT709 = 1


def _codec_options(spec: VideoSpec) -> dict[str, str]:
    """Per-codec settings: high quality (so cells stay crisp), fixed GOP, quiet logs."""
    g, b = spec.gop, spec.bframes
    if spec.codec == "libx264":
        params = f"keyint={g}:min-keyint={g}:scenecut=0:bframes={b}:b-adapt=0"
        params += f":b-pyramid={'normal' if b >= 2 else 'none'}"
        if spec.open_gop:
            params += ":open-gop=1"
        opts = {"crf": "18", "preset": "veryfast", "x264-params": params}
    elif spec.codec == "libx265":
        params = f"log-level=none:keyint={g}:min-keyint={g}:scenecut=0:bframes={b}:b-adapt=0"
        params += f":b-pyramid={1 if b >= 2 else 0}:frame-threads=1:pools=none"
        if spec.open_gop is not None:  # x265's own default is open
            params += f":open-gop={int(spec.open_gop)}"
        opts = {"crf": "18", "preset": "ultrafast", "x265-params": params}
    elif spec.codec == "libvpx-vp9":
        opts = {"deadline": "realtime", "cpu-used": "8", "row-mt": "0"}
        if "b" not in spec.options:  # a bitrate asks for VBR; crf would make it constrained-Q
            opts.update({"crf": "20", "b": "0"})
    elif spec.codec == "libsvtav1":
        # Presets faster than 8 copy wrong 16x16/32x32 blocks on these synthetic
        # frames (whole cells flip, even at crf 10); preset 8 is still fast.
        opts = {"crf": "30", "preset": "8", "svtav1-params": f"keyint={g}:lp=1"}
    elif spec.codec == "libaom-av1":
        # Good-quality mode keeps libaom's look-ahead, hence its hidden alt-ref frames.
        opts = {"crf": "30", "cpu-used": "6"}
    elif spec.codec == "libvpx":
        # VP8 wants a bitrate cap next to crf; realtime keeps encoding cheap. One-pass libvpx
        # makes no VP8 alt-ref frame, whatever the options.
        opts = {"crf": "8", "b": "2000000", "deadline": "realtime", "cpu-used": "8"}
    elif spec.codec in ("mpeg4", "mpeg2video", "mpeg1video"):
        # FFmpeg's MPEG-1/2/4 encoders leave GOPs open unless asked (flags=+cgop).
        opts = {"qmin": "2", "qmax": "4", "b": "2000000"}
    elif spec.codec == "mjpeg":
        opts = {"qmin": "2", "qmax": "4"}
    elif spec.codec == "prores":
        opts = {"profile": "0"}  # proxy: the smallest files
    else:
        raise ValueError(f"unsupported codec {spec.codec}")
    opts.update(spec.options)
    return opts


def _mux(
    container: av.container.OutputContainer, packets: list[av.Packet], durations: dict[int, int]
) -> None:
    """Mux packets, restoring each one's duration (most encoders drop it).

    Why: containers store or guess frame durations from packet durations, and
    the oracle's ``end_s`` is the last frame's pts plus its duration.
    """
    for packet in packets:
        if not packet.duration and packet.pts in durations:
            packet.duration = durations[packet.pts]
        container.mux(packet)


def _ticks(seconds: Fraction, time_base: Fraction) -> int:
    """``seconds`` in ``time_base`` units, refusing to round (the oracle expects exact times)."""
    ticks = seconds / time_base
    if ticks.denominator != 1:
        raise ValueError(f"{seconds} s is not a whole number of {time_base} ticks")
    return int(ticks)


def make_video(path: Path, spec: VideoSpec) -> Path:
    """Encode ``spec`` to ``path`` (overwritten) and return ``path``.

    Why this shape: one encoder thread and tiny frames keep it cheap on a
    shared machine; each frame's pixels are ``frame_pattern(i)`` so any decoded
    frame can be identified.
    """
    path = Path(path)
    tb = spec.encoder_time_base()
    offset = _exact(spec.start_offset_s)
    if spec.codec == "libsvtav1":
        # SVT-AV1 prints a 20-line banner on stderr unless told otherwise; it
        # reads this variable when the encoder opens.
        os.environ.setdefault("SVT_LOG", "1")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(spec.codec, rate=spec.fps)
        stream.width = spec.width
        stream.height = spec.height
        stream.pix_fmt = spec.pix_fmt
        stream.time_base = tb
        stream.codec_context.time_base = tb
        stream.codec_context.thread_count = 1
        stream.codec_context.gop_size = spec.gop
        stream.codec_context.max_b_frames = spec.bframes
        stream.options = _codec_options(spec)
        if spec.rotation:
            stream.set_display_rotation(spec.rotation)
        to_yuv: dict[str, object] = {"format": spec.pix_fmt}
        if spec.bt709:
            context = stream.codec_context
            context.colorspace = context.color_primaries = context.color_trc = BT709
            context.color_range = ColorRange.MPEG
            to_yuv.update(dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
        durations: dict[int, int] = {}
        for i, t in enumerate(spec.frame_times()):
            if spec.content == "colour":
                rgb = colour_pattern(i, spec.height, spec.width)
            else:
                grey = frame_pattern(i, spec.height, spec.width)
                rgb = np.repeat(grey[:, :, None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(**to_yuv)
            frame.pts = _ticks(offset + t, tb)
            frame.duration = durations[frame.pts] = _ticks(spec.frame_duration(i), tb)
            frame.time_base = tb
            _mux(container, stream.encode(frame), durations)
        _mux(container, stream.encode(None), durations)
    return path


# --------------------------------------------------------------------------
# Stream structure probes
# --------------------------------------------------------------------------
#
# Why: a test that claims to cover open GOPs or hidden frames must show the
# encoder really made them; encoders drop such features silently (libvpx
# makes no alt-ref frame in one pass unless in realtime mode, for one).


def _packets(path: Path) -> tuple[str, list[tuple[int | None, bool, bytes]]]:
    """The video decoder's name and its packets' ``(pts, is_keyframe, data)`` in decode order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe, bytes(p)) for p in container.demux(stream) if p.size]
        return stream.codec_context.name, packets


def leading_pictures(path: Path) -> int:
    """How many frames follow a keyframe in decode order but are shown before it.

    In an open GOP these leading pictures may reference the GOP before the keyframe; the
    first keyframe is left out (nothing precedes it).
    """
    count, key_pts, first = 0, None, True
    for pts, is_keyframe, _ in _packets(path)[1]:
        if is_keyframe:
            key_pts, first = (None if first else pts), False
        elif key_pts is not None and pts is not None and pts < key_pts:
            count += 1
    return count


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    """AV1's unsigned LEB128: (value, position after it)."""
    value = 0
    for i in range(8):
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise ValueError("LEB128 longer than 8 bytes")


_AV1_FRAME_HEADER, _AV1_FRAME = 3, 6


def hidden_frame_packets(path: Path) -> int:
    """Packets that carry a frame which is not shown when it is decoded (VP9, AV1).

    VP9: a superframe (several frames, all but the last hidden) ends in an index whose marker
    byte ``0b110xxxxx`` also opens it. AV1 (low-overhead OBUs, as in Matroska and MP4): a
    temporal unit shows one frame, so one holding two frame OBUs holds a hidden one.
    """
    decoder, packets = _packets(path)
    if decoder not in ("vp9", "libdav1d", "libaom-av1"):
        raise ValueError(f"{path}: no hidden-frame probe for the {decoder} decoder")
    count = 0
    for _, _, data in packets:
        if decoder == "vp9":
            marker = data[-1]
            index = 2 + (((marker >> 3) & 3) + 1) * ((marker & 7) + 1)
            count += (marker & 0xE0) == 0xC0 and len(data) >= index and data[-index] == marker
            continue
        frames, pos = 0, 0
        while pos < len(data):
            header = data[pos]
            kind, extension, has_size = (header >> 3) & 0xF, (header >> 2) & 1, (header >> 1) & 1
            pos += 1 + extension
            size, pos = _leb128(data, pos) if has_size else (len(data) - pos, pos)
            frames += kind in (_AV1_FRAME_HEADER, _AV1_FRAME)
            pos += size
        count += frames > 1
    return count


# --------------------------------------------------------------------------
# Oracle
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleFrame:
    """One decoded frame: time from the first frame, number read from pixels."""

    pts_s: Fraction
    number: int
    duration_s: Fraction | None


@dataclass(frozen=True)
class OracleVideo:
    """Every frame of a video in presentation order, and where the video ends.

    ``first_pts`` / ``time_base`` are the raw stream values, ``rotation`` what
    PyAV reports in ``frame.rotation``.
    """

    frames: tuple[OracleFrame, ...]
    end_s: Fraction
    first_pts: int = 0
    time_base: Fraction = Fraction(1)
    rotation: int = 0


def oracle_decode(path: Path) -> OracleVideo:
    """Plain sequential decode of every frame; the reference the library is judged by.

    No seeking, no skipping, no selection: each frame's time comes from its
    container pts and its number from its own pixels.
    """
    raw: list[tuple[int, int, int | None]] = []
    rotation = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        for frame in container.decode(stream):
            if frame.pts is None:
                raise ValueError(f"{path}: decoded frame without pts")
            rotation = frame.rotation
            number = read_frame_number(frame.to_ndarray(format="rgb24"), rotation=0)
            raw.append((frame.pts, number, frame.duration or None))
    if not raw:
        raise ValueError(f"{path}: no frames decoded")
    pts = [p for p, _, _ in raw]
    if any(b <= a for a, b in itertools.pairwise(pts)):
        raise ValueError(f"{path}: pts not strictly increasing: {pts}")
    first = pts[0]
    frames = tuple(
        OracleFrame(
            pts_s=(p - first) * time_base,
            number=n,
            duration_s=None if d is None else d * time_base,
        )
        for p, n, d in raw
    )
    last = frames[-1]
    if last.duration_s is not None:
        end = last.pts_s + last.duration_s
    elif len(frames) > 1:
        end = last.pts_s + (last.pts_s - frames[-2].pts_s)
    else:
        raise ValueError(f"{path}: single frame without a duration")
    return OracleVideo(frames, end, first, time_base, rotation)


def _span(
    video: OracleVideo, start_s: float | Fraction, end_s: float | Fraction
) -> list[OracleFrame]:
    """Frames whose pts lies in [start, end) clamped to [0, video.end_s)."""
    start = max(_exact(start_s), Fraction(0))
    end = min(_exact(end_s), video.end_s)
    return [f for f in video.frames if start <= f.pts_s < end]


def oracle_select(
    video: OracleVideo,
    start_s: float | Fraction,
    end_s: float | Fraction,
    rate: float | Fraction,
) -> list[OracleFrame]:
    """Brute-force rate sampling: for t_k = start + k/rate < end, the nearest in-span frame.

    Why brute force: it must be obviously right, not fast.  The span is
    [start_s, end_s) clamped to [0, video.end_s); ties go to the earlier frame.
    Floats are read as their decimal repr (0.1 -> 1/10); pass Fractions to be exact.
    """
    rate_q = _exact(rate)
    if rate_q <= 0:
        raise ValueError("rate must be positive")
    start = max(_exact(start_s), Fraction(0))
    end = min(_exact(end_s), video.end_s)
    candidates = _span(video, start_s, end_s)
    if not candidates:
        return []
    chosen: list[OracleFrame] = []
    k = 0
    while (t := start + k / rate_q) < end:
        chosen.append(min(candidates, key=lambda f: (abs(f.pts_s - t), f.pts_s)))
        k += 1
    return chosen


def oracle_policy(
    video: OracleVideo,
    start_s: float | Fraction,
    end_s: float | Fraction,
    policy: Literal["first", "middle", "last"],
) -> list[OracleFrame]:
    """One frame of the span by policy: first, middle (index (n-1)//2) or last; [] if none."""
    candidates = _span(video, start_s, end_s)
    if not candidates:
        return []
    index = {"first": 0, "middle": (len(candidates) - 1) // 2, "last": -1}[policy]
    return [candidates[index]]


# --------------------------------------------------------------------------
# Catalog
# --------------------------------------------------------------------------

# Irregular frame gaps (ms) for the VFR video: 20..120 ms, never repeating evenly.
_VFR_GAPS_MS = (40, 40, 20, 60, 33, 100, 25, 45, 80, 30, 120, 35, 50, 20, 67)


def _vfr_times(n: int) -> tuple[float, ...]:
    """Cumulative irregular times (seconds, whole ms) for ``n`` frames."""
    t, out = 0, []
    for i in range(n):
        out.append(t / 1000)
        t += _VFR_GAPS_MS[i % len(_VFR_GAPS_MS)]
    return tuple(out)


def _catalog(specs: Iterable[VideoSpec]) -> dict[str, VideoSpec]:
    """Index specs by name (names must be unique)."""
    out: dict[str, VideoSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"duplicate spec name {spec.name}")
        out[spec.name] = spec
    return out


CATALOG: dict[str, VideoSpec] = _catalog(
    [
        VideoSpec("h264_mp4", "libx264", "mp4", 128, 96, 60, bframes=3),
        VideoSpec("h264_mkv", "libx264", "mkv", 128, 96, 60, bframes=3),
        VideoSpec("hevc_mp4", "libx265", "mp4", 128, 96, 48, bframes=3),
        VideoSpec("vp9_webm", "libvpx-vp9", "webm", 128, 96, 48),
        VideoSpec("av1_mkv", "libsvtav1", "mkv", 128, 96, 40),
        VideoSpec("mpeg4_avi", "mpeg4", "avi", 128, 96, 50),
        VideoSpec("vfr_mkv", "libx264", "mkv", 128, 96, 45, pts_s=_vfr_times(45), bframes=2),
        VideoSpec("offset_mkv", "libx264", "mkv", 128, 96, 50, start_offset_s=1.4, bframes=3),
        VideoSpec("offset_mp4", "libx264", "mp4", 128, 96, 50, start_offset_s=1.4, bframes=3),
        VideoSpec("rot90_mp4", "libx264", "mp4", 128, 96, 40, rotation=90, bframes=3),
        VideoSpec("hevc10_mkv", "libx265", "mkv", 128, 96, 40, pix_fmt="yuv420p10le", bframes=3),
        VideoSpec("odd_vp9_webm", "libvpx-vp9", "webm", 97, 61, 40),
        VideoSpec("ntsc_mp4", "libx264", "mp4", 160, 120, 90, fps=Fraction(30000, 1001), bframes=3),
        VideoSpec("three_frames_mp4", "libx264", "mp4", 96, 64, 3, bframes=3),
    ]
)


#: Test clips for the GPU decoders, all at least 256x160: NVDEC refuses small pictures (HEVC
#: below about 144x144, so the 128x96 catalog clips would test a refusal, not a decode). The
#: colourful BT.709-tagged clip makes colour conversion visible: on grey clips any matrix and
#: range pass the pixel tolerance.
GPU_CATALOG: dict[str, VideoSpec] = _catalog(
    [
        VideoSpec("h264_gpu_mp4", "libx264", "mp4", 256, 160, 60, bframes=3),
        VideoSpec("hevc_gpu_mp4", "libx265", "mp4", 256, 160, 48, bframes=3),
        VideoSpec(
            "ntsc_gpu_mp4", "libx264", "mp4", 320, 176, 90, fps=Fraction(30000, 1001), bframes=3
        ),
        VideoSpec("rot90_gpu_mp4", "libx264", "mp4", 256, 160, 40, rotation=90, bframes=3),
        VideoSpec(
            "hevc10_gpu_mp4", "libx265", "mp4", 256, 160, 40, pix_fmt="yuv420p10le", bframes=3
        ),
        VideoSpec(
            "colour709_gpu_mp4",
            "libx264",
            "mp4",
            256,
            160,
            48,
            bframes=3,
            content="colour",
            bt709=True,
        ),
        VideoSpec(
            "colour709_hevc_gpu_mp4",
            "libx265",
            "mp4",
            256,
            160,
            40,
            bframes=3,
            content="colour",
            bt709=True,
        ),
    ]
)
#: NVDEC's smallest HEVC picture is about 144x144 (it varies by GPU): a clip below it, for the
#: refusal that must send the video to the CPU.
NVDEC_TOO_SMALL = VideoSpec("hevc_tiny_mp4", "libx265", "mp4", 128, 96, 24, bframes=3)


def build_gpu_catalog(directory: Path) -> dict[str, Path]:
    """Encode (or reuse) every GPU test clip in ``directory``; for a session-scoped fixture."""
    return {name: spec_path(directory, spec) for name, spec in GPU_CATALOG.items()}


def video_path(tmp_dir: Path, name: str) -> Path:
    """Path of catalog video ``name`` in ``tmp_dir``, encoding it on first use.

    Why: videos are shared between tests; the file name carries a hash of the
    spec, and the file appears atomically, so a stale or half-written file is
    never reused.
    """
    return spec_path(tmp_dir, CATALOG[name])


def spec_path(tmp_dir: Path, spec: VideoSpec) -> Path:
    """Path of ``spec``'s video in ``tmp_dir``, encoding it on first use (see ``video_path``)."""
    tmp_dir = Path(tmp_dir)
    target = tmp_dir / spec.filename()
    if not target.exists():
        tmp_dir.mkdir(parents=True, exist_ok=True)
        partial = tmp_dir / f".partial-{os.getpid()}-{target.name}"
        make_video(partial, spec)
        os.replace(partial, target)
    return target


def build_catalog(directory: Path) -> dict[str, Path]:
    """Encode (or reuse) every catalog video in ``directory``; for a session-scoped fixture."""
    return {name: video_path(directory, name) for name in CATALOG}
