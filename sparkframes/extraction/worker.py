"""Videos extracted in a worker process, one after another, each under a time limit.

Why another process: a decoder stuck inside a native call (a stalled network read, a
pathological stream) cannot be interrupted from Python, and a crash inside FFmpeg would take the
whole Spark Python worker with it. So videos are extracted in a worker process that streams
their frames back as Arrow IPC record batches over a pipe; the parent kills it when a video's
limit passes (keeping the frames that arrived, plus a ``VideoTimeoutError``) and survives it if
it dies (``DecoderCrashError``). Either way the next video gets a fresh worker.

Why one worker for many videos (``IsolatedRunner``, one per Spark task), not a forked child per
video: forking the Python worker (about 170 MiB, so 10-15 ms to fork and tear down), redoing in
each child what the parent's caches would have kept (a lazy import, FFmpeg's list of demuxers,
swscale contexts) and the copy-on-write faults of a fresh child cost several times the decode
of a small video (``bench/small_videos_bench.py``).

How workers start: forked from a small fork server that each Python worker starts once, a fresh
interpreter (``python -c``) that imports the extraction code and then only forks. Not forked
from the Python worker itself, because by the time a task starts that process may have used a
filesystem client (the AWS SDK behind pyarrow's S3 may hang in a forked child of a process that
has used it), initialised CUDA when choosing the decoder (CUDA does not survive a fork), or
decoded a video in-process (``video_timeout_s=0``), after which the swscale context cached by
``decoding.resize`` waits in a forked child for threads that were not forked, forever. Not a
fresh interpreter per task (``spawn``): its imports (PyAV, pyarrow, numpy, sparkframes) cost
about a second of CPU each time; the fork server pays that once per Python worker, and a worker
then costs about 20 ms per task (a fork, and the first video's copy-on-write faults). Not
``multiprocessing``'s forkserver: its children keep the server alive after their Python worker
dies, and each child re-runs the parent's ``__main__``.

Lifetimes: the fork server exits when its Python worker does (its end of their socket reaches
EOF) and kills its workers; on Linux the kernel also kills each worker when the fork server goes
(``PR_SET_PDEATHSIG``), so no worker outlives its Python worker, even one stuck in a native call.
An idle worker exits when its runner closes the request pipe.

Remote videos are fetched by the parent, before the hand-over, and deleted after: the worker
only reads local files. The fetch is bounded by the filesystem's own timeouts, not the limit.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import NoReturn

import pyarrow as pa

from sparkframes.decoding.backends import DecoderUnavailableError
from sparkframes.errors import (
    DecoderCrashError,
    FrameExtractionError,
    InternalError,
    VideoTimeoutError,
)
from sparkframes.extraction.base import Extraction
from sparkframes.table.schema import FRAMES_SCHEMA

# Worker to parent, per video, on the reply pipe: frames (any number; each says its purpose, and
# its record batch follows on the frames pipe), then one of report / report-and-exiting / fatal
# (the task must fail) / broken (the request could not be read; the worker exits).
_FRAMES, _REPORT, _LAST, _FATAL, _BROKEN = b"F", b"R", b"L", b"X", b"B"
# Parent to fork server: fork a worker (with its three pipe ends), or reap one and say its exit.
_FORK, _REAP, _READY = b"F", b"W", b"R"
_INT = struct.Struct("q")
_REQUEST_BYTES = 1 + _INT.size
_UNKNOWN_EXIT = -(2**62)  # a reap of a pid the fork server never started
#: What the fork server imports once, so its workers start with it: the extractions and the
#: module PyAV imports on its first ``open``.
_PRELOAD = ("sparkframes.extraction.clip", "sparkframes.extraction.video", "av.subtitles.stream")
_SERVER_START_S = 300.0  # its imports, on a loaded executor
_EXIT_WAIT_S = 5.0  # an idle worker told to stop, before it is killed
_PR_SET_PDEATHSIG, _PR_SET_NAME = 1, 15


class IsolatedRunner:
    """Runs extractions one at a time in a worker process, each under its own time limit.

    >>> with IsolatedRunner() as runner:
    ...     for extraction in extractions:
    ...         for purpose, batch in runner.run(extraction, timeout_s=3600): ...

    The worker starts with the first video and serves the next ones; after a time-out, a crash
    or an unexpected error it is gone and the next video starts a new one. ``close`` (the end of
    the ``with``) stops it. Not for use by several threads at once.
    """

    def __init__(self) -> None:
        self._worker: _Worker | None = None

    def __enter__(self) -> IsolatedRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, extraction: Extraction, timeout_s: float) -> Iterator[tuple[str, pa.RecordBatch]]:
        """(purpose, record batch) pairs of one video; ``extraction.report`` is filled in.

        A video on a filesystem FFmpeg cannot read is fetched here and deleted after, so the
        worker never uses a filesystem client. A ``DecoderUnavailableError`` (``no_fallback``)
        is raised; every other failure is an error in the report.
        """
        try:
            fetched = extraction.fetch()
        except FrameExtractionError as exc:
            extraction.report.errors.append(exc)
            return
        try:
            yield from self._extract(extraction, timeout_s)
        finally:
            if fetched:
                extraction.discard()

    def close(self) -> None:
        """Stop the worker, if there is one (an idle worker exits; a busy one is killed)."""
        self._drop(kill=False)

    def _drop(self, kill: bool) -> int | None:
        worker, self._worker = self._worker, None
        return worker.stop(kill) if worker is not None else None

    def _extract(
        self, extraction: Extraction, timeout_s: float
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        request = pickle.dumps(extraction)
        if self._worker is None:
            self._worker = _fork_worker()
        worker = self._worker
        started = time.monotonic()
        deadline = started + timeout_s
        ended = False  # the video is over: the worker is waiting for the next one, or gone
        try:
            with contextlib.suppress(OSError):  # a worker that died idle: the EOF says so
                worker.requests.send_bytes(request)
            while not ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not worker.replies.poll(remaining):
                    ended = True
                    self._drop(kill=True)
                    extraction.report.errors.append(
                        VideoTimeoutError(
                            extraction.video_path,
                            f"stopped after the per-video time limit of {timeout_s:g} s "
                            f"({extraction.report.frames_output} frames kept)",
                        )
                    )
                    return
                try:
                    message = worker.replies.recv_bytes()
                except EOFError:
                    message = b""
                kind, body = message[:1], message[1:]
                if kind == _FRAMES:
                    batch = worker.next_batch()
                    if batch is None:  # it stopped before the batch was whole: its last word
                        ended = True
                        message = worker.last_word()
                        self._end_video(extraction, message[:1], message[1:])
                        return
                    extraction.report.frames_output += batch.num_rows
                    yield body.decode(), batch
                else:
                    ended = True
                    self._end_video(extraction, kind, body)
        finally:
            extraction.report.seconds = time.monotonic() - started
            if not ended:  # left mid-video (the consumer stopped, or an error): kill it
                self._drop(kill=True)

    def _end_video(self, extraction: Extraction, kind: bytes, body: bytes) -> None:
        """The worker's last message about a video (empty: it died)."""
        if kind in (_REPORT, _LAST):
            extraction.report = pickle.loads(body)
        elif kind == _BROKEN:
            extraction.report.errors.append(InternalError(extraction.video_path, body.decode()))
        elif kind == _FATAL:  # an error that must fail the task (--no-fallback)
            raise pickle.loads(body)
        if kind in (_LAST, _BROKEN):  # the worker exits after telling
            self._drop(kill=False)
        elif not kind:
            code = self._drop(kill=False)
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            extraction.report.errors.append(
                DecoderCrashError(extraction.video_path, f"the decoding process died ({how})")
            )


