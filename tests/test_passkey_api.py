"""The PassKey API under attack or misuse: every refusal is clear and leaves the
ticket where it was, so the honest token can still finish the login."""

from __future__ import annotations

import dataclasses
import secrets
from pathlib import Path

import aiohttp
import grpc
import pytest

from authnet import errors
from authnet.protocol.factors import Factor
from authnet.protocol.ids import browser_key_hash, ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.sealing import SealedKey
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from authnet.tickets import TicketState
from authnet.v1 import passkey_pb2, passkey_pb2_grpc
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone, scanned
from tokens import handshake
from tokens.phone import PhoneKeyStore


async def state_of(net: TestNetwork, ticket: str) -> TicketState:
    t = await net.network.state.get_ticket(ticket_hash(ticket))
    assert t is not None
    return t.state


async def test_bad_signature_leaves_ticket_scanned_then_honest_answer_wins(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, tmp_path: Path
) -> None:
    impostor = PhoneKeyStore.create(tmp_path / "impostor.json", label="x").unlock()
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, wait):
        forged = handshake.respond(
            payload=s.payload, request=s.request, token=impostor, token_id=s.token_id
        )
        with pytest.raises(errors.SignatureInvalid):
            await s.api.complete_auth(forged)
        assert await state_of(net, s.ticket.ticket) is TicketState.SCANNED
        assert await net.network.state.take_mail(ticket_hash(s.ticket.ticket)) is None
        honest = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        await s.api.complete_auth(honest)
        outcome = await wait.result()
    assert outcome.kc is not None
    assert kc_fingerprint(outcome.kc) == honest.kc_fingerprint
    assert await state_of(net, s.ticket.ticket) is TicketState.AUTHENTICATED


async def test_complete_auth_twice(net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp) -> None:
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, wait):
        r = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        await s.api.complete_auth(r)
        # The same answer again (its first reply was lost): success, nothing changes.
        await s.api.complete_auth(r)
        # Another answer (ECDSA signatures are randomised) is refused.
        other = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        assert other.proof.signature != r.proof.signature
        with pytest.raises(errors.TicketStateInvalid, match="already authenticated"):
            await s.api.complete_auth(other)
        with pytest.raises(errors.TicketStateInvalid):
            await s.api.begin_auth(
                ticket=s.ticket.ticket,
                token_id=s.token_id,
                browser_key_hash=browser_key_hash(s.payload.browser_key),
            )
        assert (await wait.result()).kc is not None


async def test_relay_swapping_the_sealed_key_is_caught_by_the_signature(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, wait):
        r = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        assert r.sealed_kc is not None
        flipped = bytes([r.sealed_kc.ciphertext[0] ^ 1]) + r.sealed_kc.ciphertext[1:]
        swapped = dataclasses.replace(
            r, sealed_kc=SealedKey(enc=r.sealed_kc.enc, ciphertext=flipped)
        )
        with pytest.raises(errors.SignatureInvalid):
            await s.api.complete_auth(swapped)
        dropped = dataclasses.replace(r, sealed_kc=None)
        with pytest.raises(errors.MalformedInput, match="sealed_kc is required"):
            await s.api.complete_auth(dropped)
        flipped_uv = dataclasses.replace(r, user_verified=True)
        with pytest.raises(errors.SignatureInvalid):
            await s.api.complete_auth(flipped_uv)
        assert await state_of(net, s.ticket.ticket) is TicketState.SCANNED
        await s.api.complete_auth(r)
        assert (await wait.result()).kc is not None


async def test_unrequested_sealed_key_is_refused(sp: AsyncSPClient, phone: PhoneApp) -> None:
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http, auth_types="") as (s, w):
        r = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        assert r.sealed_kc is None
        # A token that volunteers Kc (correctly signed) to a login that did not ask for it.
        volunteered = handshake.respond(
            payload=s.payload,
            request=dataclasses.replace(s.request, requested=frozenset({Factor.CLIENT_KEY})),
            token=s.token,
            token_id=s.token_id,
        )
        assert volunteered.sealed_kc is not None
        with pytest.raises(errors.MalformedInput, match="did not request a client key"):
            await s.api.complete_auth(volunteered)
        await s.api.complete_auth(r)
        assert (await w.result()).kc is None


async def test_pin_factor_must_be_proven(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        scanned(sp, phone, http, auth_types="pc") as (
            s,
            _,
        ),
    ):
        assert not s.token.user_verified
        with pytest.raises(errors.PinRequired):
            handshake.respond(
                payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
            )
        # A token that skips the PIN the SP asked for is refused by the network,
        # and the ticket stays open for a proper answer.
        lax = dataclasses.replace(s.request, requested=frozenset({Factor.CLIENT_KEY}))
        lax_answer = handshake.respond(
            payload=s.payload, request=lax, token=s.token, token_id=s.token_id
        )
        assert not lax_answer.user_verified
        with pytest.raises(errors.FactorNotProven, match="pin"):
            await s.api.complete_auth(lax_answer)
        assert await state_of(net, s.ticket.ticket) is TicketState.SCANNED
        assert await net.network.state.get_mail(ticket_hash(s.ticket.ticket)) is None


