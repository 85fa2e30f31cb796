"""Bad and tricky input files, made from real encoded videos, for error-handling tests.

Why: a batch job must record one clear error per broken file and still produce
frames for the good ones.  Every file here is built on the spot (from
``make_video`` output or PyAV encoders), so each one is a real, reproducible
case rather than a hand-written stub.

``BadInput.expect`` says what a library should report for the file:

* ``"error"``   - no frames; an error is expected.
* ``"partial"`` - some frames and an error are expected.
* ``"frames"``  - frames are expected despite the trick; an error is optional.

What PyAV 18.1 (FFmpeg 8.1) actually does on each file (checked by hand, and
the structural claims by ``tests/test_corpus.py``):

* ``zero_bytes.mp4``: ``av.open`` raises ``InvalidDataError`` ("Invalid data
  found when processing input").
* ``truncated_head.mp4`` (mdat kept, moov cut off): ``av.open`` raises
  ``InvalidDataError``; FFmpeg logs "moov atom not found".
* ``truncated_tail.mkv`` (cut at 60%): opens; demux ends quietly at the cut;
  frames 0..28 decode, then frame 32 (a P-frame whose B-frames were cut off);
  no exception at all, so ``expect="frames"`` (a library cannot be asked to
  report what FFmpeg hides).  ``container.duration`` still claims 2.4 s.
* ``corrupt_middle.mkv`` / ``.mp4`` (512 random bytes at 50%): open; a plain
  ``container.decode`` yields 22 (mkv) / 32 (mp4) correct frames, then raises
  ``InvalidDataError`` "... 'avcodec_send_packet()'", so ``expect="partial"``.
  A reader that skips failing packets gets 36 frames from the mkv (1 error)
  and 50 from the mp4 (6 errors, 3 of them unreadable garbage pictures).
* ``audio_only.mp4`` (AAC only): opens; ``container.streams.video`` is empty.
* ``image.mp4`` (a PNG): FFmpeg probes the content, opens it as
  ``png_pipe`` and decodes one frame; the library must reject it by format.
* ``text.mp4``: ``av.open`` raises ``InvalidDataError``.
* ``raw_stream.h264``: an H.264 elementary stream (Annex B, no container): it
  demuxes and decodes, but no packet carries a presentation timestamp.
* ``directory.mp4``: ``av.open`` raises ``IsADirectoryError`` (errno 21).
* ``large_frame.mp4``: a real 1920x1088 H.264 video of 3 frames, for
  ``max_pixels`` guards.
* ``lying_duration.mp4`` / ``.mkv``: header durations are 10x the truth:
  ``container.duration`` is 24 s (and the mp4's ``stream.duration`` too),
  while decoding gives the real 60 frames at their true times (oracle end
  2.4 s).  FFmpeg ignores mp4 header durations that exceed the sample table,
  so the mp4 also stretches its last stts delta: one B-frame (pts 29696 of
  12800ths) then reports ``frame.duration`` 276992; the last frame shown keeps 512.
* ``duplicate_pts.mkv``: blocks 30 and 31 share a timestamp; demux and decode
  both yield the repeated pts (FFmpeg does not fix it), 60 frames in all.
* ``nonmonotonic_pts.mkv``: blocks 30 and 31 swap timestamps; demuxed and
  decoded pts go backwards once, 60 frames in all.  ``oracle_decode`` rejects
  both pts files ("pts not strictly increasing").

Fuzzing (about 500 ``fuzz_variants`` of the catalog mp4/mkv, checked by hand):
no crash and no hang (every decode well under 0.5 s).  Seen: ``av.open``
raising ``InvalidDataError``, ``EOFError`` or ``OSError`` (errno 5, a very
short mkv); a video stream whose decode raises ``DecoderNotFoundError`` (a
flipped codec id); no video stream; decode ``InvalidDataError`` after some
frames; and files with a video stream that decode zero frames without any error.
"""

from __future__ import annotations

import dataclasses
import math
import random
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from tests.videos import CATALOG, VideoSpec, frame_pattern, make_video

Expect = Literal["error", "partial", "frames"]

#: How much the lying-duration files overstate their length.
DURATION_FACTOR = 10
#: Block index (decode order) whose timestamp the pts-trick files disturb.
PTS_TRICK_INDEX = 30

