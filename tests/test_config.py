"""Flags and config files: the user's spelling of sizes, rates and purposes, and clear refusals."""

from __future__ import annotations

import re
from fractions import Fraction as F

import pytest

from sparkframes.cli import parse_run
from sparkframes.options import (
    ClipFramesOptions,
    VideoFramesOptions,
    build_options,
    parse_hw,
    parse_rates,
)
from sparkframes.spark.request_keys import unit_keys_of


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


@pytest.mark.parametrize("spelling", ["-1x-1", "=-1x-1", "native", "-1X-1"])
def test_command_line_accepts_native_written_as_minus_one(spelling):
    """NeMo users write ``(-1, -1)`` as ``--target-res -1x-1``: not a flag of its own."""
    flag = [f"--target-res{spelling}"] if spelling.startswith("=") else ["--target-res", spelling]
    argv = ["clip-frames", "--input", "i", "--output", "o", *flag, "--policy", "middle"]
    _, config, _ = parse_run(argv)
    assert config.target_res == (-1, -1) and config.policy == "middle"
    _, config, _ = parse_run(
        ["clip-frames", "--input", "i", "--output", "o", "--target-res", "8x6"]
    )
    assert config.target_res == (8, 6)


def test_a_size_flag_still_needs_a_size(capsys):
    """Only a size is attached to the flag: a real flag after it still leaves it without a value,
    and the scene size's own rule refuses ``-1x-1`` by name."""
    with pytest.raises(SystemExit):
        parse_run(["clip-frames", "--input", "i", "--output", "o", "--target-res", "--policy"])
    assert "--target-res: expected one argument" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--output-hw must be HxW with both > 0"):
        parse_run(["video-frames", "--input", "i", "--output", "o", "--output-hw", "-1x-1"])


def test_defaults_follow_the_contract():
    config = build_options(ClipFramesOptions, {"input": "i", "output": "o"})
    assert config.purpose == ("embeddings",) and config.policy == "sequence"
    assert config.target_res == (-1, -1) and config.mode == "incremental"
    assert [s.rates for s in config.specs()] == [(F(2),)]
    video = build_options(VideoFramesOptions, {"input": "i", "output": "o"})
    assert video.output_hw == (27, 48) and video.purpose == "scene" and video.batch_size == 64


