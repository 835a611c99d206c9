"""Per-address token buckets for deposits and claims (docs/keyproxy.md 6)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from keyproxy.errors import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`rate` requests per second per address, bursts of `burst`; at most
    `max_addresses` buckets are kept (the least recently used go first)."""

    def __init__(self, rate: float, burst: int, *, max_addresses: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def check(self, address: str, what: str, now: float | None = None) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic() if now is None else now
        b = self._buckets.pop(address, None) or _Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
        b.at = now
        self._buckets[address] = b
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        if b.tokens < 1:
            wait_ms = int((1 - b.tokens) / self.rate * 1000) + 1
            raise RateLimited(f"too many {what} from this address", retry_after_ms=wait_ms)
        b.tokens -= 1
