"""Sanity checks of the bad-input corpus itself: each file really plays its trick.

Why: error-handling tests are only meaningful if ``zero_bytes.mp4`` is empty,
``truncated_head.mp4`` really lacks its moov atom, and so on.  These checks
also pin what PyAV/FFmpeg does on each file, which ``BadInput.expect`` relies on.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest

from tests.corpus import (
    DURATION_FACTOR,
    FUZZ_MODES,
    LARGE_FRAME_SPEC,
    PTS_TRICK_INDEX,
    BadInput,
    build_bad_corpus,
    fuzz_variants,
    mkv_segment_duration,
    mp4_atoms,
)
from tests.videos import CATALOG, oracle_decode, read_frame_number, video_path

SOURCE_FRAMES = CATALOG["h264_mp4"].n_frames  # the corpus is cut from copies of these specs
SOURCE_SECONDS = CATALOG["h264_mp4"].duration_s()

EXPECTED = {
    "zero_bytes.mp4": "error",
    "truncated_head.mp4": "error",
    "truncated_tail.mkv": "frames",
    "corrupt_middle.mkv": "partial",
    "corrupt_middle.mp4": "partial",
    "audio_only.mp4": "error",
    "image.mp4": "error",
    "text.mp4": "error",
    "raw_stream.h264": "error",
    "directory.mp4": "error",
    "large_frame.mp4": "error",
    "lying_duration.mp4": "frames",
    "lying_duration.mkv": "frames",
    "duplicate_pts.mkv": "frames",
    "nonmonotonic_pts.mkv": "frames",
}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, BadInput]:
    """The corpus, built once (about a second)."""
    return build_bad_corpus(tmp_path_factory.mktemp("bad_corpus"))


def _decode(path: Path) -> tuple[list[int], list[int | None], Exception | None]:
    """Sequential decode: pts and pixel frame numbers (None if unreadable), and any error."""
    pts: list[int] = []
    numbers: list[int | None] = []
    error: Exception | None = None
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        try:
            for frame in container.decode(stream):
                pts.append(frame.pts)
                try:
                    numbers.append(read_frame_number(frame.to_ndarray(format="rgb24")))
                except ValueError:
                    numbers.append(None)
        except av.error.FFmpegError as exc:
            error = exc
    return pts, numbers, error


def _demuxed_pts(path: Path) -> list[int]:
    """Packet pts in file order (flush packets skipped)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p.pts for p in container.demux(stream) if p.size]


def test_a_raw_elementary_stream_decodes_but_has_no_timestamps(corpus) -> None:
    """What makes raw_stream.h264 a bad input: frames, but nothing says when they are shown."""
    path = corpus["raw_stream.h264"].path
    assert _demuxed_pts(path) == [None] * 12
    with av.open(str(path)) as container:
        assert len(list(container.decode(video=0))) == 12


def test_every_file_exists_with_its_expectation(corpus: dict[str, BadInput]) -> None:
    assert {name: bad.expect for name, bad in corpus.items()} == EXPECTED
    for name, bad in corpus.items():
        assert bad.path.name == name and bad.kind
        assert bad.path.is_dir() == (name == "directory.mp4")
        assert bad.path.exists()
    # Only the corpus stays in the directory (the encoded sources are removed).
    directory = next(iter(corpus.values())).path.parent
    assert sorted(p.name for p in directory.iterdir()) == sorted(corpus)


@pytest.mark.parametrize("name", ["zero_bytes.mp4", "truncated_head.mp4", "text.mp4"])
def test_unopenable_files(corpus: dict[str, BadInput], name: str) -> None:
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(corpus[name].path))


def test_zero_bytes_is_empty(corpus: dict[str, BadInput]) -> None:
    assert corpus["zero_bytes.mp4"].path.stat().st_size == 0


def test_truncated_head_has_mdat_but_no_moov(corpus: dict[str, BadInput]) -> None:
    data = corpus["truncated_head.mp4"].path.read_bytes()
    kinds = [kind for kind, _, _, _ in mp4_atoms(data)]
    assert "mdat" in kinds and "moov" not in kinds and b"moov" not in data


def test_truncated_tail_decodes_the_frames_before_the_cut(corpus: dict[str, BadInput]) -> None:
    _, numbers, error = _decode(corpus["truncated_tail.mkv"].path)
    # FFmpeg ends quietly at the cut: no exception, so expect="frames".
    assert error is None
    assert 0 < len(numbers) < SOURCE_FRAMES
    # With B-frames, the last P-frame before the cut can come out after a gap.
    assert numbers[:-1] == list(range(len(numbers) - 1))