def test_config_file_keys_are_the_flag_names_and_flags_win(tmp_path):
    path = tmp_path / "job.toml"
    path.write_text(
        'input = "i"\noutput = "o"\ntarget-fps = "1,2"\nclip-len-s = 10\n'
        '[video-frames]\noutput-hw = "54x96"\n'
    )
    _, clip, _ = parse_run(["clip-frames", "--config", str(path), "--target-fps", "3"])
    assert clip.target_fps == (F(3),) and clip.stride().clip_len_s == 10
    assert clip.stride().stride_s == 10  # stride defaults to the clip length
    (tmp_path / "video.toml").write_text(
        '[video-frames]\ninput = "i"\noutput = "o"\noutput-hw = "54x96"\n'
    )
    _, video, _ = parse_run(["video-frames", "--config", str(tmp_path / "video.toml")])
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
        ({"resize_filter": "lanczos"}, "resize-filter"),
        ({"policy": "uniform"}, "needs --num-frames"),
        ({"num_frames": 8}, "--num-frames: only with --policy uniform"),
        ({"policy": "uniform", "num_frames": 8, "target_fps": "2"}, "--target-fps"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(values, message):
    with pytest.raises(ValueError, match=message):
        build_options(ClipFramesOptions, {"input": "i", "output": "o", **values})


@pytest.mark.parametrize(
    ("values", "flags"),
    [
        ({"clip_stride_s": "5"}, "--clip-stride-s"),
        ({"min_clip_len_s": 2, "limit_clips": 3}, "--min-clip-len-s, --limit-clips"),
    ],
)
def test_stride_options_without_a_clip_length_are_refused_not_ignored(values, flags):
    with pytest.raises(ValueError, match=f"^{flags}: only with --clip-len-s"):
        build_options(ClipFramesOptions, {"input": "i", "output": "o", **values})
    config = build_options(
        ClipFramesOptions, {"input": "i", "output": "o", "clip_len_s": 10, **values}
    )
    assert config.stride() is not None


@pytest.mark.parametrize("policy", ["first", "middle", "last"])
def test_rates_and_min_frames_are_refused_with_single_frame_policies(policy):
    base = {"input": "i", "output": "o", "policy": policy}
    with pytest.raises(ValueError, match=r"^--target-fps: only with --policy sequence"):
        build_options(ClipFramesOptions, {**base, "target_fps": "2"})
    with pytest.raises(ValueError, match=r"^--min-frames: only with --policy sequence"):
        build_options(ClipFramesOptions, {**base, "min_frames": 8})
    assert build_options(ClipFramesOptions, base).specs()[0].policy == policy  # purpose rate: fine
    sequence = {**base, "policy": "sequence", "target_fps": "2", "min_frames": 8}
    assert build_options(ClipFramesOptions, sequence).min_frames == 8


def _write(tmp_path, text: str) -> str:
    path = tmp_path / "job.toml"
    path.write_text('input = "i"\noutput = "o"\n' + text)
    return str(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('min-frames = "8"', "min-frames must be an integer, not '8'"),
        ("min-frames = true", "min-frames must be an integer, not True"),
        ('max-error-rate = "0.05"', "max-error-rate must be a number, not '0.05'"),
        ('no-fallback = "false"', "no-fallback must be true or false, not 'false'"),
        ("mode = 1", "mode must be a string, not 1"),
        ("target-fps = true", "target-fps: True is not a number"),
        ("purpose = [1, 2]", "purpose: must be a comma-separated string or a list of strings"),
        ("target-res = [224, true]", "target-res: size .* must look like HxW"),
    ],
)
def test_config_file_values_of_the_wrong_type_are_refused_naming_file_and_key(
    tmp_path, line, message
):
    path = _write(tmp_path, line + "\n")
    with pytest.raises(ValueError, match=f"^{re.escape(path)}: {message}"):
        parse_run(["clip-frames", "--config", path])


def test_config_file_values_of_the_right_type_are_converted(tmp_path):
    path = _write(
        tmp_path,
        "min-frames = 8\nmax-error-rate = 0\nno-fallback = false\nclip-len-s = 2.5\n"
        'target-fps = [1, "1/3"]\ntarget-res = [32, 48]\nvideo-timeout-s = 60\n',
    )
    _, config, _ = parse_run(["clip-frames", "--config", path])
    assert (config.min_frames, config.max_error_rate, config.no_fallback) == (8, 0.0, False)
    assert isinstance(config.max_error_rate, float) and config.video_timeout_s == 60.0
    assert config.clip_len_s == F(5, 2) and config.target_fps == (F(1), F(1, 3))
    assert config.target_res == (32, 48)


def test_a_command_section_overrides_the_top_level_keys_and_keeps_the_rest(tmp_path):
    path = _write(
        tmp_path,
        'decoder-mode = "ffmpeg_cpu"\nbatch-size = 32\n'
        '[video-frames]\ndecoder-mode = "pynvc"\noutput-hw = "54x96"\n'
        '[clip-frames]\ntarget-res = "64x64"\n',
    )
    _, video, _ = parse_run(["video-frames", "--config", path])
    assert (video.input, video.output, video.batch_size) == ("i", "o", 32)
    assert (video.decoder_mode, video.output_hw) == ("pynvc", (54, 96))
    _, clip, _ = parse_run(["clip-frames", "--config", path, "--batch-size", "16"])
    assert (clip.decoder_mode, clip.target_res, clip.batch_size) == ("ffmpeg_cpu", (64, 64), 16)


def test_an_unknown_section_is_refused(tmp_path):
    path = _write(tmp_path, "[clip_frame]\npolicy = 'first'\n")
    with pytest.raises(ValueError, match=r"unknown section \[clip_frame\]"):
        parse_run(["clip-frames", "--config", path])


