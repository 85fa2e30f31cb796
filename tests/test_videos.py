"""Tests of the test-video generator and its oracle (tests/videos.py).

Why: every library test trusts these videos and the oracle, so they must be
shown to be right on their own: frame numbers, timestamps, offsets, rotation
metadata, robustness of the pixel code and the selection rule.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.frame import PictureType
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.videos import (
    CATALOG,
    MAX_FRAMES,
    OracleFrame,
    OracleVideo,
    VideoSpec,
    build_catalog,
    frame_pattern,
    make_video,
    oracle_decode,
    oracle_policy,
    oracle_select,
    quarter_turns,
    read_frame_number,
    video_path,
)

NAMES = sorted(CATALOG)
CODEC_NAMES = {
    "libx264": "h264",
    "libx265": "hevc",
    "libvpx-vp9": "vp9",
    "libsvtav1": "av1",
    "mpeg4": "mpeg4",
}


# ``catalog`` (name -> encoded Path, session-scoped) comes from tests/conftest.py.


@pytest.fixture(scope="module")
def oracles(catalog: dict[str, Path]) -> dict[str, OracleVideo]:
    """Oracle decode of every catalog video, done once for this module."""
    return {name: oracle_decode(path) for name, path in catalog.items()}


def _decoded(path: Path) -> list[av.VideoFrame]:
    """Every decoded frame of ``path`` (tiny videos, so keeping them is cheap)."""
    with av.open(str(path)) as container:
        return list(container.decode(container.streams.video[0]))


# --------------------------------------------------------------------------
# Catalog videos
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_oracle_sees_every_frame_in_order(name: str, oracles: dict[str, OracleVideo]) -> None:
    """Numbers 0..n-1 in presentation order, pts exact, from 0, end after the last frame."""
    spec, video = CATALOG[name], oracles[name]
    assert [f.number for f in video.frames] == list(range(spec.n_frames))
    pts = [f.pts_s for f in video.frames]
    assert pts[0] == 0
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts == spec.frame_times()
    assert video.end_s > pts[-1]
    assert video.end_s == spec.duration_s()


@pytest.mark.parametrize("name", NAMES)
def test_stream_matches_spec(name: str, catalog: dict[str, Path]) -> None:
    """Codec, size and pixel format are what the spec asked for."""
    spec = CATALOG[name]
    with av.open(str(catalog[name])) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.codec.canonical_name == CODEC_NAMES[spec.codec]
        frame = next(container.decode(stream))
    assert (frame.width, frame.height) == (spec.width, spec.height)
    assert frame.format.name == spec.pix_fmt


@pytest.mark.parametrize("name", NAMES)
def test_numbers_survive_resize(name: str, catalog: dict[str, Path]) -> None:
    """Each frame reads back after stretching to 27x48, 24x24 and 224x224 (h x w)."""
    for i, frame in enumerate(_decoded(catalog[name])):
        for height, width in ((27, 48), (24, 24), (224, 224)):
            small = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
            assert read_frame_number(small) == i
        for interpolation in ("AREA", "LANCZOS", "POINT"):
            small = frame.reformat(width=24, height=24, format="rgb24", interpolation=interpolation)
            assert read_frame_number(small.to_ndarray()) == i


@pytest.mark.parametrize("name", ["h264_mp4", "h264_mkv", "hevc_mp4", "hevc10_mkv", "vfr_mkv"])
def test_bframes_are_really_used(name: str, catalog: dict[str, Path]) -> None:
    """Reordered (B) frames exist, so decode order differs from presentation order."""
    types = [frame.pict_type for frame in _decoded(catalog[name])]
    assert PictureType.B in types
    assert types[0] == PictureType.I


def test_gop_gives_several_keyframes(catalog: dict[str, Path]) -> None:
    """Keyframes every ``gop`` frames, so seeking tests cross GOP boundaries."""
    frames = _decoded(catalog["h264_mp4"])
    keys = [i for i, frame in enumerate(frames) if frame.key_frame]
    assert keys == list(range(0, CATALOG["h264_mp4"].n_frames, CATALOG["h264_mp4"].gop))


def test_vfr_has_irregular_intended_pts(oracles: dict[str, OracleVideo]) -> None:
    """The VFR video keeps its irregular millisecond timestamps exactly."""
    spec, video = CATALOG["vfr_mkv"], oracles["vfr_mkv"]
    expected = [Fraction(str(t)) for t in spec.pts_s or ()]
    assert [f.pts_s for f in video.frames] == expected
    gaps = {b.pts_s - a.pts_s for a, b in itertools.pairwise(video.frames)}
    assert len(gaps) >= 5


@pytest.mark.parametrize("name", ["offset_mkv", "offset_mp4"])
def test_offset_is_stored_in_container(
    name: str, catalog: dict[str, Path], oracles: dict[str, OracleVideo]
) -> None:
    """The container's own first pts is 1.4 s; the oracle reports times from 0."""
    with av.open(str(catalog[name])) as container:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        assert stream.start_time is not None and stream.start_time * time_base == Fraction(7, 5)
        first = next(container.decode(stream))
        assert first.pts * time_base == Fraction(7, 5)
    video = oracles[name]
    assert video.first_pts * video.time_base == Fraction(7, 5)
    assert video.frames[0].pts_s == 0


