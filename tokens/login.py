"""Enrolment, account management and login as a token app performs them:
the phone simulator, and the local agent for tokens plugged into a computer.

The person-facing parts are callbacks: `confirm` shows the AuthRequest (which
SP asks, from which browser) and returns yes/no; `ask_pin` returns the PIN.
Both may be plain or async functions.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from authnet.errors import PinRequired
from authnet.protocol.factors import Factor, Factors
from authnet.protocol.payload import LoginPayload
from authnet.protocol.proofs import Registration
from authnet.v1 import passkey_pb2
from tokens import handshake
from tokens.api import PassKeyApi, Purpose
from tokens.handshake import AuthRequest
from tokens.passkey import PassKey

T = TypeVar("T")
Confirm = Callable[[AuthRequest], bool | Awaitable[bool]]
AskPin = Callable[[AuthRequest | None], str | Awaitable[str]]


async def _answer(value: T | Awaitable[T]) -> T:
    if inspect.isawaitable(value):
        return await value
    return value


async def _verify_pin(token: PassKey, pin: str) -> None:
    """Tokens whose PIN is checked through the network (a phone key store
    hardened by the network's hardener) verify it asynchronously."""
    verify_async = getattr(token, "verify_pin_async", None)
    if verify_async is not None:
        await verify_async(pin)
    else:
        token.verify_pin(pin)


@dataclass(frozen=True, kw_only=True)
class LoginReport:
    request: AuthRequest
    accepted: bool
    proven: Factors
    kc_fingerprint: str | None


async def enrol(
    api: PassKeyApi,
    token: PassKey,
    *,
    label: str,
    existing: tuple[PassKey, bytes] | None = None,
) -> tuple[bytes, bool, str]:
    """Enrol `token`. With `existing` = (token, its id), the new token joins that
    token's account (both sign the same challenge). Returns (token id, whether a
    new account was made, the network's name)."""
    challenge, network_name = await api.challenge(Purpose.ENROL)
    possession = handshake.enrol_proof(token, challenge=challenge, label=label)
    # What an authorising token signs over: the new token's public key, or for
    # FIDO2 the credential it just registered.
    new_key = (
        possession.credential
        if isinstance(possession, Registration)
        else token.description.public_key
    )
    authorisation = None
    if existing is not None:
        parent, parent_id = existing
        authorisation = (
            parent_id,
            handshake.add_token_proof(
                parent, challenge=challenge, existing_token_id=parent_id, new_public_key=new_key
            ),
        )
    token_id, new_account = await api.enrol(
        challenge=challenge,
        description=token.description,
        label=label,
        possession=possession,
        existing=authorisation,
    )
    return token_id, new_account, network_name


async def list_tokens(
    api: PassKeyApi, token: PassKey, token_id: bytes
) -> list[passkey_pb2.TokenInfo]:
    challenge, _ = await api.challenge(Purpose.LIST_TOKENS)
    proof = handshake.list_tokens_proof(token, challenge=challenge, token_id=token_id)
    return list(await api.list_tokens(token_id=token_id, challenge=challenge, proof=proof))


async def revoke_token(api: PassKeyApi, token: PassKey, token_id: bytes, target: bytes) -> None:
    challenge, _ = await api.challenge(Purpose.REVOKE_TOKEN)
    proof = handshake.revoke_token_proof(
        token, challenge=challenge, token_id=token_id, target_token_id=target
    )
    await api.revoke_token(token_id=token_id, challenge=challenge, proof=proof, target=target)


async def login(
    api: PassKeyApi,
    token: PassKey,
    token_id: bytes,
    payload: LoginPayload,
    *,
    confirm: Confirm,
    ask_pin: AskPin | None = None,
) -> LoginReport:
    """Answer a scanned login: BeginAuth, ask the person, then CompleteAuth or DeclineAuth."""
    request = await api.begin_auth(
        ticket=payload.ticket,
        token_id=token_id,
        browser_key_hash=payload.offer.digest(),
    )
    needs_pin = (
        token.has_pin
        and not token.user_verified
        and (Factor.PIN in request.requested or token.locked)
    )
    if not await _answer(confirm(request)):
        if needs_pin and ask_pin is not None:
            await _verify_pin(token, await _answer(ask_pin(request)))
        await api.decline_auth(
            handshake.decline(payload=payload, request=request, token=token, token_id=token_id)
        )
        return LoginReport(request=request, accepted=False, proven=frozenset(), kc_fingerprint=None)
    if needs_pin:
        if ask_pin is None:
            raise PinRequired(f"{request.sp_display_name} needs this token's PIN")
        await _verify_pin(token, await _answer(ask_pin(request)))
    response = handshake.respond(payload=payload, request=request, token=token, token_id=token_id)
    await api.complete_auth(response)
    proven = {Factor.PIN} if response.user_verified else set()
    if response.sealed_kc is not None:
        proven.add(Factor.CLIENT_KEY)
    return LoginReport(
        request=request,
        accepted=True,
        proven=frozenset(proven),
        kc_fingerprint=response.kc_fingerprint,
    )