@pytest.mark.parametrize("name", ["corrupt_middle.mkv", "corrupt_middle.mp4"])
def test_corrupt_middle_gives_frames_then_an_error(corpus: dict[str, BadInput], name: str) -> None:
    _, numbers, error = _decode(corpus[name].path)
    assert isinstance(error, av.error.InvalidDataError)  # from avcodec_send_packet()
    assert 0 < len(numbers) < SOURCE_FRAMES
    assert numbers[:10] == list(range(10))


def test_audio_only_has_no_video_stream(corpus: dict[str, BadInput]) -> None:
    with av.open(str(corpus["audio_only.mp4"].path)) as container:
        assert not container.streams.video
        assert [s.codec_context.name for s in container.streams.audio] == ["aac"]


def test_image_is_a_png_that_ffmpeg_opens(corpus: dict[str, BadInput]) -> None:
    path = corpus["image.mp4"].path
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    # FFmpeg probes content, not the name: it opens the picture as one frame,
    # so rejecting it is the library's job.
    with av.open(str(path)) as container:
        assert container.format.name == "png_pipe"
    assert _decode(path)[1] == [0]


def test_directory_cannot_be_opened(corpus: dict[str, BadInput]) -> None:
    with pytest.raises(IsADirectoryError):
        av.open(str(corpus["directory.mp4"].path))


def test_large_frame_stream_size(corpus: dict[str, BadInput]) -> None:
    with av.open(str(corpus["large_frame.mp4"].path)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.width, ctx.height) == (LARGE_FRAME_SPEC.width, LARGE_FRAME_SPEC.height)
        assert ctx.width * ctx.height > 2_000_000


@pytest.mark.parametrize("name", ["lying_duration.mp4", "lying_duration.mkv"])
def test_lying_duration_claims_factor_but_decodes_truth(
    corpus: dict[str, BadInput], name: str
) -> None:
    path = corpus[name].path
    with av.open(str(path)) as container:
        claimed = Fraction(container.duration, 1_000_000)
        stream = container.streams.video[0]
        if name.endswith(".mp4"):
            assert stream.duration * stream.time_base == DURATION_FACTOR * SOURCE_SECONDS
    assert claimed == DURATION_FACTOR * SOURCE_SECONDS
    if name.endswith(".mkv"):
        duration, scale = mkv_segment_duration(path.read_bytes())
        assert Fraction(duration) * scale / 10**9 == DURATION_FACTOR * SOURCE_SECONDS
    video = oracle_decode(path)
    assert [f.number for f in video.frames] == list(range(SOURCE_FRAMES))
    assert video.frames[-1].pts_s == SOURCE_SECONDS - Fraction(1, 25)
    assert video.end_s == SOURCE_SECONDS


def test_duplicate_pts_repeats_one_timestamp(corpus: dict[str, BadInput]) -> None:
    path = corpus["duplicate_pts.mkv"].path
    k = PTS_TRICK_INDEX
    for pts in (_demuxed_pts(path), _decode(path)[0]):
        assert len(pts) == SOURCE_FRAMES
        assert pts[k + 1] == pts[k]
        assert len(set(pts)) == SOURCE_FRAMES - 1
    assert _decode(path)[1] == list(range(SOURCE_FRAMES))


def test_nonmonotonic_pts_goes_back_once(corpus: dict[str, BadInput]) -> None:
    path = corpus["nonmonotonic_pts.mkv"].path
    for pts in (_demuxed_pts(path), _decode(path)[0]):
        backwards = [i for i in range(1, len(pts)) if pts[i] < pts[i - 1]]
        assert backwards == [PTS_TRICK_INDEX + 1]
        assert len(set(pts)) == len(pts) == SOURCE_FRAMES


def test_fuzz_variants_are_deterministic_and_damaged(video_dir: Path, tmp_path: Path) -> None:
    source = video_path(video_dir, "h264_mkv")
    original = source.read_bytes()
    first = fuzz_variants(source, tmp_path / "a", 8, seed=3)
    again = fuzz_variants(source, tmp_path / "b", 8, seed=3)
    other = fuzz_variants(source, tmp_path / "c", 8, seed=4)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]
    assert len({p.name for p in first}) == 8
    for path in first:
        data = path.read_bytes()
        assert data != original and path.suffix == source.suffix
        if "truncate" in path.name:
            assert 0 < len(data) < len(original)
        else:
            assert len(data) == len(original)
    assert {m.replace("+", "_") for m in FUZZ_MODES} == {p.stem.split("-")[-1] for p in first}
