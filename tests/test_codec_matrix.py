"""Clip frames from every codec the wheel encodes, checked against the sequential-decode oracle.

Why: skipping unneeded frames is a per-decoder bet (libdav1d loses frames under the per-packet
``skip_frame`` toggle that H.264 and HEVC honour), so each codec × container × policy × density
is decoded by the library and compared frame by frame, by presentation time and by the frame
number in the pixels, with a plain decode of every frame. The decoders that skip
(``SKIP_SAFE_DECODERS``) are also shown, on their own, to give byte-identical pictures without
needing the run-time re-decode, and to skip something.

Videos are tiny (96x64, 2-3 s; the long-GOP one 64x48) and made once per session.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction as F
from pathlib import Path

import av
import pytest
from av.video.frame import PictureType

from sparkframes.decoding import pyav_decoder
from sparkframes.decoding.pyav_decoder import SKIP_SAFE_DECODERS, PyAVDecoder
from sparkframes.decoding.source import open_video
from sparkframes.extraction.base import ExtractedFrame
from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
from sparkframes.sampling.spans import ClipSpan
from sparkframes.sampling.specs import ExtractionSpec
from tests.conftest import oracle_for
from tests.videos import (
    OracleFrame,
    OracleVideo,
    VideoSpec,
    hidden_frame_packets,
    leading_pictures,
    oracle_policy,
    oracle_select,
    read_frame_number,
    spec_path,
)

W, H = 96, 64
#: x264/x265 with B-pyramids (3 B-frames, the middle one a reference).
_PYRAMID = {"bframes": 3, "gop": 24}
#: libvpx-vp9 made hidden alt-ref frames in one pass only in realtime mode (cpu-used 6 and 8
#: tried) with a look-ahead and a bitrate target (VBR); with crf or the good deadline, none.
_VP9_ALTREF = {
    "deadline": "realtime",
    "cpu-used": "8",
    "auto-alt-ref": "1",
    "lag-in-frames": "25",
    "b": "500000",
}


def _specs() -> list[VideoSpec]:
    out = []
    for c in ("mp4", "mov", "mkv", "ts"):
        out.append(VideoSpec(f"h264_{c}", "libx264", c, W, H, 72, **_PYRAMID))
        out.append(VideoSpec(f"hevc_{c}", "libx265", c, W, H, 72, **_PYRAMID))
    out += [
        # AVI stores no presentation times: B-frames would come out with decode-order times.
        VideoSpec("h264_avi", "libx264", "avi", W, H, 60, gop=24),
        VideoSpec("h264_opengop_mkv", "libx264", "mkv", W, H, 72, open_gop=True, **_PYRAMID),
        VideoSpec("hevc_closedgop_mkv", "libx265", "mkv", W, H, 72, open_gop=False, **_PYRAMID),
        # A long GOP: far-apart clips are reached by seeking, inside a GOP by reading through.
        VideoSpec("h264_longgop_mp4", "libx264", "mp4", 64, 48, 300, gop=250, bframes=3),
        VideoSpec("h264_longgop_ts", "libx264", "ts", 64, 48, 300, gop=250, bframes=3),
        VideoSpec("vp8_webm", "libvpx", "webm", W, H, 60, gop=24),
        VideoSpec("vp8_mkv", "libvpx", "mkv", W, H, 60, gop=24),
        VideoSpec("vp9_webm", "libvpx-vp9", "webm", W, H, 60, gop=24),
        VideoSpec("vp9_mp4", "libvpx-vp9", "mp4", W, H, 60, gop=24),
        VideoSpec("vp9_altref_webm", "libvpx-vp9", "webm", W, H, 72, gop=72, options=_VP9_ALTREF),
        VideoSpec("vp9_altref_mkv", "libvpx-vp9", "mkv", W, H, 72, gop=72, options=_VP9_ALTREF),
        # SVT-AV1's default hierarchy holds hidden frames, shown later by show_existing_frame.
        VideoSpec("av1svt_mkv", "libsvtav1", "mkv", W, H, 72, fps=F(24), gop=48),
        VideoSpec("av1svt_webm", "libsvtav1", "webm", W, H, 72, gop=48),
        VideoSpec("av1svt_mp4", "libsvtav1", "mp4", W, H, 72, gop=48),
        VideoSpec("av1aom_mkv", "libaom-av1", "mkv", W, H, 48, gop=24),
        VideoSpec("mpeg4_avi", "mpeg4", "avi", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg4_mp4", "mpeg4", "mp4", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg4_mov", "mpeg4", "mov", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg4_mkv", "mpeg4", "mkv", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg2_ts", "mpeg2video", "ts", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg2_mkv", "mpeg2video", "mkv", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg2_mp4", "mpeg2video", "mp4", W, H, 60, gop=24, bframes=2),
        VideoSpec("mpeg1_ts", "mpeg1video", "ts", W, H, 60, gop=24, bframes=2),
        VideoSpec("mjpeg_avi", "mjpeg", "avi", W, H, 40, pix_fmt="yuvj420p"),
        VideoSpec("mjpeg_mov", "mjpeg", "mov", W, H, 40, pix_fmt="yuvj420p"),
        VideoSpec("prores_mov", "prores", "mov", W, H, 40, pix_fmt="yuv422p10le"),
    ]
    return out


SPECS = {s.name: s for s in _specs()}

#: What each video must really contain for its cells to mean anything.
_HIDDEN = {"vp9_altref_webm", "vp9_altref_mkv", "av1svt_mkv", "av1svt_webm", "av1svt_mp4"}
_OPEN_GOP = {"h264_opengop_mkv", "hevc_mp4", "hevc_mov", "hevc_mkv", "hevc_ts"}
_OPEN_GOP |= {n for n, s in SPECS.items() if s.codec in ("mpeg4", "mpeg2video", "mpeg1video")}


def _encodable(spec: VideoSpec) -> bool:
    try:
        av.Codec(spec.codec, "w")
    except av.codec.codec.UnknownCodecError:
        return False
    return True


def _params(names: list[str]) -> list:
    """One param per video, skipped (saying why) where this wheel lacks its encoder."""
    return [
        pytest.param(
            name,
            id=name,
            marks=pytest.mark.skipif(
                not _encodable(SPECS[name]), reason=f"{SPECS[name].codec} not in this wheel"
            ),
        )
        for name in names
    ]


@pytest.fixture(scope="session")
def matrix_videos(video_dir: Path) -> dict[str, Path]:
    """Every encodable matrix video, made once per session (about 3 s in all)."""
    return {name: spec_path(video_dir, s) for name, s in SPECS.items() if _encodable(s)}


@pytest.mark.parametrize("name", _params(sorted(SPECS)))
def test_each_video_has_what_its_cells_stand_for(matrix_videos, name):
    """Every frame reads back in order, and B-frames, open GOPs, hidden frames are there."""
    spec, path = SPECS[name], matrix_videos[name]
    oracle = oracle_for(path)
    assert [f.number for f in oracle.frames] == list(range(spec.n_frames))
    with av.open(str(path)) as container:
        types = {f.pict_type for f in container.decode(video=0)}
    assert (PictureType.B in types) == (spec.bframes > 0)
    assert (leading_pictures(path) > 0) == (name in _OPEN_GOP)
    if spec.codec in ("libvpx-vp9", "libsvtav1", "libaom-av1"):
        assert (hidden_frame_packets(path) > 0) == (name in _HIDDEN)


# --------------------------------------------------------------------------
# The matrix: codec/container × policy × sparse/dense, against the oracle
# --------------------------------------------------------------------------

POLICIES = ["sequence", "first", "middle", "last"]
BIG = F(10**6)


@dataclass(frozen=True)
class Cell:
    """One selection: the clips asked for and the spec that samples them."""

    clips: list[ClipSpan]
    spec: ExtractionSpec


def _cell(oracle: OracleVideo, fps: F, policy: str, density: str) -> Cell:
    """Sparse: two short clips far apart (seeks), or 1 and 7/3 fps over the whole video.
    Dense: back-to-back 0.2 s clips over the whole video, or half and a third of the frame
    rate: most frames wanted, their neighbours not (the unneeded ones a decoder may skip)."""
    end = oracle.end_s
    if density == "sparse":
        clips = [
            ClipSpan(F(3, 10), F(8, 10), "a"),
            ClipSpan(end * 3 / 5, end * 3 / 5 + F(1, 2), "b"),
        ]
    else:
        clips = [ClipSpan(k * F(1, 5), (k + 1) * F(1, 5), f"c{k}") for k in range(int(end * 5))]
    if policy != "sequence":
        return Cell(clips, ExtractionSpec("m", policy=policy))
    if density == "sparse":
        return Cell(
            [ClipSpan(F(0), None, "whole")], ExtractionSpec("m", target_fps=(F(1), F(7, 3)))
        )
    return Cell(clips, ExtractionSpec("m", target_fps=(fps / 2, fps / 3)))


Row = tuple[str, F | None, int, F, int]


def _expected(oracle: OracleVideo, cell: Cell) -> list[Row]:
    """(clip, rate, index, pts, frame number) of every row the oracle says a cell gives."""
    rows: list[Row] = []
    for clip in cell.clips:
        end = BIG if clip.end_s is None else clip.end_s
        chosen: dict[F | None, list[OracleFrame]] = (
            {r: oracle_select(oracle, clip.start_s, end, r) for r in cell.spec.rates}
            if cell.spec.policy.value == "sequence"
            else {None: oracle_policy(oracle, clip.start_s, end, cell.spec.policy.value)}
        )
        for rate, frames in chosen.items():
            rows += [(clip.clip_id, rate, k, f.pts_s, f.number) for k, f in enumerate(frames)]
    return sorted(rows)


def _got(rows: list[ExtractedFrame]) -> list[Row]:
    return sorted(
        (r.clip_id, r.target_fps, r.frame_index, r.pts_s, read_frame_number(r.image)) for r in rows
    )


@pytest.mark.parametrize("threads", [1, 2], ids=["1thread", "2threads"])  # 2: frame threads
@pytest.mark.parametrize("density", ["sparse", "dense"])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("name", _params(sorted(SPECS)))
def test_matrix_matches_the_oracle(matrix_videos, name, policy, density, threads):
    path = matrix_videos[name]
    oracle = oracle_for(path)
    cell = _cell(oracle, SPECS[name].fps, policy, density)
    options = ExtractOptions(threads=threads)
    ex = extract_clip_frames(str(path), [cell.spec], cell.clips, options=options)
    rows = [row for batch in ex for row in batch]
    assert [str(e) for e in ex.report.errors] == []
    assert _got(rows) == _expected(oracle, cell)


# --------------------------------------------------------------------------
# The capability table: where skipping is used, it must be right on its own
# --------------------------------------------------------------------------


def _picture(frame: av.VideoFrame) -> bytes:
    """The decoded picture byte for byte, in the decoder's own pixel format."""
    return frame.format.name.encode() + frame.to_ndarray().tobytes()


