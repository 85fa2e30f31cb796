"""Clip frames checked frame by frame against the sequential-decode oracle, on real videos."""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction as F
from pathlib import Path

import av
import numpy as np
import pytest

from sparkframes.decoding.source import open_video
from sparkframes.errors import SpanError, VideoOpenError
from sparkframes.extraction.clip import ExtractOptions, extract_clip_frames
from sparkframes.sampling.spans import ClipSpan, FixedStride
from sparkframes.sampling.specs import ExtractionSpec
from tests.conftest import VIDEO_NAMES, oracle_for
from tests.videos import CATALOG, oracle_policy, oracle_select, read_frame_number

RATE_SETS = [(F(1), F(2)), (F(2), F(3)), (F(1, 2), F(3, 2)), (F(60),), (F(7, 3),)]
BIG = F(10**6)


def extract(path, specs, clips=None, **kw):
    options = kw.pop("options", None) or ExtractOptions(threads=kw.pop("threads", 2))
    ex = extract_clip_frames(str(path), specs, clips, options=options, **kw)
    rows = [row for batch in ex for row in batch]
    return rows, ex.report


def by_rate(rows):
    """{(clip_id, purpose, rate): rows in frame_index order}."""
    out = defaultdict(list)
    for row in sorted(rows, key=lambda r: r.frame_index):
        out[(row.clip_id, row.purpose, row.target_fps)].append(row)
    return out


def numbers(rows, rotation):
    """(pts, frame number) of rows shown as a player shows them (undone by ``rotation``)."""
    return [(row.pts_s, read_frame_number(row.image, rotation=rotation)) for row in rows]


def expected(oracle_frames):
    return [(f.pts_s, f.number) for f in oracle_frames]


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_every_rate_set_matches_the_oracle(catalog, name):
    path = catalog[name]
    oracle = oracle_for(path)
    spans = [
        ClipSpan(F(0), None, "whole"),
        ClipSpan(F(3, 10), F(11, 10), "inside"),
        ClipSpan(F(1), BIG, "past_end"),
    ]
    for rates in RATE_SETS:
        spec = ExtractionSpec("embeddings", target_fps=rates)
        rows, report = extract(path, [spec], spans)
        got = by_rate(rows)
        for clip in spans:
            end = clip.end_s if clip.end_s is not None else BIG
            for rate in rates:
                want = expected(oracle_select(oracle, clip.start_s, end, rate))
                key = (clip.clip_id, "embeddings", rate)
                assert numbers(got.get(key, []), oracle.rotation) == want, (name, rates, clip)
        # One decode per video for all rates and clips: nothing decoded twice.
        assert report.decode.frames_decoded <= len(oracle.frames)


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_timeline_end_and_times_match_the_oracle(catalog, name):
    oracle = oracle_for(catalog[name])
    with open_video(str(catalog[name])) as src:
        tl = src.timeline
        assert [tl.seconds(p) for p in tl.pts] == [f.pts_s for f in oracle.frames]
        assert tl.end_s == oracle.end_s


@pytest.mark.parametrize("policy", ["first", "middle", "last"])
@pytest.mark.parametrize("name", ["h264_mp4", "vfr_mkv", "offset_mp4", "hevc_mp4", "rot90_mp4"])
def test_one_frame_policies(catalog, name, policy):
    path = catalog[name]
    oracle = oracle_for(path)
    spans = [ClipSpan(F(0), None, "whole"), ClipSpan(F(1, 4), F(9, 10), "part")]
    rows, report = extract(path, [ExtractionSpec("thumb", policy=policy)], spans)
    assert not report.errors
    for clip in spans:
        end = clip.end_s if clip.end_s is not None else BIG
        (want,) = oracle_policy(oracle, clip.start_s, end, policy)
        (row,) = [r for r in rows if r.clip_id == clip.clip_id]
        assert row.target_fps is None and row.frame_index == 0 and row.policy == policy
        assert numbers([row], oracle.rotation) == [(want.pts_s, want.number)]


