"""One video's extraction in a child process, under a time limit.

A decoder stuck inside a native call (a stalled network read, a pathological stream) cannot be
interrupted from Python, and a crash inside FFmpeg would take the whole Spark Python worker with
it. So each video is extracted in a forked child that streams its frames back as Arrow IPC
record batches over a pipe; the parent kills it when the limit passes (keeping the frames that
arrived, plus a ``VideoTimeoutError``) and survives it if it dies (``DecoderCrashError``).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import signal
import time
from collections.abc import Iterator

import pyarrow as pa

from sparkframes.decoding.backends import DecoderUnavailableError
from sparkframes.errors import (
    DecoderCrashError,
    FrameExtractionError,
    InternalError,
    VideoTimeoutError,
)
from sparkframes.extraction import Extraction
from sparkframes.table.schema import FRAMES_SCHEMA, rows_to_batches

_FRAMES, _REPORT, _FATAL = b"F", b"R", b"X"


def run_inline(extraction: Extraction) -> Iterator[tuple[str, pa.RecordBatch]]:
    """The same stream of (purpose, record batch) without a child process or a time limit."""
    for rows in extraction:
        yield from rows_to_batches(
            rows, extraction.report.decoder, extraction.options.frame_encoding
        )


def run_isolated(extraction: Extraction, timeout_s: float) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(purpose, record batch) pairs from a forked child; ``extraction.report`` is filled in.

    A video on a filesystem FFmpeg cannot read is fetched here, before the fork, and deleted
    after: a filesystem client used in a forked child of a process that has used it may hang
    (reported for the AWS SDK behind pyarrow's S3), so the child only reads a local file. The
    fetch is bounded by the filesystem's own timeouts, not by ``timeout_s``.
    """
    try:
        fetched = extraction.fetch()
    except FrameExtractionError as exc:
        extraction.report.errors.append(exc)
        return
    try:
        yield from _run_in_child(extraction, timeout_s)
    finally:
        if fetched:
            extraction.discard()


def _run_in_child(extraction: Extraction, timeout_s: float) -> Iterator[tuple[str, pa.RecordBatch]]:
    ctx = multiprocessing.get_context("fork")
    receiver, sender = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(extraction, sender), daemon=True)
    child.start()
    sender.close()
    deadline = time.monotonic() + timeout_s
    started = time.monotonic()
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not receiver.poll(remaining):
                _kill(child)
                extraction.report.errors.append(
                    VideoTimeoutError(
                        extraction.video_path,
                        f"stopped after the per-video time limit of {timeout_s:g} s "
                        f"({extraction.report.frames_output} frames kept)",
                    )
                )
                return
            try:
                message = receiver.recv_bytes()
            except EOFError:
                child.join(5)
                code = child.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                extraction.report.errors.append(
                    DecoderCrashError(extraction.video_path, f"the decoding process died ({how})")
                )
                return
            kind, body = message[:1], message[1:]
            if kind == _FRAMES:
                purpose, batch = _read_frames(body)
                extraction.report.frames_output += batch.num_rows
                yield purpose, batch
            elif kind == _REPORT:
                extraction.report = pickle.loads(body)
                return
            else:  # _FATAL: an error that must fail the task (e.g. --no-fallback)
                mode, cause = pickle.loads(body)
                raise DecoderUnavailableError(mode, cause)
    finally:
        extraction.report.seconds = time.monotonic() - started
        receiver.close()
        if child.is_alive():
            _kill(child)


def _child_main(extraction: Extraction, sender: multiprocessing.connection.Connection) -> None:
    code = 0
    try:
        for rows in extraction:
            for purpose, batch in rows_to_batches(
                rows, extraction.report.decoder, extraction.options.frame_encoding
            ):
                sender.send_bytes(_FRAMES + _write_frames(purpose, batch))
        sender.send_bytes(_REPORT + pickle.dumps(extraction.report))
    except DecoderUnavailableError as exc:
        cause = str(exc).split("unavailable: ", 1)[-1]
        sender.send_bytes(_FATAL + pickle.dumps((extraction.options.decoder.requested, cause)))
    except BaseException as exc:  # a bug or a resource running out: say what and where
        code = 1
        extraction.report.errors.append(InternalError.from_exception(extraction.video_path, exc))
        with contextlib.suppress(BaseException):  # memory may be too short even for this
            sender.send_bytes(_REPORT + pickle.dumps(extraction.report))
    finally:
        sender.close()
        # A forked PySpark worker must not run its parent's exit handlers.
        os._exit(code)


def _write_frames(purpose: str, batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    schema = batch.schema.with_metadata({b"purpose": purpose.encode()})
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _read_frames(body: bytes) -> tuple[str, pa.RecordBatch]:
    reader = pa.ipc.open_stream(body)
    batch = reader.read_next_batch()
    purpose = reader.schema.metadata[b"purpose"].decode()
    return purpose, pa.RecordBatch.from_arrays(batch.columns, schema=FRAMES_SCHEMA)


def _kill(child: multiprocessing.process.BaseProcess) -> None:
    if child.pid is not None and child.is_alive():
        os.kill(child.pid, signal.SIGKILL)
    child.join(5)
