"""Integers that Spark's hash partitioning sends to chosen partitions. Pure.

``df.repartition(n, col)`` puts a row in partition ``pmod(murmur3(col, seed 42), n)``. Planning
deals videos to task numbers 0..n-1 itself; to have task t land in partition t, with no range
partitioning (which costs Spark a sampling job) and no collisions (which would leave a task idle
while another does two shares), each task number is replaced by an integer whose hash lands
there.
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_SEED = 42  # Spark's seed for HashPartitioning


def spark_hash_int(value: int) -> int:
    """Spark's ``hash()`` of an int column (Murmur3 x86_32 of its 4 bytes, seed 42)."""
    k1 = (value & _MASK) * 0xCC9E2D51 & _MASK
    k1 = ((k1 << 15) | (k1 >> 17)) & _MASK
    k1 = k1 * 0x1B873593 & _MASK
    h1 = _SEED ^ k1
    h1 = ((h1 << 13) | (h1 >> 19)) & _MASK
    h1 = (h1 * 5 + 0xE6546B64) & _MASK
    h1 ^= 4  # the input's length in bytes
    h1 ^= h1 >> 16
    h1 = h1 * 0x85EBCA6B & _MASK
    h1 ^= h1 >> 13
    h1 = h1 * 0xC2B2AE35 & _MASK
    h1 ^= h1 >> 16
    return h1 - (1 << 32) if h1 & 0x80000000 else h1


def partition_keys(partitions: int) -> list[int]:
    """``keys[t]``: the smallest non-negative int that ``repartition(partitions, ...)`` sends
    to partition t."""
    keys: dict[int, int] = {}
    candidate = 0
    while len(keys) < partitions:
        keys.setdefault(spark_hash_int(candidate) % partitions, candidate)
        candidate += 1
    return [keys[t] for t in range(partitions)]
