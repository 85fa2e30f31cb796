"""``sparkframes inspect VIDEO``: what the decoder sees in a video that misbehaves.

Why: when a video gives odd frames (rotated, too few, shifted in time), the first question is
whether its header tells the truth. This puts the header's claims (duration, frame count, rate)
next to what the library actually uses: the demuxed timestamps of ``open_video``'s timeline
(the same pass the planner uses, so the numbers are the ones extraction works with), the
rotation the first decoded frame carries, and where the keyframes are.

The module's name is the standard library's: it shadows ``inspect`` for a script run from inside
``sparkframes/`` (``python sparkframes/cli.py`` crashes while importing PyAV). Use the
``sparkframes`` command or ``python -m sparkframes.cli``, which are unaffected.
"""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from typing import Any

import av
from av.video.frame import PictureType
from av.video.reformatter import ColorRange, Colorspace

from sparkframes.convert.resize import quarter_turns
from sparkframes.decoding.source import open_video

#: Keyframe times listed in full (the count is always given).
KEYFRAMES_LISTED = 8
#: Header and timestamps disagree when frame counts differ by more than this many frames...
FRAME_TOLERANCE = 1
#: ...or durations by more than this fraction of the measured duration.
DURATION_TOLERANCE = 0.05


def _num(value: Fraction | float | int | None, digits: int = 6) -> float | None:
    """A JSON number (rounded so float noise does not show), or None."""
    return None if value is None else round(float(value), digits)


def _ratio(value: Fraction | None) -> str | None:
    return None if not value else f"{value.numerator}/{value.denominator}"


def _bit_depth(pix_fmt: str | None) -> int | None:
    if not pix_fmt:
        return None
    try:
        components = av.VideoFormat(pix_fmt).components
    except (ValueError, av.error.FFmpegError):
        return None
    return max((c.bits for c in components), default=None)


def _stream_info(stream: av.stream.Stream) -> dict[str, Any]:
    """What the header says about one stream (of any type)."""
    context = getattr(stream, "codec_context", None)
    info: dict[str, Any] = {
        "index": stream.index,
        "type": stream.type,
        "codec": context.name if context is not None else None,
        "codec_long_name": context.codec.long_name if context is not None else None,
        "profile": getattr(stream, "profile", None),
        "time_base": _ratio(stream.time_base),
        "header_frames": stream.frames or None,
        "header_duration_s": (
            _num(stream.duration * stream.time_base)
            if stream.duration is not None and stream.time_base
            else None
        ),
    }
    if stream.type == "video" and context is not None:
        info.update(
            pix_fmt=context.pix_fmt,
            bit_depth=_bit_depth(context.pix_fmt),
            width=context.width,
            height=context.height,
            average_rate=_ratio(stream.average_rate),
        )
    elif stream.type == "audio" and context is not None:
        info.update(sample_rate=context.sample_rate, channels=context.channels)
    return info