def test_purpose_defaults_and_explicit_override(catalog):
    path = catalog["h264_mp4"]
    specs = [
        ExtractionSpec("embeddings"),
        ExtractionSpec("aesthetics"),
        ExtractionSpec("aesthetics_fast", target_fps=(F(4),)),
    ]
    assert specs[0].rates == (F(2),) and specs[1].rates == (F(1),)
    rows, _ = extract(path, specs)
    rates = {(r.purpose, r.target_fps) for r in rows}
    assert rates == {("embeddings", F(2)), ("aesthetics", F(1)), ("aesthetics_fast", F(4))}


@pytest.mark.parametrize("name", ["h264_mp4", "vfr_mkv", "ntsc_mp4"])
def test_min_frames_raises_the_rate_to_exactly_n(catalog, name):
    path = catalog[name]
    oracle = oracle_for(path)
    clip = ClipSpan(F(1, 5), F(13, 10), "short")  # 1.1 s: 2 fps would give 3 samples
    rows, _ = extract(path, [ExtractionSpec("embeddings", min_frames=8)], [clip])
    (rate,) = {r.target_fps for r in rows}
    assert rate == F(8) / F(11, 10)
    assert len(rows) == 8
    got = numbers(by_rate(rows)[("short", "embeddings", rate)], 0)
    assert got == expected(oracle_select(oracle, clip.start_s, clip.end_s, rate))


def test_min_frames_keeps_rates_that_already_suffice(catalog):
    rows, _ = extract(catalog["h264_mp4"], [ExtractionSpec("e", target_fps=(F(10),), min_frames=4)])
    assert {r.target_fps for r in rows} == {F(10)}


def test_fixed_stride_clips_against_the_oracle(catalog):
    path = catalog["ntsc_mp4"]
    oracle = oracle_for(path)
    stride = FixedStride(clip_len_s=F(1), stride_s=F(3, 4), min_clip_len_s=F(1, 2), limit_clips=0)
    rows, report = extract(path, [ExtractionSpec("embeddings", target_fps=(F(2),))], stride=stride)
    want_spans = []
    k = 0
    while k * stride.stride_s < oracle.end_s:
        s = k * stride.stride_s
        e = min(s + stride.clip_len_s, oracle.end_s)
        if e - s >= stride.min_clip_len_s:
            want_spans.append((s, e))
        k += 1
    got_spans = sorted({(r.clip_start_s, r.clip_end_s) for r in rows})
    assert got_spans == want_spans
    for s, e in want_spans:
        clip_rows = sorted((r for r in rows if r.clip_start_s == s), key=lambda r: r.frame_index)
        assert [(r.pts_s, read_frame_number(r.image)) for r in clip_rows] == expected(
            oracle_select(oracle, s, e, F(2))
        )
    assert report.clips == len(want_spans)
    limited, _ = extract(
        path, [ExtractionSpec("embeddings")], stride=FixedStride(F(1), F(3, 4), limit_clips=2)
    )
    assert len({r.clip_id for r in limited}) == 2


@pytest.mark.parametrize("size", [(27, 48), (224, 224), (61, 97)])
@pytest.mark.parametrize("name", ["h264_mp4", "rot90_mp4", "hevc10_mkv", "odd_vp9_webm"])
def test_target_sizes_and_rotation(catalog, name, size):
    path = catalog[name]
    oracle = oracle_for(path)
    rows, _ = extract(path, [ExtractionSpec("e", target_fps=(F(2),), target_res=size)])
    assert rows
    want = expected(oracle_select(oracle, 0, BIG, F(2)))
    for row in rows:
        assert row.image.shape == (*size, 3) and row.image.dtype == np.uint8
    got = [
        (r.pts_s, read_frame_number(r.image, oracle.rotation))
        for r in sorted(rows, key=lambda r: r.frame_index)
    ]
    assert got == want


@pytest.mark.parametrize("name", ["h264_mp4", "rot90_mp4", "odd_vp9_webm", "hevc10_mkv"])
def test_native_size_is_the_displayed_size(catalog, name):
    spec = CATALOG[name]
    rows, _ = extract(catalog[name], [ExtractionSpec("e", policy="first")])
    (row,) = rows
    h, w = (spec.width, spec.height) if spec.rotation % 180 else (spec.height, spec.width)
    assert row.image.shape == (h, w, 3)


