"""A run's options: one frozen object, ``ClipFramesOptions`` or ``VideoFramesOptions``.

The command line, a TOML file in ``conf/`` (keys are the flag names, ``target-fps`` or
``target_fps``) and the Python API's keyword arguments all fill it through ``build_options``; it
is validated as it is made, so a bad value is refused before any Spark job runs, and it then
travels unchanged to the driver, the planning and the tasks. Every default and every set of
choices is written once, here or beside the code that uses it, and the CLI's flags are made
from them. Pure parsing and validation: nothing here touches Spark or files other than the
config file.
"""

from __future__ import annotations

import functools
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from sparkframes.convert.encode import (
    DEFAULT_JPEG_QUALITY,
    FRAME_ENCODINGS,
    JPEG,
    RAW,
    FrameEncoding,
)
from sparkframes.convert.resize import DEFAULT_RESIZE_FILTER, RESIZE_FILTERS
from sparkframes.decoding.source import DEFAULT_MAX_PIXELS, LOOP_FILTER_SKIPS, NO_LOOP_FILTER_SKIP
from sparkframes.sampling.spans import FixedStride, to_fraction
from sparkframes.sampling.specs import (
    DEFAULT_OUTPUT_HW,
    DEFAULT_PURPOSE,
    NATIVE,
    PURPOSE_DEFAULT_FPS,
    SCENE_PURPOSE,
    ExtractionSpec,
    Policy,
    check_purpose,
)

#: What may decode: the CPU, FFmpeg's CUDA decoder, NVDEC, or the first of those that can run.
DECODER_MODES = ("ffmpeg_cpu", "ffmpeg_gpu", "pynvc", "auto")
#: ``incremental`` redoes only what is out of date; ``overwrite`` replaces the table.
MODES = ("incremental", "overwrite")
POLICIES = tuple(p.value for p in Policy)


def parse_number(value: str | int | float | Fraction) -> Fraction:
    """An exact number from ``"1/3"``, ``"0.5"``, ``2`` or ``2.5``; a bool or ``"2fps"`` is refused
    with the value quoted (callers add the flag's name)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Fraction):
        raise ValueError(f"{value!r} is not a number")
    try:
        return to_fraction(value.strip() if isinstance(value, str) else value)
    except (ValueError, ZeroDivisionError, OverflowError):  # "2fps", "1/0", inf
        raise ValueError(f"{value!r} is not a number") from None


def parse_hw(text: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"224x224"`` -> (224, 224); ``"native"`` or ``"-1x-1"`` -> (-1, -1). Height first."""
    message = f"size {text!r} must look like HxW (e.g. 224x224) or 'native'"
    if isinstance(text, tuple | list):
        if len(text) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in text):
            raise ValueError(message)
        return (text[0], text[1])
    value = str(text).strip().lower()
    if value == "native":
        return NATIVE
    parts = value.split("x")
    if len(parts) != 2:
        raise ValueError(message)
    try:
        return (int(parts[0]), int(parts[1]))
    except ValueError:
        raise ValueError(message) from None


def parse_rates(text: str | list | tuple | float | int | None) -> tuple[Fraction, ...]:
    """``"1,2"`` or ``[1, 2]`` or ``"1/3"`` -> exact rates; empty -> purpose defaults."""
    if text is None or text == "":
        return ()
    items = (
        text.split(",")
        if isinstance(text, str)
        else (list(text) if isinstance(text, list | tuple) else [text])
    )
    rates = tuple(parse_number(i) for i in items)
    if any(r <= 0 for r in rates):
        raise ValueError(f"rates must be > 0: {text!r}")
    return rates


def parse_list(text: str | list | None) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]``; anything else is refused, not stringified."""
    if text is None:
        return []
    if isinstance(text, str):
        items = text.split(",")
    elif isinstance(text, list | tuple) and all(isinstance(i, str) for i in text):
        items = list(text)
    else:
        raise ValueError(f"must be a comma-separated string or a list of strings, not {text!r}")
    return [i.strip() for i in items if i.strip()]


def _seconds(value: Any) -> Fraction | None:
    return None if value in (None, "") else parse_number(value)


def _refuse_ignored(flags: list[tuple[str, bool]], why: str) -> None:
    """Refuse the flags (name, given) that were given but would be ignored, naming them."""
    given = [flag for flag, is_given in flags if is_given]
    if given:
        raise ValueError(f"{', '.join(given)}: {why}")


def flag(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A field that is also a command-line flag (``--field-name``), with its help and choices:
    the CLI's flags are made from these, so an option is declared in one place."""
    return field(default=default, metadata={"help": help, "choices": choices})