_MP4_SPEC = dataclasses.replace(CATALOG["h264_mp4"], name="corpus_h264_mp4")
_MKV_SPEC = dataclasses.replace(CATALOG["h264_mkv"], name="corpus_h264_mkv")
#: No B-frames, so block order is presentation order and each block is one frame.
_MKV_NOB_SPEC = dataclasses.replace(_MKV_SPEC, name="corpus_h264_mkv_nob", bframes=0)
LARGE_FRAME_SPEC = VideoSpec(
    "corpus_large", "libx264", "mp4", 1920, 1088, 3, options={"preset": "ultrafast"}
)


@dataclass(frozen=True)
class BadInput:
    """One corpus file: where it is, what trick it plays, what a reader should report."""

    path: Path
    kind: str
    expect: Expect


# --------------------------------------------------------------------------
# MP4 (ISO BMFF) atoms
# --------------------------------------------------------------------------


def mp4_atoms(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[str, int, int, int]]:
    """Yield ``(type, offset, size, header_size)`` of the atoms in ``data[start:end]``.

    Why: the corpus cuts and patches mp4 files at atom boundaries, and the tests
    check which atoms a file holds.  Stops at an atom that runs past ``end``.
    """
    end = len(data) if end is None else end
    off = start
    while off + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, off)
        header = 8
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, off + 8)
            header = 16
        elif size == 0:
            size = end - off
        if size < header:
            return
        yield kind.decode("latin-1"), off, size, header
        off += size


def _find_atoms(
    data: bytes, path: tuple[str, ...], start: int = 0, end: int | None = None
) -> list[int]:
    """Offsets of every atom at ``path`` (e.g. ``("moov", "trak", "tkhd")``)."""
    found: list[int] = []
    for kind, off, size, header in mp4_atoms(data, start, end):
        if kind != path[0]:
            continue
        if len(path) == 1:
            found.append(off)
        else:
            found += _find_atoms(data, path[1:], off + header, off + size)
    return found


def _scale_field(data: bytearray, pos: int, width: int, factor: int) -> None:
    """Multiply the big-endian unsigned field of ``width`` bytes at ``pos`` by ``factor``."""
    fmt = ">I" if width == 4 else ">Q"
    (value,) = struct.unpack_from(fmt, data, pos)
    struct.pack_into(fmt, data, pos, value * factor)


_STBL = ("moov", "trak", "mdia", "minf", "stbl")


def _grow_atom(data: bytearray, path: tuple[str, ...], pos: int, insert: bytes) -> None:
    """Insert ``insert`` at ``pos`` inside the atom at ``path``, growing it and its parents.

    Why safe here: moov comes after mdat (no faststart), so chunk offsets
    (stco) still point at the same sample bytes.
    """
    sizes = []
    for depth in range(1, len(path) + 1):
        off = _find_atoms(data, path[:depth])[0]
        (size,) = struct.unpack_from(">I", data, off)
        if size in (0, 1):
            raise ValueError(f"{path[depth - 1]}: 64-bit or open-ended atom sizes not handled")
        sizes.append((off, size))
    data[pos:pos] = insert
    for off, size in sizes:
        struct.pack_into(">I", data, off, size + len(insert))


