"""Untrusted videos must not make a job read other files: playlists, lists and references.

Every pointer format found in the wheel's FFmpeg gets a crafted file here. Each test that refuses
one has a control beside it showing that FFmpeg left to itself does follow the pointer, so the
refusal is not an accident of a broken file. The "other tenant's video" is ``private/inner.ts``
(80x48) beside the lake's folder; the lake's own segments are 48x32. Network: loopback only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes import (
    ExtractionSpec,
    ExtractOptions,
    extract_clip_frames,
    extract_video_frames,
    read_errors,
    read_frames,
)
from sparkframes.cli import main, parse_run
from sparkframes.decoding.pynvc_decoder import nvdec_refusal
from sparkframes.decoding.references import REFERENCING, self_contained_demuxers
from sparkframes.decoding.source import open_container
from sparkframes.errors import EmptyVideoError, ExternalReferenceError, VideoOpenError
from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from sparkframes.tools.inspection import inspect_video
from sparkframes.tools.preview.keyframes import video_contact_sheet
from tests.s3 import s3_server
from tests.videos import VideoSpec, frame_pattern, make_video, read_frame_number

ALLOW = ExtractOptions(allow_playlists=True)
SPEC = ExtractionSpec("embeddings", target_fps=(25,))


def make_segment(path: Path, width: int, height: int, first: int, count: int) -> Path:
    """An MPEG-TS segment of frames ``first``… (pixels carry the number) at 25 fps, timed so
    that segments made with consecutive ``first`` play back to back."""
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.options = {"preset": "ultrafast", "crf": "18", "x264-params": "keyint=5"}
        for number in range(first, first + count):
            grey = frame_pattern(number, height, width)
            rgb = np.repeat(grey[:, :, None], 3, axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts = number
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def playlist(path: Path, *uris: str, header: str = "") -> str:
    """An HLS media playlist of 0.2 s segments at ``uris`` (as written in the file)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-MEDIA-SEQUENCE:0"]
    lines += [header] if header else []
    for uri in uris:
        lines += ["#EXTINF:0.2,", uri]
    path.write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    return str(path)


