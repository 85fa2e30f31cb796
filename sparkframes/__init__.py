"""sparkframes: Spark-native video frame extraction for ML data curation.

Library entry points (no Spark needed): ``extract_clip_frames`` and ``extract_video_frames``.
Reading the output table: ``read_frames`` (Arrow tensors), ``frames_to_numpy``, ``read_errors``,
and ``decode_frame`` for rows read by other engines; ``optimize`` compacts it.
The Spark jobs are the ``sparkframes`` command and ``jobs/*.py`` under spark-submit.

Every name is imported on first use (PEP 562 ``__getattr__``), not here: a GPU node that only
decodes may have no deltalake, pyspark or pandas, and every CLI call pays for what this module
imports. ``import sparkframes`` itself needs nothing beyond the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs only; at run time __getattr__ imports these
    from sparkframes.errors import FrameExtractionError
    from sparkframes.extraction.base import ExtractedFrame, ExtractOptions
    from sparkframes.extraction.clip import extract_clip_frames
    from sparkframes.extraction.video import extract_video_frames
    from sparkframes.sampling.spans import ClipSpan, FixedStride
    from sparkframes.sampling.specs import ExtractionSpec, Policy
    from sparkframes.table.encodings import decode_frame
    from sparkframes.table.maintenance import optimize
    from sparkframes.table.reader import (
        frames_to_numpy,
        read_errors,
        read_frame_groups,
        read_frames,
        read_table,
    )

#: Where each public name lives; the module is imported when the name is first asked for.
_LAZY: dict[str, str] = {
    "ClipSpan": "sparkframes.sampling.spans",
    "ExtractOptions": "sparkframes.extraction.base",
    "ExtractedFrame": "sparkframes.extraction.base",
    "ExtractionSpec": "sparkframes.sampling.specs",
    "FixedStride": "sparkframes.sampling.spans",
    "FrameExtractionError": "sparkframes.errors",
    "Policy": "sparkframes.sampling.specs",
    "decode_frame": "sparkframes.table.encodings",
    "extract_clip_frames": "sparkframes.extraction.clip",
    "extract_video_frames": "sparkframes.extraction.video",
    "frames_to_numpy": "sparkframes.table.reader",
    "optimize": "sparkframes.table.maintenance",
    "read_errors": "sparkframes.table.reader",
    "read_frame_groups": "sparkframes.table.reader",
    "read_frames": "sparkframes.table.reader",
    "read_table": "sparkframes.table.reader",
}

__all__ = [
    "ClipSpan",
    "ExtractOptions",
    "ExtractedFrame",
    "ExtractionSpec",
    "FixedStride",
    "FrameExtractionError",
    "Policy",
    "decode_frame",
    "extract_clip_frames",
    "extract_video_frames",
    "frames_to_numpy",
    "optimize",
    "read_errors",
    "read_frame_groups",
    "read_frames",
    "read_table",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use, and keep the name here after that."""
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'sparkframes' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})


def _version() -> str:
    """The installed distribution's version (importlib.metadata costs a few ms: only on ask)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sparkframes")
    except PackageNotFoundError:  # run from a checkout without installing
        return "0+unknown"
