"""Who an SP is comes only from its client certificate: no certificate, one
from another CA, a revoked one, or a disabled SP all get a clear refusal, and
none of them leaves a ticket behind."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import grpc
import pytest

from authnet import errors, pki
from authnet.network import now_ms
from authnet.sdk.credentials import SpCredentials
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from authnet.v1 import sp_pb2, sp_pb2_grpc


def ticket_count(net: TestNetwork) -> int:
    return sum(1 for v in net.network.state.dump() if type(v).__name__ == "Ticket")  # type: ignore[attr-defined]


async def test_registered_sp_is_identified_by_its_certificate(
    net: TestNetwork, sp: AsyncSPClient
) -> None:
    t = await sp.get_ticket()
    stored = [v for v in net.network.state.dump() if type(v).__name__ == "Ticket"]  # type: ignore[attr-defined]
    assert [s.spid for s in stored] == [sp.spid]
    assert t.ticket


async def test_no_client_certificate_fails_the_handshake(
    net: TestNetwork, sp_creds: SpCredentials
) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=sp_creds.ca_pem)
    async with grpc.aio.secure_channel(net.addresses.sp, creds) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await sp_pb2_grpc.ServiceProviderStub(channel).GetTicket(
                sp_pb2.GetTicketRequest(), timeout=5
            )
    assert info.value.code() is grpc.StatusCode.UNAVAILABLE
    assert ticket_count(net) == 0


async def test_certificate_from_another_ca_fails_even_with_a_real_spid(
    net: TestNetwork, sp_creds: SpCredentials
) -> None:
    rogue_ca = pki.CertificateAuthority.create("rogue")
    key = pki.new_key()
    cert = rogue_ca.issue_sp(spid=sp_creds.spid, name="hello", public_key=key.public_key())
    forged = dataclasses.replace(
        sp_creds, certificate_pem=pki.cert_pem(cert), key_pem=pki.key_pem(key)
    )
    async with AsyncSPClient(forged) as client:
        with pytest.raises(errors.NetworkUnavailable):
            await client.get_ticket()
    assert ticket_count(net) == 0


async def test_server_certificate_is_not_an_sp_certificate(
    net: TestNetwork, sp_creds: SpCredentials
) -> None:
    data_dir = net.node.data_dir
    impostor = dataclasses.replace(
        sp_creds,
        certificate_pem=data_dir.server_cert.read_bytes(),
        key_pem=data_dir.server_key.read_bytes(),
    )
    async with AsyncSPClient(impostor) as client:
        with pytest.raises((errors.NotAuthenticated, errors.NetworkUnavailable)):
            await client.get_ticket()
    assert ticket_count(net) == 0


async def test_revoked_certificate_and_rotation(
    net: TestNetwork, sp: AsyncSPClient, sp_creds: SpCredentials, tmp_path: Path
) -> None:
    from authnet import admin

    directory = net.network.directory
    record = await directory.find_sp("hello")
    assert record is not None
    rotated = await admin.issue_certificate(
        directory,
        net.node.data_dir,
        sp=record,
        sp_address=net.addresses.sp,
        out_dir=tmp_path / "rotated",
    )
    await sp.get_ticket()  # the old certificate still works until revoked
    (old,) = [
        c
        for c in await directory.list_sp_certificates(record.spid)
        if c.fingerprint != rotated.fingerprint
    ]
    assert await directory.revoke_sp_certificate(old.fingerprint, now_ms())
    with pytest.raises(errors.PermissionDenied, match="revoked"):
        await sp.get_ticket()
    async with AsyncSPClient(SpCredentials.load(rotated.directory)) as fresh:
        assert (await fresh.get_ticket()).ticket
        assert fresh.spid == sp.spid


async def test_disabled_sp_is_refused(net: TestNetwork, sp: AsyncSPClient) -> None:
    await net.network.directory.set_sp_disabled(sp.spid, now_ms())
    before = ticket_count(net)
    with pytest.raises(errors.PermissionDenied, match="disabled"):
        await sp.get_ticket()
    assert ticket_count(net) == before
    await net.network.directory.set_sp_disabled(sp.spid, None)
    assert (await sp.get_ticket()).ticket


async def test_sp_api_is_not_served_on_the_passkey_port(
    net: TestNetwork, sp_creds: SpCredentials
) -> None:
    async with AsyncSPClient(sp_creds, address=net.addresses.passkey) as client:
        with pytest.raises(errors.AuthnetError, match="UNIMPLEMENTED"):
            await client.get_ticket()