def test_rotation_metadata_reported(
    catalog: dict[str, Path], oracles: dict[str, OracleVideo]
) -> None:
    """``set_display_rotation(90)`` reads back as ``frame.rotation == 90``; others 0."""
    for name, video in oracles.items():
        assert video.rotation == CATALOG[name].rotation, name
    frame = _decoded(catalog["rot90_mp4"])[5]
    raw = frame.to_ndarray(format="rgb24")
    shown = np.rot90(raw, k=quarter_turns(frame.rotation))
    assert shown.shape[:2] == (CATALOG["rot90_mp4"].width, CATALOG["rot90_mp4"].height)
    assert read_frame_number(shown, rotation=frame.rotation) == 5
    assert read_frame_number(raw) == 5
    for wrong in (0, -90, 180):
        with pytest.raises(ValueError):
            read_frame_number(shown, rotation=wrong)


@pytest.mark.parametrize("angle", [90, -90, 180, 270])
def test_rotation_matches_ffmpeg_autorotate(angle: int, tmp_path: Path) -> None:
    """``np.rot90(decoded, quarter_turns(frame.rotation))`` equals FFmpeg's autorotated output."""
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    spec = VideoSpec(f"rot{angle}", "libx264", "mp4", 64, 48, 3, rotation=angle)
    path = make_video(tmp_path / "rot.mp4", spec)
    frame = _decoded(path)[0]
    ours = np.rot90(frame.to_ndarray(format="rgb24"), k=quarter_turns(frame.rotation))
    first_frame_as_ppm = ["-frames:v", "1", "-f", "image2pipe", "-c:v", "ppm", "-"]
    out = subprocess.run(
        [exe, "-v", "error", "-i", str(path), *first_frame_as_ppm],
        capture_output=True,
        check=True,
    ).stdout
    magic, dims, _maxval, pixels = out.split(b"\n", 3)
    assert magic == b"P6"
    width, height = map(int, dims.split())
    theirs = np.frombuffer(pixels, np.uint8).reshape(height, width, 3)
    assert theirs.shape == ours.shape
    assert np.abs(theirs.astype(int) - ours.astype(int)).mean() < 8
    assert read_frame_number(theirs, rotation=frame.rotation) == 0


def test_video_path_caches(tmp_path: Path) -> None:
    """A second request reuses the file instead of encoding again."""
    first = video_path(tmp_path, "three_frames_mp4")
    stamp = first.stat().st_mtime_ns
    assert video_path(tmp_path, "three_frames_mp4") == first
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_timestamps_representable_or_rejected() -> None:
    """Specs whose times can't be exact in any time base are refused up front."""
    with pytest.raises(ValueError):
        VideoSpec("bad", "libx264", "mkv", 64, 48, 3, pts_s=(0.0, 0.2, 0.1))
    ntsc = Fraction(30000, 1001)
    spec = VideoSpec("odd", "libx264", "mkv", 64, 48, 3, fps=ntsc, start_offset_s=1.4)
    assert spec.encoder_time_base() == Fraction(1, 90000)


