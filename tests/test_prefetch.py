"""The background frame iterator: order, errors, and an early stop that really stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from sparkframes.decoding.prefetch import overlapped, prefetched


def test_items_come_out_in_order_and_all_of_them():
    assert list(prefetched(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(prefetched(iter([]))) == []


def test_an_error_reaches_the_consumer_after_the_items_before_it():
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("packet 3 is damaged")

    got = []
    with pytest.raises(ValueError, match="packet 3 is damaged"):
        for item in prefetched(failing()):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer_and_closes_its_generator():
    made: list[int] = []
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            for i in range(10**9):
                made.append(i)
                yield i
        finally:
            closed.set()

    stream = prefetched(endless(), depth=2)
    for item in stream:
        if item == 5:
            break
    stream.close()  # what a for loop's owner (or garbage collection) does
    assert closed.wait(5)
    count = len(made)
    time.sleep(0.3)
    assert len(made) == count <= 5 + 2 + 2  # the depth, plus one being made, plus one handed out
    assert not any(t.name == "sparkframes-decode" for t in threading.enumerate())


def test_one_decoder_thread_means_no_background_thread():
    items = iter(range(3))
    assert overlapped(items, threads=1) is items
    assert list(overlapped(iter(range(3)), threads=2)) == [0, 1, 2]
