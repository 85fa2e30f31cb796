"""Stage-level resource requests: GPU decoding asks Spark for a GPU share per task, CPU decoding
asks for as many cpus as the decoder runs threads.

Spark assigns the GPU; the task reads its address from ``TaskContext.resources()``, maps it to
a CUDA device (``map_gpu_address``) and decodes there. Spark itself does not set
CUDA_VISIBLE_DEVICES, but a cluster manager may (YARN, Kubernetes): CUDA then numbers only the
devices it lists, from 0, and an address is found by its place in that list, not read as a
number. UUID and MIG addresses are looked up among the devices' UUIDs. An address that names no
visible device is said so, and the task decodes on the CPU rather than on another task's GPU.
Local mode rejects resource profiles, so there the stage runs without one and the task uses
GPU 0. Everything here reads the session's configuration, so it works the same on a classic
and a Spark Connect session.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from pyspark import TaskContext
from pyspark.resource import ResourceProfile, ResourceProfileBuilder, TaskResourceRequests
from pyspark.sql import SparkSession

from sparkframes.decoding.backends import AUTO, GPU_MODES, cuda_device_uuids

log = logging.getLogger("sparkframes")

#: CUDA numbers devices fastest first unless told otherwise; nvidia-smi (and so the discovery
#: script, ``conf/gpu-discovery.sh``) numbers them by PCI bus. Set before CUDA initialises.
CUDA_DEVICE_ORDER = "PCI_BUS_ID"


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
        slots = gpu_slots(
            int(_conf(spark, "spark.executor.cores", "0") or 0),
            cpus,
            float(_conf(spark, "spark.executor.resource.gpu.amount", "1") or 1),
            streams_per_gpu,
        )
        if slots.idle:
            log.warning(
                "sparkframes: with --streams-per-gpu %d only %d of each executor's %d task "
                "slots decode at once; --streams-per-gpu %d fills them (an H200 has 7 NVDEC "
                "engines)",
                streams_per_gpu,
                slots.decoding,
                slots.slots,
                slots.fill,
            )
    return ResourceProfileBuilder().require(requests).build


@dataclass(frozen=True)
class GpuSlots:
    """How many of an executor's task slots a GPU stage can run at once."""

    slots: int  # executor cores / task cpus
    decoding: int  # at most gpus x streams per GPU of them, when each task takes a GPU share
    fill: int  # the streams per GPU that would use every slot

    @property
    def idle(self) -> int:
        return self.slots - self.decoding


def gpu_slots(executor_cores: int, task_cpus: int, gpus: float, streams_per_gpu: int) -> GpuSlots:
    """Task slots against GPU shares: each task asks for ``1 / streams_per_gpu`` of a GPU, so
    an executor with ``gpus`` GPUs runs at most ``gpus * streams_per_gpu`` of its slots at once.
    Unknown cores (0) count as no idle slot."""
    slots = executor_cores // max(1, task_cpus)
    if slots <= 0:
        return GpuSlots(0, 0, max(1, streams_per_gpu))
    gpus = max(1, int(gpus))
    decoding = min(slots, gpus * max(1, streams_per_gpu))
    fill = max(1, -(-slots // gpus))
    return GpuSlots(slots, decoding, fill)


@dataclass(frozen=True)
class GpuAssignment:
    """The GPU Spark assigned a task and the CUDA device it is: ``ordinal`` None (with the
    ``problem``) where the address names no device this process can see."""

    address: str
    ordinal: int | None
    problem: str | None = None


def _uuid_hex(address: str) -> str | None:
    """The hex digits of a ``GPU-…`` or ``MIG-…`` UUID address (nvidia-smi's forms), or None."""
    lowered = address.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if lowered.startswith(prefix):
            digits = lowered[len(prefix) :].replace("-", "")
            if len(digits) == 32 and all(c in "0123456789abcdef" for c in digits):
                return digits
    return None


def map_gpu_address(address: str, visible: str | None, uuids: Sequence[str]) -> GpuAssignment:
    """The CUDA device Spark's GPU ``address`` names in a process whose environment has
    ``CUDA_VISIBLE_DEVICES=visible`` (None: unset) and whose visible devices have ``uuids``
    (hex, by CUDA ordinal; ``backends.cuda_device_uuids``).

    * Under CUDA_VISIBLE_DEVICES, CUDA's ordinals are places in that list: an address listed
      there is its place. An index address that is not listed cannot be mapped: CUDA has
      renumbered the devices and the address no longer says which one it meant.
    * A UUID address (``GPU-…``, ``MIG-…``) is the device with that UUID, wherever it is.
    * Otherwise an index address is the ordinal itself (with ``CUDA_DEVICE_ORDER=PCI_BUS_ID``,
      CUDA's order is nvidia-smi's, which discovery scripts report).
    """
    address = address.strip()
    if visible is not None:
        listed = [entry.strip().lower() for entry in visible.split(",") if entry.strip()]
        if address.lower() in listed:
            return GpuAssignment(address, listed.index(address.lower()))
    hex_id = _uuid_hex(address)
    if hex_id is not None:
        if hex_id in uuids:
            return GpuAssignment(address, list(uuids).index(hex_id))
        if not uuids:
            problem = f"GPU {address} is named by UUID, and no CUDA device is visible to match"
        else:
            problem = f"no visible CUDA device has the UUID of GPU {address}"
        if address.lower().startswith("mig-") and visible is None:
            problem += (
                "; CUDA sees a MIG instance only when CUDA_VISIBLE_DEVICES names it "
                "(spark.executorEnv.CUDA_VISIBLE_DEVICES)"
            )
        return GpuAssignment(address, None, problem)
    if not address.isdigit():
        return GpuAssignment(
            address, None, f"GPU address {address!r} is neither an index nor a UUID"
        )
    if visible is not None:
        return GpuAssignment(
            address,
            None,
            f"GPU {address} is not among CUDA_VISIBLE_DEVICES={visible!r}, which renumbers the "
            "devices CUDA sees; have the discovery script report UUIDs "
            "(SPARKFRAMES_GPU_ADDRESS=uuid for conf/gpu-discovery.sh)",
        )
    return GpuAssignment(address, int(address))


_warned: set[tuple[str, str]] = set()


def assigned_gpu() -> tuple[int, str | None]:
    """(CUDA device to decode on, the address Spark assigned or None) for the running task.

    The device is -1 where the address cannot be mapped (``map_gpu_address``): the decoder
    then falls back to the CPU, after a warning here that says why.
    """
    ctx = TaskContext.get()
    if ctx is not None:
        gpus = ctx.resources().get("gpu")
        if gpus is not None and gpus.addresses:
            os.environ.setdefault("CUDA_DEVICE_ORDER", CUDA_DEVICE_ORDER)  # before cuInit
            address = gpus.addresses[0]
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            uuids = cuda_device_uuids() if _uuid_hex(address) is not None else ()
            assignment = map_gpu_address(address, visible, uuids)
            if assignment.ordinal is not None:
                return assignment.ordinal, address
            if assignment.problem and (address, assignment.problem) not in _warned:
                _warned.add((address, assignment.problem))
                log.warning("sparkframes: %s; decoding on the CPU", assignment.problem)
            return -1, address
    return 0, None