# --------------------------------------------------------------------------
# The pixel code
# --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    number=st.integers(0, MAX_FRAMES - 1),
    src=st.tuples(st.integers(40, 200), st.integers(40, 200)),
    dst=st.tuples(st.integers(24, 300), st.integers(24, 300)),
    interpolation=st.sampled_from(["POINT", "BILINEAR", "BICUBIC", "AREA", "LANCZOS"]),
)
def test_pattern_roundtrip_any_stretch(
    number: int, src: tuple[int, int], dst: tuple[int, int], interpolation: str
) -> None:
    """Any number, drawn at any size and stretched to any size >= 24x24, reads back."""
    grey = frame_pattern(number, *src)
    assert read_frame_number(np.repeat(grey[:, :, None], 3, axis=2)) == number
    frame = av.VideoFrame.from_ndarray(grey, format="gray")
    stretched = frame.reformat(
        width=dst[1], height=dst[0], format="rgb24", interpolation=interpolation
    )
    assert read_frame_number(stretched.to_ndarray()) == number


def test_noise_and_blank_frames_raise() -> None:
    """Garbage never reads as a frame number."""
    rng = np.random.default_rng(1234)
    for height, width in ((24, 24), (27, 48), (96, 128), (480, 640)):
        for _ in range(20):
            noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            with pytest.raises(ValueError):
                read_frame_number(noise)
    for level in (0, 128, 255):
        with pytest.raises(ValueError):
            read_frame_number(np.full((96, 128, 3), level, np.uint8))


