"""What to extract: purposes, rates, policies, sizes. Pure data with validation.

A purpose names an output partition and brings default rates (embeddings 2 fps, aesthetics 1 fps,
scene: every frame); explicit rates override them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from sparkframes.sampling.spans import to_fraction

#: The purpose of clip frames when none is given.
DEFAULT_PURPOSE = "embeddings"
#: Every-frame extraction's size, (height, width): what TransNetV2 takes.
DEFAULT_OUTPUT_HW = (27, 48)
#: The purpose of every-frame extraction (``video-frames``), kept apart from sampled clips.
SCENE_PURPOSE = "scene"
#: Default sampling rates per known purpose. ``scene`` has none: it takes every frame.
PURPOSE_DEFAULT_FPS: dict[str, tuple[Fraction, ...]] = {
    "embeddings": (Fraction(2),),
    "aesthetics": (Fraction(1),),
}

#: Purposes become partition folder names, so they are restricted to a safe alphabet.
_PURPOSE_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

NATIVE: tuple[int, int] = (-1, -1)


class Policy(StrEnum):
    """How frames are chosen in a clip (see CONTRACT.md, "Time and frame choice")."""

    SEQUENCE = "sequence"
    FIRST = "first"
    MIDDLE = "middle"
    LAST = "last"
    UNIFORM = "uniform"  # exactly num_frames per clip, at the centres of equal parts
    KEYFRAMES = "keyframes"  # every frame the container flags as a keyframe
    TIMESTAMPS = "timestamps"  # the frame shown at each of the input row's timestamps_s


def check_purpose(purpose: str) -> str:
    """Return ``purpose`` if it is safe as a partition name, else raise ValueError."""
    if not _PURPOSE_RE.match(purpose):
        raise ValueError(
            f"purpose {purpose!r} must match {_PURPOSE_RE.pattern} (it becomes a folder name)"
        )
    return purpose


def check_target_res(target_res: tuple[int, int]) -> tuple[int, int]:
    """``(h, w)`` with both > 0, or ``(-1, -1)`` for the native size."""
    h, w = (int(v) for v in target_res)
    if (h, w) != NATIVE and (h <= 0 or w <= 0):
        raise ValueError(f"target size must be (h, w) > 0 or (-1, -1) for native, got {target_res}")
    return (h, w)


@dataclass(frozen=True)
class ExtractionSpec:
    """One purpose's request for every clip of a video.

    ``target_fps`` empty means the purpose's default rates. ``min_frames`` raises the rate of a
    ``sequence`` clip that would get fewer samples (exactly N at N / duration). ``num_frames``
    is how many frames ``uniform`` takes from every clip.
    """

    purpose: str
    target_fps: tuple[Fraction, ...] = ()
    policy: Policy = Policy.SEQUENCE
    target_res: tuple[int, int] = NATIVE
    min_frames: int = 0
    num_frames: int = 0
    rates: tuple[Fraction, ...] = field(init=False)

    def __post_init__(self) -> None:
        check_purpose(self.purpose)
        object.__setattr__(self, "policy", Policy(self.policy))
        object.__setattr__(self, "target_res", check_target_res(self.target_res))
        if self.min_frames < 0:
            raise ValueError(f"min_frames must be >= 0, got {self.min_frames}")
        if (self.policy is Policy.UNIFORM) != (self.num_frames > 0) or self.num_frames < 0:
            raise ValueError(
                f"num_frames ({self.num_frames}) must be >= 1 with policy uniform, and 0 with "
                f"any other policy ({self.policy})"
            )
        explicit = tuple(to_fraction(r) for r in self.target_fps)
        object.__setattr__(self, "target_fps", explicit)
        rates = explicit or PURPOSE_DEFAULT_FPS.get(self.purpose, ())
        if self.policy is Policy.SEQUENCE:
            if not rates:
                raise ValueError(
                    f"purpose {self.purpose!r} has no default rate: give target_fps explicitly"
                )
            if any(r <= 0 for r in rates):
                raise ValueError(f"rates must be > 0, got {[float(r) for r in rates]}")
        # Keep the caller's order but drop repeats: a rate asked twice is sampled once.
        object.__setattr__(self, "rates", tuple(dict.fromkeys(rates)))