def test_skipping_and_seeking_change_nothing_but_the_work(long_gop_video: Path):
    oracle = oracle_for(long_gop_video)
    clips = [ClipSpan(F(0), F(1), "a"), ClipSpan(F(8), F(9), "b"), ClipSpan(F(14), F(15), "c")]
    spec = [ExtractionSpec("embeddings", target_fps=(F(1), F(2)))]
    fast, fast_report = extract(long_gop_video, spec, clips)
    plain, plain_report = extract(
        long_gop_video, spec, clips, options=ExtractOptions(threads=2, skip_unneeded=False)
    )
    key = lambda r: (r.clip_id, r.target_fps, r.frame_index)  # noqa: E731
    assert [(key(r), r.pts_s) for r in sorted(fast, key=key)] == [
        (key(r), r.pts_s) for r in sorted(plain, key=key)
    ]
    for clip in clips:
        for rate in (F(1), F(2)):
            got = sorted(
                (r for r in fast if r.clip_id == clip.clip_id and r.target_fps == rate),
                key=lambda r: r.frame_index,
            )
            want = expected(oracle_select(oracle, clip.start_s, clip.end_s, rate))
            assert [(r.pts_s, read_frame_number(r.image)) for r in got] == want
    # Far-apart clips are reached by seeking, and unneeded B-frames are not decoded at all.
    assert fast_report.decode.seeks >= 2
    assert fast_report.decode.frames_decoded < plain_report.decode.frames_decoded
    assert fast_report.decode.frames_decoded < len(oracle.frames) // 2


def test_batches_are_bounded(catalog):
    options = ExtractOptions(threads=1, batch_bytes=3 * 96 * 128 * 3)
    ex = extract_clip_frames(
        str(catalog["h264_mp4"]), [ExtractionSpec("e", target_fps=(F(25),))], options=options
    )
    batches = list(ex)
    assert len(batches) > 5
    assert all(sum(r.image.nbytes for r in b) <= options.batch_bytes for b in batches)
    assert sum(len(b) for b in batches) == ex.report.frames_output == 60


def test_bad_clips_cost_only_themselves(catalog):
    path = catalog["h264_mp4"]
    clips = [
        ClipSpan(F(50), F(60), "after_end"),
        ClipSpan(F(2), F(1), "inverted"),
        ClipSpan(F(0), F(1), "good"),
    ]
    rows, report = extract(path, [ExtractionSpec("embeddings")], clips)
    assert {r.clip_id for r in rows} == {"good"}
    errors = {e.clip_id: e for e in report.errors}
    assert set(errors) == {"after_end", "inverted"}
    assert all(isinstance(e, SpanError) and str(path) in str(e) for e in errors.values())
    assert "holds no frame" in str(errors["after_end"])


def test_unopenable_files_are_typed_errors(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 10)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, cause in [
        (tmp_path / "missing.mp4", "no such file"),
        (text, "cannot open"),
        (empty, "empty"),
        (tmp_path, "directory"),
    ]:
        rows, report = extract(path, [ExtractionSpec("embeddings")])
        assert rows == []
        (error,) = report.errors
        assert isinstance(error, VideoOpenError)
        assert str(path) in str(error) and cause in str(error)


def oracle_uniform(video, start_s, end_s, n):
    """Brute-force ``uniform``: the nearest in-span frame to each centre of N equal parts."""
    start, end = max(F(start_s), F(0)), min(F(end_s), video.end_s)
    candidates = [f for f in video.frames if start <= f.pts_s < end]
    centres = [start + (2 * k + 1) * (end - start) / (2 * n) for k in range(n)]
    return [min(candidates, key=lambda f, t=t: (abs(f.pts_s - t), f.pts_s)) for t in centres]


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_uniform_takes_exactly_n_frames_at_the_centres_of_equal_parts(catalog, name):
    path = catalog[name]
    oracle = oracle_for(path)
    # The whole video, a part starting off the first frame, and a clip with fewer than 8 frames.
    spans = [ClipSpan(F(0), None, "whole"), ClipSpan(F(1, 3), F(7, 5), "part")]
    spans.append(ClipSpan(F(1, 2), F(1, 2) + F(1, 10), "short"))
    rows, report = extract(
        path, [ExtractionSpec("embeddings", policy="uniform", num_frames=8)], spans
    )
    got_clips = {r.clip_id for r in rows}
    for clip in spans:
        if clip.clip_id not in got_clips:  # a span that holds no frame: an error row instead
            assert any(e.clip_id == clip.clip_id for e in report.errors)
            continue
        end = min(clip.end_s if clip.end_s is not None else BIG, oracle.end_s)
        mine = sorted((r for r in rows if r.clip_id == clip.clip_id), key=lambda r: r.frame_index)
        assert [r.frame_index for r in mine] == list(range(8))  # exactly N, always
        assert {r.target_fps for r in mine} == {8 / (end - clip.start_s)}
        assert {r.policy for r in mine} == {"uniform"}
        want = oracle_uniform(oracle, clip.start_s, end, 8)
        assert numbers(mine, oracle.rotation) == expected(want)