def master(path: Path, variant: str) -> str:
    """An HLS master playlist with one variant playlist at ``variant``."""
    path.write_text(f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=100000,RESOLUTION=48x32\n{variant}\n")
    return str(path)


# --- MOV with an external data reference (a Mac alias record in 'dref'), crafted by hand ----

_MOV_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf"}


def _alias_entry(path: str, levels_up: int) -> bytes:
    """A 'dref' entry naming ``path``'s file name, ``levels_up`` folders above the movie's
    (1: beside it), in the layout FFmpeg's mov demuxer reads (``mov_read_dref``)."""
    record = bytes(10) + bytes(1) + bytes(27) + bytes(12) + bytes(1) + bytes(63) + bytes(16)
    record += struct.pack(">HH", levels_up, 1) + bytes(16)
    raw = path.encode() + b"\0" * (len(path) % 2)
    record += struct.pack(">hH", 2, len(raw)) + raw + struct.pack(">hH", -1, 0)
    return struct.pack(">I4sI", 12 + len(record), b"alis", 0) + record


def _without_media(data: bytes, start: int, end: int, dref_entry: bytes) -> bytes:
    """The boxes of ``data[start:end]`` without 'mdat', with 'dref' holding ``dref_entry``."""
    out = b""
    pos = start
    while pos < end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind in _MOV_CONTAINERS:
            inner = _without_media(data, pos + 8, pos + size, dref_entry)
            out += struct.pack(">I4s", 8 + len(inner), kind) + inner
        elif kind == b"dref":
            body = struct.pack(">II", 0, 1) + dref_entry
            out += struct.pack(">I4s", 8 + len(body), kind) + body
        elif kind != b"mdat":
            out += data[pos : pos + size]
        pos += size
    return out


def mov_referencing(movie: Path, media: Path, levels_up: int) -> str:
    """A movie whose one track's samples are those of ``media`` (an mp4 with moov after mdat,
    so its sample offsets hold in ``media`` itself); it holds no sample of its own."""
    data = media.read_bytes()
    movie.write_bytes(
        _without_media(data, 0, len(data), _alias_entry(f"/x/{media.name}", levels_up))
    )
    return str(movie)


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> dict[str, Path]:
    """``lake/`` (the input's folder) with two segments, and ``private/`` beside it."""
    root = tmp_path_factory.mktemp("untrusted")
    lake, private = root / "lake", root / "private"
    (lake / "sub").mkdir(parents=True)
    private.mkdir()
    make_segment(private / "inner.ts", 80, 48, 0, 10)
    make_segment(lake / "seg0.ts", 48, 32, 0, 5)
    make_segment(lake / "seg1.ts", 48, 32, 5, 5)
    return {"root": root, "lake": lake, "private": private, "inner": private / "inner.ts"}


@pytest.fixture(scope="module")
def escapes(tree) -> dict[str, str]:
    """Every crafted HLS file that reaches ``private/`` from ``lake/`` (and an encrypted one),
    by case name."""
    lake, inner = tree["lake"], tree["inner"]
    os.symlink(inner, lake / "link.ts")
    playlist(lake / "sub" / "out.m3u8", "../../private/inner.ts")
    playlist(tree["private"] / "variant.m3u8", "inner.ts")
    # A "segment" inside the folder that is itself a playlist reaching out of it.
    playlist(lake / "evil.m3u8", "../private/inner.ts")
    return {
        "hls_file_url": playlist(lake / "file_url.m3u8", f"file://{inner}"),
        "hls_absolute_path": playlist(lake / "absolute.m3u8", str(inner)),
        "hls_dot_dot": playlist(lake / "dot_dot.m3u8", "../private/inner.ts"),
        "hls_symlink_out": playlist(lake / "symlink.m3u8", "link.ts"),
        "hls_after_a_good_segment": playlist(lake / "mixed.m3u8", "seg0.ts", "../private/inner.ts"),
        "hls_nested_variant_out": master(lake / "master_out.m3u8", "sub/out.m3u8"),
        "hls_variant_outside": master(lake / "master_private.m3u8", "../private/variant.m3u8"),
        "hls_segment_is_a_playlist": playlist(lake / "disguised.m3u8", "evil.m3u8"),
        "hls_init_section_outside": playlist(
            lake / "init.m3u8", "seg0.ts", header='#EXT-X-MAP:URI="../private/inner.ts"'
        ),
        "hls_key_outside": playlist(
            lake / "key.m3u8",
            "seg0.ts",
            header='#EXT-X-KEY:METHOD=AES-128,URI="../private/inner.ts"',
        ),
        # Not an escape: FFmpeg decrypts through a protocol of its own, which is not let in.
        "hls_encrypted": playlist(
            lake / "encrypted.m3u8", "seg0.ts", header='#EXT-X-KEY:METHOD=AES-128,URI="seg1.ts"'
        ),
    }


@pytest.fixture(scope="module")
def inside(tree) -> dict[str, str]:
    """Playlists whose every file lies under ``lake/``: they decode with the opt-in."""
    lake = tree["lake"]
    playlist(lake / "sub" / "in.m3u8", "../seg0.ts", "../seg1.ts")
    return {
        "flat": playlist(lake / "inside.m3u8", "seg0.ts", "seg1.ts"),
        "file_url": playlist(lake / "inside_url.m3u8", f"file://{lake}/seg0.ts", "seg1.ts"),
        "nested": master(lake / "master_in.m3u8", "sub/in.m3u8"),
    }


def errors_of(extraction) -> list:
    """Run an extraction; its frames must be none, and its errors are returned."""
    frames = [row for batch in extraction for row in batch]
    assert frames == []
    return extraction.report.errors


# --- The default: only self-contained files ---------------------------------------------------


def test_the_allowed_demuxers_leave_out_every_referencing_one():
    allowed = set(self_contained_demuxers().split(","))
    assert not allowed & set(REFERENCING), "a referencing demuxer is on the list"
    assert {"mov", "mp4", "matroska", "webm", "mpegts", "avi", "image2"} <= allowed
    assert "lavfi" not in allowed


def test_ffmpeg_left_to_itself_follows_the_crafted_playlists(escapes, tree):
    """The control: plain PyAV opens these files and reads the private video's stream."""
    for case in ["hls_file_url", "hls_absolute_path", "hls_dot_dot", "hls_symlink_out"]:
        with av.open(escapes[case]) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.width, stream.codec_context.height) == (80, 48), case


