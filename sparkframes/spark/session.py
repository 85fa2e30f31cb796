"""The SparkSession a job runs in: the cluster's under spark-submit, else an embedded local one."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

#: Local default: all cores, and up to 4 attempts per task (plain ``local[*]`` never retries).
DEFAULT_LOCAL_MASTER = "local[*,4]"


def is_connect(spark: SparkSession) -> bool:
    """Whether ``spark`` is a Spark Connect session (no SparkContext, no RDDs)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def launched_by_spark_submit() -> bool:
    """spark-submit starts the Python driver with a gateway to its JVM already running."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


#: Spark's console logging for sessions sparkframes starts: WARN and INFO lines from the JVM
#: (start-up notices, native-library warnings) bury the run's own output, so by default only
#: errors show; ``--log-level`` or ``-v`` bring the rest back.
_LOG4J2 = """\
rootLogger.level = {level}
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
# Spark turns a Python driver's console down to WARN (and says so) unless its gateway's logger
# has a level of its own.
logger.repl.name = org.apache.spark.api.python.PythonGatewayServer
logger.repl.level = {level}
"""


def _log_config(level: str) -> str:
    """A log4j2 configuration file for ``level`` (written once, in the temp folder)."""
    path = os.path.join(tempfile.gettempdir(), f"sparkframes-log4j2-{level.lower()}.properties")
    if not os.path.exists(path):
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(_LOG4J2.format(level=level))
        os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _jvm_logging(level: str | None) -> Iterator[None]:
    """While a session starts: the JVM it launches, if it launches one, logs at ``level`` from
    its first line. spark-submit reads ``SPARK_SUBMIT_OPTS`` for the driver JVM's options (a
    ``spark.driver.extraJavaOptions`` set here would come too late: the JVM is running)."""
    if not level or launched_by_spark_submit():
        yield
        return
    saved = os.environ.get("SPARK_SUBMIT_OPTS")
    option = f"-Dlog4j2.configurationFile=file:{_log_config(level)}"
    os.environ["SPARK_SUBMIT_OPTS"] = f"{saved or ''} {option}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SPARK_SUBMIT_OPTS", None)
        else:
            os.environ["SPARK_SUBMIT_OPTS"] = saved


#: Lines the JVM itself prints at start that no log4j setting reaches: Spark's launcher always
#: adds ``--add-modules=jdk.incubator.vector``, and the JVM announces that on stderr.
_JVM_NOISE = b"WARNING: Using incubator modules: "


def _forward_stderr(stream: IO[bytes]) -> None:
    """Copy the JVM's stderr to ours as it comes, less the lines that start with
    ``_JVM_NOISE``, until the JVM exits. Output without a newline (Spark's progress bar
    redraws its line with ``\r``) is passed on at once unless it may be the start of one."""
    pending = b""
    while chunk := stream.read1(1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not line.startswith(_JVM_NOISE))
        if not (_JVM_NOISE.startswith(pending) or pending.startswith(_JVM_NOISE)):
            out, pending = out + pending, b""
        if out:
            with contextlib.suppress(OSError):
                os.write(2, out)


def _start_local_jvm(conf: SparkConf) -> SparkContext:
    """A SparkContext on a JVM this process launches, its stderr passed through a filter.

    PySpark hands ``popen_kwargs`` to the JVM's ``Popen`` for this purpose; everything else the
    JVM prints still reaches our stderr, from a daemon thread, as it comes.
    """
    gateway = launch_gateway(conf, popen_kwargs={"stderr": subprocess.PIPE})
    threading.Thread(
        target=_forward_stderr, args=(gateway.proc.stderr,), name="jvm-stderr", daemon=True
    ).start()
    return SparkContext(conf=conf, gateway=gateway)


def get_session(
    master: str | None,
    app_name: str,
    conf: dict[str, str] | None = None,
    log_level: str | None = None,
) -> SparkSession:
    """A session on ``master``; spark-submit's own when launched by it and no master is given.

    ``log_level`` (ERROR, WARN, INFO, DEBUG) sets Spark's console logging, from the JVM's start
    where this call starts it.
    """
    settings = {"spark.app.name": app_name}
    if master:
        settings["spark.master"] = master
    elif not launched_by_spark_submit():
        settings["spark.master"] = DEFAULT_LOCAL_MASTER
    if settings.get("spark.master", "").startswith("local"):
        # Python workers must run the interpreter that has sparkframes installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # sparkframes prints its own line (videos, frames/s, errors; spark/progress.py):
        # Spark's bar counts tasks, which hold many videos, and the two would overwrite.
        # Spark's web UI is off for these short local runs (``--conf spark.ui.enabled=true``).
        settings["spark.ui.showConsoleProgress"] = "false"
        settings["spark.ui.enabled"] = "false"
    settings.update(conf or {})
    with _jvm_logging(log_level):
        # ``_gateway`` is PySpark's own sign that this process has no JVM yet.
        if SparkContext._gateway is None and not launched_by_spark_submit():
            _start_local_jvm(SparkConf(loadDefaults=False).setAll(settings.items()))
        builder = SparkSession.builder
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
    if log_level and not is_connect(spark):
        spark.sparkContext.setLogLevel(log_level)
    return spark
