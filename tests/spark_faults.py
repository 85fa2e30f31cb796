"""A Spark Python daemon for fault tests: chosen tasks' first attempt fails, kills its own
worker, or stalls, after it has written its files.

Spark starts it in place of ``pyspark.daemon`` when a job is submitted with
``--conf spark.python.daemon.module=tests.spark_faults``; ``SPARKFRAMES_TEST_FAULTS`` says which
partitions, e.g. ``fail=0,1`` or ``kill=0;slow=3`` (``slow`` stalls ``SLOW_S`` seconds). It wraps
``sparkframes.spark.tasks.run_partition`` before the daemon forks its workers, so production
code carries no hook for it.
"""

from __future__ import annotations

import os
import signal
import time

import sparkframes.spark.tasks as tasks

SLOW_S = 30.0
ENV = "SPARKFRAMES_TEST_FAULTS"
DAEMON_CONF = {"spark.python.daemon.module": "tests.spark_faults"}


def faults(spec: str) -> dict[str, set[int]]:
    """``"fail=0,1;slow=3"`` -> ``{"fail": {0, 1}, "slow": {3}}``."""
    out: dict[str, set[int]] = {}
    for part in spec.split(";"):
        if "=" in part:
            kind, ids = part.split("=", 1)
            out[kind.strip()] = {int(i) for i in ids.split(",") if i.strip()}
    return out


_run_partition = tasks.run_partition


def _faulty_run_partition(works, settings, partition_id, attempt, attempt_id):
    result = _run_partition(works, settings, partition_id, attempt, attempt_id)
    chosen = faults(os.environ.get(ENV, ""))
    if attempt == 0:
        if partition_id in chosen.get("slow", ()):
            time.sleep(SLOW_S)
        if partition_id in chosen.get("kill", ()):
            os.kill(os.getpid(), signal.SIGKILL)
        if partition_id in chosen.get("fail", ()):
            raise RuntimeError(f"fault test: failing attempt 0 of partition {partition_id}")
    return result


tasks.run_partition = _faulty_run_partition

if __name__ == "__main__":
    from pyspark import daemon

    daemon.manager()
