"""The vault server as the hardener's caller: it only relays.

Clients (the page, the CLI) blind their slow-hashed secret themselves and
send the blinded element here; this forwards it to the hardener over mTLS
with the vault's caller certificate, under the user id
`<user id>:<purpose>` that the *server* derives from the session (a client
cannot spend another user's budget, or pick its own user id), and returns the
evaluation. The server never sees the secret, its slow hash, or the hardened
value: only a blinded element (a uniformly random group element) and the
hardener's answer to it, which only the client's blind undoes.

Hardener errors are translated here, once, into the API's (vault_api.errors).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hardener import errors as herrors
from hardener.client import Evaluation, HardenerClient, Keys
from hardener.credentials import CallerCredentials
from vault_api.config import Settings
from vault_api.crypto.factors import Purpose, hardener_user_id
from vault_api.errors import (
    ApiError,
    Conflict,
    Invalid,
    Locked,
    NotConfigured,
    TooMany,
    Unavailable,
)

log = logging.getLogger("vault_api.relay")


def translate(e: herrors.HardenerError, purpose: str = "") -> ApiError:
    """One hardener refusal as the API's error (messages carry no secret)."""
    what = {"passphrase": "vault passphrase", "recovery": "recovery secret"}.get(purpose, "secret")
    if isinstance(e, herrors.UserLocked):
        return Locked(
            f"too many wrong attempts at this {what}: the hardener has locked it. "
            + (
                "Open the vault with your recovery code or passphrase instead, or ask the "
                "operator to unlock it after checking who you are"
                if purpose == "passphrase"
                else "Ask the vault's operator to unlock it after checking who you are"
            ),
            code="hardener_locked",
            hint=e.hint,
            attempts_left=0,
        )
    if isinstance(e, herrors.UserBackoff | herrors.RateLimited):
        return TooMany(
            f"too many attempts at this {what} in a short time: wait "
            f"{max(1, e.retry_after_ms // 1000)} s and try again",
            code="hardener_backoff" if isinstance(e, herrors.UserBackoff) else "hardener_busy",
            retry_after_ms=e.retry_after_ms,
            attempts_left=e.attempts_left,
        )
    if isinstance(e, herrors.HardenerUnavailable):
        return Unavailable(
            "the hardener (the service that protects vault passphrases and recovery) cannot "
            "be reached; nothing was changed. Try again in a moment",
            code="hardener_unavailable",
        )
    if isinstance(e, herrors.InvalidArgument):
        return Invalid(f"the hardener refused the request: {e.message}", code="hardener_invalid")
    if isinstance(e, herrors.KeyVersionUnknown | herrors.KeyVersionRetired):
        return Conflict(
            f"the hardener no longer has key version {e.key_version or '?'}; {e.message}",
            code=f"hardener_{e.code}",
        )
    return Conflict(f"the hardener refused: {e.message}", code=f"hardener_{e.code}")


@dataclass(frozen=True, kw_only=True)
class Relay:
    client: HardenerClient

    @classmethod
    def from_settings(cls, settings: Settings) -> Relay | None:
        if not settings.hardener_configured:
            return None
        assert settings.hardener_credentials is not None
        creds = CallerCredentials.load(settings.hardener_credentials)
        client = HardenerClient(
            settings.hardener_address,
            creds,
            server_name=settings.hardener_server_name or None,
        )
        return cls(client=client)

    @property
    def caller(self) -> str:
        return self.client.caller

    async def close(self) -> None:
        await self.client.close()

    async def keys(self) -> Keys:
        try:
            return await self.client.get_keys()
        except herrors.HardenerError as e:
            raise translate(e) from None

    async def evaluate(
        self, user_id: bytes, purpose: Purpose, blinded_element: bytes, key_version: int
    ) -> Evaluation:
        try:
            ev = await self.client.evaluate(
                hardener_user_id(user_id, purpose), blinded_element, key_version
            )
        except herrors.HardenerError as e:
            log.info("hardener refused an evaluation purpose=%s code=%s", purpose, e.code)
            raise translate(e, purpose) from None
        return ev

    async def report_success(
        self, user_id: bytes, purpose: Purpose, attempt_id: bytes, signature: bytes
    ) -> int:
        try:
            return await self.client.report_success(
                hardener_user_id(user_id, purpose), attempt_id, signature
            )
        except herrors.HardenerError as e:
            raise translate(e, purpose) from None

    async def enrol(self, user_id: bytes, purpose: Purpose, success_public_key: bytes) -> None:
        try:
            await self.client.enrol(hardener_user_id(user_id, purpose), success_public_key)
        except herrors.AlreadyEnrolled:
            raise Conflict(
                f"the hardener already holds a success key for this account's {purpose} that "
                "this vault does not know (the vault's database was restored?); the hardener's "
                "operator can reset it with `hardener unlock vault USER_ID --forget-key`",
                code="hardener_already_enrolled",
            ) from None
        except herrors.HardenerError as e:
            raise translate(e, purpose) from None


def require(relay: Relay | None) -> Relay:
    """The relay, or a clear 409 when this vault has no hardener configured."""
    if relay is None:
        raise NotConfigured(
            "this vault has no hardener configured, so a vault passphrase or a recovery "
            "slot cannot be set or used; the operator sets hardener_address and "
            "hardener_credentials (docs/vault.md 16)",
            code="hardener_not_configured",
        )
    return relay