async def test_altered_qr_browser_key_is_refused(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    ticket = await sp.get_ticket()
    session = BrowserSession.for_ticket(ticket, sp.spid)
    e = phone.enrolment(None)
    async with aiohttp.ClientSession() as http, session.waiting(http), phone.api(e) as api:
        with pytest.raises(errors.BrowserKeyMismatch):
            await api.begin_auth(
                ticket=ticket.ticket,
                token_id=e.token_id,
                browser_key_hash=browser_key_hash(secrets.token_bytes(32)),
            )
        assert await state_of(net, ticket.ticket) is TicketState.ISSUED


async def test_begin_auth_before_any_browser_waits(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    ticket = await sp.get_ticket()
    e = phone.enrolment(None)
    async with phone.api(e) as api:
        with pytest.raises(errors.BrowserNotWaiting):
            await api.begin_auth(
                ticket=ticket.ticket,
                token_id=e.token_id,
                browser_key_hash=browser_key_hash(secrets.token_bytes(32)),
            )
    assert await state_of(net, ticket.ticket) is TicketState.ISSUED


async def test_unknown_and_revoked_tokens(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, tmp_path: Path
) -> None:
    backup = await make_phone(net, tmp_path / "backup.json", backup_of=phone)
    await phone.revoke(backup.enrolment(None).token_id)
    async with aiohttp.ClientSession() as http:
        for app, token_id, error in (
            (phone, secrets.token_bytes(16), errors.TokenUnknown),
            (backup, backup.enrolment(None).token_id, errors.TokenRevoked),
        ):
            ticket = await sp.get_ticket()
            session = BrowserSession.for_ticket(ticket, sp.spid)
            async with session.waiting(http), app.api(app.enrolment(None)) as api:
                with pytest.raises(error):
                    await api.begin_auth(
                        ticket=ticket.ticket,
                        token_id=token_id,
                        browser_key_hash=browser_key_hash(session.public_key),
                    )
            assert await state_of(net, ticket.ticket) is TicketState.ISSUED


async def test_decline_rejects_and_needs_the_tokens_signature(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, tmp_path: Path
) -> None:
    impostor = PhoneKeyStore.create(tmp_path / "impostor.json", label="x").unlock()
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, wait):
        fake = handshake.decline(
            payload=s.payload, request=s.request, token=impostor, token_id=s.token_id
        )
        with pytest.raises(errors.SignatureInvalid):
            await s.api.decline_auth(fake)
        assert await state_of(net, s.ticket.ticket) is TicketState.SCANNED
        real = handshake.decline(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        await s.api.decline_auth(real)
        with pytest.raises(errors.TicketRejected):
            await wait.result()
    with pytest.raises(errors.TicketRejected):
        await sp.get_puid(s.ticket.ticket)


async def test_malformed_and_oversized_fields(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    """Raw requests a buggy or hostile token could send."""
    ticket = (await sp.get_ticket()).ticket
    e = phone.enrolment(None)
    creds = grpc.ssl_channel_credentials(root_certificates=net.ca_pem)
    async with grpc.aio.secure_channel(net.addresses.passkey, creds) as channel:
        stub = passkey_pb2_grpc.PassKeyStub(channel)
        cases = [
            (
                stub.BeginAuth,
                passkey_pb2.BeginAuthRequest(
                    ticket="garbage", token_id=e.token_id, browser_key_hash=b"h" * 32
                ),
                "ticket is malformed",
            ),
            (
                stub.BeginAuth,
                passkey_pb2.BeginAuthRequest(
                    ticket=ticket, token_id=e.token_id, browser_key_hash=b"short"
                ),
                "browser_key_hash must be 32 bytes",
            ),
            (
                stub.BeginAuth,
                passkey_pb2.BeginAuthRequest(
                    ticket=ticket, token_id=b"x" * 17, browser_key_hash=b"h" * 32
                ),
                "token_id must be 16 bytes",
            ),
            (
                stub.CompleteAuth,
                passkey_pb2.CompleteAuthRequest(
                    ticket=ticket,
                    token_id=e.token_id,
                    nonce=b"n" * 32,
                    signature=b"s",
                    sealed_kc=passkey_pb2.SealedKey(enc=b"e" * 31, ciphertext=b"c" * 48),
                ),
                "enc must be 32 or 1120 bytes",
            ),
            (
                stub.GetChallenge,
                passkey_pb2.GetChallengeRequest(purpose=0),
                "challenge purpose",
            ),
            (
                stub.Enrol,
                passkey_pb2.EnrolRequest(kind=1, algorithm=1, public_key=b"\x30\x00"),
                "public key",
            ),
        ]
        for method, request, words in cases:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await method(request)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT, words
            assert words in (info.value.details() or ""), (words, info.value.details())
        with pytest.raises(grpc.aio.AioRpcError) as big:
            await stub.Enrol(passkey_pb2.EnrolRequest(label="x" * 100_000))
        assert big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await state_of(net, ticket) is TicketState.ISSUED
