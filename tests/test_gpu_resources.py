"""Issue 24, item 11: Spark's GPU address to the CUDA device it names, where a cluster manager
renumbers devices (CUDA_VISIBLE_DEVICES) or Spark names them by UUID, tested with a task
context as Spark sets it (no cluster); and task slots a GPU stage would leave idle."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sparkframes.decoding.backends import FFMPEG_GPU, gpu_gap

REPO = Path(__file__).resolve().parents[1]


# --- item 11: Spark's GPU address to a CUDA device ------------------------------------------

_UUID_A = "GPU-1b2c3d4e-0000-1111-2222-333344445555"
_UUID_B = "GPU-99999999-8888-7777-6666-555544443333"


def _hex(uuid: str) -> str:
    return uuid[4:].replace("-", "")


def test_addresses_map_to_cuda_devices():
    from sparkframes.spark.resources import map_gpu_address

    uuids = (_hex(_UUID_A), _hex(_UUID_B))
    assert map_gpu_address("1", None, uuids).ordinal == 1
    assert map_gpu_address("3", "2,3", uuids).ordinal == 1  # CUDA renumbered 2,3 as 0,1
    unmapped = map_gpu_address("0", "2,3", uuids)
    assert unmapped.ordinal is None and "CUDA_VISIBLE_DEVICES='2,3'" in unmapped.problem
    assert map_gpu_address(_UUID_B, None, uuids).ordinal == 1
    assert map_gpu_address(_UUID_B.lower(), "0,1", uuids).ordinal == 1
    assert map_gpu_address(_UUID_A, _UUID_B + "," + _UUID_A, ()).ordinal == 1
    mig = "MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert map_gpu_address(mig, mig, ()).ordinal == 0
    lost = map_gpu_address(mig, None, uuids)
    assert lost.ordinal is None and "MIG instance" in lost.problem
    assert map_gpu_address(_UUID_A, None, ()).ordinal is None
    assert map_gpu_address("gpu0", None, uuids).problem.endswith("neither an index nor a UUID")


@pytest.fixture
def task_gpu():
    """A TaskContext as a Spark task has it, with Spark's GPU address (no cluster needed)."""
    from pyspark import TaskContext
    from pyspark.resource import ResourceInformation

    def assign(address: str) -> None:
        TaskContext._getOrCreate()._resources = {"gpu": ResourceInformation("gpu", [address])}

    yield assign
    TaskContext._setTaskContext(None)


def test_assigned_gpu_maps_the_task_address(task_gpu, monkeypatch, caplog):
    from sparkframes.spark.resources import assigned_gpu

    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert assigned_gpu() == (0, None)  # not in a task: local mode's GPU 0
    task_gpu("1")
    assert assigned_gpu() == (1, "1")
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5")
    task_gpu("5")
    assert assigned_gpu() == (1, "5")
    task_gpu("1")
    assert assigned_gpu() == (-1, "1")
    assert "GPU 1 is not among CUDA_VISIBLE_DEVICES='4,5'" in caplog.text
    assert gpu_gap(FFMPEG_GPU, -1) is not None  # never a device the address did not name


def test_gpu_slots_say_when_slots_sit_idle():
    from sparkframes.spark.resources import gpu_slots

    h200 = gpu_slots(executor_cores=16, task_cpus=2, gpus=1, streams_per_gpu=1)
    assert (h200.slots, h200.decoding, h200.idle, h200.fill) == (8, 1, 7, 8)
    assert gpu_slots(16, 2, 1, 8).idle == 0
    assert gpu_slots(16, 2, 2, 4).idle == 0 and gpu_slots(16, 2, 2, 1).fill == 4
    assert gpu_slots(0, 2, 1, 1).idle == 0  # executor cores unknown: no claim


def test_gpu_defaults_fill_every_slot_when_told_to():
    conf = dict(
        line.split(None, 1)
        for line in (REPO / "conf" / "spark-defaults-gpu.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    from sparkframes.spark.resources import gpu_slots

    cores, cpus = int(conf["spark.executor.cores"]), int(conf["spark.task.cpus"])
    slots = gpu_slots(cores, cpus, float(conf["spark.executor.resource.gpu.amount"]), 1)
    assert (
        f"--streams-per-gpu {slots.fill}" in (REPO / "conf" / "spark-defaults-gpu.conf").read_text()
    )
    assert conf["spark.executorEnv.CUDA_DEVICE_ORDER"].strip() == "PCI_BUS_ID"
