"""What the host keeps: after a claim the blob's bytes are nowhere under the
data directory (SQLite) or in any of the proxy's Redis keys, and no token,
secret, grant or blob appears in the logs."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import httpx
import pytest

from keyproxy import grants
from keyproxy.grants import b64u
from keyproxy.service import now_ms
from keyproxy.testing import TestKeyProxy
from tests.keyproxy.conftest import redis_client
from tests.keyproxy.helpers import deposit, issuer_key, secret_condition


def held_bytes(kp: TestKeyProxy, engine: str, prefix: str) -> bytes:
    """Every byte the proxy's store holds: the data dir's files, or its Redis keys."""
    if engine == "sqlite":
        return b"".join(p.read_bytes() for p in Path(kp.data_dir).rglob("*") if p.is_file())
    out = b""
    with redis_client() as c:
        for k in c.scan_iter(match=prefix + "*"):
            if c.type(k) == b"hash":
                for f, v in c.hgetall(k).items():
                    out += f + v
            else:
                out += c.get(k) or b""
    return out


def test_claimed_blob_is_gone_and_logs_are_clean(
    proxy: TestKeyProxy,
    engine: str,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    prefix = request.getfixturevalue("redis_prefix") if engine == "redis" else ""
    key, pub = issuer_key()
    proxy.add_issuer("vault", pub)
    blob = secrets.token_bytes(6000)
    secret, cond = secret_condition()
    grant_cond = {"kind": "grant", "issuer": "vault", "subject": "user-7"}
    token = deposit(proxy.http_url, blob, conditions=[cond, grant_cond]).json()["token"]
    assert blob[:64] in held_bytes(proxy, engine, prefix)  # the search finds it while it waits
    grant = grants.sign_grant(
        key,
        issuer="vault",
        subject="user-7",
        token=grants.token_hash(token),
        expires_ms=now_ms() + 60_000,
    )
    url = f"{proxy.http_url}/v1/deposits/{token}/claim"
    assert httpx.post(url, json={"secret": b64u(b"wrong"), "grant": b64u(grant)}).status_code == 403
    r = httpx.post(url, json={"secret": b64u(secret), "grant": b64u(grant)})
    assert r.status_code == 200

    held = held_bytes(proxy, engine, prefix)
    for i in range(0, len(blob) - 32, 32):
        assert blob[i : i + 32] not in held, f"claimed blob bytes at offset {i} are still held"
    assert token.encode() not in held
    assert secret not in held

    # The proxy's own logs (and aiohttp's, in its thread); the test's httpx logs URLs.
    logs = "\n".join(
        f"{r.name} {r.getMessage()}"
        for r in caplog.records
        if not r.name.startswith(("httpx", "httpcore"))
    )
    assert "deposit" in logs  # the proxy did log, by the token hash's prefix
    for needle in (token, b64u(secret), b64u(grant), b64u(blob)[:40], b64u(b"wrong")):
        assert needle not in logs
    assert grants.token_hash(token) not in logs
