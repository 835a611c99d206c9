"""Token buckets per client address: how often one address may ask a node for
something cheap to ask and not free to answer (a GetChallenge stores a
challenge in the shared state for a minute).

Pure: the clock is injected and nothing here does I/O, so one limiter serves
any transport and tests drive time by hand.

    limiter = RateLimiter(rate_per_s=20, burst=40)
    wait_ms = limiter.take(address_key(peer_host(context.peer())), now_s)
    if wait_ms:
        raise RateLimited(retry_after_ms=wait_ms)

Limits are per node: a cluster of N nodes lets one address through N times as
often, which is what "generous" means here; a limit the whole cluster shares
would need a state-store round trip on every call.

Addresses are keyed as a network sees them: an IPv4 address alone, an IPv6
address by its /64 prefix (one subscriber's network; its host bits are free to
change), so rotating through a /64 buys no fresh buckets. The table of buckets
is bounded: past `max_addresses`, the longest-unused bucket is dropped, which
only ever forgives an address, never refuses one.
"""

from __future__ import annotations

import ipaddress
import math
import urllib.parse
from collections import OrderedDict
from dataclasses import dataclass

# Buckets kept at most; each is a few hundred bytes.
MAX_ADDRESSES = 65_536
# Refills are sums of float products: a bucket a hair short of one token
# after exactly the right wait is full.
_EPSILON = 1e-9


def peer_host(peer: str) -> str:
    """The host part of a gRPC peer string: "ipv4:1.2.3.4:5678" -> "1.2.3.4",
    "ipv6:[::1]:5678" (gRPC sends "ipv6:%5B::1%5D:5678") -> "::1", "unix:/path"
    -> "unix"."""
    scheme, _, rest = peer.partition(":")
    rest = urllib.parse.unquote(rest)
    if scheme == "ipv6" and rest.startswith("["):
        return rest[1 : rest.find("]")] if "]" in rest else rest
    if scheme == "ipv4":
        return rest.rpartition(":")[0] or rest
    return scheme or peer


def address_key(host: str) -> str:
    """The key an address is limited under: IPv4 (and IPv4-mapped IPv6) as is,
    IPv6 by its /64; anything that is not an IP address (a unix socket) as given."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class _Bucket:
    tokens: float
    at_s: float


class RateLimiter:
    """`rate_per_s` requests per second per key on average, with bursts of up
    to `burst`. A rate of 0 (or less) turns the limit off."""

    def __init__(
        self, *, rate_per_s: float, burst: int, max_addresses: int = MAX_ADDRESSES
    ) -> None:
        if burst < 1 and rate_per_s > 0:
            raise ValueError("burst must be at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_addresses = max_addresses
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0

    def take(self, key: str, now_s: float) -> int:
        """Take one token for `key`: 0 when the request may go ahead, else how
        many milliseconds until it may (at least 1)."""
        if not self.enabled:
            return 0
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), at_s=now_s)
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_addresses:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now_s - bucket.at_s)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_s)
            bucket.at_s = now_s
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return 0
        return max(1, math.ceil((1.0 - bucket.tokens) / self.rate_per_s * 1000))

    def __len__(self) -> int:
        return len(self._buckets)