class _Worker:
    """The parent's side of one worker: its pid, the request and reply pipes, and the frames
    pipe, which carries one Arrow IPC stream for the worker's whole life."""

    def __init__(
        self, pid: int, requests: Connection, replies: Connection, frames: int, server: _ForkServer
    ) -> None:
        self.pid, self.requests, self.replies, self.server = pid, requests, replies, server
        self._frames = pa.PythonFile(_ExactReads(frames), mode="r")
        self._stream: pa.ipc.RecordBatchStreamReader | None = None

    def last_word(self) -> bytes:
        """What a worker that stopped sending frames said last (empty: nothing, it died)."""
        try:
            return self.replies.recv_bytes() if self.replies.poll(_EXIT_WAIT_S) else b""
        except (EOFError, OSError):
            return b""

    def next_batch(self) -> pa.RecordBatch | None:
        """The next record batch from the frames pipe (the stream's schema first, the first
        time), read straight into Arrow buffers; None if the worker died before it was whole."""
        try:
            if self._stream is None:
                self._stream = pa.ipc.open_stream(self._frames)
            return self._stream.read_next_batch()
        except (StopIteration, OSError, pa.ArrowInvalid):
            return None

    def stop(self, kill: bool) -> int | None:
        """End the worker and reap it; its exit code (negative: the signal), None if unknown.

        Without ``kill`` it gets a few seconds to exit by itself (what it still sends is read
        and dropped, up to the EOF that says it has exited), and is killed after.
        """
        self.requests.close()  # an idle worker exits at EOF
        deadline = time.monotonic() + _EXIT_WAIT_S
        while not kill and self.replies.poll(max(0.0, deadline - time.monotonic())):
            try:
                self.replies.recv_bytes()
            except EOFError:
                break
        else:
            # Only while its fork server lives: the pid is then one of its unreaped children,
            # never another process's (a dead server's workers died with it, on Linux).
            if self.server.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
        self.replies.close()
        self._frames.close()
        return self.server.reap(self.pid)


