"""GetChallenge's rate limit: the token buckets by themselves (time driven by
hand), then on a real node over gRPC."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from authnet import errors, ratelimit
from authnet.rpc_status import CODE_KEY, DETAIL_KEY
from authnet.testing import TestNetwork
from authnet.v1 import passkey_pb2, passkey_pb2_grpc
from tokens.api import PassKeyApi, Purpose

# --- the buckets ----------------------------------------------------------------


def test_a_burst_then_the_rate() -> None:
    limiter = ratelimit.RateLimiter(rate_per_s=20, burst=40)
    assert [limiter.take("a", 100.0) for _ in range(40)] == [0] * 40
    wait = limiter.take("a", 100.0)
    assert wait == 50  # one token every 50 ms
    assert limiter.take("a", 100.049) > 0
    assert limiter.take("a", 100.050) == 0
    # A second refill never exceeds the burst.
    assert [limiter.take("a", 1000.0) for _ in range(41)].count(0) == 40


def test_addresses_have_their_own_buckets() -> None:
    limiter = ratelimit.RateLimiter(rate_per_s=1, burst=1)
    assert limiter.take("10.0.0.1", 0.0) == 0
    assert limiter.take("10.0.0.1", 0.0) == 1000
    assert limiter.take("10.0.0.2", 0.0) == 0


def test_a_rate_of_zero_turns_the_limit_off() -> None:
    limiter = ratelimit.RateLimiter(rate_per_s=0, burst=0)
    assert all(limiter.take("a", 0.0) == 0 for _ in range(1000))
    assert len(limiter) == 0


def test_the_table_of_buckets_is_bounded() -> None:
    limiter = ratelimit.RateLimiter(rate_per_s=1, burst=1, max_addresses=100)
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(limiter) == 100
    # The oldest were forgotten (forgiven), the newest are still limited.
    assert limiter.take("10.0.0.0", 0.0) == 0
    assert limiter.take("10.0.3.231", 0.0) > 0


@pytest.mark.parametrize(
    ("peer", "key"),
    [
        ("ipv4:127.0.0.1:5678", "127.0.0.1"),
        ("ipv6:[::1]:5678", "::/64"),
        ("ipv6:%5B::1%5D:5678", "::/64"),
        ("ipv6:[2001:db8:1:2:aaaa::1]:443", "2001:db8:1:2::/64"),
        ("ipv6:[2001:db8:1:2:bbbb::9]:443", "2001:db8:1:2::/64"),
        ("ipv6:[::ffff:10.1.2.3]:443", "10.1.2.3"),
        ("unix:/run/authnet.sock", "unix"),
    ],
)
def test_peers_are_keyed_by_address_and_ipv6_by_64(peer: str, key: str) -> None:
    assert ratelimit.address_key(ratelimit.peer_host(peer)) == key


# --- on a node ------------------------------------------------------------------


async def test_get_challenge_beyond_the_limit_is_rate_limited(tmp_path: Path) -> None:
    async with TestNetwork(tmp_path, challenge_rate_per_s=2.0, challenge_burst=5) as net:
        async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
            for _ in range(5):
                challenge, _ = await api.challenge(Purpose.ENROL)
                assert len(challenge) == 32
            with pytest.raises(errors.RateLimited) as refused:
                await api.challenge(Purpose.ENROL)
        err = refused.value
        assert err.retryable
        assert 1 <= err.retry_after_ms <= 500
        assert f"retry in {err.retry_after_ms} ms" in err.message
        # On the wire: RESOURCE_EXHAUSTED, the stable code and the detail.
        creds = grpc.ssl_channel_credentials(root_certificates=net.ca_pem)
        async with grpc.aio.secure_channel(net.addresses.passkey, creds) as channel:
            stub = passkey_pb2_grpc.PassKeyStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raw:
                await stub.GetChallenge(passkey_pb2.GetChallengeRequest(purpose=1), timeout=10)
        assert raw.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        md = dict(raw.value.trailing_metadata() or ())
        assert md[CODE_KEY] == "rate_limited"
        assert '"retry_after_ms":' in md[DETAIL_KEY]


async def test_the_default_limit_is_generous_and_refills(tmp_path: Path) -> None:
    async with (
        TestNetwork(tmp_path) as net,
        PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api,
    ):
        # The default burst is 40, refilled at 20 per second while we call, so
        # on a slow (loaded) machine a few more than 40 may pass first.
        started = time.monotonic()
        allowed = 0
        refusal: errors.RateLimited | None = None
        while refusal is None and allowed < 400:
            try:
                await api.challenge(Purpose.LIST_TOKENS)
                allowed += 1
            except errors.RateLimited as e:
                refusal = e
        elapsed = time.monotonic() - started
        assert refusal is not None
        assert 40 <= allowed <= 40 + 20 * elapsed + 1
        assert refusal.retry_after_ms <= 50  # 20 per second
        await asyncio.sleep(refusal.retry_after_ms / 1000 + 0.02)
        challenge, _ = await api.challenge(Purpose.LIST_TOKENS)
        assert challenge
