"""The JSON front end to end on a real proxy (TestKeyProxy), on both stores."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keyproxy import grants
from keyproxy.grants import b64u, unb64u
from keyproxy.service import Limits, now_ms
from keyproxy.testing import TestKeyProxy
from tests.keyproxy.conftest import LOW_RATE, make_proxy
from tests.keyproxy.helpers import deposit, issuer_key, secret_condition


def test_deposit_status_claim(proxy: TestKeyProxy) -> None:
    blob = secrets.token_bytes(200)
    r = deposit(proxy.http_url, blob, ttl=60)
    assert r.status_code == 201
    token = r.json()["token"]
    assert len(token) == 43
    assert r.json()["expires_ms"] > now_ms() + 59_000
    for _ in range(3):  # status does not consume
        s = httpx.get(f"{proxy.http_url}/v1/deposits/{token}")
        assert s.status_code == 200
        assert s.json()["state"] == "waiting"
        assert s.json()["size"] == 200
        assert s.json()["conditions"] == []
    assert s.headers["Cache-Control"] == "no-store"
    c = httpx.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={})
    assert c.status_code == 200
    assert unb64u(c.json()["blob"]) == blob
    again = httpx.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={})
    assert again.status_code == 410
    assert again.json()["error"] == "claimed"
    assert isinstance(again.json()["claimed_ms"], int)
    s = httpx.get(f"{proxy.http_url}/v1/deposits/{token}")
    assert s.json()["state"] == "claimed"
    assert httpx.get(f"{proxy.http_url}/v1/health").json() == {"status": "ok", "version": "1"}


def test_unknown_token_is_404(proxy: TestKeyProxy) -> None:
    token = secrets.token_urlsafe(32)
    assert httpx.get(f"{proxy.http_url}/v1/deposits/{token}").json()["error"] == "not_found"
    r = httpx.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={})
    assert r.status_code == 404


def test_expired_deposit_says_expired(proxy: TestKeyProxy) -> None:
    assert proxy.service is not None
    token = deposit(proxy.http_url, b"soon gone", ttl=1).json()["token"]
    later = now_ms() + 1_100
    proxy.service.clock = lambda: later
    s = httpx.get(f"{proxy.http_url}/v1/deposits/{token}")
    assert s.json()["state"] == "expired"
    c = httpx.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={})
    assert c.status_code == 410
    assert c.json()["error"] == "expired"


def test_expiry_on_the_real_clock(proxy: TestKeyProxy) -> None:
    token = deposit(proxy.http_url, b"soon gone", ttl=1).json()["token"]
    time.sleep(1.1)
    c = httpx.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={})
    assert (c.status_code, c.json()["error"]) == (410, "expired")


def test_fifty_concurrent_claims_one_wins(proxy: TestKeyProxy) -> None:
    blob = b"only once"
    token = deposit(proxy.http_url, blob).json()["token"]

    async def race() -> list[httpx.Response]:
        clients = [httpx.AsyncClient() for _ in range(50)]
        try:
            return await asyncio.gather(
                *(c.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={}) for c in clients)
            )
        finally:
            for c in clients:
                await c.aclose()

    got = asyncio.run(race())
    codes = sorted(r.status_code for r in got)
    assert codes == [200] + [410] * 49
    assert [unb64u(r.json()["blob"]) for r in got if r.status_code == 200] == [blob]
    assert {r.json()["error"] for r in got if r.status_code == 410} == {"claimed"}


@pytest.fixture
def small(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestKeyProxy]:
    prefix = request.getfixturevalue("redis_prefix") if engine == "redis" else None
    limits = Limits(max_blob_bytes=1024, deposit_rate=0, claim_rate=0)
    with make_proxy(engine, tmp_path / "kp", prefix, limits=limits) as kp:
        yield kp


def test_oversized(small: TestKeyProxy) -> None:
    r = deposit(small.http_url, b"x" * 1025)
    assert r.status_code == 413
    assert r.json()["error"] == "too_large"
    assert r.json()["limit"] == 1024
    assert deposit(small.http_url, b"x" * 1024).status_code == 201
    big = b'{"blob": "' + b"A" * 20_000 + b'", "ttl_seconds": 60}'
    r = httpx.post(f"{small.http_url}/v1/deposits", content=big)
    assert (r.status_code, r.json()["error"]) == (413, "too_large")

    def chunks() -> Iterator[bytes]:
        yield b'{"blob": "'
        for _ in range(20):
            yield b"A" * 1000
        yield b'", "ttl_seconds": 60}'

    r = httpx.post(f"{small.http_url}/v1/deposits", content=chunks())
    assert r.request.headers.get("Transfer-Encoding") == "chunked"
    assert (r.status_code, r.json()["error"]) == (413, "too_large")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed"),
        (b"[1, 2]", 400, "malformed"),
        (b'{"blob": "AAAA", "ttl_seconds": 60, "extra": 1}', 422, "invalid"),
        (b'{"blob": "AAAA"}', 422, "invalid"),
        (b'{"blob": "AAAA", "ttl_seconds": 0}', 422, "invalid"),
        (b'{"blob": "AAAA", "ttl_seconds": true}', 422, "invalid"),
        (b'{"blob": "AA==", "ttl_seconds": 60}', 422, "invalid"),
        (b'{"blob": "", "ttl_seconds": 60}', 422, "invalid"),
        (b'{"ttl_seconds": 60}', 422, "invalid"),
        (b'{"blob": "AAAA", "ttl_seconds": 60, "conditions": [{"kind": "x"}]}', 422, "invalid"),
        (
            b'{"blob": "AAAA", "ttl_seconds": 60, '
            b'"conditions": [{"kind": "secret", "hash": "AA"}]}',
            422,
            "invalid",
        ),
    ],
)
def test_refused_deposits(proxy: TestKeyProxy, body: bytes, status: int, code: str) -> None:
    r = httpx.post(
        f"{proxy.http_url}/v1/deposits", content=body, headers={"Content-Type": "application/json"}
    )
    assert (r.status_code, r.json()["error"]) == (status, code)


def test_bad_tokens_and_unknown_claim_fields(proxy: TestKeyProxy) -> None:
    for bad in ("short", "A" * 44, "A" * 42 + "+"):
        assert httpx.get(f"{proxy.http_url}/v1/deposits/{bad}").status_code == 422
        r = httpx.post(f"{proxy.http_url}/v1/deposits/{bad}/claim", json={})
        assert (r.status_code, r.json()["error"]) == (422, "invalid")
    token = deposit(proxy.http_url, b"b").json()["token"]
    r = httpx.post(f"{proxy.http_url}/v1/deposits/{token}/claim", json={"secrets": "x"})
    assert (r.status_code, r.json()["fields"]) == (422, ["secrets"])
    assert httpx.get(f"{proxy.http_url}/v1/deposits/{token}").json()["state"] == "waiting"


def test_wrong_secret_five_times_burns(proxy: TestKeyProxy) -> None:
    secret, cond = secret_condition()
    token = deposit(proxy.http_url, b"guarded", conditions=[cond]).json()["token"]
    url = f"{proxy.http_url}/v1/deposits/{token}/claim"
    r = httpx.post(url, json={})
    assert (r.status_code, r.json()["condition"], r.json()["attempts_left"]) == (
        403,
        "secret",
        4,
    )
    for left in (3, 2, 1):
        r = httpx.post(url, json={"secret": b64u(secrets.token_bytes(32))})
        assert (r.status_code, r.json()["attempts_left"]) == (403, left)
    r = httpx.post(url, json={"secret": b64u(secrets.token_bytes(32))})
    assert (r.status_code, r.json()["error"]) == (410, "burned")
    r = httpx.post(url, json={"secret": b64u(secret)})
    assert (r.status_code, r.json()["error"]) == (410, "burned")
    assert httpx.get(f"{proxy.http_url}/v1/deposits/{token}").json()["state"] == "burned"


def test_right_secret_claims(proxy: TestKeyProxy) -> None:
    secret, cond = secret_condition()
    token = deposit(proxy.http_url, b"guarded", conditions=[cond]).json()["token"]
    url = f"{proxy.http_url}/v1/deposits/{token}/claim"
    assert httpx.post(url, json={"secret": b64u(b"wrong")}).status_code == 403
    r = httpx.post(url, json={"secret": b64u(secret)})
    assert unb64u(r.json()["blob"]) == b"guarded"


def test_grant_conditions(proxy: TestKeyProxy) -> None:
    key, pub = issuer_key()
    proxy.add_issuer("vault", pub)
    secret, cond = secret_condition()
    grant_cond = {"kind": "grant", "issuer": "vault", "subject": "user-1"}
    unknown = deposit(
        proxy.http_url, b"x", conditions=[{"kind": "grant", "issuer": "nope", "subject": "u"}]
    )
    assert (unknown.status_code, unknown.json()["error"]) == (422, "invalid")
    assert "nope" in unknown.json()["message"]

    token = deposit(proxy.http_url, b"kek", conditions=[cond, grant_cond]).json()["token"]
    url = f"{proxy.http_url}/v1/deposits/{token}/claim"
    th = grants.token_hash(token)

    def grant(subject: str = "user-1", expires: int = now_ms() + 60_000) -> str:
        g = grants.sign_grant(key, issuer="vault", subject=subject, token=th, expires_ms=expires)
        return b64u(g)

    s = b64u(secret)
    r = httpx.post(url, json={"secret": s})
    assert (r.status_code, r.json()["condition"]) == (403, "grant")
    r = httpx.post(url, json={"secret": s, "grant": grant(subject="user-2")})
    assert (r.status_code, r.json()["condition"]) == (403, "grant")
    r = httpx.post(url, json={"secret": s, "grant": grant(expires=now_ms() - 1)})
    assert (r.status_code, r.json()["condition"]) == (403, "grant")
    other, _ = issuer_key()
    forged = grants.sign_grant(
        other, issuer="vault", subject="user-1", token=th, expires_ms=now_ms() + 60_000
    )
    r = httpx.post(url, json={"secret": s, "grant": b64u(forged)})
    assert (r.status_code, r.json()["attempts_left"]) == (403, 1)
    r = httpx.post(url, json={"secret": s, "grant": grant()})
    assert r.status_code == 200
    assert unb64u(r.json()["blob"]) == b"kek"


def test_cors(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    prefix = request.getfixturevalue("redis_prefix") if engine == "redis" else None
    with make_proxy(
        engine, tmp_path / "kp", prefix, allow_origins=("https://vault.example",)
    ) as kp:
        pre = httpx.options(
            f"{kp.http_url}/v1/deposits",
            headers={
                "Origin": "https://vault.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["Access-Control-Allow-Origin"] == "https://vault.example"
        assert "POST" in pre.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in pre.headers["Access-Control-Allow-Headers"]
        assert "Access-Control-Allow-Credentials" not in pre.headers
        evil = httpx.options(
            f"{kp.http_url}/v1/deposits",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "Access-Control-Allow-Origin" not in evil.headers
        assert "Access-Control-Allow-Methods" not in evil.headers
        r = deposit(kp.http_url, b"x")
        token = r.json()["token"]
        ok = httpx.get(
            f"{kp.http_url}/v1/deposits/{token}", headers={"Origin": "https://vault.example"}
        )
        assert ok.headers["Access-Control-Allow-Origin"] == "https://vault.example"
        bad = httpx.get(
            f"{kp.http_url}/v1/deposits/{token}", headers={"Origin": "https://evil.example"}
        )
        assert bad.status_code == 200
        assert "Access-Control-Allow-Origin" not in bad.headers


def test_rate_limited(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    prefix = request.getfixturevalue("redis_prefix") if engine == "redis" else None
    with make_proxy(engine, tmp_path / "kp", prefix, limits=LOW_RATE) as kp:
        codes = [deposit(kp.http_url, b"x").status_code for _ in range(3)]
        assert codes == [201] * 3
        r = deposit(kp.http_url, b"x")
        assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
        assert 0 < r.json()["retry_after_ms"] <= 1001
        token = secrets.token_urlsafe(32)
        claims = [
            httpx.post(f"{kp.http_url}/v1/deposits/{token}/claim", json={}).status_code
            for _ in range(4)
        ]
        assert claims == [404, 404, 404, 429]


def test_store_down_is_503_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with TestKeyProxy(tmp_path / "kp", store_url=f"redis://127.0.0.1:{port}/0") as kp:
        r = deposit(kp.http_url, b"x")
        assert (r.status_code, r.json()["error"]) == (503, "unavailable")
        t = secrets.token_urlsafe(32)
        r = httpx.get(f"{kp.http_url}/v1/deposits/{t}")
        assert (r.status_code, r.json()["error"]) == (503, "unavailable")