class _ExactReads:
    """The frames pipe as a file whose ``read(n)`` returns n bytes (fewer only at EOF), read
    straight into the buffer Arrow then uses. Arrow's IPC reader asks for each message's exact
    length; a Python buffered file on a pipe did not answer such reads here (it waited for more
    than the message held), and reading into one buffer avoids a copy per chunk."""

    def __init__(self, fd: int) -> None:
        self._raw = os.fdopen(fd, "rb", buffering=0)

    @property
    def closed(self) -> bool:
        return self._raw.closed

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytearray:
        data = bytearray(max(size, 0))
        view, got = memoryview(data), 0
        while got < size:
            n = self._raw.readinto(view[got:])
            if not n:
                break
            got += n
        view.release()
        return data if got == size else data[:got]

    def close(self) -> None:
        self._raw.close()


class _ForkServer:
    """The Python worker's side of its fork server (see the module docstring)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # The parent's whole import path: Spark adds to it (--py-files, the working folder).
        code = (
            f"import sys; sys.path[:0] = {sys.path!r}; "
            "from sparkframes.extraction.worker import _serve_forks; "
            f"_serve_forks({theirs.fileno()})"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL
        )
        theirs.close()
        self.sock, self.owner, self.lock = ours, os.getpid(), threading.Lock()
        ours.settimeout(_SERVER_START_S)
        try:
            ready = ours.recv(1)
        except OSError:
            ready = b""
        if ready != _READY:
            self.close()
            raise RuntimeError("the decoding workers' fork server did not start (see its stderr)")
        ours.settimeout(None)

    def usable(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def fork(self) -> _Worker:
        requests_r, requests_w = os.pipe()
        replies_r, replies_w = os.pipe()
        frames_r, frames_w = os.pipe()
        theirs = [requests_r, replies_w, frames_w]
        try:
            with self.lock:
                socket.send_fds(self.sock, [_FORK + bytes(_INT.size)], theirs)
                (pid,) = _INT.unpack(_recv_exactly(self.sock, _INT.size))
        except BaseException:
            for fd in (requests_w, replies_r, frames_r):
                os.close(fd)
            raise
        finally:
            for fd in theirs:
                os.close(fd)
        requests = Connection(requests_w, readable=False)
        return _Worker(pid, requests, Connection(replies_r, writable=False), frames_r, self)

    def reap(self, pid: int) -> int | None:
        try:
            with self.lock:
                self.sock.sendall(_REAP + _INT.pack(pid))
                (code,) = _INT.unpack(_recv_exactly(self.sock, _INT.size))
        except (OSError, EOFError):
            return None  # the fork server is gone, and its workers with it
        return None if code == _UNKNOWN_EXIT else code

    def close(self) -> None:
        self.sock.close()  # EOF: the fork server kills its workers and exits
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(_EXIT_WAIT_S)


_server: _ForkServer | None = None
_server_lock = threading.Lock()


def _fork_worker() -> _Worker:
    """A new worker from this process's fork server, started (again) if it is not running."""
    global _server
    with _server_lock:
        if _server is not None and not _server.usable():
            _discard_server()
        if _server is not None:
            with contextlib.suppress(OSError, EOFError):  # it died since: start another
                return _server.fork()
            _discard_server()
        _server = _ForkServer()
        return _server.fork()


def _discard_server() -> None:
    global _server
    if _server is not None and _server.owner == os.getpid():
        _server.close()
    _server = None


def _forget_server_in_child() -> None:
    """A fork of this process must not hold the fork server's socket, or the server would not
    see EOF when this process exits."""
    global _server
    if _server is not None:
        _server.sock.close()
        _server = None


def _stop_server() -> None:
    if _server is not None and _server.owner == os.getpid():
        _server.close()


