"""Helpers the test modules share: a complete login through the real parts."""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from authnet.protocol.payload import LoginPayload
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient, Ticket
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.handshake import AuthRequest
from tokens.login import AskPin, LoginReport
from tokens.passkey import PassKey


@dataclass
class LoginRun:
    ticket: Ticket
    session: BrowserSession
    report: LoginReport
    kc: bytes | None


async def make_phone(
    net: TestNetwork,
    path: Path,
    *,
    label: str = "phone",
    pin: str | None = None,
    backup_of: PhoneApp | None = None,
) -> PhoneApp:
    phone = PhoneApp.create(path, label=label, pin=pin)
    await phone.enrol(net.addresses.passkey, net.ca_pem, backup_of=backup_of)
    return phone


async def login_with(
    sp: AsyncSPClient,
    api: PassKeyApi,
    token: PassKey,
    token_id: bytes,
    *,
    auth_types: str = "c",
    ask_pin: AskPin | None = None,
    post_quantum: bool = False,
) -> LoginRun:
    """A complete login with any PassKey (not only the phone app)."""
    ticket = await sp.get_ticket(auth_types=auth_types)
    session = BrowserSession.for_ticket(ticket, sp.spid, post_quantum=post_quantum)
    async with aiohttp.ClientSession() as http, session.waiting(http) as wait:
        report = await flow.login(
            api, token, token_id, session.payload(), confirm=lambda _: True, ask_pin=ask_pin
        )
        async with asyncio.timeout(10):
            outcome = await wait.result()
    return LoginRun(ticket=ticket, session=session, report=report, kc=outcome.kc)


async def login(
    sp: AsyncSPClient,
    phone: PhoneApp,
    *,
    auth_types: str = "c",
    accept: bool = True,
    http: aiohttp.ClientSession | None = None,
    post_quantum: bool = False,
) -> LoginRun:
    """GetTicket -> browser waits -> phone scans and answers -> browser gets Kc."""
    ticket = await sp.get_ticket(auth_types=auth_types)
    session = BrowserSession.for_ticket(ticket, sp.spid, post_quantum=post_quantum)
    own = http is None
    http = http or aiohttp.ClientSession()
    try:
        async with session.waiting(http) as wait:
            report = await phone.scan(
                session.payload().encode(), confirm=lambda _: accept, ask_pin=None
            )
            async with asyncio.timeout(10):
                outcome = await wait.result()
    finally:
        if own:
            await http.close()
    return LoginRun(ticket=ticket, session=session, report=report, kc=outcome.kc)


@dataclass
class Scanned:
    """A login stopped after BeginAuth: the browser waits, the phone has the challenge."""

    ticket: Ticket
    session: BrowserSession
    payload: LoginPayload
    request: AuthRequest
    api: PassKeyApi
    token: PassKey
    token_id: bytes


@asynccontextmanager
async def scanned(
    sp: AsyncSPClient,
    phone: PhoneApp,
    http: aiohttp.ClientSession,
    *,
    auth_types: str = "c",
    post_quantum: bool = False,
) -> AsyncIterator[tuple[Scanned, Any]]:
    """Yield (Scanned, wait) with the browser waiting and BeginAuth done."""
    ticket = await sp.get_ticket(auth_types=auth_types)
    session = BrowserSession.for_ticket(ticket, sp.spid, post_quantum=post_quantum)
    enrolment = phone.enrolment(None)
    async with session.waiting(http) as wait, phone.api(enrolment) as api:
        payload = session.payload()
        request = await api.begin_auth(
            ticket=ticket.ticket,
            token_id=enrolment.token_id,
            browser_key_hash=payload.offer.digest(),
        )
        yield (
            Scanned(
                ticket=ticket,
                session=session,
                payload=payload,
                request=request,
                api=api,
                token=phone.token,
                token_id=enrolment.token_id,
            ),
            wait,
        )


def encodings(secret: bytes) -> list[bytes]:
    return [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def haystacks(net: TestNetwork) -> dict[str, bytes]:
    data_dir = net.node.data_dir.path
    stacks = {p.name: p.read_bytes() for p in data_dir.glob("authnet.db*")}
    stacks["log"] = net.log_path.read_bytes()
    stacks["state"] = repr(net.network.state.dump()).encode()  # type: ignore[attr-defined]
    stacks["state-bytes"] = b"".join(
        v
        for v in net.network.state.dump()
        if isinstance(v, bytes)  # type: ignore[attr-defined]
    )
    return stacks


def serve_command(data_dir: Path, *extra: str) -> list[str]:
    """`authnet serve` on free ports (metrics too) in `data_dir`, then `extra`."""
    ports = ("--sp-port", "0", "--passkey-port", "0", "--gateway-port", "0")
    return [
        *(sys.executable, "-m", "authnet.cli", "--data-dir", str(data_dir), "serve"),
        *ports,
        *("--metrics-port", "0"),
        *extra,
    ]


@contextmanager
def mailbox_sizes(net: TestNetwork) -> Iterator[list[int]]:
    """The sizes of the sealed keys the network puts in mailboxes."""
    sizes: list[int] = []
    real_put = net.network.state.put_mail

    async def recording_put(th: bytes, sealed: bytes, *, keep_until_ms: int) -> None:
        sizes.append(len(sealed))
        await real_put(th, sealed, keep_until_ms=keep_until_ms)

    net.network.state.put_mail = recording_put  # type: ignore[method-assign]
    try:
        yield sizes
    finally:
        net.network.state.put_mail = real_put  # type: ignore[method-assign]