@pytest.mark.parametrize(
    "case",
    [
        "hls_file_url",
        "hls_absolute_path",
        "hls_dot_dot",
        "hls_symlink_out",
        "hls_after_a_good_segment",
        "hls_nested_variant_out",
        "hls_variant_outside",
        "hls_segment_is_a_playlist",
        "hls_init_section_outside",
        "hls_key_outside",
        "hls_encrypted",
    ],
)
def test_a_playlist_is_refused_by_default_with_the_way_to_allow_it(escapes, case):
    errors = errors_of(extract_clip_frames(escapes[case], [SPEC]))
    assert [type(e) for e in errors] == [ExternalReferenceError]
    assert errors[0].stage == "open"
    assert "HLS playlist" in str(errors[0]) and "--allow-playlists" in str(errors[0])


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("hls_file_url", "private/inner.ts, outside the playlist's folder"),
        ("hls_absolute_path", "private/inner.ts, outside the playlist's folder"),
        ("hls_dot_dot", "lake/../private/inner.ts, outside the playlist's folder"),
        ("hls_symlink_out", "lake/link.ts, outside the playlist's folder"),
        ("hls_after_a_good_segment", "../private/inner.ts, outside the playlist's folder"),
        ("hls_nested_variant_out", "sub/../../private/inner.ts, outside"),
        ("hls_variant_outside", "private/variant.m3u8, outside the playlist's folder"),
        ("hls_init_section_outside", "private/inner.ts, outside the playlist's folder"),
        ("hls_key_outside", "private/inner.ts, outside the playlist's folder"),
        ("hls_encrypted", "lake/seg0.ts, an encrypted segment, which is not read"),
    ],
)
def test_with_the_opt_in_no_file_outside_the_playlists_folder_is_read(escapes, tree, case, words):
    for extraction in (
        extract_clip_frames(escapes[case], [SPEC], options=ALLOW),
        extract_video_frames(escapes[case], options=ALLOW),
    ):
        errors = errors_of(extraction)
        assert [type(e) for e in errors] == [ExternalReferenceError], errors
        message = str(errors[0])
        assert words in message and f"under its own folder {tree['lake']}" in message


def test_a_segment_that_is_itself_a_playlist_reads_nothing_further(escapes):
    """A "segment" that is a playlist pointing at the private video: FFmpeg's HLS demuxer
    refuses it (a segment may not be a playlist, and a segment's demuxer may open nothing);
    so it stays under the opt-in, with an error row and no frame."""
    errors = errors_of(
        extract_clip_frames(escapes["hls_segment_is_a_playlist"], [SPEC], options=ALLOW)
    )
    assert len(errors) == 1 and isinstance(errors[0], VideoOpenError)


@pytest.mark.parametrize("case", ["flat", "file_url", "nested"])
def test_with_the_opt_in_segments_under_the_playlists_folder_decode(inside, case):
    extraction = extract_video_frames(inside[case], (32, 48), options=ALLOW)
    rows = [row for batch in extraction for row in batch]
    assert extraction.report.errors == []
    assert [read_frame_number(row.image) for row in rows] == list(range(10))
    clips = extract_clip_frames(inside[case], [SPEC], options=ALLOW)
    rows = [row for batch in clips for row in batch]
    assert clips.report.errors == []
    assert [row.image.shape for row in rows] == [(32, 48, 3)] * 10