def _pictures_by_pts(path: Path) -> dict[int, bytes]:
    """A plain sequential decode of every frame, as in the oracle."""
    with av.open(str(path)) as container:
        return {f.pts: _picture(f) for f in container.decode(video=0)}


def _selections(n: int) -> Iterator[list[int]]:
    """Timeline positions to ask for: a few far apart, every other one, one in five."""
    yield [n // 5, n // 2 + 1, n - 1]
    yield list(range(1, n, 2))
    yield list(range(2, n, 5))


@dataclass
class _Pass:
    """One ``PyAVDecoder`` pass: the decoder after it, its pictures by position, the timeline."""

    decoder: PyAVDecoder
    pictures: dict[int, bytes]
    pts: list[int]


def _decode(path: Path, wanted: list[int], skip: bool, threads: int = 2) -> _Pass:
    """Decode ``wanted`` (2 threads: frame threads hold several packets), keeping the pictures."""
    with open_video(str(path), threads=threads) as src:
        decoder = PyAVDecoder(src, skip_unneeded=skip)
        pictures = {p: _picture(f) for p, f in decoder.frames(wanted)}
        return _Pass(decoder, pictures, src.timeline.pts)


@pytest.mark.parametrize("decoder_name", sorted(SKIP_SAFE_DECODERS))
def test_listed_decoders_skip_and_give_identical_pictures(matrix_videos, decoder_name):
    """The evidence for each entry of SKIP_SAFE_DECODERS: on every matrix video it decodes,
    skipping gives the plain decode's pictures byte for byte without any re-decode, and it
    saves decoding somewhere (else there is no reason to take the risk)."""
    videos = [p for p in matrix_videos.values() if _decoder_of(p) == decoder_name]
    assert videos, f"{decoder_name} is in SKIP_SAFE_DECODERS but no matrix video tests it"
    saved = 0
    for path in videos:
        plain = _pictures_by_pts(path)
        for wanted, threads in itertools.product(_selections(len(plain)), (1, 2)):
            fast = _decode(path, wanted, skip=True, threads=threads)
            slow = _decode(path, wanted, skip=False, threads=threads)
            done, where = fast.decoder, (path.name, wanted, threads)
            assert done.skip_unneeded
            assert (done.stats.recovered, done.missing, done.failures) == (0, [], []), where
            assert fast.pictures == {p: plain[fast.pts[p]] for p in wanted}, where
            assert done.stats.frames_decoded <= slow.decoder.stats.frames_decoded
            saved += slow.decoder.stats.frames_decoded - done.stats.frames_decoded
    assert saved > 0


def _decoder_of(path: Path) -> str:
    with av.open(str(path)) as container:
        return container.streams.video[0].codec_context.name


def test_decoders_off_the_list_decode_everything_they_are_sent(matrix_videos):
    """AV1 (libdav1d), VP8, VP9, MJPEG and ProRes are never sent a skip request."""
    off = {p for p in matrix_videos.values() if _decoder_of(p) not in SKIP_SAFE_DECODERS}
    assert {_decoder_of(p) for p in off} >= {"libdav1d", "vp8", "vp9", "mjpeg", "prores"}
    for path in off:
        wanted = list(range(1, len(oracle_for(path).frames), 2))
        default, plain = _decode(path, wanted, skip=True), _decode(path, wanted, skip=False)
        assert not default.decoder.skip_unneeded
        assert default.decoder.stats.frames_decoded == plain.decoder.stats.frames_decoded
        assert default.pictures == plain.pictures


# --------------------------------------------------------------------------
# The run-time check: a frame skipping lost is decoded again
# --------------------------------------------------------------------------


@pytest.mark.parametrize("density", ["sparse", "dense"])
@pytest.mark.parametrize("policy", ["middle", "last"])
def test_a_frame_lost_to_skipping_is_decoded_again(matrix_videos, monkeypatch, policy, density):
    """With libdav1d wrongly listed as skip-safe (as every decoder was before), the frames it
    drops are noticed, decoded again without skipping and counted in ``restarts``."""
    monkeypatch.setattr(pyav_decoder, "SKIP_SAFE_DECODERS", SKIP_SAFE_DECODERS | {"libdav1d"})
    path = matrix_videos["av1svt_mkv"]
    oracle = oracle_for(path)
    cell = _cell(oracle, SPECS["av1svt_mkv"].fps, policy, density)
    ex = extract_clip_frames(str(path), [cell.spec], cell.clips, options=ExtractOptions(threads=2))
    rows = [row for batch in ex for row in batch]
    assert [str(e) for e in ex.report.errors] == []
    assert _got(rows) == _expected(oracle, cell)
    assert ex.report.decode.restarts >= 1
    # The same frames straight from the decoder: some came out only on the second try.
    position = {f.pts_s: i for i, f in enumerate(oracle.frames)}
    done = _decode(path, sorted({position[r.pts_s] for r in rows}), skip=True).decoder
    assert done.skip_unneeded and done.stats.recovered and not done.missing


#: The video of issue 13 (SVT-AV1, 320x240, 24 fps, 6 s, GOP 48, Matroska) at preset 8: faster
#: presets garble the frame-number cells (tests/videos.py), and preset 8 lost frames the same way.
ISSUE_13 = VideoSpec("issue13_av1_mkv", "libsvtav1", "mkv", 320, 240, 144, fps=F(24), gop=48)


@pytest.mark.parametrize("policy", ["middle", "last"])
def test_issue_13_svt_av1_gives_every_clip_its_frame(video_dir, policy):
    path = spec_path(video_dir, ISSUE_13)
    oracle = oracle_for(path)
    clips = [ClipSpan(F(k), F(k + 1), f"s{k}") for k in range(6)]
    cell = Cell(clips, ExtractionSpec("m", policy=policy))
    ex = extract_clip_frames(str(path), [cell.spec], clips, options=ExtractOptions(threads=2))
    rows = [row for batch in ex for row in batch]
    assert [str(e) for e in ex.report.errors] == []
    assert len(rows) == 6 and _got(rows) == _expected(oracle, cell)