def _lie_mp4_duration(data: bytearray, factor: int) -> None:
    """Scale the mvhd, tkhd, mdhd and elst durations, and stretch the last stts delta.

    Why the stts too: FFmpeg 8 derives an mp4's stream duration from the
    sample table (capped by the headers) and the container duration from the
    streams, so patched headers alone change nothing PyAV reports.  Giving
    the last sample in *decode* order the missing time makes the tables agree
    with the lie; every frame's pts stays true (it is the sum of the earlier
    deltas plus ctts), and with B-frames that sample is not the last frame shown.
    """
    moov = _find_atoms(data, ("moov",))[0]
    if any(kind == "mdat" and off > moov for kind, off, _, _ in mp4_atoms(data)):
        raise ValueError("moov before mdat: growing it would break chunk offsets")
    (stts,) = _find_atoms(data, (*_STBL, "stts"))
    (entries,) = struct.unpack_from(">I", data, stts + 12)
    table = [struct.unpack_from(">II", data, stts + 16 + 8 * i) for i in range(entries)]
    extra = (factor - 1) * sum(count * delta for count, delta in table)
    last = stts + 16 + 8 * (entries - 1)
    count, delta = table[-1]
    if count == 1:
        struct.pack_into(">II", data, last, 1, delta + extra)
    else:
        struct.pack_into(">II", data, last, count - 1, delta)
        struct.pack_into(">I", data, stts + 12, entries + 1)
        _grow_atom(data, (*_STBL, "stts"), last + 8, struct.pack(">II", 1, delta + extra))
    # Offset of the duration field after the version/flags word, for version 0 / 1
    # (creation and modification times, then timescale or track id + reserved).
    layout = {"mvhd": (12, 20), "mdhd": (12, 20), "tkhd": (16, 24)}
    paths = {
        "mvhd": ("moov", "mvhd"),
        "tkhd": ("moov", "trak", "tkhd"),
        "mdhd": ("moov", "trak", "mdia", "mdhd"),
    }
    for kind, path in paths.items():
        for off in _find_atoms(data, path):
            version = data[off + 8]
            skip = layout[kind][1 if version else 0]
            _scale_field(data, off + 12 + skip, 8 if version else 4, factor)
    for off in _find_atoms(data, ("moov", "trak", "edts", "elst")):
        version = data[off + 8]
        (count,) = struct.unpack_from(">I", data, off + 12)
        entry = 20 if version else 12
        for i in range(count):
            _scale_field(data, off + 16 + i * entry, 8 if version else 4, factor)


# --------------------------------------------------------------------------
# Matroska (EBML) elements
# --------------------------------------------------------------------------

EBML_SEGMENT = 0x18538067
EBML_INFO = 0x1549A966
EBML_TIMESTAMP_SCALE = 0x2AD7B1
EBML_DURATION = 0x4489
EBML_CLUSTER = 0x1F43B675
EBML_CLUSTER_TIMESTAMP = 0xE7
EBML_SIMPLE_BLOCK = 0xA3
EBML_BLOCK_GROUP = 0xA0
EBML_BLOCK = 0xA1


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """Read an EBML variable-size integer: ``(value, length, all_ones)``."""
    first = data[pos]
    length = 8 - first.bit_length() + 1
    if first == 0 or length > 8:
        raise ValueError(f"bad EBML vint at byte {pos}")
    value = int.from_bytes(data[pos : pos + length], "big")
    marker = 1 << (7 * length)
    all_ones = (value & (marker - 1)) == marker - 1
    return (value if keep_marker else value & (marker - 1)), length, all_ones


