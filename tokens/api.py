"""Client of the network's PassKey API, for every token kind.

Server-authenticated TLS against the network CA the token pinned when it
enrolled. Errors arrive as the typed errors of `authnet.errors`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import grpc

from authnet.protocol.ids import check_ticket
from authnet.protocol.proofs import Proof, Registration
from authnet.sdk.failover import AsyncNodes, ReportsNodes, RetryPolicy, addresses_of
from authnet.v1 import passkey_pb2, passkey_pb2_grpc
from tokens.handshake import AuthRequest, AuthResponse, DeclineResponse, auth_request
from tokens.hardened_pin import Evaluation, HardenerInfo
from tokens.passkey import TokenDescription

DEFAULT_TIMEOUT_S = 10.0


def _put_proof(message: Any, proof: Proof) -> None:
    """Set a request's `signature`, or its `webauthn` assertion."""
    if proof.webauthn is not None:
        a = proof.webauthn
        message.webauthn.CopyFrom(
            passkey_pb2.WebAuthnAssertion(
                credential_id=a.credential_id,
                authenticator_data=a.authenticator_data,
                client_data_json=a.client_data_json,
                signature=a.signature,
            )
        )
    else:
        message.signature = proof.signature


def _token_proof(token_id: bytes, challenge: bytes, proof: Proof) -> passkey_pb2.TokenProof:
    p = passkey_pb2.TokenProof(token_id=token_id, challenge=challenge)
    _put_proof(p, proof)
    return p


class Purpose(enum.IntEnum):
    ENROL = 1
    LIST_TOKENS = 2
    REVOKE_TOKEN = 3
    ENROL_PIN = 5


