"""Evaluation ids: UUIDv7 (RFC 9562), made in the process, ordered by creation time.

48 bits of Unix milliseconds, then 74 random bits. Any number of replicas can make ids at
once without coordination (a collision needs two equal 74-bit draws in the same
millisecond), and ordering by id is ordering by time, which is what keyset pagination of
the audit history needs. Within one process ids strictly increase, even when the wall clock
steps back: the millisecond then stays where it was and the random part is incremented.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
import uuid

# The random part must not collide, it need not be secret: a PRNG seeded from the OS (and
# again in a forked child) instead of one urandom system call per id.
_random = random.Random()
os.register_at_fork(after_in_child=_random.seed)

_RAND_BITS = 74
_RAND_LIMIT = 1 << _RAND_BITS
_lock = threading.Lock()
_last_ms = -1
_last_rand = 0
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _pack(ms: int, rand: int) -> uuid.UUID:
    rand_a = rand >> 62  # 12 bits
    rand_b = rand & ((1 << 62) - 1)
    value = (ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def new_evaluation_id() -> tuple[uuid.UUID, dt.datetime]:
    """A fresh id and the UTC instant (millisecond precision) it encodes."""
    global _last_ms, _last_rand
    now_ms = time.time_ns() // 1_000_000
    with _lock:
        if now_ms > _last_ms:
            ms, rand = now_ms, _random.getrandbits(_RAND_BITS - 1)  # headroom for increments
        else:
            ms, rand = _last_ms, _last_rand + 1 + _random.getrandbits(32)
            if rand >= _RAND_LIMIT:
                ms, rand = ms + 1, _random.getrandbits(_RAND_BITS - 1)
        _last_ms, _last_rand = ms, rand
    evaluation_id = _pack(ms, rand)
    return evaluation_id, id_time(evaluation_id)


def id_time(evaluation_id: uuid.UUID) -> dt.datetime:
    """The UTC instant a UUIDv7 encodes."""
    return _EPOCH + dt.timedelta(milliseconds=evaluation_id.int >> 80)
