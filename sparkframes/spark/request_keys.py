"""What was asked of a (video, purpose) unit, as a short fingerprint. Pure.

An incremental run redoes a unit when its key changes: same key, same rows. The key covers
everything that changes the rows or what is stored: rates, policy, size, min-frames, spans and
clip ids, the stride (where it applies), and the settings that change pixels or what may be
read (the loop filter, the scaler, the frame encoding, playlists). The decoder mode is not in
it: every decoder gives the same frames.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from sparkframes.convert.resize import DEFAULT_RESIZE_FILTER
from sparkframes.decoding.source import NO_LOOP_FILTER_SKIP
from sparkframes.options import ClipFramesOptions, CommonOptions, VideoFramesOptions
from sparkframes.sampling.spans import ClipSpan, FixedStride, is_whole_video
from sparkframes.sampling.specs import ExtractionSpec


def fingerprint(doc: dict) -> str:
    """A short stable hash of a JSON-able request description."""
    return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def request_key(
    spec: ExtractionSpec, clips: tuple[ClipSpan, ...] | None, stride: FixedStride | None
) -> str:
    """A fingerprint of what clip-frames asks of one (video, purpose)."""
    doc = {
        "rates": [str(r) for r in spec.rates],
        "policy": spec.policy.value,
        "target_res": list(spec.target_res),
        "min_frames": spec.min_frames,
        "clips": None
        if clips is None
        else [[c.clip_id, str(c.start_s), str(c.end_s), *_invalid(c)] for c in clips],
        # Stride cuts every span-less clip (the whole-video marker, alone or among spans).
        "stride": None
        if stride is None or (clips is not None and not any(is_whole_video(c) for c in clips))
        else [
            str(stride.clip_len_s),
            str(stride.stride_s),
            str(stride.min_clip_len_s),
            stride.limit_clips,
        ],
    }
    if spec.num_frames:  # only where asked: the keys of earlier tables stay as they were
        doc["num_frames"] = spec.num_frames
    return fingerprint(doc)


def _invalid(clip: ClipSpan) -> list[str]:
    """What a clip adds to its key beyond its span: why it is unusable, and the times asked of
    it; nothing for a plain span, so that keys of earlier tables stay as they were."""
    extra = [] if clip.invalid is None else [clip.invalid]
    if clip.timestamps_s is not None:
        extra += ["timestamps", *map(repr, clip.timestamps_s)]
    return extra


def _pixels_doc(config: CommonOptions) -> dict:
    """The settings that change what is stored (the decoder's loop filter, the scaler, the
    frame encoding, whether playlists may be opened); empty with the defaults."""
    doc: dict = {}
    if config.skip_loop_filter != NO_LOOP_FILTER_SKIP:
        doc["skip_loop_filter"] = config.skip_loop_filter
    if config.resize_filter != DEFAULT_RESIZE_FILTER:
        doc["resize_filter"] = config.resize_filter
    if config.allow_playlists:
        doc["allow_playlists"] = True
    doc.update(config.encoding().key() or {})
    return doc


def _with_pixels(key: str, pixels: dict) -> str:
    return fingerprint({"request": key, **pixels}) if pixels else key


UnitKeys = Callable[[tuple[ClipSpan, ...] | None], dict[str, str]]


def unit_keys_of(config: CommonOptions) -> UnitKeys:
    """A function from one video's clips (None: whole video / stride) to its purpose -> request
    key. What does not depend on the video is worked out once, here: planning calls the
    function for every video of the input."""
    pixels = _pixels_doc(config)
    if isinstance(config, VideoFramesOptions):
        fixed = {
            config.purpose: _with_pixels(fingerprint({"output_hw": list(config.output_hw)}), pixels)
        }
        return lambda _clips: dict(fixed)
    assert isinstance(config, ClipFramesOptions)
    stride, specs = config.stride(), config.specs()
    whole = {s.purpose: _with_pixels(request_key(s, None, stride), pixels) for s in specs}

    def keys(clips: tuple[ClipSpan, ...] | None) -> dict[str, str]:
        if clips is None:
            return dict(whole)
        return {s.purpose: _with_pixels(request_key(s, clips, stride), pixels) for s in specs}

    return keys