class PassKeyApi(ReportsNodes[AsyncNodes]):
    """`address`: the node the QR code or the enrolment named, or several (a
    sequence, or a comma-separated string): a call that fails with a retryable
    error goes to the next node (`authnet.sdk.failover`)."""

    def __init__(
        self,
        address: str | Sequence[str],
        *,
        ca_pem: bytes,
        timeout: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.addresses = addresses_of(address)
        self.address = self.addresses[0]
        self.timeout = timeout
        self.webauthn_rp_id = ""
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
        self._nodes = AsyncNodes(
            self.addresses,
            channel=lambda a: grpc.aio.secure_channel(a, credentials),
            stub=passkey_pb2_grpc.PassKeyStub,
            policy=retry,
        )

    async def _call(self, name: str, request: Any) -> Any:
        return await self._nodes.call(name, request, deadline_s=self.timeout, metadata=())

    async def challenge(self, purpose: Purpose) -> tuple[bytes, str]:
        """A fresh single-use challenge, and the network's name."""
        r = await self._call(
            "GetChallenge",
            passkey_pb2.GetChallengeRequest(purpose=int(purpose)),  # type: ignore[arg-type]
        )
        self.webauthn_rp_id = str(r.webauthn_rp_id)
        return bytes(r.challenge), str(r.network_name)

    async def webauthn_rp_id_of_network(self) -> str:
        """The relying-party id FIDO2 tokens use with this network."""
        if not self.webauthn_rp_id:
            await self.challenge(Purpose.LIST_TOKENS)
        return self.webauthn_rp_id

    async def enrol(
        self,
        *,
        challenge: bytes,
        description: TokenDescription,
        label: str,
        possession: Proof | Registration,
        existing: tuple[bytes, Proof] | None = None,
    ) -> tuple[bytes, bool]:
        """Enrol; `existing` = (token id, proof) of a token authorising this one."""
        req = passkey_pb2.EnrolRequest(
            challenge=challenge,
            kind=int(description.kind),  # type: ignore[arg-type]
            algorithm=int(description.algorithm),  # type: ignore[arg-type]
            label=label,
        )
        if isinstance(possession, Registration):
            req.webauthn.CopyFrom(
                passkey_pb2.WebAuthnRegistration(
                    client_data_json=possession.client_data_json,
                    attestation_object=possession.attestation_object,
                )
            )
        else:
            req.public_key = description.public_key
            req.signature = possession.signature
        if existing is not None:
            req.existing.CopyFrom(_token_proof(existing[0], challenge, existing[1]))
        r = await self._call("Enrol", req)
        return bytes(r.token_id), bool(r.new_account)

    async def list_tokens(
        self, *, token_id: bytes, challenge: bytes, proof: Proof
    ) -> list[passkey_pb2.TokenInfo]:
        r = await self._call(
            "ListTokens",
            passkey_pb2.ListTokensRequest(proof=_token_proof(token_id, challenge, proof)),
        )
        return list(r.tokens)

    async def revoke_token(
        self, *, token_id: bytes, challenge: bytes, proof: Proof, target: bytes
    ) -> None:
        await self._call(
            "RevokeToken",
            passkey_pb2.RevokeTokenRequest(
                proof=_token_proof(token_id, challenge, proof), token_id=target
            ),
        )

    async def begin_auth(
        self, *, ticket: str, token_id: bytes, browser_key_hash: bytes
    ) -> AuthRequest:
        r = await self._call(
            "BeginAuth",
            passkey_pb2.BeginAuthRequest(
                ticket=check_ticket(ticket), token_id=token_id, browser_key_hash=browser_key_hash
            ),
        )
        return auth_request(
            nonce=r.nonce,
            spid=r.spid,
            sp_name=r.sp_name,
            sp_display_name=r.sp_display_name,
            sp_origins=list(r.sp_origins),
            browser_ip=r.browser.ip,
            browser_user_agent=r.browser.user_agent,
            browser_origin=r.browser.origin,
            auth_types=r.auth_types,
            expires_at_unix_ms=r.expires_at_unix_ms,
            browser_pq_key=r.browser_pq_key or None,
        )

    async def complete_auth(self, response: AuthResponse) -> None:
        req = passkey_pb2.CompleteAuthRequest(
            ticket=response.ticket,
            token_id=response.token_id,
            nonce=response.nonce,
            user_verified=response.user_verified,
        )
        _put_proof(req, response.proof)
        if response.sealed_kc is not None:
            req.sealed_kc.CopyFrom(
                passkey_pb2.SealedKey(
                    enc=response.sealed_kc.enc, ciphertext=response.sealed_kc.ciphertext
                )
            )
        await self._call("CompleteAuth", req)

    async def decline_auth(self, response: DeclineResponse) -> None:
        req = passkey_pb2.DeclineAuthRequest(
            ticket=response.ticket, token_id=response.token_id, nonce=response.nonce
        )
        _put_proof(req, response.proof)
        await self._call("DeclineAuth", req)

    # --- the PIN hardener's relay (tokens.hardened_pin.PinRelay) ---------------

    async def pin_hardener(self, token_id: bytes) -> HardenerInfo:
        r = await self._call("GetPinHardener", passkey_pb2.GetPinHardenerRequest(token_id=token_id))
        return HardenerInfo(
            caller=str(r.caller),
            user_id=str(r.user_id),
            keys={int(k.version): bytes(k.public_key) for k in r.keys},
            current_version=int(r.current_version),
        )

    async def harden_pin(
        self, *, token_id: bytes, blinded_element: bytes, key_version: int
    ) -> Evaluation:
        r = await self._call(
            "HardenPin",
            passkey_pb2.HardenPinRequest(
                token_id=token_id, blinded_element=blinded_element, key_version=key_version
            ),
        )
        return Evaluation(
            key_version=int(r.key_version),
            evaluated_element=bytes(r.evaluated_element),
            proof=bytes(r.proof),
            attempt_id=bytes(r.attempt_id),
            nonce=bytes(r.nonce),
            attempts_left=int(r.attempts_left),
            current_version=int(r.current_version),
        )

    async def confirm_pin(self, *, token_id: bytes, attempt_id: bytes, signature: bytes) -> int:
        r = await self._call(
            "ConfirmPin",
            passkey_pb2.ConfirmPinRequest(
                token_id=token_id, attempt_id=attempt_id, signature=signature
            ),
        )
        return int(r.key_version_recorded)

    async def enrol_pin_challenge(self) -> bytes:
        challenge, _ = await self.challenge(Purpose.ENROL_PIN)
        return challenge

    async def enrol_pin(
        self,
        *,
        token_id: bytes,
        challenge: bytes,
        signature: bytes,
        success_public_key: bytes,
        attempt_id: bytes = b"",
        replace_signature: bytes = b"",
    ) -> bool:
        r = await self._call(
            "EnrolPin",
            passkey_pb2.EnrolPinRequest(
                proof=passkey_pb2.TokenProof(
                    token_id=token_id, challenge=challenge, signature=signature
                ),
                success_public_key=success_public_key,
                attempt_id=attempt_id,
                replace_signature=replace_signature,
            ),
        )
        return bool(r.replaced)

    async def close(self) -> None:
        await self._nodes.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