def test_blend_of_two_frames_raises() -> None:
    """A 50/50 mix of two frames (a wrong interpolation) is not a valid code."""
    a = frame_pattern(10, 96, 128).astype(np.uint16)
    b = frame_pattern(11, 96, 128).astype(np.uint16)
    with pytest.raises(ValueError):
        read_frame_number(((a + b) // 2).astype(np.uint8))


@pytest.mark.parametrize("number", [0, 1, 5, 77, 1000, MAX_FRAMES - 1])
def test_wrong_orientation_raises(number: int) -> None:
    """Rotations and mirrors applied by mistake are caught by the corner markers."""
    grey = frame_pattern(number, 96, 128)
    mistakes = (np.rot90(grey, 1), np.rot90(grey, 2), np.rot90(grey, 3), grey[::-1], grey[:, ::-1])
    for wrong in mistakes:
        with pytest.raises(ValueError):
            read_frame_number(wrong)
    for k in range(4):
        assert read_frame_number(np.rot90(grey, k), rotation=90 * k) == number
        assert read_frame_number(np.rot90(grey, k), rotation=90 * k - 360) == number


def test_too_small_or_bad_rotation_raises() -> None:
    """Inputs the code cannot be read from are refused, not guessed."""
    with pytest.raises(ValueError):
        read_frame_number(np.zeros((6, 6, 3), np.uint8))
    with pytest.raises(ValueError):
        read_frame_number(frame_pattern(3, 96, 128), rotation=45)
    with pytest.raises(ValueError):
        frame_pattern(MAX_FRAMES, 96, 128)


# --------------------------------------------------------------------------
# oracle_select / oracle_policy
# --------------------------------------------------------------------------


def _tenths() -> OracleVideo:
    """Ten frames at 0, 0.1, ..., 0.9 s (number == index), ending at 1.0 s."""
    frames = tuple(OracleFrame(Fraction(i, 10), i, Fraction(1, 10)) for i in range(10))
    return OracleVideo(frames, Fraction(1))


def _numbers(frames: list[OracleFrame]) -> list[int]:
    """Frame numbers of a selection."""
    return [f.number for f in frames]


def test_select_hand_computed() -> None:
    """Cases worked out by hand, including ties (-> earlier frame) and clamping."""
    v = _tenths()
    assert _numbers(oracle_select(v, 0, 1, 10)) == list(range(10))
    assert _numbers(oracle_select(v, 0, 1, 5)) == [0, 2, 4, 6, 8]
    # t = 0.05, 0.15, ... lie exactly between two frames: the earlier one wins.
    assert _numbers(oracle_select(v, 0, 1, 20)) == [i // 2 for i in range(20)]
    # The span is clamped to [0, end_s): t = 0, 0.5 only.
    assert _numbers(oracle_select(v, -1, 5, 2)) == [0, 5]
    # Only frames inside [0.25, 0.55) count: 0.3, 0.4, 0.5; 0.35 and 0.45 are ties.
    assert _numbers(oracle_select(v, Fraction(1, 4), Fraction(11, 20), 10)) == [3, 3, 4]
    # Fractional rate 3/2: t = 0, 2/3 (then 4/3 >= 1.0); 2/3 is nearest 0.7.
    assert _numbers(oracle_select(v, 0, 2, Fraction(3, 2))) == [0, 7]
    # Floats are their decimal value: [0.1, 0.3) holds exactly frames 1 and 2.
    assert _numbers(oracle_select(v, 0.1, 0.3, 10)) == [1, 2]
    assert oracle_select(v, 1, 2, 10) == []
    assert oracle_select(v, 0.91, 0.95, 100) == []
    assert oracle_select(v, 0.5, 0.5, 10) == []


def test_policy_hand_computed() -> None:
    """first / middle ((n-1)//2) / last of the in-span frames; [] when none."""
    v = _tenths()
    assert _numbers(oracle_policy(v, 0.2, 0.6, "first")) == [2]
    assert _numbers(oracle_policy(v, 0.2, 0.6, "middle")) == [3]
    assert _numbers(oracle_policy(v, 0.2, 0.7, "middle")) == [4]
    assert _numbers(oracle_policy(v, 0.2, 0.6, "last")) == [5]
    assert _numbers(oracle_policy(v, -3, 99, "last")) == [9]
    assert oracle_policy(v, 0.91, 0.95, "middle") == []


@settings(max_examples=200, deadline=None)
@given(
    start=st.fractions(-1, 2, max_denominator=50),
    length=st.fractions(0, 2, max_denominator=50),
    rate=st.fractions(Fraction(1, 4), 40, max_denominator=7),
)
def test_select_properties(start: Fraction, length: Fraction, rate: Fraction) -> None:
    """Sample count is the number of t_k in the clamped span; picks are in span and ordered."""
    v = _tenths()
    chosen = oracle_select(v, start, start + length, rate)
    lo, hi = max(start, Fraction(0)), min(start + length, v.end_s)
    in_span = [f for f in v.frames if lo <= f.pts_s < hi]
    if not in_span:
        assert chosen == []
        return
    count = 0
    while lo + count / rate < hi:
        count += 1
    assert len(chosen) == count
    assert all(f in in_span for f in chosen)
    assert _numbers(chosen) == sorted(_numbers(chosen))


def test_select_on_real_video(oracles: dict[str, OracleVideo]) -> None:
    """At the video's own rate every frame is picked once; at half rate every other."""
    video = oracles["ntsc_mp4"]
    fps = CATALOG["ntsc_mp4"].fps
    assert _numbers(oracle_select(video, 0, video.end_s, fps)) == list(range(90))
    assert _numbers(oracle_select(video, 0, video.end_s, fps / 2)) == list(range(0, 90, 2))


def test_build_catalog_reuses_directory(tmp_path: Path, catalog: dict[str, Path]) -> None:
    """Building into a directory that already holds the files encodes nothing new."""
    for path in catalog.values():
        shutil.copy(path, tmp_path / path.name)
    stamps = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    rebuilt = build_catalog(tmp_path)
    assert set(rebuilt) == set(CATALOG)
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == stamps
