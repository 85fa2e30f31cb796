"""Run a frame iterator one step ahead in a background thread, so decoding overlaps conversion.

Why: with two or more decoder threads, FFmpeg's frame threading leaves part of the task's cores
idle while the caller converts each frame to RGB (1080p to 27x48: about 0.8 ms of the 6 ms a frame
costs). PyAV releases the GIL inside both the decoder and swscale, so decoding in one thread
while the caller converts in another fills that idle time (bench/scene_bench.py measures it).
With one decoder thread there is no idle core to fill and callers should not use this: it would
take more CPU than the Spark task asked for.

Guarantees: items come out in the order the iterator makes them; an exception raised by the
iterator is raised to the consumer at that point; closing the consumer early (``break``, garbage
collection) stops the producer thread before it makes another item.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

#: Decoded frames held ahead of the consumer: enough to ride out jitter, few enough that 4K frames
#: (12 MiB each in YUV 4:2:0) stay well under the batch budget.
DEFAULT_DEPTH = 8

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def overlapped(items: Iterator[T], threads: int) -> Iterator[T]:
    """``items`` prefetched in the background when the decoder has ``threads`` >= 2 (an idle
    share of the task's cores to fill); ``items`` unchanged with one thread."""
    return prefetched(items) if threads >= 2 else items


def prefetched(items: Iterator[T], depth: int = DEFAULT_DEPTH) -> Iterator[T]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer."""
    ready: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()  # the producer's own generator, closed in the thread that ran it

    worker = threading.Thread(target=produce, name="sparkframes-decode", daemon=True)
    worker.start()
    try:
        while True:
            value = ready.get()
            if value is _DONE:
                return
            if isinstance(value, _Failure):
                raise value.exc
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()
