"""Stage-level resource requests: GPU decoding asks Spark for a GPU share per task, CPU decoding
asks for as many cpus as the decoder runs threads.

Spark assigns the GPU; the task reads its address from ``TaskContext.resources()`` and decodes
there (Spark does not set CUDA_VISIBLE_DEVICES). Local mode rejects resource profiles, so there
the stage runs without one and the task uses GPU 0. Everything here reads the session's
configuration, so it works the same on a classic and a Spark Connect session.
"""

from __future__ import annotations

from fractions import Fraction

from pyspark import TaskContext
from pyspark.resource import ResourceProfile, ResourceProfileBuilder, TaskResourceRequests
from pyspark.sql import SparkSession

from sparkframes.decoding.backends import AUTO, GPU_MODES


def _conf(spark: SparkSession, key: str, default: str) -> str:
    value = spark.conf.get(key, default)
    return default if value is None else value


def is_local(spark: SparkSession) -> bool:
    return _conf(spark, "spark.master", "").startswith("local")


def executors_have_gpus(spark: SparkSession) -> bool:
    """Whether executors are configured with GPUs (else a GPU request could never be met)."""
    return float(_conf(spark, "spark.executor.resource.gpu.amount", "0") or 0) > 0


def wants_gpu(spark: SparkSession, decoder_mode: str) -> bool:
    """GPU modes ask for GPUs; ``auto`` only where executors have them."""
    if decoder_mode in GPU_MODES:
        return executors_have_gpus(spark)
    return decoder_mode == AUTO and executors_have_gpus(spark)


def default_parallelism(spark: SparkSession) -> int:
    """Tasks the cluster runs at once, as far as the session can tell: ``local[N]``'s N, else
    ``spark.default.parallelism``, else the classic context's own count; on Connect (no
    context) executors x cores where both are set, else ``spark.sql.shuffle.partitions``. The
    client's own CPU count says nothing about the cluster."""
    master = _conf(spark, "spark.master", "")
    if master.startswith("local["):
        cores = master[len("local[") :].split(",")[0].rstrip("]")
        if cores.isdigit():
            return int(cores)
    configured = _conf(spark, "spark.default.parallelism", "")
    if configured.isdigit():
        return int(configured)
    try:
        return spark.sparkContext.defaultParallelism  # classic sessions only
    except Exception:  # a Connect session has no SparkContext
        pass
    instances = _conf(spark, "spark.executor.instances", "")
    cores = _conf(spark, "spark.executor.cores", "")
    if instances.isdigit() and cores.isdigit():
        return int(instances) * int(cores)
    shuffle = _conf(spark, "spark.sql.shuffle.partitions", "")
    return int(shuffle) if shuffle.isdigit() else 2


def stage_profile(
    spark: SparkSession, decoder_mode: str, task_cpus: int, streams_per_gpu: int
) -> ResourceProfile | None:
    """The ResourceProfile for the extraction stage, or None where Spark's defaults serve.

    ``task_cpus`` 0 means the cluster's ``spark.task.cpus``. A GPU task asks for
    ``1 / streams_per_gpu`` of a GPU, so that many decodes share one card.
    """
    if is_local(spark):
        return None
    gpu = wants_gpu(spark, decoder_mode)
    if not gpu and task_cpus <= 0:
        return None
    cpus = task_cpus if task_cpus > 0 else int(_conf(spark, "spark.task.cpus", "1"))
    requests = TaskResourceRequests().cpus(cpus)
    if gpu:
        requests = requests.resource("gpu", float(Fraction(1, max(1, streams_per_gpu))))
    return ResourceProfileBuilder().require(requests).build


def assigned_gpu() -> tuple[int, str | None]:
    """(GPU index to decode on, the address Spark assigned or None) for the running task."""
    ctx = TaskContext.get()
    if ctx is not None:
        gpus = ctx.resources().get("gpu")
        if gpus is not None and gpus.addresses:
            address = gpus.addresses[0]
            return (int(address) if address.isdigit() else 0), address
    return 0, None
