"""A Bloom filter: answers "certainly not seen" or "maybe seen" in constant memory.

The SQLite store asks it before reading a session it has not cached: a brand-new session
id then costs no database round trip.
"""

from __future__ import annotations

import hashlib
import math


class BloomFilter:
    """``capacity`` items at a false-positive rate of ``error_rate``; more items only
    raise that rate, never produce a false negative."""

    def __init__(self, capacity: int, error_rate: float = 0.01) -> None:
        if capacity < 1 or not 0 < error_rate < 1:
            raise ValueError("capacity must be positive and error_rate between 0 and 1")
        self.size = max(64, int(-capacity * math.log(error_rate) / math.log(2) ** 2))
        self.hashes = max(1, round(self.size / capacity * math.log(2)))
        self.bits = bytearray((self.size + 7) // 8)
        self.count = 0

    def _positions(self, item: str) -> list[int]:
        digest = hashlib.blake2b(item.encode(), digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "little")
        h2 = int.from_bytes(digest[8:], "little") | 1
        size = self.size
        return [(h1 + i * h2) % size for i in range(self.hashes)]

    def add(self, item: str) -> None:
        bits = self.bits
        for pos in self._positions(item):
            bits[pos >> 3] |= 1 << (pos & 7)
        self.count += 1

    def __contains__(self, item: str) -> bool:
        bits = self.bits
        return all(bits[pos >> 3] & (1 << (pos & 7)) for pos in self._positions(item))
