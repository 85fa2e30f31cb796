"""``sparkframes inspect``: the report on real catalog videos, through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparkframes.errors import VideoOpenError
from sparkframes.tools.inspection import format_inspection, inspect_video
from tests.conftest import oracle_for
from tests.videos import CATALOG

REPO = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "sparkframes.cli", "inspect", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120)


def _json(path: Path) -> dict:
    result = _cli(str(path), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_rotated_video_reports_both_sizes(catalog):
    video = _json(catalog["rot90_mp4"])["video"]
    assert video["coded_size"] == {"width": 128, "height": 96}
    assert video["displayed_size"] == {"width": 96, "height": 128}
    assert video["rotation_deg"] == 90


def test_vfr_video(catalog):
    info = _json(catalog["vfr_mkv"])
    video = info["video"]
    assert video["vfr"] is True
    assert video["frames"] == CATALOG["vfr_mkv"].n_frames
    assert video["duration_s"] == pytest.approx(float(oracle_for(catalog["vfr_mkv"]).end_s))
    assert video["frame_interval_s"] == {"min": 0.02, "max": 0.12}
    assert not video["mismatch"]["frames"] and not video["mismatch"]["duration"]


def test_start_offset_and_matroska_duration(catalog):
    info = _json(catalog["offset_mkv"])
    video = info["video"]
    assert video["start_offset_s"] == pytest.approx(1.4)
    assert video["frames"] == 50 and video["duration_s"] == pytest.approx(2.0)
    # Matroska's duration counts from 0: 3.4 s claimed for 2 s of frames starting at 1.4 s.
    assert video["header_duration_s"] == pytest.approx(3.4)
    assert video["mismatch"]["duration"] is False and "start offset" in video["mismatch"]["note"]
    assert any("1.400 s" in w for w in info["warnings"])


def test_ntsc_frame_count_keyframes_and_header(catalog):
    info = _json(catalog["ntsc_mp4"])
    video = info["video"]
    assert video["frames"] == 90 and video["header_frames"] == 90
    assert video["duration_s"] == pytest.approx(3.003)
    assert video["vfr"] is False and video["header_average_rate"] == "30000/1001"
    assert video["codec"] == "h264" and video["pix_fmt"] == "yuv420p" and video["bit_depth"] == 8
    assert video["keyframes"]["count"] == 8  # GOP 12 over 90 frames
    assert video["keyframes"]["first_times_s"][:2] == [0.0, pytest.approx(12 * 1001 / 30000)]
    assert info["format"]["name"].startswith("mov,mp4")
    assert [s["type"] for s in info["streams"]] == ["video"]
    assert info["warnings"] == []


def test_ten_bit_hevc_and_text_report(catalog):
    info = inspect_video(catalog["hevc10_mkv"])
    assert info["video"]["bit_depth"] == 10 and info["video"]["profile"] == "Main 10"
    text = format_inspection(info)
    assert str(catalog["hevc10_mkv"]) in text and "10-bit" in text and "CFR" in text
    result = _cli(str(catalog["rot90_mp4"]))
    assert result.returncode == 0, result.stderr
    assert "displayed 96x128 (rotation 90 deg" in result.stdout


def _truncated(path: Path, out_dir: Path) -> Path:
    """The first 60% of ``path``'s bytes: the header still describes the whole video."""
    data = path.read_bytes()
    out = out_dir / f"cut-{path.name}"
    out.write_bytes(data[: len(data) * 6 // 10])
    return out


def test_headers_that_lie_are_flagged(catalog, tmp_path):
    # AVI keeps its frame count in the header: 50 claimed, about half left to demux.
    avi = inspect_video(_truncated(catalog["mpeg4_avi"], tmp_path))["video"]
    assert avi["header_frames"] == 50 and avi["frames"] < 40
    assert avi["mismatch"]["frames"] is True
    # Matroska keeps a duration: 2.4 s claimed, the frames left end well before.
    info = inspect_video(_truncated(catalog["h264_mkv"], tmp_path))
    mkv = info["video"]
    assert mkv["header_duration_s"] == pytest.approx(2.4) and mkv["duration_s"] < 2.0
    assert mkv["mismatch"]["duration"] is True
    assert any("header claims 2.400 s" in w for w in info["warnings"])
    assert inspect_video(catalog["h264_mkv"])["video"]["mismatch"]["duration"] is False


def test_a_text_file_exits_2_naming_the_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("certainly not a video\n")
    result = _cli(str(text), "--json")
    assert result.returncode == 2
    assert str(text) in result.stderr and "VideoOpenError" in result.stderr
    assert result.stdout == ""
    with pytest.raises(VideoOpenError):
        inspect_video(text)
    missing = _cli(str(tmp_path / "missing.mp4"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
