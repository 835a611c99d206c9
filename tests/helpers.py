"""Helpers the test modules share: a complete login through the real parts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient, Ticket
from authnet.testing import TestNetwork
from simulators.phone.app import PhoneApp
from tokens.login import LoginReport


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


async def login(
    sp: AsyncSPClient,
    phone: PhoneApp,
    *,
    auth_types: str = "c",
    accept: bool = True,
    http: aiohttp.ClientSession | None = None,
) -> LoginRun:
    """GetTicket -> browser waits -> phone scans and answers -> browser gets Kc."""
    ticket = await sp.get_ticket(auth_types=auth_types)
    session = BrowserSession(
        ticket=ticket.ticket,
        spid=sp.spid,
        gateway_url=ticket.gateway_url,
        passkey_address=ticket.passkey_address,
    )
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