def inspect_video(path: str | os.PathLike[str], *, allow_playlists: bool = False) -> dict[str, Any]:
    """A JSON-serialisable report on ``path``'s container and its first video stream.

    Frame count, duration, keyframes and VFR come from the demuxed timestamps (no header
    values); the header's claims sit beside them and ``mismatch`` flags where they disagree.
    Raises the library's typed errors (``VideoOpenError``, ``NoVideoStreamError``, ...); a
    playlist is opened only with ``allow_playlists``, as extraction opens it.
    """
    path = os.fspath(path)
    with open_video(path, allow_playlists=allow_playlists) as source:
        timeline = source.timeline
        assert timeline is not None
        container, stream = source.container, source.stream
        # Everything from the header is read now: the first-frame decode below reopens the
        # file, after which these objects belong to a closed container.
        streams = [_stream_info(s) for s in container.streams]
        header = next(s for s in streams if s["index"] == stream.index)
        sar = _ratio(stream.codec_context.sample_aspect_ratio)
        header_duration, header_duration_from = _header_duration(container, stream)
        file_format = {
            "name": container.format.name,
            "long_name": container.format.long_name,
            # A remote video's local copy has its size (an http stream has none to read).
            "size_bytes": (
                os.path.getsize(source.readable_path)
                if os.path.isfile(source.readable_path)
                else None
            ),
            "bit_rate": container.bit_rate or None,
            "header_start_time_s": (
                _num(Fraction(container.start_time, av.time_base))
                if container.start_time is not None
                else None
            ),
        }
        first = _first_frame(source)
    tb = timeline.time_base
    frames = len(timeline)
    duration = timeline.end_s
    start_offset = timeline.origin_pts * tb
    header_frames = header["header_frames"]
    width, height = header["width"], header["height"]
    rotation = first.get("rotation_deg") or 0
    turns = round(rotation / 90) % 4
    shown = (height, width) if turns % 2 else (width, height)
    keys = sorted(
        {p.pts for p in timeline.packets if p.is_keyframe and p.is_frame}  # type: ignore[type-var]
    )
    key_times = [timeline.seconds(k) for k in keys]
    gaps = [b - a for a, b in itertools.pairwise(timeline.pts)]
    mean_fps = Fraction(frames, 1) / duration if duration > 0 else None

    warnings: list[str] = []
    frames_mismatch = header_frames is not None and abs(header_frames - frames) > FRAME_TOLERANCE
    if frames_mismatch:
        warnings.append(f"header claims {header_frames} frames, the timestamps give {frames}")
    duration_mismatch, duration_note = _duration_check(
        header_duration, header_duration_from, duration, start_offset
    )
    if duration_mismatch:
        warnings.append(
            f"header claims {float(header_duration):.3f} s ({header_duration_from}), "  # type: ignore[arg-type]
            f"the timestamps give {float(duration):.3f} s"
        )
    if not keys:
        warnings.append("no packet is marked as a keyframe")
    elif keys[0] != timeline.origin_pts:
        warnings.append("the first frame is not a keyframe (decoding starts later)")
    if "error" in first:
        warnings.append(f"first frame could not be decoded: {first['error']}")
    if start_offset:
        warnings.append(f"timestamps start at {float(start_offset):.3f} s, not 0")

    return {
        "path": path,
        "format": file_format,
        "streams": streams,
        "video": {
            "stream_index": header["index"],
            "codec": header["codec"],
            "profile": header["profile"],
            "pix_fmt": header["pix_fmt"],
            "bit_depth": header["bit_depth"],
            "coded_size": {"width": width, "height": height},
            "displayed_size": {"width": shown[0], "height": shown[1]},
            "rotation_deg": rotation,
            "sample_aspect_ratio": sar,
            "time_base": _ratio(tb),
            "start_offset_s": _num(start_offset),
            "first_pts": timeline.origin_pts,
            "frames": frames,
            "duration_s": _num(duration),
            "header_frames": header_frames,
            "header_duration_s": _num(header_duration),
            "header_duration_from": header_duration_from,
            "mismatch": {
                "frames": frames_mismatch,
                "duration": duration_mismatch,
                "note": duration_note,
            },
            "vfr": timeline.is_vfr(),
            "mean_fps": _num(mean_fps, 4),
            "header_average_rate": header["average_rate"],
            "frame_interval_s": {
                "min": _num(min(gaps) * tb) if gaps else None,
                "max": _num(max(gaps) * tb) if gaps else None,
            },
            "keyframes": {
                "count": len(keys),
                "first_times_s": [_num(t) for t in key_times[:KEYFRAMES_LISTED]],
                "max_interval_s": _num(
                    max((b - a for a, b in itertools.pairwise(key_times)), default=0)
                ),
            },
            "first_frame": first,
        },
        "warnings": warnings,
    }


