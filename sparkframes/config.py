"""Job configuration: the flags of ``sparkframes clip-frames``/``video-frames``, from the command
line or a TOML file in ``conf/`` whose keys are the flag names (``target-fps`` or ``target_fps``).

Pure parsing and validation; nothing here touches Spark or files other than the config file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from sparkframes.decoding.source import LOOP_FILTER_SKIPS
from sparkframes.spans import FixedStride, to_fraction
from sparkframes.specs import NATIVE, ExtractionSpec, Policy, check_purpose

DECODER_MODES = ("ffmpeg_cpu", "ffmpeg_gpu", "pynvc", "auto")


def parse_hw(text: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"224x224"`` -> (224, 224); ``"native"`` or ``"-1x-1"`` -> (-1, -1). Height first."""
    if isinstance(text, tuple | list):
        h, w = (int(v) for v in text)
        return (h, w)
    value = str(text).strip().lower()
    if value == "native":
        return NATIVE
    parts = value.split("x")
    if len(parts) != 2:
        raise ValueError(f"size {text!r} must look like HxW (e.g. 224x224) or 'native'")
    try:
        return (int(parts[0]), int(parts[1]))
    except ValueError:
        raise ValueError(f"size {text!r} must look like HxW (e.g. 224x224) or 'native'") from None


def parse_rates(text: str | list | tuple | float | int | None) -> tuple[Fraction, ...]:
    """``"1,2"`` or ``[1, 2]`` or ``"1/3"`` -> exact rates; empty -> purpose defaults."""
    if text is None or text == "":
        return ()
    items = (
        text.split(",")
        if isinstance(text, str)
        else (list(text) if isinstance(text, list | tuple) else [text])
    )
    rates = tuple(
        to_fraction(str(i).strip()) if isinstance(i, str) else to_fraction(i) for i in items
    )
    if any(r <= 0 for r in rates):
        raise ValueError(f"rates must be > 0: {text!r}")
    return rates


def parse_list(text: str | list | None) -> list[str]:
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else [str(i) for i in text]
    return [i.strip() for i in items if i.strip()]


@dataclass
class CommonConfig:
    """Flags both commands share."""

    input: str = ""
    output: str = ""
    master: str | None = None
    mode: str = "incremental"  # or "overwrite"
    decoder_mode: str = "ffmpeg_cpu"
    decoder_threads: int = 0  # 0: the Spark task's cpus
    max_pixels: int = 8192 * 8192
    max_error_rate: float = 1.0
    partitions: int = 0  # 0: twice the default parallelism, at most one per video
    no_fallback: bool = False  # a GPU mode that cannot run fails instead of using the CPU
    streams_per_gpu: int = 1  # GPU tasks ask Spark for 1/streams_per_gpu of a GPU each
    batch_size: int = 64  # frames per NVDEC batch (pynvc)
    #: Opt-in speed for pixels: skip H.264/HEVC deblocking when decoding on the CPU.
    skip_loop_filter: str = "none"
    #: Per-video time limit; each video decodes in a child process that is killed at the limit
    #: (a hung native call cannot be interrupted otherwise). 0 turns isolation off.
    video_timeout_s: float = 3600.0
    progress: bool = True  # local runs: a videos/frames/errors progress line on stderr

    def validate(self) -> None:
        if not self.input or not self.output:
            raise ValueError("--input and --output are required")
        if self.mode not in ("incremental", "overwrite"):
            raise ValueError(f"--mode must be incremental or overwrite, got {self.mode!r}")
        if self.decoder_mode not in DECODER_MODES:
            raise ValueError(f"--decoder-mode must be one of {DECODER_MODES}")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError("--max-error-rate must be within [0, 1]")
        if self.video_timeout_s < 0:
            raise ValueError("--video-timeout-s must be >= 0 (0: no limit, no isolation)")
        if self.skip_loop_filter not in LOOP_FILTER_SKIPS:
            raise ValueError(f"--skip-loop-filter must be one of {LOOP_FILTER_SKIPS}")
        if self.streams_per_gpu < 1 or self.batch_size < 1:
            raise ValueError("--streams-per-gpu and --batch-size must be >= 1")


@dataclass
class ClipFramesConfig(CommonConfig):
    """``sparkframes clip-frames``."""

    purpose: list[str] = field(default_factory=lambda: ["embeddings"])
    target_fps: tuple[Fraction, ...] = ()
    policy: str = "sequence"
    target_res: tuple[int, int] = NATIVE
    min_frames: int = 0
    clip_len_s: Fraction | None = None
    clip_stride_s: Fraction | None = None
    min_clip_len_s: Fraction = Fraction(0)
    limit_clips: int = 0

    def specs(self) -> list[ExtractionSpec]:
        """One spec per purpose; explicit rates apply to every purpose."""
        return [
            ExtractionSpec(
                purpose=check_purpose(p),
                target_fps=self.target_fps,
                policy=Policy(self.policy),
                target_res=self.target_res,
                min_frames=self.min_frames,
            )
            for p in self.purpose
        ]

    def stride(self) -> FixedStride | None:
        if self.clip_len_s is None:
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
        self.specs()
        self.stride()


@dataclass
class VideoFramesConfig(CommonConfig):
    """``sparkframes video-frames``: every frame at ``output_hw`` into ``purpose=scene``."""

    output_hw: tuple[int, int] = (27, 48)
    purpose: str = "scene"

    def validate(self) -> None:
        super().validate()
        if self.output_hw[0] <= 0 or self.output_hw[1] <= 0:
            raise ValueError("--output-hw must be HxW with both > 0, e.g. 27x48")


_CONVERTERS: dict[str, Any] = {
    "purpose": parse_list,
    "target_fps": parse_rates,
    "target_res": parse_hw,
    "output_hw": parse_hw,
    "clip_len_s": lambda v: None if v in (None, "") else to_fraction(v),
    "clip_stride_s": lambda v: None if v in (None, "") else to_fraction(v),
    "min_clip_len_s": to_fraction,
}


def build_config(cls: type, values: dict[str, Any]) -> Any:
    """A config of type ``cls`` from flag values (``-`` or ``_`` in keys); unknown keys fail."""
    names = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in names:
            raise ValueError(f"unknown option {key!r}; known: {sorted(names)}")
        if value is None:
            continue
        if name == "purpose" and cls is VideoFramesConfig:
            kwargs[name] = check_purpose(str(value))
            continue
        convert = _CONVERTERS.get(name)
        kwargs[name] = convert(value) if convert else value
    config = cls(**kwargs)
    config.validate()
    return config


def load_toml(path: str | Path) -> dict[str, Any]:
    """Flag values from a TOML config file (flat keys, or under a [clip-frames] table)."""
    with open(path, "rb") as f:
        return tomllib.load(f)
