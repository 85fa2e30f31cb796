"""A real Spark standalone cluster (master + one worker) on loopback, for tests where
scheduling or cluster behaviour is the point. Started from the pyspark install's spark-class."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(SPARK_HOME),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=str(REPO),
    )
    env.pop("PYSPARK_GATEWAY_PORT", None)
    env.update(extra or {})
    return env


def _wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"spark process exited early:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.3)
    raise RuntimeError(f"port {port} never opened:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def standalone_cluster(
    workdir: Path, cores: int = 2, memory: str = "2g", worker_opts: str = "", workers: int = 1
) -> Iterator[str]:
    """Start a master and ``workers`` workers; yield the master URL; stop them all.

    Worker i listens on 127.0.0.(i+1): distinct hosts on loopback, so Spark treats them as
    different machines (it never runs a speculative copy on the host of the original).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port, ui = free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    procs: list[subprocess.Popen] = []
    try:
        master_log = workdir / "master.log"
        master = subprocess.Popen(
            [
                spark_class,
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(ui),
            ],
            stdout=master_log.open("w"),
            stderr=subprocess.STDOUT,
            env=spark_env(),
        )
        procs.append(master)
        _wait_for_port(port, master, master_log)
        url = f"spark://127.0.0.1:{port}"
        for i in range(workers):
            host = f"127.0.0.{i + 1}"
            log = workdir / f"worker{i}.log"
            env = spark_env(
                {
                    "SPARK_WORKER_OPTS": worker_opts,
                    "SPARK_LOCAL_IP": host,
                    "SPARK_WORKER_DIR": str(workdir / f"w{i}"),
                }
            )
            worker = subprocess.Popen(
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    url,
                    "--host",
                    host,
                    "--cores",
                    str(cores),
                    "--memory",
                    memory,
                    "--webui-port",
                    str(free_port()),
                ],
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                env=env,
            )
            procs.append(worker)
            deadline = time.monotonic() + 60
            while "Successfully registered with master" not in log.read_text():
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not register:\n{log.read_text()[-3000:]}")
                time.sleep(0.3)
        yield url
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def spark_submit(
    master: str,
    script: str,
    args: list[str],
    conf: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess:
    """Run ``spark-submit`` against ``master`` (client deploy mode) and capture its output."""
    cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master]
    for key, value in (conf or {}).items():
        cmd += ["--conf", f"{key}={value}"]
    cmd += [str(REPO / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=spark_env(), timeout=timeout)
