"""keyproxy.client against a real proxy: typed refusals."""

from __future__ import annotations

import hashlib
import secrets
import socket

import pytest

from keyproxy import client as c
from keyproxy.testing import TestKeyProxy


def test_client_round_trip_and_refusals(proxy: TestKeyProxy) -> None:
    secret = secrets.token_bytes(32)
    with c.KeyProxyClient(proxy.http_url) as kp:
        assert kp.health()["status"] == "ok"
        token, expires_ms = kp.deposit(
            b"blob", ttl_seconds=60, secret_hash=hashlib.sha256(secret).digest()
        )
        assert kp.status(token)["state"] == "waiting"
        with pytest.raises(c.ConditionFailed) as wrong:
            kp.claim(token, secret=b"wrong")
        assert wrong.value.attempts_left == 4
        assert wrong.value.status == 403
        assert kp.claim(token, secret=secret) == b"blob"
        with pytest.raises(c.Claimed) as again:
            kp.claim(token, secret=secret)
        assert again.value.claimed_ms is not None
        with pytest.raises(c.NotFound):
            kp.claim(secrets.token_urlsafe(32))
        with pytest.raises(c.Invalid):
            kp.status("not-a-token")
        with pytest.raises(c.TooLarge):
            kp.deposit(b"x" * 70_000, ttl_seconds=60)
        with pytest.raises(c.Invalid):
            kp.deposit(b"x", ttl_seconds=60, grant=("nobody", "u"))
        assert token not in str(again.value)
        assert expires_ms > 0


def test_client_expired_and_rate_limited(proxy: TestKeyProxy) -> None:
    assert proxy.service is not None
    with c.KeyProxyClient(proxy.http_url) as kp:
        token, expires_ms = kp.deposit(b"b", ttl_seconds=1)
        proxy.service.clock = lambda: expires_ms
        with pytest.raises(c.Expired):
            kp.claim(token)
        proxy.service.claim_limiter.rate = 1
        proxy.service.claim_limiter.burst = 1
        with pytest.raises(c.Expired):
            kp.claim(token)
        with pytest.raises(c.RateLimited) as limited:
            kp.claim(token)
        assert (limited.value.retry_after_ms or 0) > 0


def test_client_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with c.KeyProxyClient(f"http://127.0.0.1:{port}") as kp, pytest.raises(c.ProxyUnavailable):
        kp.health()


async def test_async_client_round_trip_and_refusals(proxy: TestKeyProxy) -> None:
    secret = secrets.token_bytes(32)
    async with c.AsyncKeyProxyClient(proxy.http_url) as kp:
        assert (await kp.health())["status"] == "ok"
        token, _ = await kp.deposit(
            b"blob", ttl_seconds=60, secret_hash=hashlib.sha256(secret).digest()
        )
        assert (await kp.status(token))["state"] == "waiting"
        with pytest.raises(c.ConditionFailed) as wrong:
            await kp.claim(token, secret=b"wrong")
        assert wrong.value.attempts_left == 4
        assert await kp.claim(token, secret=secret) == b"blob"
        with pytest.raises(c.Claimed):
            await kp.claim(token, secret=secret)
        with pytest.raises(c.TooLarge):
            await kp.deposit(b"x" * 70_000, ttl_seconds=60)
