"""The SparkSession a job runs in: the cluster's under spark-submit, else an embedded local one."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

#: Local default: all cores, and up to 4 attempts per task (plain ``local[*]`` never retries).
DEFAULT_LOCAL_MASTER = "local[*,4]"


def launched_by_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway to its JVM already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_session(
    master: str | None, app_name: str, conf: dict[str, str] | None = None
) -> SparkSession:
    """A session on ``master``; spark-submit's own when launched by it and no master is given."""
    builder = SparkSession.builder.appName(app_name)
    if master:
        builder = builder.master(master)
    elif not launched_by_spark_submit():
        builder = builder.master(DEFAULT_LOCAL_MASTER)
    is_local = (master or ("" if launched_by_spark_submit() else DEFAULT_LOCAL_MASTER)).startswith(
        "local"
    )
    if is_local:
        # Python workers must run the interpreter that has sparkframes installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # sparkframes prints its own line (videos, frames/s, errors; spark/progress.py):
        # Spark's bar counts tasks, which hold many videos, and the two would overwrite.
        builder = builder.config("spark.ui.showConsoleProgress", "false")
        builder = builder.config(
            "spark.ui.enabled", os.environ.get("SPARKFRAMES_SPARK_UI", "false")
        )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