def _header_duration(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[Fraction | None, str | None]:
    """The stream's own duration if its header has one, else its Matroska ``DURATION`` tag,
    else the container's (which spans every stream: a longer audio track counts)."""
    if stream.duration is not None and stream.time_base:
        return stream.duration * Fraction(stream.time_base), "stream"
    tag = _tag_seconds(stream.metadata.get("DURATION") or stream.metadata.get("duration"))
    if tag is not None:
        return tag, "stream tag"
    if container.duration is not None:
        return Fraction(container.duration, av.time_base), "container"
    return None, None


def _tag_seconds(value: str | None) -> Fraction | None:
    """``HH:MM:SS.fraction`` (as Matroska muxers write per-track durations) in seconds."""
    if not value:
        return None
    try:
        hours, minutes, seconds = value.strip().split(":")
        return Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(seconds)
    except ValueError:
        return None


def _duration_check(
    claimed: Fraction | None, source: str | None, measured: Fraction, start_offset: Fraction
) -> tuple[bool, str | None]:
    """(mismatch?, note). A container duration (or Matroska tag) that counts from 0 includes
    the start offset: that is explained, not flagged."""
    if claimed is None or measured <= 0:
        return False, None
    tolerance = DURATION_TOLERANCE * measured
    if abs(claimed - measured) <= tolerance:
        return False, None
    counts_from_zero = abs(claimed - measured - start_offset) <= tolerance
    if source != "stream" and start_offset and counts_from_zero:
        return False, f"the {source} duration counts from 0 and includes the start offset"
    return True, None


def _first_frame(source: Any) -> dict[str, Any]:
    """Decode the first frame: its rotation, and whether decoding works at all."""
    source.reopen()
    try:
        frame = next(source.container.decode(source.stream), None)
    except av.error.FFmpegError as exc:
        return {"error": getattr(exc, "strerror", None) or str(exc)}
    if frame is None:
        return {"error": "the decoder returned no frame"}
    rotation = frame.rotation
    return {
        "rotation_deg": int(rotation) if float(rotation).is_integer() else float(rotation),
        "quarter_turns": quarter_turns(frame),
        "pix_fmt": frame.format.name,
        "pict_type": _enum_name(PictureType, frame.pict_type),
        "key_frame": bool(frame.key_frame),
        "color_range": _enum_name(ColorRange, frame.color_range),
        "colorspace": _enum_name(Colorspace, frame.colorspace),
    }


def _enum_name(enum: Any, value: int | None) -> str | int | None:
    """FFmpeg's enum value by PyAV's name for it (``ColorRange.MPEG`` -> "MPEG"), else the int."""
    if value is None:
        return None
    try:
        return str(enum(int(value)).name)
    except ValueError:
        return "UNSPECIFIED" if enum is Colorspace and int(value) == 2 else int(value)


# --------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.3f} s"


def format_inspection(info: dict[str, Any]) -> str:
    """``inspect_video``'s report as a few aligned lines for a terminal."""
    v = info["video"]
    fmt = info["format"]
    lines = [info["path"]]

    def add(key: str, text: str) -> None:
        lines.append(f"  {key:<14}{text}")

    size = f", {fmt['size_bytes']:,} bytes" if fmt["size_bytes"] is not None else ""
    rate = f", {fmt['bit_rate'] / 1e6:.2f} Mbit/s" if fmt["bit_rate"] else ""
    add("container", f"{fmt['name']} ({fmt['long_name']}){size}{rate}")
    for s in info["streams"]:
        parts = [s["type"], s["codec"] or "?"]
        if s.get("profile"):
            parts.append(f"({s['profile']})")
        if s["type"] == "video":
            parts.append(f"{s['pix_fmt']} {s['bit_depth']}-bit {s['width']}x{s['height']}")
        if s["type"] == "audio":
            parts.append(f"{s['sample_rate']} Hz {s['channels']} ch")
        parts.append(f"time base {s['time_base']}")
        marker = "   <- inspected" if s["index"] == v["stream_index"] else ""
        add(f"stream #{s['index']}", " ".join(parts) + marker)
    coded, shown = v["coded_size"], v["displayed_size"]
    sar = f", SAR {v['sample_aspect_ratio']}" if v["sample_aspect_ratio"] else ""
    add(
        "size",
        f"coded {coded['width']}x{coded['height']}, displayed {shown['width']}x{shown['height']} "
        f"(rotation {v['rotation_deg']} deg counter-clockwise){sar}",
    )
    header_frames = "?" if v["header_frames"] is None else v["header_frames"]
    header = f"header: {header_frames} frames, {_seconds(v['header_duration_s'])}"
    if v["header_duration_from"]:
        header += f" ({v['header_duration_from']})"
    add("timestamps", f"{v['frames']} frames, {_seconds(v['duration_s'])}   {header}")
    mismatch = [k for k in ("frames", "duration") if v["mismatch"][k]]
    if mismatch or v["mismatch"]["note"]:
        text = ", ".join(mismatch) or "none"
        if v["mismatch"]["note"]:
            text += f" ({v['mismatch']['note']})"
        add("mismatch", text)
    interval = v["frame_interval_s"]
    add(
        "rate",
        f"{'VFR' if v['vfr'] else 'CFR'}, mean {v['mean_fps']} fps, header average "
        f"{v['header_average_rate']}, frame interval {_seconds(interval['min'])} .. "
        f"{_seconds(interval['max'])}",
    )
    add("start offset", f"{_seconds(v['start_offset_s'])} (first pts {v['first_pts']})")
    keys = v["keyframes"]
    times = ", ".join(f"{t:.3f}" for t in keys["first_times_s"])
    more = " ..." if keys["count"] > len(keys["first_times_s"]) else ""
    add(
        "keyframes",
        f"{keys['count']} at {times}{more} s (longest gap {_seconds(keys['max_interval_s'])})",
    )
    first = v["first_frame"]
    if "error" in first:
        add("first frame", f"NOT DECODED: {first['error']}")
    else:
        add(
            "first frame",
            f"{first['pix_fmt']}, {first['pict_type']}, key {first['key_frame']}, "
            f"range {first['color_range']}, colorspace {first['colorspace']}",
        )
    for warning in info["warnings"]:
        add("warning", warning)
    return "\n".join(lines)
