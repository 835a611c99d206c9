"""The phone app's logic, over a key store file (no UI: see cli.py).

A PIN-protected key store is hardened by the network's hardener when the
phone enrols with a network that runs one (key store version 2: a copied file
cannot be attacked offline; unlocking needs the network). `offline_pin=True`
keeps the Argon2id-only store (version 1), which unlocks without a network
and is weaker: see `OFFLINE_PIN_WARNING`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from authnet.errors import HardenerNotConfigured
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.payload import parse_payload
from authnet.v1 import passkey_pb2
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.phone import Enrolment, PhoneKeyStore, PhonePassKey, now_ms

DEFAULT_LABEL = "phone"
OFFLINE_PIN_WARNING = (
    "warning: this PIN is checked on the phone only (Argon2id): whoever copies the key store "
    "file can guess PINs offline at a few tens of milliseconds per guess, and a 6-digit PIN "
    "falls within hours. A PIN hardened by the network (the default when the network has a "
    "hardener) stops after 10 wrong PINs, copied file or not"
)


class PhoneApp:
    def __init__(
        self,
        store: PhoneKeyStore,
        *,
        pin: str | None = None,
        nodes: Sequence[str] = (),
        offline_pin: bool = False,
    ) -> None:
        """`nodes`: other PassKey addresses of the network (a cluster's nodes),
        tried when the enrolled one fails with a retryable error.
        `offline_pin`: keep an Argon2id-only PIN even when a network offers a
        hardener (weaker; the person's choice)."""
        self.store = store
        self._pin = pin
        self.offline_pin = offline_pin or store.offline_pin
        # Set by enrol(): whether the PIN was hardened, or why not.
        self.pin_note = ""
        self._token: PhonePassKey | None = None
        self.nodes = tuple(nodes)
        # The node that gave the last answer of the last scan (for the demo).
        self.last_node = ""

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        label: str = DEFAULT_LABEL,
        pin: str | None = None,
        offline_pin: bool = False,
    ) -> PhoneApp:
        store = PhoneKeyStore.create(path, label=label, pin=pin, offline_pin=offline_pin)
        return cls(store, pin=pin)

    @classmethod
    def open(cls, path: Path, *, pin: str | None = None, nodes: Sequence[str] = ()) -> PhoneApp:
        return cls(PhoneKeyStore.load(path), pin=pin, nodes=nodes)

    @property
    def token(self) -> PhonePassKey:
        """The PassKey, unlocked with the app's PIN when it has one (a hardened
        store stays locked here: `unlocked()` opens it through the network)."""
        if self._token is None:
            pin = self._pin if self.store.has_pin and not self.store.hardened else None
            self._token = self.store.unlock(pin)
        return self._token

    @contextlib.asynccontextmanager
    async def _pin_relay(self, api: PassKeyApi | None = None) -> AsyncIterator[PhonePassKey]:
        """The token, with its relay to the network that hardens its PIN (`api`
        when that is the one), unlocked with the app's PIN when it has one."""
        token = self.token
        pinned = self.store.pinned
        if pinned is None:
            yield token
            return
        async with contextlib.AsyncExitStack() as stack:
            if api is None or api.address != pinned.network:
                api = await stack.enter_async_context(
                    self.api(self.store.enrolment_for(pinned.network))
                )
            token.relay = api
            try:
                if token.locked and self._pin is not None:
                    await token.verify_pin_async(self._pin)
                yield token
            finally:
                token.relay = None

    async def unlocked(self) -> PhonePassKey:
        """The token unlocked with the app's PIN (through the network for a
        hardened store)."""
        async with self._pin_relay() as token:
            return token

    async def set_pin(self, new_pin: str, network: str | None = None) -> None:
        """Set or change the PIN, hardened by `network`'s hardener (default: the
        network already hardening it, or the only enrolment)."""
        pinned = self.store.pinned
        e = self.enrolment(pinned.network if pinned is not None and network is None else network)
        async with self.api(e) as api, self._pin_relay(api) as token:
            await token.set_pin(new_pin, api, e)
        self._pin = new_pin

    async def _harden_after_enrol(self, api: PassKeyApi, enrolment: Enrolment) -> None:
        """A PIN still checked on the phone only is hardened by the network it
        just enrolled with, when that network has a hardener."""
        if not self.store.has_pin or self.store.hardened or self._pin is None:
            return
        if self.offline_pin:
            self.pin_note = OFFLINE_PIN_WARNING
            return
        try:
            await self.token.set_pin(self._pin, api, enrolment)
        except HardenerNotConfigured:
            self.pin_note = (
                f"{enrolment.network_name} has no PIN hardener: the PIN stays checked on the "
                "phone only (Argon2id). " + OFFLINE_PIN_WARNING
            )
            return
        self.pin_note = (
            f"the PIN is now hardened by {enrolment.network_name}'s hardener: 10 wrong PINs "
            "and it stops, even for a copy of the key store"
        )

    def api(self, enrolment: Enrolment) -> PassKeyApi:
        return PassKeyApi([enrolment.network, *self.nodes], ca_pem=enrolment.ca_pem.encode())

    async def enrol(
        self, network: str, ca_pem: bytes, *, backup_of: PhoneApp | None = None
    ) -> tuple[Enrolment, bool]:
        """Enrol with the network at `network` (its PassKey API), trusting `ca_pem`
        from now on. With `backup_of`, join that phone's account."""
        existing = None
        if backup_of is not None:
            parent = backup_of.store.enrolment_for(network)
            existing = (await backup_of.unlocked(), parent.token_id)
        token = await self.unlocked()
        async with PassKeyApi(network, ca_pem=ca_pem) as api:
            token_id, new_account, name = await flow.enrol(
                api, token, label=self.store.label, existing=existing
            )
            enrolment = Enrolment(
                network=network,
                network_name=name,
                ca_pem=ca_pem.decode(),
                token_id=token_id,
                enrolled_ms=now_ms(),
            )
            self.store.add_enrolment(enrolment)
            await self._harden_after_enrol(api, enrolment)
        return enrolment, new_account

    def enrolment(self, network: str | None) -> Enrolment:
        if network is not None:
            return self.store.enrolment_for(network)
        enrolments = self.store.enrolments()
        if len(enrolments) != 1:
            # enrolment_for names the known networks in its error.
            return self.store.enrolment_for(network or "(none given)")
        return enrolments[0]

    async def tokens(self, network: str | None = None) -> list[passkey_pb2.TokenInfo]:
        e = self.enrolment(network)
        async with self.api(e) as api, self._pin_relay(api) as token:
            return await flow.list_tokens(api, token, e.token_id)

    async def revoke(self, token_id: bytes, network: str | None = None) -> None:
        e = self.enrolment(network)
        async with self.api(e) as api, self._pin_relay(api) as token:
            await flow.revoke_token(api, token, e.token_id, token_id)

    async def scan(
        self,
        text: str,
        *,
        confirm: flow.Confirm,
        ask_pin: flow.AskPin | None = None,
    ) -> flow.LoginReport:
        """Answer a scanned login code."""
        payload = parse_payload(text)
        e = self.store.enrolment_for(str(payload.network))
        if self._token is None and self.store.has_pin and self._pin is None:
            self._token = self.store.unlock(None)  # locked; flow.login asks for the PIN
        async with self.api(e) as api, self._pin_relay(api) as token:
            try:
                return await flow.login(
                    api, token, e.token_id, payload, confirm=confirm, ask_pin=ask_pin
                )
            finally:
                self.last_node = api.last_node

    def token_id_text(self, network: str | None = None) -> str:
        return b64u_encode(self.enrolment(network).token_id)