def oracle_keyframe_times(path, oracle) -> set[F]:
    """The times of the packets the container flags as keyframes, from a plain demux."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = {p.pts for p in container.demux(stream) if p.is_keyframe and p.pts is not None}
    return {(pts - oracle.first_pts) * oracle.time_base for pts in keys}


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_keyframes_are_every_flagged_frame_and_only_they_are_decoded(catalog, name):
    path = catalog[name]
    oracle = oracle_for(path)
    times = oracle_keyframe_times(path, oracle)
    spans = [ClipSpan(F(0), None, "whole"), ClipSpan(F(1, 3), F(7, 5), "part")]
    rows, report = extract(path, [ExtractionSpec("thumbs", policy="keyframes")], spans)
    for clip in spans:
        end = min(clip.end_s if clip.end_s is not None else BIG, oracle.end_s)
        mine = sorted((r for r in rows if r.clip_id == clip.clip_id), key=lambda r: r.frame_index)
        want, seen = [], set()
        for f in oracle.frames:  # presentation order; a repeated time counts once
            if f.pts_s in times and clip.start_s <= f.pts_s < end and f.pts_s not in seen:
                want.append(f)
                seen.add(f.pts_s)
        assert [r.frame_index for r in mine] == list(range(len(want)))
        assert {(r.policy, r.target_fps) for r in mine} <= {("keyframes", None)}
        assert numbers(mine, oracle.rotation) == expected(want)
    # The keyframes were decoded, and nothing else.
    whole = len({f.pts_s for f in oracle.frames if f.pts_s in times})
    assert report.decode.frames_decoded == whole < len(oracle.frames)


@pytest.mark.parametrize("name", VIDEO_NAMES)
def test_timestamps_give_the_frame_shown_at_each_time(catalog, name):
    path = catalog[name]
    oracle = oracle_for(path)
    end = float(oracle.end_s)
    times = (0.0, end / 3, end / 3, -0.5, end + 1, end * 0.99, float("nan"))
    spans = [ClipSpan(F(0), None, "asked", timestamps_s=times), ClipSpan(F(0), None, "bare")]
    spans.append(ClipSpan(F(1, 10), F(1, 5), "part", timestamps_s=(0.15, 0.05)))
    rows, report = extract(path, [ExtractionSpec("qa", policy="timestamps")], spans)
    got = sorted((r.clip_id, r.frame_index, r.pts_s) for r in rows)
    want = []
    for clip_id, asked, lo, hi in (("asked", times, 0, end), ("part", (0.15, 0.05), 0.1, 0.2)):
        for index, t in enumerate(asked):
            if lo <= t < min(hi, end):  # the frame shown at t: the last one presented by then
                shown = max(f.pts_s for f in oracle.frames if f.pts_s <= F(repr(t)))
                want.append((clip_id, index, shown))
    assert got == sorted(want)
    assert {(r.policy, r.target_fps) for r in rows} <= {("timestamps", None)}
    for r in rows:  # the pixels are that frame's
        frame = next(f for f in oracle.frames if f.pts_s == r.pts_s)
        assert read_frame_number(r.image, rotation=oracle.rotation) == frame.number
    errors = sorted((e.clip_id, str(e).split(": ", 1)[1][:16]) for e in report.errors)
    bad = ["asked"] * 3 + ["bare", "part"]  # three times out of the video, none, 0.05 < 0.1
    assert [clip for clip, _ in errors] == sorted(bad)
    assert all(type(e).__name__ == "SpanError" for e in report.errors)
