"""Flags and config files: the user's spelling of sizes, rates and purposes, and clear refusals."""

from __future__ import annotations

from fractions import Fraction as F

import pytest

from sparkframes.cli import parse_config
from sparkframes.config import (
    ClipFramesConfig,
    VideoFramesConfig,
    build_config,
    parse_hw,
    parse_rates,
)


def test_sizes_are_height_by_width_and_native_has_two_spellings():
    assert parse_hw("27x48") == (27, 48)
    assert parse_hw("native") == parse_hw("-1x-1") == (-1, -1)
    for bad in ("224", "axb", "1x2x3"):
        with pytest.raises(ValueError, match="HxW"):
            parse_hw(bad)


def test_rates_are_exact():
    assert parse_rates("1,2") == (F(1), F(2))
    assert parse_rates("0.5, 1/3") == (F(1, 2), F(1, 3))
    assert parse_rates([1, 2.5]) == (F(1), F(5, 2))
    with pytest.raises(ValueError):
        parse_rates("0")


def test_command_line_accepts_native_written_as_minus_one():
    _, config = parse_config(["clip-frames", "--input", "i", "--output", "o", "--target-res=-1x-1"])
    assert config.target_res == (-1, -1)


def test_defaults_follow_the_contract():
    config = build_config(ClipFramesConfig, {"input": "i", "output": "o"})
    assert config.purpose == ["embeddings"] and config.policy == "sequence"
    assert config.target_res == (-1, -1) and config.mode == "incremental"
    assert [s.rates for s in config.specs()] == [(F(2),)]
    video = build_config(VideoFramesConfig, {"input": "i", "output": "o"})
    assert video.output_hw == (27, 48) and video.purpose == "scene" and video.batch_size == 64


def test_config_file_keys_are_the_flag_names_and_flags_win(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text(
        'input = "i"\noutput = "o"\ntarget-fps = "1,2"\nclip-len-s = 10\n'
        '[video-frames]\noutput-hw = "54x96"\n'
    )
    _, clip = parse_config(["clip-frames", "--config", str(path), "--target-fps", "3"])
    assert clip.target_fps == (F(3),) and clip.stride().clip_len_s == 10
    assert clip.stride().stride_s == 10  # stride defaults to the clip length
    (tmp_path / "video.toml").write_text(
        '[video-frames]\ninput = "i"\noutput = "o"\noutput-hw = "54x96"\n'
    )
    _, video = parse_config(["video-frames", "--config", str(tmp_path / "video.toml")])
    assert video.output_hw == (54, 96)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "append"}, "incremental or overwrite"),
        ({"purpose": "Emb/../x"}, "becomes a folder name"),
        ({"target_fps": "-1"}, "> 0"),
        ({"colour": "red"}, "unknown option"),
        ({"max_error_rate": 2}, "within"),
        ({"decoder_mode": "gpu"}, "decoder-mode"),
        ({"policy": "random"}, "random"),
        ({"skip_loop_filter": "most"}, "skip-loop-filter"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(values, message):
    with pytest.raises(ValueError, match=message):
        build_config(ClipFramesConfig, {"input": "i", "output": "o", **values})