def test_a_playlist_is_not_handed_to_nvdec():
    reason = nvdec_refusal(10, 10, playlist=True)
    assert reason is not None and "CPU" in reason
    assert nvdec_refusal(10, 10) is None


# --- A web server on loopback ---------------------------------------------------------------


@pytest.fixture()
def server(tree):
    """Python's file server on 127.0.0.1 serving ``private/``; its request log is a list."""
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requests.append(self.path)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(tree["private"])))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", requests
    httpd.shutdown()
    httpd.server_close()


def test_a_local_playlist_never_reaches_a_web_server(tree, server):
    base, requests = server
    with urllib.request.urlopen(f"{base}/inner.ts") as response:  # the control: it serves
        assert response.status == 200
    requests.clear()
    path = playlist(tree["lake"] / "web.m3u8", f"{base}/inner.ts")
    default = errors_of(extract_clip_frames(path, [SPEC]))
    allowed = errors_of(extract_clip_frames(path, [SPEC], options=ALLOW))
    assert [type(e) for e in default + allowed] == [ExternalReferenceError] * 2
    assert "which is not a file on the playlist's filesystem" in str(allowed[0])
    assert requests == []


def test_a_playlist_on_a_web_server_is_refused_before_any_segment_is_asked_for(tree, server):
    base, requests = server
    playlist(tree["private"] / "remote.m3u8", "inner.ts")
    url = f"{base}/remote.m3u8"
    default = errors_of(extract_clip_frames(url, [SPEC]))
    allowed = errors_of(extract_clip_frames(url, [SPEC], options=ALLOW))
    assert [type(e) for e in default + allowed] == [ExternalReferenceError] * 2
    assert "read over http://" in str(allowed[0])
    assert requests and set(requests) == {"/remote.m3u8"}  # the playlist itself, no segment


# --- The other pointer formats: refused with or without the opt-in -------------------------


def _png(path: Path, size: int) -> None:
    with av.open(str(path), "w", format="image2", container_options={"update": "1"}) as out:
        stream = out.add_stream("png")
        stream.width = stream.height = size
        stream.pix_fmt = "rgb24"
        picture = av.VideoFrame.from_ndarray(np.zeros((size, size, 3), np.uint8), format="rgb24")
        out.mux(stream.encode(picture))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def others(tree) -> dict[str, str]:
    """The non-HLS pointer files, by demuxer name."""
    lake = tree["lake"]
    (lake / "playlist.m3u8").write_text((lake / "dot_dot.m3u8").read_text())
    (lake / "in.ffconcat").write_text("ffconcat version 1.0\nfile seg0.ts\nfile seg1.ts\n")
    # An entry inside the folder that is itself a playlist reaching out of it.
    (lake / "nested.ffconcat").write_text("ffconcat version 1.0\nfile playlist.m3u8\n")
    (lake / "absolute.ffconcat").write_text(f"ffconcat version 1.0\nfile {tree['inner']}\n")
    header = b"MLVI" + struct.pack("<I", 52) + b"v2.0\0\0\0\0" + struct.pack("<Q", 7)
    header += bytes(8) + struct.pack("<HHII", 4, 0, 1, 0) + struct.pack("<II", 25, 1)
    (lake / "camera.mlv").write_bytes(header + b"NULL" + struct.pack("<I", 16) + bytes(8))
    (lake / "camera.m00").write_bytes(header)
    (lake / "subs.idx").write_text(
        "# VobSub index file, v7 (do not modify this line!)\nsize: 720x480\nid: en, index: 0\n"
        "timestamp: 00:00:00:000, filepos: 000000000\n"
    )
    (lake / "subs.sub").write_bytes(bytes(2048))
    (lake / "stream.sdp").write_text(
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
        "m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
    )
    return {
        "concat": str(lake / "in.ffconcat"),
        "concat (nested playlist)": str(lake / "nested.ffconcat"),
        "concat (absolute path)": str(lake / "absolute.ffconcat"),
        "mlv": str(lake / "camera.mlv"),
        "vobsub": str(lake / "subs.idx"),
        "sdp": str(lake / "stream.sdp"),
    }


