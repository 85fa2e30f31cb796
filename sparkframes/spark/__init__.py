"""sparkframes on Spark: the Python API (``api``: frames as lazy DataFrames, the table write),
the driver's side of a write (``job``), planning in Spark (``planning``), the executors' work
(``tasks``), the session (``session``) and stage resource requests (``resources``).

    from sparkframes.spark import clip_frames, video_frames, write_clip_frames, write_video_frames
"""

from sparkframes.spark.api import clip_frames, video_frames, write_clip_frames, write_video_frames
from sparkframes.spark.summary import RunSummary

__all__ = ["RunSummary", "clip_frames", "video_frames", "write_clip_frames", "write_video_frames"]
