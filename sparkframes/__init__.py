"""sparkframes: Spark-native video frame extraction for ML data curation.

Library entry points (no Spark needed): ``extract_clip_frames`` and ``extract_video_frames``.
Reading the output table: ``read_frames`` (Arrow tensors), ``frames_to_numpy``, ``read_errors``,
and ``decode_frame`` for rows read by other engines.
The Spark jobs are the ``sparkframes`` command and ``jobs/*.py`` under spark-submit.
"""

from importlib.metadata import PackageNotFoundError, version

from sparkframes.errors import FrameExtractionError
from sparkframes.extraction.base import ExtractedFrame, ExtractOptions
from sparkframes.extraction.clip import extract_clip_frames
from sparkframes.extraction.video import extract_video_frames
from sparkframes.sampling.spans import ClipSpan, FixedStride
from sparkframes.sampling.specs import ExtractionSpec, Policy
from sparkframes.table.encodings import decode_frame
from sparkframes.table.reader import (
    frames_to_numpy,
    read_errors,
    read_frame_groups,
    read_frames,
    read_table,
)

try:
    __version__ = version("sparkframes")
except PackageNotFoundError:  # run from a checkout without installing
    __version__ = "0+unknown"

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
    "read_errors",
    "read_frame_groups",
    "read_frames",
    "read_table",
]