def test_ffmpeg_left_to_itself_follows_the_other_pointer_formats(others, tree):
    """The controls: concat reads a playlist entry that reaches the private video, MLV asks for
    the files beside it (seen through PyAV's io_open), and the SDP file names a network stream
    FFmpeg would open if its protocols were let through."""
    with av.open(others["concat (nested playlist)"]) as container:
        assert container.streams.video[0].codec_context.width == 80
    asked: list[str] = []

    def record(url: str, flags: int, options: dict) -> object:
        asked.append(url)
        return open(url, "rb")

    with pytest.raises(FileNotFoundError):
        av.open(others["mlv"], io_open=record)
    assert asked[:2] == [others["mlv"], str(tree["lake"] / "camera.m00")]
    with pytest.raises(av.error.InvalidDataError):  # FFmpeg's own default: no rtp from a file
        av.open(others["sdp"])
    network = {"protocol_whitelist": "file,rtp,udp"}
    with av.open(others["sdp"], container_options=network, timeout=2) as container:
        assert container.format.name == "sdp" and container.streams.video


@pytest.mark.parametrize("allow", [False, True], ids=["default", "opt-in"])
@pytest.mark.parametrize(
    "case",
    ["concat", "concat (nested playlist)", "concat (absolute path)", "mlv", "vobsub", "sdp"],
)
def test_the_other_pointer_formats_are_refused_even_with_the_opt_in(others, case, allow):
    options = ALLOW if allow else None
    errors = errors_of(extract_clip_frames(others[case], [SPEC], options=options))
    assert [type(e) for e in errors] == [ExternalReferenceError]
    name = case.split(" ")[0]
    assert REFERENCING[name] in str(errors[0])
    assert "--allow-playlists covers HLS playlists only" in str(errors[0])


def test_a_udp_stream_named_by_an_sdp_file_gets_no_packet(others):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtcp:
        rtcp.bind(("127.0.0.1", 5005))  # the RTCP port of the SDP's m=video 5004 line
        rtcp.settimeout(0.5)
        errors = errors_of(extract_clip_frames(others["sdp"], [SPEC], options=ALLOW))
        assert [type(e) for e in errors] == [ExternalReferenceError]
        with pytest.raises(TimeoutError):
            rtcp.recvfrom(64)


@pytest.mark.parametrize("allow", [False, True], ids=["default", "opt-in"])
def test_a_dash_manifest_is_no_video_in_this_build(tree, allow):
    """This FFmpeg has no DASH demuxer (no libxml2): an MPD is text FFmpeg cannot open."""
    mpd = tree["lake"] / "clip.mpd"
    mpd.write_text(
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static">'
        '<Period><AdaptationSet><Representation id="1" bandwidth="1">'
        "<BaseURL>../private/inner.ts</BaseURL></Representation></AdaptationSet></Period></MPD>\n"
    )
    assert not av.ContainerFormat("dash").is_input
    errors = errors_of(extract_clip_frames(str(mpd), [SPEC], options=ALLOW if allow else None))
    assert [type(e) for e in errors] == [VideoOpenError]
    assert "cannot open as a video container" in str(errors[0])


def test_a_pattern_in_a_file_name_reads_only_that_file(tree):
    """FFmpeg's image2 reads ``img%03d.png`` as the sequence img001.png, img002.png…; here
    only the file of that very name is read (a 16x16 picture, not the 24x24 ones)."""
    folder = tree["root"] / "pattern"
    folder.mkdir()
    _png(folder / "img%03d.png", 16)
    _png(folder / "img001.png", 24)
    _png(folder / "img002.png", 24)
    with av.open(str(folder / "img%03d.png")) as control:
        assert control.streams.video[0].codec_context.width == 24
    with open_container(str(folder / "img%03d.png")) as container:
        assert container.streams.video[0].codec_context.width == 16


