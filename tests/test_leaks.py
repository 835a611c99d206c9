"""What the network keeps: after real logins (and some bad ones), neither its
database files, nor its log, nor its in-memory state hold any Kc, ticket,
wait secret, token signature or sealed key, in any common encoding."""

from __future__ import annotations

import aiohttp
import pytest

from authnet import errors
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tests.helpers import encodings, haystacks, login, scanned
from tokens import handshake


async def test_no_secret_reaches_database_log_or_state(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    secrets_seen: dict[str, bytes] = {}
    for i in range(3):
        run = await login(sp, phone)
        assert run.kc is not None
        secrets_seen[f"kc{i}"] = run.kc
        secrets_seen[f"ticket{i}"] = run.ticket.ticket.encode()
        secrets_seen[f"ticket-body{i}"] = run.ticket.ticket[4:].encode()
        secrets_seen[f"wait-secret{i}"] = run.session._wait_secret
        who = await sp.get_puid(run.ticket.ticket)
        renewed = await sp.put_ticket(run.ticket.ticket)
        secrets_seen[f"renewed{i}"] = renewed.ticket.encode()
        await sp.write_data(renewed.ticket, b"opaque", expected_version=i)
        assert who.puid
    # A bad answer and a proper one, keeping the signatures and sealed key.
    async with aiohttp.ClientSession() as http, scanned(sp, phone, http) as (s, wait):
        r = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=s.token_id
        )
        assert r.sealed_kc is not None
        bad = handshake.respond(
            payload=s.payload, request=s.request, token=s.token, token_id=b"\x00" * 16
        )
        with pytest.raises(errors.AuthnetError):
            await s.api.complete_auth(bad)
        await s.api.complete_auth(r)
        outcome = await wait.result()
        assert outcome.kc is not None
        secrets_seen["kc-last"] = outcome.kc
        secrets_seen["signature"] = r.proof.signature
        secrets_seen["sealed"] = r.sealed_kc.ciphertext
        secrets_seen["nonce"] = r.nonce
        secrets_seen["ticket-last"] = s.ticket.ticket.encode()

    stacks = haystacks(net)
    assert stacks["log"], "the log should not be empty (the test would prove nothing)"
    assert any(k.startswith("authnet.db") for k in stacks)
    for stack_name, stack in stacks.items():
        for secret_name, secret in secrets_seen.items():
            for form in encodings(secret):
                assert form not in stack, f"{secret_name} found in {stack_name}"


async def test_log_mentions_tickets_only_by_tag(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp
) -> None:
    run = await login(sp, phone)
    await sp.get_puid(run.ticket.ticket, finalize=True)
    text = net.log_path.read_text()
    assert "ticket issued sp=hello tag=" in text
    assert "ticket authenticated sp=hello tag=" in text
    assert "sealed key delivered tag=" in text
    assert run.ticket.ticket not in text
