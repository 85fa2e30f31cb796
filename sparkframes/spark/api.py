"""sparkframes from a notebook or a pipeline: frames as a lazy Spark DataFrame, and the table
write, on a classic or a Spark Connect session.

Keyword options are the command line's flags with underscores and Python values
(``purpose=["embeddings"]``, ``target_fps=[1, 2]``, ``target_res=(224, 224)``,
``output_hw=(27, 48)``, ``decoder_mode="pynvc"``, …), with the same defaults, and bad values are
refused with the same messages, before any Spark job runs.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from sparkframes.options import ClipFramesOptions, CommonOptions, VideoFramesOptions, build_options
from sparkframes.spark import planning
from sparkframes.spark.job import write_table
from sparkframes.spark.resources import default_parallelism, stage_profile
from sparkframes.spark.summary import RunSummary
from sparkframes.spark.tasks import ERROR_MODES, PERMISSIVE, frames_function
from sparkframes.table.schema import FRAMES_DATAFRAME_SCHEMA

#: Flags that belong to the command line, not to a call: the session is the caller's, and the
#: input and output are arguments of their own.
_NOT_OPTIONS = ("input", "output", "master", "mode")


def clip_frames(videos: DataFrame, *, mode: str = PERMISSIVE, **options: Any) -> DataFrame:
    """Frames sampled from each video's clips, one row per frame, lazily.

    ``videos`` has the input table's columns (``video_path``; optionally ``clip_id``,
    ``start_s``, ``end_s``). The result has the frames table's columns plus ``purpose`` and
    ``error``, and nothing runs until an action asks for rows. Nothing is silent; as Spark's own
    readers, ``mode`` says what a video or clip that fails gives:

    * ``"PERMISSIVE"`` (the default): a row of its own, with a null ``frame`` and ``error``
      (``stage``, ``error_class``, ``message``), which is null on frame rows;
    * ``"DROPMALFORMED"``: no row (the error goes to the executor's log);
    * ``"FAILFAST"``: the action fails with an error that names the video and the cause.

    ``write_clip_frames`` keeps errors in the table's errors table instead.
    """
    return _frames(videos, _options(ClipFramesOptions, options), mode)


def video_frames(videos: DataFrame, *, mode: str = PERMISSIVE, **options: Any) -> DataFrame:
    """Every frame of each video at ``output_hw`` (27x48 by default), one row per frame, lazily;
    ``purpose`` is ``scene``. See ``clip_frames`` for ``mode``."""
    return _frames(videos, _options(VideoFramesOptions, options), mode)


def write_clip_frames(
    videos: DataFrame | str,
    output: str,
    *,
    mode: str = "incremental",
    spark: SparkSession | None = None,
    **options: Any,
) -> RunSummary:
    """The incremental, committed table write of ``sparkframes clip-frames``.

    ``videos`` is a DataFrame with the input table's columns or the path of an input table;
    ``output`` the frames table (a path or URI). Returns the run's summary (``.as_dict()`` for
    JSON). ``mode="overwrite"`` replaces the table's content.
    """
    return _write(ClipFramesOptions, videos, output, mode, spark, options, "clip-frames")


def write_video_frames(
    videos: DataFrame | str,
    output: str,
    *,
    mode: str = "incremental",
    spark: SparkSession | None = None,
    **options: Any,
) -> RunSummary:
    """The incremental, committed table write of ``sparkframes video-frames``."""
    return _write(VideoFramesOptions, videos, output, mode, spark, options, "video-frames")


def _options(cls: type, options: dict[str, Any], **paths: str) -> CommonOptions:
    """The options object for keyword arguments, validated (a bad value raises ValueError)."""
    refused = sorted(set(options) & set(_NOT_OPTIONS))
    if refused:
        raise ValueError(f"{', '.join(refused)}: not an option of this call")
    return build_options(cls, {**options, **paths})


def _frames(videos: DataFrame, config: CommonOptions, mode: str) -> DataFrame:
    if not isinstance(mode, str) or mode.upper() not in ERROR_MODES:
        raise ValueError(f"mode must be one of {ERROR_MODES}, not {mode!r}")
    rows = planning.input_rows(videos, "the videos DataFrame")
    spark = videos.sparkSession
    profile = stage_profile(
        spark, config.decoder_mode, config.decoder_threads, config.streams_per_gpu
    )
    partitions = config.partitions or 2 * default_parallelism(spark)
    return planning.videos_of(rows, partitions).mapInArrow(
        frames_function(config, mode.upper()),
        from_arrow_schema(FRAMES_DATAFRAME_SCHEMA),
        profile=profile,
    )


def _write(
    cls: type,
    videos: DataFrame | str,
    output: str,
    mode: str,
    spark: SparkSession | None,
    options: dict[str, Any],
    command: str,
) -> RunSummary:
    if isinstance(videos, str):
        config = _options(cls, options, input=videos, output=output, mode=mode)
        frame = None
    else:
        config = _options(cls, options, output=output, mode=mode)
        frame = videos
        spark = spark or videos.sparkSession
    if spark is None:
        spark = SparkSession.getActiveSession()
    if spark is None:
        from sparkframes.spark.session import get_session

        spark = get_session(None, f"sparkframes {command}", log_level="ERROR")
    return write_table(spark, config, frame)