def test_a_movie_whose_samples_live_in_another_file_reads_none_of_them(tree):
    """A QuickTime external data reference, beside the movie and one folder up: FFmpeg reads
    the other file only with enable_drefs, which stays off; the track reads as empty."""
    folder = tree["root"] / "movies"
    (folder / "lake").mkdir(parents=True)
    media = make_video(folder / "media.mp4", VideoSpec("media", "libx264", "mp4", 64, 48, 10))
    shutil.copy(media, folder / "lake" / "media.mp4")
    for levels_up in (1, 2):  # media.mp4 beside the movie, and ../media.mp4
        movie = mov_referencing(folder / "lake" / f"up{levels_up}.mov", media, levels_up)
        with av.open(movie, container_options={"enable_drefs": "1"}) as control:
            assert len(list(control.decode(video=0))) == 10
        errors = errors_of(extract_clip_frames(movie, [SPEC], options=ALLOW))
        assert [type(e) for e in errors] == [EmptyVideoError]


# --- inspect and previews ---------------------------------------------------------------------


def test_inspect_refuses_a_playlist_and_names_the_flag(escapes, inside, capsys):
    assert main(["inspect", escapes["hls_dot_dot"]]) == 2
    err = capsys.readouterr().err
    assert "ExternalReferenceError" in err and "--allow-playlists" in err
    assert main(["inspect", escapes["hls_dot_dot"], "--allow-playlists"]) == 2
    assert "outside the playlist's folder" in capsys.readouterr().err
    assert main(["inspect", inside["nested"], "--allow-playlists", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["format"]["name"] == "hls" and report["video"]["frames"] == 10
    with pytest.raises(ExternalReferenceError):
        inspect_video(inside["flat"])


def test_previews_obey_the_same_rule(escapes, inside, tmp_path, capsys):
    sheet = str(tmp_path / "sheet.png")
    assert main(["preview", "--from-videos", inside["flat"], "--output", sheet]) == 2
    assert "--allow-playlists" in capsys.readouterr().err
    for exact in (False, True):
        with pytest.raises(ExternalReferenceError, match="outside the playlist's folder"):
            video_contact_sheet([escapes["hls_dot_dot"]], sheet, exact=exact, allow_playlists=True)
    argv = ["preview", "--from-videos", inside["flat"], "--output", sheet, "--allow-playlists"]
    assert main(argv) == 0 and os.path.getsize(sheet) > 0


# --- The flag and the job ---------------------------------------------------------------------


def test_the_opt_in_comes_from_the_flag_or_the_config_file(tmp_path):
    base = {"input": "in.parquet", "output": "out"}
    assert build_options(ClipFramesOptions, base).allow_playlists is False
    conf = tmp_path / "c.toml"
    conf.write_text("allow-playlists = true\n")
    assert build_options(ClipFramesOptions, base, {"allow-playlists": True}).allow_playlists
    for command in ("clip-frames", "video-frames"):
        argv = [command, "--input", "x", "--output", "y"]
        assert parse_run([*argv, "--allow-playlists"])[1].allow_playlists is True
        assert parse_run([*argv, "--config", str(conf)])[1].allow_playlists is True
    conf.write_text('allow-playlists = "yes"\n')
    with pytest.raises(ValueError, match="allow-playlists must be true or false"):
        parse_run(["clip-frames", "--input", "x", "--output", "y", "--config", str(conf)])


def test_clip_frames_job_decodes_a_contained_playlist_and_records_the_escapes(
    spark, tree, escapes, inside, others, tmp_path
):
    """One run with allow-playlists from a config file: the playlist kept to its folder gives
    frames (so the option reached the tasks), the escaping ones and a concat list give error
    rows at stage open, and the private video gives nothing."""
    videos = [inside["flat"], escapes["hls_dot_dot"], escapes["hls_file_url"], others["concat"]]
    pq.write_table(pa.table({"video_path": videos}), tmp_path / "videos.parquet")
    conf = tmp_path / "job.toml"
    conf.write_text('allow-playlists = true\ntarget-fps = "25"\n')
    output = tmp_path / "frames"
    argv = ["clip-frames", "--input", str(tmp_path / "videos.parquet"), "--output", str(output)]
    # Without the opt-in first: every playlist is refused, the contained one too.
    _, refused, _ = parse_run([*argv, "--target-fps", "25"])
    assert write_table(spark, refused).videos_failed == 4
    # Turning it on is a new request for every video: the next incremental run redoes them.
    _, config, _ = parse_run([*argv, "--config", str(conf)])
    summary = write_table(spark, config)
    assert summary.videos_in_input == summary.videos_processed == 4
    frames = read_frames(str(output), "embeddings")
    assert set(frames["video_path"].to_pylist()) == {inside["flat"]}
    assert frames.num_rows == 10 and set(frames["height"].to_pylist()) == {32}
    errors = {row["video_path"]: row for row in read_errors(str(output)).to_pylist()}
    assert set(errors) == set(videos[1:])
    for path in videos[1:]:
        assert errors[path]["error_class"] == "ExternalReferenceError"
        assert errors[path]["stage"] == "open"
    assert "outside the playlist's folder" in errors[escapes["hls_dot_dot"]]["message"]
    assert "concat list" in errors[others["concat"]]["message"]


# --- A playlist on an object store ------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(tree):
    """moto's S3 server on loopback with a playlist, its segments, and a video outside it."""
    import boto3

    with s3_server("lake"):
        client = boto3.client("s3")
        lake = tree["lake"]
        for key, path in [
            ("tenant-a/clips/seg0.ts", lake / "seg0.ts"),
            ("tenant-a/clips/seg1.ts", lake / "seg1.ts"),
            ("tenant-a/clips/inside.m3u8", lake / "inside.m3u8"),
            ("tenant-a/clips/escape.m3u8", lake / "dot_dot.m3u8"),
            ("tenant-a/private/inner.ts", tree["inner"]),
        ]:
            client.upload_file(str(path), "lake", key)
        scratch_playlist = playlist(tree["root"] / "scratch.m3u8", "local.ts")
        client.upload_file(scratch_playlist, "lake", "tenant-a/clips/scratch.m3u8")
        yield "s3://lake/tenant-a/clips"


def test_a_playlist_on_s3_reads_its_segments_from_its_own_prefix_only(
    bucket, tree, tmp_path, monkeypatch
):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("SPARKFRAMES_SCRATCH_DIR", str(scratch))
    # A file in scratch named as the playlist names a segment: it must not be read, the
    # segment comes from the bucket (where there is none).
    make_segment(scratch / "local.ts", 48, 32, 0, 5)
    extraction = extract_video_frames(f"{bucket}/inside.m3u8", (32, 48), options=ALLOW)
    rows = [row for batch in extraction for row in batch]
    assert extraction.report.errors == []
    assert [read_frame_number(row.image) for row in rows] == list(range(10))
    errors = errors_of(extract_clip_frames(f"{bucket}/escape.m3u8", [SPEC], options=ALLOW))
    assert [type(e) for e in errors] == [ExternalReferenceError]
    assert f"{bucket}/../private/inner.ts, outside" in str(errors[0])
    assert f"under its own folder {bucket}" in str(errors[0])
    errors = errors_of(extract_clip_frames(f"{bucket}/scratch.m3u8", [SPEC], options=ALLOW))
    assert [type(e) for e in errors] == [VideoOpenError]
    assert f"refers to {bucket}/local.ts: no such file" in str(errors[0])
    errors = errors_of(extract_clip_frames(f"{bucket}/inside.m3u8", [SPEC]))
    assert [type(e) for e in errors] == [ExternalReferenceError]
    assert sorted(os.listdir(scratch)) == ["local.ts"]  # every local copy was deleted