os.register_at_fork(after_in_child=_forget_server_in_child)
atexit.register(_stop_server)


# --------------------------------------------------------------------------------------------
# The fork server and its workers (separate processes)
# --------------------------------------------------------------------------------------------


def _serve_forks(fd: int) -> None:
    """The fork server: import once, then fork a worker per request until the parent goes."""
    # Ctrl-C reaches the whole process group; this process ends with its parent instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _set_process_name(b"sf-fork-server")
    sock = socket.socket(fileno=fd)
    for name in _PRELOAD:
        importlib.import_module(name)
    from sparkframes.decoding.references import self_contained_demuxers

    self_contained_demuxers()  # cached: every video's open needs it
    sock.sendall(_READY)
    me, workers = os.getpid(), set()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(sock, _REQUEST_BYTES, 3)
            if message:
                message += _recv_exactly(sock, _REQUEST_BYTES - len(message))
        except (OSError, EOFError):
            message = b""
        if not message:  # the parent is gone (or closed the runner's last use of it)
            break
        if message[:1] == _FORK:
            pid = os.fork()
            if pid == 0:
                sock.close()
                _worker_main(*fds, server=me)
            for f in fds:
                os.close(f)
            workers.add(pid)
            sock.sendall(_INT.pack(pid))
        else:
            (pid,) = _INT.unpack(message[1:])
            code = _UNKNOWN_EXIT
            if pid in workers:
                workers.discard(pid)
                code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            sock.sendall(_INT.pack(code))
    for pid in workers:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _worker_main(requests_fd: int, replies_fd: int, frames_fd: int, *, server: int) -> NoReturn:
    """A worker: extract each video asked for, until the request pipe closes."""
    code = 1
    try:
        _die_with(server)
        _set_process_name(b"sf-decode")
        requests = Connection(requests_fd, writable=False)
        replies = Connection(replies_fd, readable=False)
        frames = _FramesOut(frames_fd)
        while True:
            try:
                request = requests.recv_bytes()
            except EOFError:
                code = 0
                break
            try:
                extraction = pickle.loads(request)
            except BaseException as exc:  # e.g. a class this process cannot import
                cause = InternalError.from_exception("", exc).cause
                replies.send_bytes(_BROKEN + f"the request could not be read: {cause}".encode())
                break
            if not _serve(extraction, replies, frames):
                break
    finally:
        os._exit(code)  # never back into the fork server's loop


class _FramesOut:
    """The worker's end of the frames pipe: one Arrow IPC stream, opened with the first batch.
    Each batch's buffers are written to the pipe as they are, with no copy in between."""

    def __init__(self, fd: int) -> None:
        self._sink = pa.PythonFile(_WholeWrites(fd), mode="w")
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._writer = pa.ipc.new_stream(self._sink, FRAMES_SCHEMA)
        self._writer.write_batch(batch)


class _WholeWrites:
    """The frames pipe as a file whose ``write`` sends every byte before it returns, with no
    buffer in between (a Python buffered file kept the end of a batch back from the parent)."""

    def __init__(self, fd: int) -> None:
        self.fd, self.closed = fd, False

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = view.nbytes
        while view:
            view = view[os.write(self.fd, view) :]
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def _serve(extraction: Extraction, replies: Connection, frames: _FramesOut) -> bool:
    """Extract one video and send its frames and report; False: this worker must exit."""
    try:
        for purpose, batch in extraction.record_batches():
            replies.send_bytes(_FRAMES + purpose.encode())  # first: the parent then reads it
            frames.write(batch)
        replies.send_bytes(_REPORT + pickle.dumps(extraction.report))
        return True
    except DecoderUnavailableError as exc:
        replies.send_bytes(_FATAL + pickle.dumps(exc))
        return True
    except BaseException as exc:  # a bug or a resource running out: say what and where
        extraction.report.errors.append(InternalError.from_exception(extraction.video_path, exc))
        with contextlib.suppress(BaseException):  # memory may be too short even for this
            replies.send_bytes(_LAST + pickle.dumps(extraction.report))
        return False  # its state is not to be trusted with another video


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when ``parent`` exits (Linux only; elsewhere the fork
    server kills its workers as it exits, which covers all but a killed fork server)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # it exited before the line above
        os._exit(1)


def _set_process_name(name: bytes) -> None:
    """What ``ps`` and ``top`` show for this process (Linux), so a worker is recognisable."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, ctypes.c_char_p(name))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the fork server closed the connection")
        data += chunk
    return data
