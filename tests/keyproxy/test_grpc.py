"""The gRPC front on a real proxy: round trip, error codes, health."""

from __future__ import annotations

import hashlib
import secrets
import socket
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from keyproxy import grants
from keyproxy.service import Limits, now_ms
from keyproxy.testing import TestKeyProxy
from keyproxy.v1 import keyproxy_pb2 as pb
from keyproxy.v1 import keyproxy_pb2_grpc as pb_grpc
from tests.keyproxy.conftest import make_proxy
from tests.keyproxy.helpers import issuer_key


def stub(kp: TestKeyProxy) -> tuple[grpc.Channel, pb_grpc.KeyProxyStub]:
    assert kp.grpc_address is not None
    channel = grpc.insecure_channel(kp.grpc_address)
    return channel, pb_grpc.KeyProxyStub(channel)


def code_of(err: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    meta = dict(err.trailing_metadata() or ())
    return err.code(), str(meta.get("keyproxy-error"))


def test_round_trip_and_states(proxy: TestKeyProxy) -> None:
    channel, kp = stub(proxy)
    with channel:
        secret = secrets.token_bytes(32)
        cond = pb.Condition(kind=pb.CONDITION_KIND_SECRET, hash=hashlib.sha256(secret).digest())
        d = kp.Deposit(pb.DepositRequest(blob=b"\x00sealed\xff", ttl_seconds=60, conditions=[cond]))
        assert len(d.token) == 43
        assert d.expires_ms > now_ms()
        s = kp.Status(pb.StatusRequest(token=d.token))
        assert s.state == pb.STATE_WAITING
        assert s.size == 8
        assert list(s.conditions) == [pb.CONDITION_KIND_SECRET]
        with pytest.raises(grpc.RpcError) as wrong:
            kp.Claim(pb.ClaimRequest(token=d.token, secret=b"nope"))
        assert code_of(wrong.value) == (grpc.StatusCode.PERMISSION_DENIED, "condition_failed")
        meta = dict(wrong.value.trailing_metadata())
        assert meta["keyproxy-attempts-left"] == "4"
        assert kp.Claim(pb.ClaimRequest(token=d.token, secret=secret)).blob == b"\x00sealed\xff"
        with pytest.raises(grpc.RpcError) as again:
            kp.Claim(pb.ClaimRequest(token=d.token, secret=secret))
        assert code_of(again.value) == (grpc.StatusCode.FAILED_PRECONDITION, "claimed")
        assert again.value.details().startswith("claimed:")
        assert kp.Status(pb.StatusRequest(token=d.token)).state == pb.STATE_CLAIMED
        assert kp.Status(pb.StatusRequest(token=d.token)).claimed_ms > 0

        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", "keyproxy.v1.KeyProxy"):
            r = health.Check(health_pb2.HealthCheckRequest(service=name))
            assert r.status == health_pb2.HealthCheckResponse.SERVING


def test_grant_over_grpc(proxy: TestKeyProxy) -> None:
    key, pub = issuer_key()
    proxy.add_issuer("vault", pub)
    channel, kp = stub(proxy)
    with channel:
        cond = pb.Condition(kind=pb.CONDITION_KIND_GRANT, issuer="vault", subject="u1")
        d = kp.Deposit(pb.DepositRequest(blob=b"k", ttl_seconds=60, conditions=[cond]))
        g = grants.sign_grant(
            key,
            issuer="vault",
            subject="u1",
            token=grants.token_hash(d.token),
            expires_ms=now_ms() + 60_000,
        )
        assert kp.Claim(pb.ClaimRequest(token=d.token, grant=g)).blob == b"k"
        with pytest.raises(grpc.RpcError) as unknown:
            kp.Deposit(
                pb.DepositRequest(
                    blob=b"k",
                    ttl_seconds=60,
                    conditions=[
                        pb.Condition(kind=pb.CONDITION_KIND_GRANT, issuer="x", subject="u")
                    ],
                )
            )
        assert code_of(unknown.value) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid")


def test_error_codes(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    prefix = request.getfixturevalue("redis_prefix") if engine == "redis" else None
    limits = Limits(max_blob_bytes=100, deposit_rate=1, deposit_burst=2, claim_rate=0)
    with make_proxy(engine, tmp_path / "kp", prefix, limits=limits, grpc=True) as proxy:
        assert proxy.service is not None
        channel, kp = stub(proxy)
        with channel:
            cases: list[tuple[pb.DepositRequest, grpc.StatusCode, str]] = [
                (
                    pb.DepositRequest(blob=b"x", ttl_seconds=0),
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "invalid",
                ),
                (
                    pb.DepositRequest(blob=b"x" * 101, ttl_seconds=5),
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "too_large",
                ),
            ]
            for req, code, name in cases:
                with pytest.raises(grpc.RpcError) as err:
                    kp.Deposit(req)
                assert code_of(err.value) == (code, name)
            with pytest.raises(grpc.RpcError) as limited:
                kp.Deposit(pb.DepositRequest(blob=b"x", ttl_seconds=1))
            assert code_of(limited.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "rate_limited")
            meta = dict(limited.value.trailing_metadata())
            assert int(meta["keyproxy-retry-after-ms"]) > 0

            missing = secrets.token_urlsafe(32)
            with pytest.raises(grpc.RpcError) as nf:
                kp.Status(pb.StatusRequest(token=missing))
            assert code_of(nf.value) == (grpc.StatusCode.NOT_FOUND, "not_found")
            with pytest.raises(grpc.RpcError) as bad:
                kp.Claim(pb.ClaimRequest(token="short"))
            assert code_of(bad.value) == (grpc.StatusCode.INVALID_ARGUMENT, "invalid")

            proxy.service.limits = Limits(max_blob_bytes=100, deposit_rate=0, claim_rate=0)
            proxy.service.deposit_limiter.rate = 0
            d = kp.Deposit(pb.DepositRequest(blob=b"x", ttl_seconds=1))
            later = now_ms() + 1_500
            proxy.service.clock = lambda: later
            with pytest.raises(grpc.RpcError) as exp:
                kp.Claim(pb.ClaimRequest(token=d.token))
            assert code_of(exp.value) == (grpc.StatusCode.FAILED_PRECONDITION, "expired")


def test_store_down_is_unavailable(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with TestKeyProxy(tmp_path / "kp", store_url=f"redis://127.0.0.1:{port}/0", grpc=True) as p:
        channel, kp = stub(p)
        with channel, pytest.raises(grpc.RpcError) as err:
            kp.Deposit(pb.DepositRequest(blob=b"x", ttl_seconds=5))
        assert code_of(err.value) == (grpc.StatusCode.UNAVAILABLE, "unavailable")