def ebml_elements(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(element_id, data_start, data_end)`` of the elements in ``data[start:end]``.

    Why: the Matroska tricks patch single fields in place; an unknown-size
    element is taken to run to ``end``.
    """
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        element_id, id_len, _ = _vint(data, pos, keep_marker=True)
        size, size_len, unknown = _vint(data, pos + id_len, keep_marker=False)
        body = pos + id_len + size_len
        stop = end if unknown else min(body + size, end)
        yield element_id, body, stop
        pos = stop


def _child(data: bytes, element_id: int, start: int, end: int) -> tuple[int, int]:
    """Body ``(start, end)`` of the first ``element_id`` child; ``KeyError`` if absent."""
    for eid, body, stop in ebml_elements(data, start, end):
        if eid == element_id:
            return body, stop
    raise KeyError(hex(element_id))


def mkv_segment_duration(data: bytes) -> tuple[float, int]:
    """Segment Info ``(Duration, TimestampScale)``: the duration is in scale units (ns each)."""
    seg = _child(data, EBML_SEGMENT, 0, len(data))
    info = _child(data, EBML_INFO, *seg)
    d0, d1 = _child(data, EBML_DURATION, *info)
    duration = struct.unpack(">f" if d1 - d0 == 4 else ">d", data[d0:d1])[0]
    try:
        s0, s1 = _child(data, EBML_TIMESTAMP_SCALE, *info)
        scale = int.from_bytes(data[s0:s1], "big")
    except KeyError:
        scale = 1_000_000
    return duration, scale


def _lie_mkv_duration(data: bytearray, factor: int) -> None:
    """Multiply the Segment Info Duration float in place (same width, so offsets hold)."""
    seg = _child(data, EBML_SEGMENT, 0, len(data))
    d0, d1 = _child(data, EBML_DURATION, *_child(data, EBML_INFO, *seg))
    fmt = ">f" if d1 - d0 == 4 else ">d"
    (value,) = struct.unpack(fmt, data[d0:d1])
    struct.pack_into(fmt, data, d0, value * factor)


def mkv_blocks(data: bytes) -> list[tuple[int, int, int]]:
    """Every block in file order as ``(cluster_timestamp, relative_ts_offset, relative_ts)``.

    Why: a Matroska block stores its pts as a signed 16-bit offset from its
    cluster's timestamp; the pts tricks rewrite that offset.
    """
    seg = _child(data, EBML_SEGMENT, 0, len(data))
    blocks: list[tuple[int, int, int]] = []
    for eid, c0, c1 in ebml_elements(data, *seg):
        if eid != EBML_CLUSTER:
            continue
        t0, t1 = _child(data, EBML_CLUSTER_TIMESTAMP, c0, c1)
        cluster_ts = int.from_bytes(data[t0:t1], "big")
        for bid, b0, b1 in ebml_elements(data, c0, c1):
            if bid == EBML_BLOCK_GROUP:
                b0, b1 = _child(data, EBML_BLOCK, b0, b1)
            elif bid != EBML_SIMPLE_BLOCK:
                continue
            _, track_len, _ = _vint(data, b0, keep_marker=False)
            (rel,) = struct.unpack_from(">h", data, b0 + track_len)
            blocks.append((cluster_ts, b0 + track_len, rel))
    return blocks


def _set_block_times(data: bytearray, new_abs: dict[int, int]) -> None:
    """Give block ``i`` the absolute timestamp ``new_abs[i]`` (in TimestampScale units)."""
    blocks = mkv_blocks(data)
    for index, absolute in new_abs.items():
        cluster_ts, pos, _ = blocks[index]
        struct.pack_into(">h", data, pos, absolute - cluster_ts)


def _pts_trick(source: bytes, mode: Literal["duplicate", "swap"]) -> bytes:
    """Block ``k+1`` repeats block ``k``'s timestamp, or the two swap timestamps."""
    data = bytearray(source)
    times = [ts + rel for ts, _, rel in mkv_blocks(data)]
    k = PTS_TRICK_INDEX
    if mode == "duplicate":
        _set_block_times(data, {k + 1: times[k]})
    else:
        _set_block_times(data, {k: times[k + 1], k + 1: times[k]})
    return bytes(data)


# --------------------------------------------------------------------------
# Non-video files
# --------------------------------------------------------------------------


def _write_raw_h264(path: Path, frames: int = 12) -> None:
    """An Annex B H.264 stream with no container: what an encoder writes before muxing."""
    with av.open(str(path), mode="w", format="h264") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), i * 16, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _write_audio_only(path: Path, seconds: float = 1.0) -> None:
    """An AAC-only mp4: a valid container with no video stream."""
    rate = 44100
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        stream.layout = "mono"
        total = int(rate * seconds)
        step = 1024
        for start in range(0, total, step):
            t = np.arange(start, min(start + step, total)) / rate
            samples = (0.3 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _png_bytes(height: int = 96, width: int = 128) -> bytes:
    """A real PNG picture (frame 0's pattern), encoded with FFmpeg's png encoder."""
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    grey = frame_pattern(0, height, width)
    frame = av.VideoFrame.from_ndarray(np.repeat(grey[:, :, None], 3, axis=2), format="rgb24")
    return b"".join(bytes(p) for p in [*codec.encode(frame), *codec.encode(None)])


# --------------------------------------------------------------------------
# The corpus
# --------------------------------------------------------------------------


def build_bad_corpus(directory: Path) -> dict[str, BadInput]:
    """Create every bad/tricky file under ``directory``; keyed by file name.

    Why one call: tests of error handling want all cases side by side next to
    good videos.  Takes about a second (the 1920x1088 video is most of it).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:  # only corpus files stay
        mp4, mkv, mkv_nob = (
            make_video(Path(tmp) / spec.filename(), spec).read_bytes()
            for spec in (_MP4_SPEC, _MKV_SPEC, _MKV_NOB_SPEC)
        )
    rng = random.Random(20240607)
    out: dict[str, BadInput] = {}

    def put(name: str, kind: str, expect: Expect, data: bytes | None = None) -> Path:
        path = directory / name
        if data is not None:
            path.write_bytes(data)
        out[name] = BadInput(path, kind, expect)
        return path

    put("zero_bytes.mp4", "empty file", "error", b"")

    moov = next(off for kind, off, _, _ in mp4_atoms(mp4) if kind == "moov")
    put("truncated_head.mp4", "mp4 cut before its moov atom", "error", mp4[:moov])

    put("truncated_tail.mkv", "mkv cut at 60% of its size", "frames", mkv[: len(mkv) * 6 // 10])

    for name, source in (("corrupt_middle.mkv", mkv), ("corrupt_middle.mp4", mp4)):
        data = bytearray(source)
        mid = len(data) // 2
        data[mid : mid + 512] = rng.randbytes(512)
        put(name, "512 random bytes at 50%", "partial", bytes(data))

    _write_audio_only(put("audio_only.mp4", "AAC audio only, no video stream", "error"))
    put("image.mp4", "PNG picture named .mp4", "error", _png_bytes())
    put("text.mp4", "text file named .mp4", "error", b"This is not a video.\n" * 20)
    _write_raw_h264(put("raw_stream.h264", "H.264 elementary stream, no timestamps", "error"))
    put("directory.mp4", "directory named like a video", "error").mkdir(exist_ok=True)

    make_video(put("large_frame.mp4", "real 1920x1088 H.264", "error"), LARGE_FRAME_SPEC)

    data = bytearray(mp4)
    _lie_mp4_duration(data, DURATION_FACTOR)
    kind = f"mvhd/tkhd/mdhd/elst durations x{DURATION_FACTOR}, last stts delta stretched"
    put("lying_duration.mp4", kind, "frames", data)
    data = bytearray(mkv)
    _lie_mkv_duration(data, DURATION_FACTOR)
    put("lying_duration.mkv", f"Segment Duration x{DURATION_FACTOR}", "frames", data)

    put(
        "duplicate_pts.mkv",
        "two consecutive blocks share a pts",
        "frames",
        _pts_trick(mkv_nob, "duplicate"),
    )
    put(
        "nonmonotonic_pts.mkv",
        "two consecutive blocks swap pts",
        "frames",
        _pts_trick(mkv_nob, "swap"),
    )
    return out


FuzzMode = Literal["truncate", "flip", "truncate+flip", "zero512"]
FUZZ_MODES: tuple[FuzzMode, ...] = ("truncate", "flip", "truncate+flip", "zero512")


def _flip_bits(data: bytearray, rng: random.Random, count: int) -> None:
    """Flip ``count`` distinct bits (distinct, so no pair cancels out)."""
    for bit in rng.sample(range(len(data) * 8), min(count, len(data) * 8)):
        data[bit // 8] ^= 1 << (bit % 8)


def fuzz_variants(source: Path, directory: Path, n: int, seed: int) -> list[Path]:
    """``n`` damaged copies of ``source``, the same for the same ``seed``.

    Why: a fuzz-style test feeds them to the library, which must return frames
    or an error per file and never crash.  Modes rotate (truncate, 1-16 bit
    flips, both, a 512-byte block zeroed), so every mode appears once ``n >= 4``.
    Every copy differs from ``source``.
    """
    source, directory = Path(source), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    original = source.read_bytes()
    if len(original) < 2:
        raise ValueError(f"{source} is too small to fuzz")
    rng = random.Random(seed)
    paths: list[Path] = []
    for i in range(n):
        mode = FUZZ_MODES[i % len(FUZZ_MODES)]
        data = bytearray(original)
        if "truncate" in mode:
            del data[rng.randrange(1, len(data)) :]
        if "flip" in mode:
            _flip_bits(data, rng, rng.randint(1, 16))
        if mode == "zero512":
            start = rng.randrange(0, max(1, len(data) - 512))
            data[start : start + 512] = bytes(len(data[start : start + 512]))
            if data == original:  # the block was already zero: flip one bit instead
                _flip_bits(data, rng, 1)
        path = directory / f"fuzz-{seed}-{i:03d}-{mode.replace('+', '_')}{source.suffix}"
        path.write_bytes(bytes(data))
        paths.append(path)
    return paths