def test_config_file_errors_name_the_file(tmp_path):
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ValueError, match=f"^{re.escape(missing)}: no such config file"):
        parse_run(["clip-frames", "--config", missing])
    broken = _write(tmp_path, 'target-fps = [1, \nmode = "overwrite"\n')
    with pytest.raises(ValueError, match=f"^{re.escape(broken)}: not valid TOML: .*line"):
        parse_run(["clip-frames", "--config", broken])
    unknown = _write(tmp_path, "colour = 'red'\n")
    with pytest.raises(ValueError, match=f"^{re.escape(unknown)}: unknown option 'colour'"):
        parse_run(["clip-frames", "--config", unknown])


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--target-fps", "2fps"),
        ("--target-fps", "1,2fps"),
        ("--clip-len-s", "10s"),
        ("--clip-stride-s", "1/0"),
        ("--min-clip-len-s", "two"),
    ],
)
def test_unparseable_numbers_name_the_flag_and_the_value(flag, value):
    argv = ["clip-frames", "--input", "i", "--output", "o", "--clip-len-s", "10", flag, value]
    bad = value.split(",")[-1]
    with pytest.raises(ValueError, match=f"^{flag}: '{re.escape(bad)}' is not a number$"):
        parse_run(argv)


def test_the_two_commands_never_write_the_same_purpose():
    """Sharing a partition, each command's incremental run would replace the other's rows."""
    with pytest.raises(ValueError, match=re.escape("--purpose scene: every frame")):
        parse_run(["clip-frames", "--purpose", "embeddings,scene", "--input", "i", "--output", "o"])
    base = {"input": "i", "output": "o"}
    with pytest.raises(ValueError, match=re.escape("--purpose embeddings: clip-frames writes")):
        build_options(VideoFramesOptions, {**base, "purpose": "embeddings"})
    assert (
        build_options(VideoFramesOptions, {**base, "purpose": "scene_small"}).purpose
        == "scene_small"
    )


def test_a_purpose_given_twice_counts_once():
    argv = ["clip-frames", "--input", "i", "--output", "o"]
    _, config, _ = parse_run([*argv, "--purpose", "embeddings,aesthetics,embeddings"])
    assert [s.purpose for s in config.specs()] == ["embeddings", "aesthetics"]


def test_credentials_in_a_uri_never_reach_the_tables_history():
    from sparkframes.spark.job import redact

    text = '{"input": "s3://AKIA:secret@bucket/in.parquet", "output": "/plain/path"}'
    assert redact(text) == '{"input": "s3://***@bucket/in.parquet", "output": "/plain/path"}'
    assert (
        redact("https://user:pw@host/v.mp4 and s3://b/k") == "https://***@host/v.mp4 and s3://b/k"
    )


def test_uniform_from_flags_a_config_file_and_keywords_alike(tmp_path):
    path = tmp_path / "u.toml"
    path.write_text('input = "i"\noutput = "o"\npolicy = "uniform"\nnum-frames = 16\n')
    _, from_file, _ = parse_run(["clip-frames", "--config", str(path)])
    argv = ["clip-frames", "--input", "i", "--output", "o", "--policy", "uniform"]
    _, from_flags, _ = parse_run([*argv, "--num-frames", "16"])
    from_keywords = build_options(
        ClipFramesOptions, {"input": "i", "output": "o", "policy": "uniform", "num_frames": 16}
    )
    assert from_file == from_flags == from_keywords
    (spec,) = from_flags.specs()
    assert (spec.policy, spec.num_frames) == ("uniform", 16)
    # Part of what was asked of a video: another N redoes it; other policies' keys are as before.
    eight = build_options(
        ClipFramesOptions, {"input": "i", "output": "o", "policy": "uniform", "num_frames": 8}
    )
    assert unit_keys_of(from_flags)(None) != unit_keys_of(eight)(None)
    keyframes = build_options(
        ClipFramesOptions, {"input": "i", "output": "o", "policy": "keyframes"}
    )
    assert keyframes.specs()[0].policy == "keyframes"
    assert unit_keys_of(keyframes)(None) != unit_keys_of(eight)(None)
