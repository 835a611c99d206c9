"""Logins in a loop against a cluster, counting what happened to each, and
checking every one that completes: the browser's Kc is the one the phone
sealed, and the PUID is the same every time for the same phone."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from authnet import errors
from authnet.protocol.ids import browser_key_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk import AsyncSPClient, BrowserSession
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.phone import PhoneKeyStore, PhonePassKey


@dataclass
class Tally:
    started: int = 0
    completed: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    resumed_waits: int = 0

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class LoginLoad:
    def __init__(
        self,
        sp: AsyncSPClient,
        api: PassKeyApi,
        gateways: Sequence[str],
        root: Path,
        phones: int,
    ) -> None:
        self.sp = sp
        self.api = api
        self.gateways = list(gateways)
        self.root = root
        self.n_phones = phones
        self.phones: list[tuple[PhonePassKey, bytes]] = []
        self.puids: dict[bytes, str] = {}
        self.tally = Tally()

    async def setup(self) -> None:
        for i in range(self.n_phones):
            token = PhoneKeyStore.create(self.root / f"phone{i}.json", label=f"p{i}").unlock()
            token_id, _, _ = await flow.enrol(self.api, token, label=f"p{i}")
            self.phones.append((token, token_id))

    async def login(self, http: aiohttp.ClientSession, phone: tuple[PhonePassKey, bytes]) -> None:
        token, token_id = phone
        t = await self.sp.get_ticket(auth_types="c")
        session = BrowserSession(
            ticket=t.ticket,
            spid=self.sp.spid,
            gateway_url=self.gateways[0],
            passkey_address=t.passkey_address,
            gateway_urls=self.gateways,
        )
        async with session.waiting(http) as wait:
            payload = session.payload()
            request = await self.api.begin_auth(
                ticket=t.ticket,
                token_id=token_id,
                browser_key_hash=browser_key_hash(payload.browser_key),
            )
            answer = handshake.respond(
                payload=payload, request=request, token=token, token_id=token_id
            )
            await self.api.complete_auth(answer)
            async with asyncio.timeout(20):
                outcome = await wait.result()
            self.tally.resumed_waits += wait.reconnects
        who = await self.sp.get_puid(t.ticket, finalize=True)
        if outcome.kc is None or kc_fingerprint(outcome.kc) != answer.kc_fingerprint:
            self.tally.wrong.append("the browser's Kc is not the one the phone sealed")
        known = self.puids.setdefault(token_id, who.puid)
        if known != who.puid:
            self.tally.wrong.append("a phone's PUID changed between logins")

    async def run(
        self,
        concurrency: int,
        seconds: float,
        *,
        at: float | None = None,
        event: Callable[[], None] | None = None,
    ) -> float:
        """Logins back to back from `concurrency` workers for `seconds`;
        `event` runs once, `at` seconds in (a node dies, Redis restarts)."""
        start = time.monotonic()
        until = start + seconds

        async def worker(i: int, http: aiohttp.ClientSession) -> None:
            phone = self.phones[i % len(self.phones)]
            while time.monotonic() < until:
                self.tally.started += 1
                try:
                    await self.login(http, phone)
                except (errors.AuthnetError, TimeoutError) as e:
                    code = e.code if isinstance(e, errors.AuthnetError) else "timeout"
                    self.tally.failures[f"{type(e).__name__}:{code}"] += 1
                    await asyncio.sleep(0.05)
                    continue
                self.tally.completed += 1

        async def trigger() -> None:
            if at is not None and event is not None:
                await asyncio.sleep(at)
                await asyncio.to_thread(event)

        async with aiohttp.ClientSession() as http:
            await asyncio.gather(trigger(), *(worker(i, http) for i in range(concurrency)))
        return time.monotonic() - start
