"""The phone app's logic, over a key store file (no UI: see cli.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from authnet.protocol.encoding import b64u_encode
from authnet.protocol.payload import parse_payload
from authnet.v1 import passkey_pb2
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.phone import Enrolment, PhoneKeyStore, PhonePassKey, now_ms

DEFAULT_LABEL = "phone"


class PhoneApp:
    def __init__(
        self, store: PhoneKeyStore, *, pin: str | None = None, nodes: Sequence[str] = ()
    ) -> None:
        """`nodes`: other PassKey addresses of the network (a cluster's nodes),
        tried when the enrolled one fails with a retryable error."""
        self.store = store
        self._pin = pin
        self._token: PhonePassKey | None = None
        self.nodes = tuple(nodes)
        # The node that gave the last answer of the last scan (for the demo).
        self.last_node = ""

    @classmethod
    def create(cls, path: Path, *, label: str = DEFAULT_LABEL, pin: str | None = None) -> PhoneApp:
        return cls(PhoneKeyStore.create(path, label=label, pin=pin), pin=pin)

    @classmethod
    def open(cls, path: Path, *, pin: str | None = None) -> PhoneApp:
        return cls(PhoneKeyStore.load(path), pin=pin)

    @property
    def token(self) -> PhonePassKey:
        """The PassKey, unlocked with the app's PIN when it has one."""
        if self._token is None:
            self._token = self.store.unlock(self._pin if self.store.has_pin else None)
        return self._token

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
            existing = (backup_of.token, parent.token_id)
        async with PassKeyApi(network, ca_pem=ca_pem) as api:
            token_id, new_account, name = await flow.enrol(
                api, self.token, label=self.store.label, existing=existing
            )
        enrolment = Enrolment(
            network=network,
            network_name=name,
            ca_pem=ca_pem.decode(),
            token_id=token_id,
            enrolled_ms=now_ms(),
        )
        self.store.add_enrolment(enrolment)
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
        async with self.api(e) as api:
            return await flow.list_tokens(api, self.token, e.token_id)

    async def revoke(self, token_id: bytes, network: str | None = None) -> None:
        e = self.enrolment(network)
        async with self.api(e) as api:
            await flow.revoke_token(api, self.token, e.token_id, token_id)

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
        async with self.api(e) as api:
            try:
                return await flow.login(
                    api, self.token, e.token_id, payload, confirm=confirm, ask_pin=ask_pin
                )
            finally:
                self.last_node = api.last_node

    def token_id_text(self, network: str | None = None) -> str:
        return b64u_encode(self.enrolment(network).token_id)
