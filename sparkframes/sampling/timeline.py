"""The presentation timeline of one video stream, built from its packets (no decoding).

Pure logic. Frames are identified by their position in presentation order. Times are integer
``pts`` in the stream's ``time_base`` (exact); seconds are ``(pts - origin) * time_base`` with the
origin at the first frame's presentation time, as the contract requires. Header fps and frame
counts are never used: they lie.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True)
class PacketInfo:
    """What the demuxer says about one video packet, in decode order."""

    pts: int | None
    dts: int | None
    duration: int
    is_keyframe: bool
    is_discard: bool = False

    @property
    def is_frame(self) -> bool:
        """Whether this packet yields a presented frame (discarded edit-list packets do not)."""
        return self.pts is not None and not self.is_discard


class VideoTimeline:
    """Frames of a stream in presentation order, with what is needed to decode each one.

    ``pts[i]`` is frame ``i``'s presentation time (ascending), ``decode_pos[i]`` the index of its
    packet in decode order, and ``packets`` the demuxer's packets in decode order.
    """

    def __init__(self, time_base: Fraction, packets: Sequence[PacketInfo]) -> None:
        self.time_base = Fraction(time_base)
        self.packets = list(packets)
        order = sorted(
            (p.pts, d)
            for d, p in enumerate(self.packets)
            if p.is_frame  # type: ignore[misc]
        )
        self.pts: list[int] = [pts for pts, _ in order]
        self.decode_pos: list[int] = [d for _, d in order]
        self._keyframes = [d for d, p in enumerate(self.packets) if p.is_keyframe and p.is_frame]

    def __len__(self) -> int:
        return len(self.pts)

    @property
    def origin_pts(self) -> int:
        return self.pts[0]

    @property
    def end_pts(self) -> int:
        """Last frame's pts plus its duration; the last interval when the duration is unknown."""
        last = self.pts[-1]
        duration = self.packets[self.decode_pos[-1]].duration
        if duration <= 0:
            duration = last - self.pts[-2] if len(self.pts) > 1 else 0
        return last + max(duration, 0)

    @property
    def end_s(self) -> Fraction:
        return self.seconds(self.end_pts)

    def seconds(self, pts: int) -> Fraction:
        """Exact seconds on the contract's timeline."""
        return (pts - self.origin_pts) * self.time_base

    def to_pts(self, seconds: Fraction) -> Fraction:
        """A time on the contract's timeline in (fractional) pts units, for exact comparisons."""
        return self.origin_pts + Fraction(seconds) / self.time_base

    def keyframe_positions(self) -> list[int]:
        """Positions (presentation order) of the frames whose packet the container flags as a
        keyframe; a repeated pts counts once, at its first position."""
        first_position: dict[int, int] = {}
        for position, pts in enumerate(self.pts):
            first_position.setdefault(pts, position)
        return sorted(
            {first_position[p.pts] for p in self.packets if p.is_keyframe and p.is_frame}  # type: ignore[index]
        )

    def start_keyframe(self, frame: int) -> int:
        """Decode position of the keyframe that decoding ``frame`` must start from.

        The last keyframe before the frame's packet in decode order whose own pts is not later
        than the frame's: a frame presented before its keyframe (an open-GOP leading picture)
        may reference the previous GOP, so it starts from an earlier keyframe.
        """
        d, pts = self.decode_pos[frame], self.pts[frame]
        k = bisect_right(self._keyframes, d) - 1
        while k >= 0 and self.packets[self._keyframes[k]].pts > pts:  # type: ignore[operator]
            k -= 1
        return self._keyframes[k] if k >= 0 else 0

    def is_vfr(self) -> bool:
        """Whether frame intervals differ (by more than one pts tick of rounding)."""
        gaps = {b - a for a, b in zip(self.pts, self.pts[1:], strict=False)}
        return bool(gaps) and max(gaps) - min(gaps) > 1
