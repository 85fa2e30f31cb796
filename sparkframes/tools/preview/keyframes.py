"""Fast previews straight from video files: decode keyframes only, no table, no Spark.

Why: to eyeball a batch of videos before running a job, a dozen thumbnails per video are enough,
and a keyframe decodes on its own. Decoding only keyframes (each one seeked to, nothing between
them sent to the decoder) costs a few frame decodes per video instead of a decode of nearly every
frame, at the price of *where* the thumbnails fall: on keyframes, not at the exact times asked.
``exact_thumbnails`` gives the frame-exact counterpart (the library's planned one-pass decode)
for the same target times.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np

from sparkframes.convert.resize import displayed_size, quarter_turns, to_rgb
from sparkframes.decoding.protocol import DecodeStats
from sparkframes.decoding.pyav_decoder import PyAVDecoder
from sparkframes.decoding.source import open_video
from sparkframes.errors import DecodeError
from sparkframes.sampling.frame_choice import nearest_frame
from sparkframes.sampling.time_grid import sample_times
from sparkframes.sampling.timeline import VideoTimeline
from sparkframes.tools.preview.contact_sheet import THUMB_HEIGHT, ContactSheet, SheetRow, Thumb
from sparkframes.tools.preview.contact_sheet import write_sheet as _write_sheet


class Thumbnail(NamedTuple):
    """A frame's presentation time (seconds from the first frame) and its RGB pixels."""

    pts_s: float
    image: np.ndarray  # (h, w, 3) uint8, as a player shows it (rotation applied)


def target_times(end_s: Fraction, count: int) -> list[Fraction]:
    """``count`` times evenly over ``[0, end_s)``: ``k * end_s / count``, as a rate would."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if end_s <= 0:
        return [Fraction(0)]
    return sample_times(Fraction(0), end_s, Fraction(count) / end_s)


def snap_to_keyframes(timeline: VideoTimeline, times: Sequence[Fraction]) -> list[int]:
    """For each time the nearest keyframe's position (ties to the earlier), repeats dropped."""
    keys = timeline.keyframe_positions()
    if not keys:
        return []
    key_pts = [timeline.pts[k] for k in keys]
    every = range(len(keys))
    chosen = (keys[nearest_frame(key_pts, every, timeline.to_pts(t))] for t in times)
    return sorted(dict.fromkeys(chosen))


def thumb_size(frame: av.VideoFrame, sar: Fraction | None, height: int) -> tuple[int, int]:
    """``(h, w)`` of a ``height``-row thumbnail of ``frame`` as displayed (rotation, SAR)."""
    h, w = displayed_size(frame)
    aspect = Fraction(w, h)
    if sar:  # non-square pixels: a player stretches the coded width, before rotating
        aspect = aspect / Fraction(sar) if quarter_turns(frame) % 2 else aspect * Fraction(sar)
    return height, max(1, round(height * aspect))


def keyframe_thumbnails(
    video_path: str | os.PathLike[str],
    max_frames: int = 12,
    height: int = THUMB_HEIGHT,
    *,
    threads: int = 1,
    stats: DecodeStats | None = None,
    allow_playlists: bool = False,
) -> list[Thumbnail]:
    """Up to ``max_frames`` thumbnails spread evenly over the video, from keyframes only.

    Frames SNAP TO KEYFRAMES: each target time ``k * duration / max_frames`` takes the
    keyframe nearest to it, and targets that share a keyframe share one thumbnail, so a video
    with few keyframes (long GOPs) gives fewer thumbnails, possibly seconds away from the
    targets. Only the chosen keyframe packets are decoded (seeking between them); the times are
    exact presentation times of the frames shown. ``stats`` (if given) receives the decode
    counts. Raises the library's typed errors (``VideoOpenError``, ``DecodeError``, ...);
    ``allow_playlists`` opens a playlist as extraction does (``ExtractOptions``).
    """
    path = os.fspath(video_path)
    with open_video(path, threads=threads, allow_playlists=allow_playlists) as source:
        timeline = source.timeline
        assert timeline is not None
        positions = snap_to_keyframes(timeline, target_times(timeline.end_s, max_frames))
        # Each keyframe is decoded alone and drained, so frame threads have nothing to overlap;
        # slice threads split the one frame (2 threads, keyframes of bench/keyframe_bench.py's
        # 720p H.264 video: 6.9 ms each with slice threads, 11.8 ms with frame threads).
        source.stream.codec_context.thread_type = "SLICE"
        decoder = PyAVDecoder(source)
        frames = dict(decoder.frames(positions))
        if stats is not None:
            for name, value in vars(decoder.stats).items():
                setattr(stats, name, value)
        if decoder.missing:
            t = float(timeline.seconds(timeline.pts[decoder.missing[0]]))
            cause = f": {decoder.failures[0].message}" if decoder.failures else ""
            raise DecodeError(path, f"keyframe at t = {t:.3f} s could not be decoded{cause}")
        sar = source.stream.codec_context.sample_aspect_ratio
        out = []
        for position in positions:
            frame = frames[position]
            image = np.ascontiguousarray(to_rgb(frame, thumb_size(frame, sar, height)))
            out.append(Thumbnail(float(timeline.seconds(frame.pts)), image))
        return out


