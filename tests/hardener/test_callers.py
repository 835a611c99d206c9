"""Callers are known: mTLS with client certificates from the hardener's own
CA, named by the certificate, refused clearly when unknown, from another CA,
without a certificate, or revoked."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hardener.client import HardenerClient
from hardener.credentials import CallerCredentials
from hardener.errors import CallerRevoked, CallerUnknown, HardenerUnavailable
from hardener.pki import CertificateAuthority, cert_pem, key_pem
from hardener.testing import TestHardener
from hardener.v1 import hardener_pb2 as pb
from hardener.v1 import hardener_pb2_grpc as pb_grpc


async def test_the_caller_is_named_by_its_certificate(hardener: TestHardener) -> None:
    async with hardener.client("network") as c:
        keys = await c.get_keys()
    assert keys.caller == "network"
    assert keys.current_version == 1
    assert len(keys.public_key(1)) == 32
    async with hardener.client("vault") as v:
        assert (await v.get_keys()).caller == "vault"


async def test_a_certificate_of_its_ca_that_is_not_registered(hardener: TestHardener) -> None:
    data = hardener.data
    ca = CertificateAuthority.load(data.ca_key, data.ca_cert)
    key, cert = ca.issue_caller("network")  # the right CA and even a known name
    stray = CallerCredentials(
        name="network",
        ca_pem=cert_pem(ca.cert),
        certificate_pem=cert_pem(cert),
        key_pem=key_pem(key),
    )
    async with HardenerClient(hardener.address, stray) as c:
        with pytest.raises(CallerUnknown, match="not registered") as err:
            await c.get_keys()
    assert "hardener caller add" in err.value.hint


async def test_a_certificate_from_another_ca_fails_the_handshake(
    hardener: TestHardener, tmp_path: Path
) -> None:
    with TestHardener(tmp_path / "other") as other:
        foreign = other.caller_credentials("network")
        # Trust the right server CA, present the other hardener's certificate.
        mixed = CallerCredentials(
            name="network",
            ca_pem=hardener.caller_credentials("network").ca_pem,
            certificate_pem=foreign.certificate_pem,
            key_pem=foreign.key_pem,
        )
        async with HardenerClient(hardener.address, mixed, timeout=5) as c:
            with pytest.raises(HardenerUnavailable) as err:
                await c.get_keys()
    assert "CA" in err.value.hint


async def test_no_client_certificate_fails_the_handshake(hardener: TestHardener) -> None:
    ca = hardener.caller_credentials("network").ca_pem
    async with grpc.aio.secure_channel(hardener.address, grpc.ssl_channel_credentials(ca)) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await pb_grpc.HardenerStub(ch).GetKeys(pb.GetKeysRequest(), timeout=5)
    assert err.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_a_revoked_caller_is_refused(hardener: TestHardener) -> None:
    async with hardener.client("network") as c, hardener.client("vault") as v:
        await c.get_keys()
        hardener.revoke("network")
        with pytest.raises(CallerRevoked, match="revoked"):
            await c.get_keys()
        await v.get_keys()  # others are unaffected
        hardener.restart()  # revocation is persistent
        with pytest.raises(CallerRevoked):
            await c.get_keys()


def test_the_sync_client(hardener: TestHardener) -> None:
    with hardener.sync_client("vault") as c:
        assert c.get_keys().caller == "vault"
        w = c.wrap("r1", b"blob")
        assert c.unwrap("r1", w.wrapped) == b"blob"


async def test_a_hardener_that_is_down_is_a_clear_error(hardener: TestHardener) -> None:
    async with hardener.client("network", timeout=5) as c:
        w = await c.wrap("rec", b"blob")
        hardener.stop()
        with pytest.raises(HardenerUnavailable, match="could not be reached") as err:
            await c.unwrap("rec", w.wrapped)
        assert "running" in err.value.hint
    hardener.start()  # nothing stored was damaged
    async with hardener.client("network") as c:
        assert await c.unwrap("rec", w.wrapped) == b"blob"


async def test_a_caller_with_two_certificates(hardener: TestHardener) -> None:
    first = hardener.caller_credentials("network")
    second = hardener.add_caller("network")  # one more certificate for the same caller
    assert second.certificate_pem != first.certificate_pem
    async with (
        HardenerClient(hardener.address, first) as a,
        HardenerClient(hardener.address, second) as b,
    ):
        assert (await a.get_keys()).caller == (await b.get_keys()).caller == "network"
        hardener.revoke("network")  # revokes the caller: every certificate of it
        for c in (a, b):
            with pytest.raises(CallerRevoked):
                await c.get_keys()


def test_one_server_per_data_directory(hardener: TestHardener) -> None:
    from hardener.errors import StoreError
    from hardener.server import HardenerServer

    with pytest.raises(StoreError, match="already serving"):
        HardenerServer(hardener.root)


async def test_health_on_the_same_mtls_port(hardener: TestHardener) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    creds = hardener.caller_credentials("network")
    channel_creds = grpc.ssl_channel_credentials(creds.ca_pem, creds.key_pem, creds.certificate_pem)
    async with grpc.aio.secure_channel(hardener.address, channel_creds) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", "hardener.v1.Hardener"):
            r = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            assert r.status == health_pb2.HealthCheckResponse.SERVING
