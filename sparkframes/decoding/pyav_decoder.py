"""Decoding chosen frames of one video on the CPU with PyAV (FFmpeg's libavcodec).

Given the frames a plan needs (positions on the timeline), the decoder makes one forward pass:

* it sends the decoder only the packets those frames depend on: for each needed frame, the packets
  from the keyframe it starts from (``VideoTimeline.start_keyframe``) up to its own;
* packets between such ranges are never decoded: a short gap is read and dropped, a long one is
  crossed by seeking to the next range's keyframe;
* inside a range, on a decoder in ``SKIP_SAFE_DECODERS``, a packet whose frame is not needed is
  sent with ``skip_frame = NONREF``: if no other frame references it the decoder skips it
  outright (most B-frames of x264/x265 output); if it is a reference, it is decoded as usual but
  never converted. Other decoders decode every packet of a range.

Guarantee: frames are exact. Which frame is which comes from the decoded presentation timestamp,
never from a frame count, and a seek always lands on a keyframe at or before the one needed and
decodes forward from there (it is checked; if a seek lands later the container is reopened).
Skipping never costs a frame: a wanted frame that did not come out of a range decoded with
skipping is decoded again from its keyframe without it (counted in ``DecodeStats.restarts``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import av

from sparkframes.decoding.protocol import (
    AVPicture,
    DecodeFailure,
    DecoderRefusedError,
    DecodeStats,
)
from sparkframes.decoding.source import VideoSource

#: Crossing a gap of at least this many packets seeks instead of reading and dropping them.
#: A seek costs a demuxer index lookup and a drained decoder pipeline; reading a packet costs
#: only I/O, so short gaps are cheaper to read through.
SEEK_MIN_GAP_PACKETS = 48

#: Decoders (libavcodec implementation names, ``codec_context.codec.name``) on which toggling
#: ``skip_frame = NONREF`` packet by packet is proven to give the same frames, byte for byte, as
#: decoding everything: tests/test_codec_matrix.py checks each entry on real encoder output
#: (B-pyramids, open GOPs, every policy, sparse and dense). A decoder not listed decodes every
#: packet of a range. Left out on purpose: libdav1d (AV1), which applies the setting of the
#: packet going in to the frames coming out and keeps the one it was opened with, so it drops
#: wanted frames; vp8/vp9, where libvpx output has no non-reference frame to skip; intra-only
#: codecs (MJPEG, ProRes), whose ranges hold no unneeded packet.
SKIP_SAFE_DECODERS: frozenset[str] = frozenset(
    {"h264", "hevc", "mpeg4", "mpeg2video", "mpeg1video"}
)


@dataclass
class _Reader:
    """Reads the video stream's packets and knows each one's decode position."""

    source: VideoSource
    pos: int = 0
    _packets: Iterator[av.Packet] | None = None
    _peeked: av.Packet | None = None
    _by_ts: dict[tuple[int | None, int | None], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_ts = {}
        for d, p in enumerate(self.source.timeline.packets):
            self._by_ts.setdefault((p.pts, p.dts), d)
        self._packets = self._demux()

    def _demux(self) -> Iterator[av.Packet]:
        for packet in self.source.container.demux(self.source.stream):
            if packet.size:
                yield packet

    def next(self) -> av.Packet | None:
        """The packet at ``pos`` (then advance), or None at the end of the stream."""
        if self._peeked is not None:
            packet, self._peeked = self._peeked, None
        else:
            packet = next(self._packets, None)  # type: ignore[arg-type]
        if packet is not None:
            self.pos += 1
        return packet

    def seek_to(self, target: int) -> bool:
        """Position the reader at or before decode position ``target``, on a keyframe.

        Seeks to the keyframe's pts first (MP4 and Matroska demuxers land exactly on it); if that
        lands after the target it tries the keyframe's dts, which is never later. Returns False
        (and reopens the file at its start) when neither lands somewhere usable.
        """
        info = self.source.timeline.packets[target]
        for stamp in dict.fromkeys(t for t in (info.pts, info.dts) if t is not None):
            try:
                self.source.container.seek(
                    stamp, stream=self.source.stream, backward=True, any_frame=False
                )
            except av.error.FFmpegError:
                continue
            self._packets = self._demux()
            self._peeked = next(self._packets, None)
            if self._peeked is not None:
                landed = self._by_ts.get((self._peeked.pts, self._peeked.dts))
                if landed is not None and landed <= target:
                    self.pos = landed
                    return True
        self.restart()
        return False

    def restart(self) -> None:
        """Reopen the file (with a fresh decoder) and read it from its start."""
        self.source.reopen()
        self._packets = self._demux()
        self._peeked = None
        self.pos = 0


class PyAVDecoder:
    """Decodes exactly the frames asked for, in one forward pass over the file.

    ``frames(wanted)`` yields ``(position, frame)`` for each wanted timeline position, in
    presentation order within each decoded range (a frame recovered by decoding its range again
    comes after the ones that did not need it). After the pass, ``missing`` lists wanted
    positions the decoder never produced (a damaged stream), ``failures`` the packets it
    rejected; ``stats.recovered`` counts the wanted frames that came out only when decoded
    again without skipping (0 wherever skipping is safe).
    """

    def __init__(
        self, source: VideoSource, *, skip_unneeded: bool = True, mode: str = "ffmpeg_cpu"
    ) -> None:
        self.source = source
        self.mode = mode
        # Skipping is used only where it is proven to be safe for this decoder.
        self.skip_unneeded = skip_unneeded and source.codec in SKIP_SAFE_DECODERS
        # A device decoder (FFmpeg's CUDA hwaccel) that fails on its very first packets cannot
        # take this stream: that is a refusal, so the extraction can fall back to the CPU
        # before anything was output. On the CPU a rejected packet is damage, recorded.
        self.refuses_early = source.hwaccel is not None
        self.stats = DecodeStats()
        self.failures: list[DecodeFailure] = []
        self.missing: list[int] = []

    def chosen(self, positions: Iterable[int]) -> Iterator[tuple[int, AVPicture]]:
        """The ``Decoder`` protocol's form of ``frames``."""
        for position, frame in self.frames(positions):
            yield position, AVPicture(frame)

    def every(self) -> Iterator[AVPicture]:
        """The ``Decoder`` protocol's form of ``all_frames``."""
        for frame in self.all_frames():
            yield AVPicture(frame)

    def frames(self, wanted: Iterable[int]) -> Iterator[tuple[int, av.VideoFrame]]:
        timeline = self.source.timeline
        pending = set(wanted)
        if not pending:
            return
        by_pts: dict[int, list[int]] = defaultdict(list)
        for position in sorted(pending):
            by_pts[timeline.pts[position]].append(position)
        ranges = _merge_ranges(
            (timeline.start_keyframe(p), timeline.decode_pos[p]) for p in pending
        )
        in_range = _group_by_range(ranges, pending, timeline.decode_pos)
        reader = _Reader(self.source)
        skip = self.skip_unneeded
        for i, (start, end) in enumerate(ranges):
            # Merged ranges never touch, so each one is a discontinuity: it is reached by a seek
            # (the first, or across a long gap) or by reading through, and drained at its end.
            yield from self._range(reader, start, end, by_pts, pending, seek=i == 0, skip=skip)
            lost = [p for p in in_range[i] if p in pending] if skip else []
            if not lost:
                continue
            # A wanted frame did not come out although all its packets were sent: the decoder
            # dropped it under the skip setting. Decode what it needs again without skipping,
            # in a fresh decoder (one may keep the setting it was opened with), and trust
            # skipping no more on this video.
            skip = False
            reader.restart()
            for again in _merge_ranges(
                (timeline.start_keyframe(p), timeline.decode_pos[p]) for p in lost
            ):
                self.stats.restarts += 1
                yield from self._range(reader, *again, by_pts, pending, seek=True, skip=False)
            self.stats.recovered += sum(p not in pending for p in lost)
        self.missing = sorted(pending)

    def _range(
        self,
        reader: _Reader,
        start: int,
        end: int,
        by_pts: dict[int, list[int]],
        pending: set[int],
        *,
        seek: bool,
        skip: bool,
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Decode packets ``start..end`` (decode positions), then drain and reset the decoder.

        ``seek`` forces a seek to ``start`` (which the reader may be past); otherwise it seeks
        only across a gap of ``SEEK_MIN_GAP_PACKETS`` or more. ``skip`` sends unneeded packets
        with ``skip_frame = NONREF``.
        """
        if seek or start - reader.pos >= SEEK_MIN_GAP_PACKETS:
            self.stats.seeks += 1
            if not reader.seek_to(start):
                self.stats.restarts += 1
        while reader.pos < start:  # read and drop what this range does not depend on
            if reader.next() is None:
                break
            self.stats.packets_read += 1
        while reader.pos <= end:
            packet = reader.next()
            if packet is None:
                break
            self.stats.packets_read += 1
            needed = not skip or packet.pts in by_pts
            yield from self._emit(self._decode(packet, needed), by_pts, pending)
        yield from self._emit(self._drain(), by_pts, pending)

    def all_frames(self) -> Iterator[av.VideoFrame]:
        """Every frame front to back, in presentation order, without an index (constant memory).

        A packet the decoder rejects is recorded in ``failures`` and decoding goes on.
        """
        for packet in self.source.container.demux(self.source.stream):
            if not packet.size:
                continue
            self.stats.packets_read += 1
            for frame in self._decode(packet, True):
                self.stats.frames_decoded += 1
                yield frame
        for frame in self._drain():
            self.stats.frames_decoded += 1
            yield frame

    def _decode(self, packet: av.Packet, needed: bool) -> list[av.VideoFrame]:
        """Send one packet; ``needed=False`` lets a skip-safe decoder drop a non-reference."""
        context = self.source.stream.codec_context
        if self.skip_unneeded:
            # Read by the decoder per packet (frame threads copy it at submission time). After a
            # restart the context is fresh, and every packet is sent as needed.
            context.skip_frame = "DEFAULT" if needed else "NONREF"
        self.stats.packets_sent += 1
        try:
            return context.decode(packet)
        except av.error.FFmpegError as exc:
            if self.refuses_early and self.stats.frames_decoded == 0:
                raise DecoderRefusedError(f"{self.mode} cannot decode it: {_reason(exc)}") from exc
            self.failures.append(DecodeFailure(packet.pts, _reason(exc)))
            return []

    def _drain(self) -> list[av.VideoFrame]:
        context = self.source.stream.codec_context
        try:
            frames = context.decode(None)
        except av.error.FFmpegError as exc:
            self.failures.append(DecodeFailure(None, _reason(exc)))
            frames = []
        context.flush_buffers()
        return frames

    def _emit(
        self,
        frames: list[av.VideoFrame],
        by_pts: dict[int, list[int]],
        pending: set[int],
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        for frame in frames:
            self.stats.frames_decoded += 1
            for position in by_pts.get(frame.pts, ()):  # type: ignore[arg-type]
                if position in pending:  # duplicate pts: first frame to the first position
                    pending.discard(position)
                    yield position, frame
                    break


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of inclusive decode-position ranges, sorted; adjacent ranges merge."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _group_by_range(
    ranges: list[tuple[int, int]], positions: Iterable[int], decode_pos: list[int]
) -> list[list[int]]:
    """The positions whose packet lies in each of ``ranges`` (sorted, disjoint: merged)."""
    starts = [start for start, _ in ranges]
    groups: list[list[int]] = [[] for _ in ranges]
    for position in positions:
        groups[bisect_right(starts, decode_pos[position]) - 1].append(position)
    return groups


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)