def exact_thumbnails(
    video_path: str | os.PathLike[str],
    max_frames: int = 12,
    height: int = THUMB_HEIGHT,
    *,
    threads: int = 1,
    stats: DecodeStats | None = None,
    allow_playlists: bool = False,
) -> list[Thumbnail]:
    """The frame-exact counterpart of ``keyframe_thumbnails``: the same target times, each
    served by its nearest frame (ties to the earlier), as ``extract_clip_frames`` samples a
    whole-video clip at ``max_frames / duration`` fps. Decodes what those frames depend on,
    which for long GOPs is most of the video.
    """
    from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
    from sparkframes.sampling.spans import ClipSpan
    from sparkframes.sampling.specs import ExtractionSpec

    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    path = os.fspath(video_path)
    with open_video(path, threads=threads, allow_playlists=allow_playlists) as source:
        timeline = source.timeline
        assert timeline is not None
        end_s = timeline.end_s
        source.reopen()  # the index pass left the container at its end
        try:
            first = next(source.container.decode(source.stream), None)
        except av.error.FFmpegError as exc:
            raise DecodeError(path, f"first frame could not be decoded: {exc}") from exc
        if first is None:
            raise DecodeError(path, "no frame could be decoded")
        size = thumb_size(first, source.stream.codec_context.sample_aspect_ratio, height)
    rate = Fraction(max_frames) / end_s if end_s > 0 else Fraction(1)
    spec = ExtractionSpec("preview", target_fps=(rate,), target_res=size)
    extraction = extract_clip_frames(
        path,
        [spec],
        [ClipSpan(Fraction(0), None, "preview")],
        options=ExtractOptions(threads=threads, allow_playlists=allow_playlists),
    )
    rows = [row for batch in extraction for row in batch]
    if stats is not None:
        for name, value in vars(extraction.report.decode).items():
            setattr(stats, name, value)
    if extraction.report.errors:
        raise extraction.report.errors[0]
    rows.sort(key=lambda r: r.frame_index)
    return [Thumbnail(float(r.pts_s), r.image) for r in rows]


def video_contact_sheet(
    videos: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str] = "preview.png",
    *,
    exact: bool = False,
    max_frames: int = 12,
    thumb_height: int = THUMB_HEIGHT,
    threads: int = 1,
    allow_playlists: bool = False,
) -> ContactSheet:
    """A contact sheet straight from video files: one row per video, keyframes by default
    (fast, thumbnails snap to keyframes) or ``exact`` nearest frames (a full decode).
    ``allow_playlists`` opens playlists as extraction does (``ExtractOptions``)."""
    make = exact_thumbnails if exact else keyframe_thumbnails
    mode = "exact frames" if exact else "keyframes (times snap to keyframes)"
    rows = []
    for video in videos:
        path = os.fspath(video)
        thumbs = make(
            path, max_frames, thumb_height, threads=threads, allow_playlists=allow_playlists
        )
        name = posixpath.basename(path.replace(os.sep, "/")) or path
        label = f"{name} | {mode} | {len(thumbs)} frames"
        rows.append(SheetRow(label, [Thumb(t.pts_s, t.image) for t in thumbs], path))
    return _write_sheet(rows, output, title=f"{len(rows)} videos - {mode}")


__all__ = [
    "Thumbnail",
    "exact_thumbnails",
    "keyframe_thumbnails",
    "snap_to_keyframes",
    "target_times",
    "video_contact_sheet",
]
