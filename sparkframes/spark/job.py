"""The driver side of a table write: plan in Spark, extract in tasks, commit once, summarise.

input -> per-video plan and up-to-date decision (planning.py, on the executors) -> tasks write
files (tasks.py) -> the driver commits the successful attempts (table/commit.py) -> summary.

Planning and extraction are one Spark query, run by one action: the first decode waits for no
count and no cache. The tasks count the videos that were up to date; the driver holds those
counts and the small descriptions of the files the tasks wrote, and never loops over the
input's videos. (The table's state is read with pyarrow, which has the store's credentials: on
the driver and broadcast when small, by the executors when not.) Everything goes through the
DataFrame API, so a classic and a Spark Connect session run the same code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import tempfile
import time
import uuid
from datetime import UTC, datetime

from pyarrow import fs as pafs
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from sparkframes.options import CommonOptions
from sparkframes.spark import planning
from sparkframes.spark.inputs import read_input
from sparkframes.spark.progress import ProgressLine
from sparkframes.spark.resources import default_parallelism, is_local, stage_profile
from sparkframes.spark.session import is_connect
from sparkframes.spark.summary import RunSummary
from sparkframes.spark.tasks import RESULT_SCHEMA, TaskSettings, files_function, task_results
from sparkframes.table.commit import AttemptResult, commit_run
from sparkframes.table.delta import FRAMES, TableLocation, ensure_table
from sparkframes.table.state import state_files


def new_run_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def write_table(
    spark: SparkSession, config: CommonOptions, videos: DataFrame | None = None
) -> RunSummary:
    """One incremental (or overwriting) table write of ``config``'s command; see the module
    docstring. ``videos`` is a DataFrame with the input table's columns; None reads
    ``config.input``. The CLI, ``jobs/*.py`` and ``spark.api.write_*`` all come here.

    Raises ``DecoderUnavailableError`` when ``no_fallback`` is set and a task's GPU decoder
    cannot run; nothing is committed then.
    """
    command = config.command
    if not config.output:
        raise ValueError("an output table is needed (--output)")
    started = time.perf_counter()
    run_id = new_run_id()
    summary = RunSummary(run_id)
    loc = TableLocation.of(config.output)
    overwrite = config.mode == "overwrite"
    if videos is None:
        if not config.input:
            raise ValueError("an input is needed (--input, or a DataFrame of videos)")
        videos = read_input(spark, config.input)
    state = state_files(loc) if not overwrite else None
    rows = planning.input_rows(videos, config.input or "the videos DataFrame")
    slots = default_parallelism(spark)
    videos = planning.with_state(spark, planning.videos_of(rows, slots), loc, state, slots)
    decided = planning.decided(videos, config)
    attempts = _extract(spark, config, decided, slots, run_id, loc, command, summary)
    if summary.videos_processed or overwrite:
        summary.seconds = time.perf_counter() - started
        committed = commit_run(
            loc, run_id, attempts, overwrite=overwrite, metadata=_metadata(command, config, summary)
        )
        summary.table_version, summary.units_lost = committed.version, committed.units_lost
    else:
        ensure_table(loc, FRAMES)  # a first run with nothing to do still leaves a table to read
    summary.seconds = time.perf_counter() - started
    return summary


def _extract(
    spark: SparkSession,
    config: CommonOptions,
    decided: DataFrame,
    groups: int,
    run_id: str,
    loc: TableLocation,
    command: str,
    summary: RunSummary,
) -> list[AttemptResult]:
    """Run the extraction tasks over the decided videos; the successful attempts' results.

    ``decided`` is in ``groups`` partitions. Only one attempt per task reaches ``collect``:
    Spark drops the results of failed, killed and speculative attempts, whose files no commit
    will list.
    """
    local_progress = (
        config.progress and is_local(spark) and isinstance(loc.fs, pafs.LocalFileSystem)
    )
    settings = TaskSettings(
        run_id=run_id,
        output=loc.uri,  # absolute: an executor's working directory is not the driver's
        options=config,
        progress_dir=(
            os.path.join(tempfile.gettempdir(), f"sparkframes-progress-{run_id}")
            if local_progress
            else None
        ),
    )
    partitions = config.partitions or 2 * groups
    profile = stage_profile(
        spark, config.decoder_mode, config.decoder_threads, config.streams_per_gpu
    )
    results = planning.works(decided, partitions, groups).mapInArrow(
        files_function(settings), from_arrow_schema(RESULT_SCHEMA), profile=profile
    )
    if not is_connect(spark):
        spark.sparkContext.setJobDescription(f"sparkframes {command}")
    progress = (
        ProgressLine(settings.progress_dir, partitions)
        if settings.progress_dir
        else contextlib.nullcontext()
    )
    with progress:
        rows = results.collect()
    results = task_results(rows)
    for result in results:
        if result.unavailable is not None:
            raise result.unavailable
        summary.add(result.videos)
        summary.videos_skipped += result.videos_up_to_date
    summary.videos_in_input = summary.videos_processed + summary.videos_skipped
    return [result.attempt for result in results]


_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """``text`` with the ``user:password@`` of any URI in it masked."""
    return _CREDENTIALS.sub("***@", text)


def _metadata(command: str, config: CommonOptions, summary: RunSummary) -> dict:
    """What a run's commits carry besides the run id: enough to tell from the table's history
    which run made a version, how it was asked and what it did."""
    # The table's history is readable by anyone who reads the table: no credentials in it.
    settings = json.loads(redact(json.dumps(dataclasses.asdict(config), default=str)))
    counts = {
        k: v
        for k, v in summary.as_dict().items()
        if k not in ("run_id", "table_version", "units_lost", "gpu_addresses")
    }
    return {"command": command, "settings": settings, "summary": counts}