def flags(cls: type) -> list[tuple[str, Any, str, tuple[str, ...] | None]]:
    """(name, plain type, help, choices) of each of ``cls``'s fields that is a flag."""
    types_ = _field_types(cls)
    return [
        (f.name, types_[f.name], f.metadata["help"], f.metadata["choices"])
        for f in fields(cls)
        if "help" in f.metadata
    ]


@dataclass(frozen=True)
class CommonOptions:
    """Flags both commands share."""

    #: The command these options are for (``sparkframes <command>``).
    command: ClassVar[str] = ""

    input: str = flag("", "Parquet file or folder with a video_path column (required)")
    output: str = flag("", "frames table folder or URI (required)")
    master: str | None = flag(None, "Spark master URL (default: local, or spark-submit's)")
    mode: str = flag(
        MODES[0], "incremental skips up-to-date videos; overwrite replaces the table", MODES
    )
    decoder_mode: str = flag(
        DECODER_MODES[0],
        "what decodes: the CPU, FFmpeg's CUDA decoder, NVDEC through PyNvVideoCodec, or the "
        "first of those that can run",
        DECODER_MODES,
    )
    decoder_threads: int = flag(0, "decoder threads (default: the task's cpus)")
    max_pixels: int = flag(DEFAULT_MAX_PIXELS, "refuse streams with more pixels (w*h) than this")
    max_error_rate: float = flag(
        1.0, "fail (exit 3) when more than this fraction of processed videos failed"
    )
    partitions: int = flag(0, "Spark tasks (default: 2x cores)")
    no_fallback: bool = flag(
        False, "fail instead of decoding on CPU when the GPU decoder is unavailable"
    )
    streams_per_gpu: int = flag(1, "GPU tasks sharing one GPU (each asks Spark for 1/N of it)")
    batch_size: int = flag(64, "frames per NVDEC batch (pynvc)")
    skip_loop_filter: str = flag(
        NO_LOOP_FILTER_SKIP,
        "skip H.264/HEVC deblocking on the CPU decoder: faster, pixels differ slightly, same "
        "frames (see docs/decoding.md)",
        LOOP_FILTER_SKIPS,
    )
    resize_filter: str = flag(
        DEFAULT_RESIZE_FILTER,
        "the scaler: bicubic as the ffmpeg CLI, or area, cheaper for large reductions (scene "
        "frames), pixels a few levels off (see docs/decoding.md)",
        tuple(RESIZE_FILTERS),
    )
    video_timeout_s: float = flag(
        3600.0,
        "stop and record a video still decoding after this many seconds (each video decodes in "
        "a worker process killed at the limit); 0 turns the worker process off",
    )
    allow_playlists: bool = flag(
        False,
        "open HLS playlists (.m3u8), reading their files only from under the playlist's "
        "folder; without it a video that refers to other files is refused "
        "(see docs/untrusted-inputs.md)",
    )
    progress: bool = True  # local runs: a videos/frames/errors progress line on stderr
    frame_encoding: str = flag(
        RAW,
        "how frames are stored: raw RGB (exact), jpeg (several times smaller, lossy) or png "
        "(lossless, slow to write); readers decode all three",
        FRAME_ENCODINGS,
    )
    jpeg_quality: int | None = flag(
        None, f"with --frame-encoding jpeg: 1-100 (default: {DEFAULT_JPEG_QUALITY})"
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Refuse what cannot run, naming the flag (a ValueError)."""
        if self.mode not in MODES:
            raise ValueError(f"--mode must be {' or '.join(MODES)}, got {self.mode!r}")
        if self.decoder_mode not in DECODER_MODES:
            raise ValueError(f"--decoder-mode must be one of {DECODER_MODES}")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError("--max-error-rate must be within [0, 1]")
        if self.video_timeout_s < 0:
            raise ValueError("--video-timeout-s must be >= 0 (0: no limit, no isolation)")
        if self.skip_loop_filter not in LOOP_FILTER_SKIPS:
            raise ValueError(f"--skip-loop-filter must be one of {LOOP_FILTER_SKIPS}")
        if self.resize_filter not in RESIZE_FILTERS:
            raise ValueError(f"--resize-filter must be one of {tuple(RESIZE_FILTERS)}")
        if self.streams_per_gpu < 1 or self.batch_size < 1:
            raise ValueError("--streams-per-gpu and --batch-size must be >= 1")
        if self.frame_encoding not in FRAME_ENCODINGS:
            raise ValueError(f"--frame-encoding must be one of {FRAME_ENCODINGS}")
        if self.frame_encoding != JPEG:
            _refuse_ignored(
                [("--jpeg-quality", self.jpeg_quality is not None)],
                f"only with --frame-encoding jpeg (frames are stored {self.frame_encoding})",
            )
        self.encoding()

    def encoding(self) -> FrameEncoding:
        """The stored form of frames these flags ask for."""
        quality = DEFAULT_JPEG_QUALITY if self.jpeg_quality is None else self.jpeg_quality
        try:
            return FrameEncoding(self.frame_encoding, quality)
        except ValueError as exc:
            raise ValueError(f"--jpeg-quality: {exc}") from None


@dataclass(frozen=True)
class ClipFramesOptions(CommonOptions):
    """``sparkframes clip-frames``."""

    command: ClassVar[str] = "clip-frames"

    purpose: tuple[str, ...] = flag((DEFAULT_PURPOSE,), "comma-separated purposes")
    target_fps: tuple[Fraction, ...] = flag(
        (), "comma-separated rates, e.g. 1,2 (default: the purpose's: embeddings 2, aesthetics 1)"
    )
    policy: str = flag(
        Policy.SEQUENCE.value,
        "frames at the rates, N frames spread evenly (uniform), keyframes, the frames shown at "
        "given times (timestamps), or one frame per clip",
        POLICIES,
    )
    target_res: tuple[int, int] = flag(NATIVE, "HxW, e.g. 224x224, or native (= -1x-1)")
    min_frames: int = flag(0, "at least N frames per sequence clip")
    num_frames: int = flag(0, "with --policy uniform: exactly N frames per clip")
    clip_len_s: Fraction | None = flag(None, "fixed-stride clip length in seconds")
    clip_stride_s: Fraction | None = flag(None, "fixed-stride stride (default: clip length)")
    min_clip_len_s: Fraction = flag(Fraction(0), "drop stride clips shorter than this")
    limit_clips: int = flag(0, "at most N stride clips per video")

    def specs(self) -> list[ExtractionSpec]:
        """One spec per purpose (a purpose given twice counts once); explicit rates apply to
        every purpose."""
        return [
            ExtractionSpec(
                purpose=check_purpose(p),
                target_fps=self.target_fps,
                policy=Policy(self.policy),
                target_res=self.target_res,
                min_frames=self.min_frames,
                num_frames=self.num_frames,
            )
            for p in dict.fromkeys(self.purpose)
        ]

    def stride(self) -> FixedStride | None:
        """The fixed-stride cut, or None without ``--clip-len-s``; stride options given without
        it would be silently ignored, so they are refused."""
        if self.clip_len_s is None:
            _refuse_ignored(
                [
                    ("--clip-stride-s", self.clip_stride_s is not None),
                    ("--min-clip-len-s", self.min_clip_len_s != 0),
                    ("--limit-clips", self.limit_clips != 0),
                ],
                "only with --clip-len-s (fixed-stride clips need a clip length); give it or "
                "drop them",
            )
            return None
        return FixedStride(
            clip_len_s=self.clip_len_s,
            stride_s=self.clip_stride_s if self.clip_stride_s is not None else self.clip_len_s,
            min_clip_len_s=self.min_clip_len_s,
            limit_clips=self.limit_clips,
        )

    def validate(self) -> None:
        super().validate()
        if not self.purpose:
            raise ValueError("--purpose needs at least one purpose")
        # Each command owns its purposes: both writing one partition of a table would replace
        # each other's rows on every run.
        if SCENE_PURPOSE in self.purpose:
            raise ValueError(
                f"--purpose {SCENE_PURPOSE}: every frame of the video is what "
                "`sparkframes video-frames` writes; clip-frames would replace its rows"
            )
        if Policy(self.policy) is Policy.UNIFORM:
            if self.num_frames < 1:
                raise ValueError("--policy uniform needs --num-frames N (N >= 1)")
        else:
            _refuse_ignored(
                [("--num-frames", self.num_frames != 0)],
                f"only with --policy uniform, not --policy {self.policy}",
            )
        if Policy(self.policy) is not Policy.SEQUENCE:
            # first/middle/last take one frame per clip: a rate or a frame count would be ignored.
            _refuse_ignored(
                [("--target-fps", bool(self.target_fps)), ("--min-frames", self.min_frames != 0)],
                f"only with --policy sequence; --policy {self.policy} does not sample at a rate",
            )
        self.specs()
        self.stride()


@dataclass(frozen=True)
class VideoFramesOptions(CommonOptions):
    """``sparkframes video-frames``: every frame at ``output_hw`` into ``purpose=scene``."""

    command: ClassVar[str] = "video-frames"

    output_hw: tuple[int, int] = flag(DEFAULT_OUTPUT_HW, "HxW, e.g. 27x48 (27 rows by 48 columns)")
    purpose: str = SCENE_PURPOSE

    def validate(self) -> None:
        super().validate()
        if self.purpose in PURPOSE_DEFAULT_FPS:
            raise ValueError(
                f"--purpose {self.purpose}: clip-frames writes that purpose (at "
                f"{float(PURPOSE_DEFAULT_FPS[self.purpose][0]):g} fps); video-frames would "
                "replace its rows"
            )
        if self.output_hw[0] <= 0 or self.output_hw[1] <= 0:
            raise ValueError("--output-hw must be HxW with both > 0, e.g. 27x48")


OptionsT = TypeVar("OptionsT", bound=CommonOptions)

_CONVERTERS: dict[str, Any] = {
    "purpose": lambda v: tuple(parse_list(v)),
    "target_fps": parse_rates,
    "target_res": parse_hw,
    "output_hw": parse_hw,
    "clip_len_s": _seconds,
    "clip_stride_s": _seconds,
    "min_clip_len_s": parse_number,
}

#: How a wrong type is described for the plain (unconverted) field types.
_EXPECTED = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    """Each field's plain type (``str | None`` -> ``str``); annotations are strings here."""
    hints = typing.get_type_hints(cls)
    plain: dict[str, Any] = {}
    for f in fields(cls):
        hint = hints[f.name]
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = args[0] if len(args) == 1 else hint
        plain[f.name] = hint
    return plain


def _check_type(value: Any, expected: Any) -> bool:
    """Whether ``value`` has a plain field's type: a TOML ``"false"`` is not a bool, nor True an
    int (bool is an int subclass); a float field also takes an int."""
    if expected is bool:
        return isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is str:
        return isinstance(value, str)
    return True  # a type this module does not check


def convert_values(cls: type, values: dict[str, Any], source: str | None = None) -> dict[str, Any]:
    """Typed field values of ``cls`` from flag values (``-`` or ``_`` in keys); unknown keys,
    wrong types and unparseable values fail with the flag named, or the key and ``source`` (the
    config file) when they come from a file."""
    types_ = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        label = f"{source}: {key}" if source else f"--{name.replace('_', '-')}"
        if name not in types_:
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}unknown option {key!r}; known: {sorted(types_)}")
        if value is None:
            continue
        expected = types_[name]
        if name == "purpose" and cls is VideoFramesOptions:
            if not isinstance(value, str):
                raise ValueError(f"{label} must be a string, not {value!r}")
            kwargs[name] = check_purpose(value)
            continue
        convert = _CONVERTERS.get(name)
        if convert is not None:
            try:
                kwargs[name] = convert(value)
            except ValueError as exc:
                raise ValueError(f"{label}: {exc}") from None
            continue
        if not _check_type(value, expected):
            raise ValueError(f"{label} must be {_EXPECTED[expected]}, not {value!r}")
        kwargs[name] = float(value) if expected is float else value
    return kwargs


def build_options(
    cls: type[OptionsT],
    values: dict[str, Any],
    file_values: dict[str, Any] | None = None,
    config_path: str | None = None,
) -> OptionsT:
    """Options of type ``cls``: ``file_values`` (read from ``config_path``) first, then
    ``values`` (the command line or keyword arguments), which win."""
    kwargs = convert_values(cls, file_values or {}, config_path or "config file")
    kwargs.update(convert_values(cls, values))
    return cls(**kwargs)


#: The per-command sections a config file may have; keys of the other command's are ignored.
COMMANDS = (ClipFramesOptions.command, VideoFramesOptions.command)


def load_toml(path: str | Path, command: str | None = None) -> dict[str, Any]:
    """Flag values from a TOML config file for ``command``: the top-level keys, overridden by
    the command's ``[clip-frames]``/``[video-frames]`` section. Errors name the file."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            values[key] = value
        elif key.replace("_", "-") in COMMANDS:
            sections[key.replace("_", "-")] = value
        else:
            raise ValueError(
                f"{path}: unknown section [{key}]; sections are "
                + " and ".join(f"[{c}]" for c in COMMANDS)
            )
    if command is not None:
        values.update(sections.get(command, {}))
    return values
