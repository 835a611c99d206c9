"""PassKey gRPC service (server-authenticated TLS). Tokens authenticate each
request by signature; see authnet.protocol.messages for what they sign."""

from __future__ import annotations

import time
from typing import Any

from authnet.errors import RateLimited
from authnet.network import Network, TokenProof
from authnet.pin_relay import PinRelay
from authnet.protocol.factors import format_factors
from authnet.protocol.proofs import Assertion, Proof
from authnet.protocol.sealing import SealedKey
from authnet.ratelimit import RateLimiter, address_key, peer_host
from authnet.server.guard import rpc
from authnet.v1 import passkey_pb2, passkey_pb2_grpc


def _assertion(a: passkey_pb2.WebAuthnAssertion) -> Assertion:
    return Assertion(
        credential_id=a.credential_id,
        authenticator_data=a.authenticator_data,
        client_data_json=a.client_data_json,
        signature=a.signature,
    )


def _signed(signature: bytes, message: Any) -> Proof:
    """A request's proof: its `signature`, or its `webauthn` assertion when set."""
    return Proof(
        signature=signature,
        webauthn=_assertion(message.webauthn) if message.HasField("webauthn") else None,
    )


def _proof(p: passkey_pb2.TokenProof) -> TokenProof:
    return TokenProof(token_id=p.token_id, challenge=p.challenge, proof=_signed(p.signature, p))


class PassKeyServicer(passkey_pb2_grpc.PassKeyServicer):
    """`challenges`: how often one client address may call GetChallenge on this
    node. Anyone may call it (no credential is needed to enrol), and each call
    keeps a challenge in the shared state until it expires, so without a limit
    one client could fill the state store."""

    def __init__(
        self,
        network: Network,
        *,
        challenges: RateLimiter | None = None,
        pins: PinRelay | None = None,
        pin_attempts: RateLimiter | None = None,
    ) -> None:
        self.network = network
        # The relay to the network's PIN hardener (one without a client answers
        # every PIN call with no_hardener).
        self.pins = pins or PinRelay(network, None)
        # HardenPin calls per client address: the hardener limits each token
        # (and this network as a caller); this keeps one client from spending
        # the network's caller budget on many tokens' PINs.
        if pin_attempts is None:  # (a RateLimiter with no buckets yet is falsy)
            pin_attempts = RateLimiter(rate_per_s=5.0, burst=30)
        self.pin_attempts = pin_attempts
        if challenges is None:
            challenges = RateLimiter(rate_per_s=20.0, burst=40)
        self.challenges = challenges

    @rpc
    async def GetChallenge(self, request: passkey_pb2.GetChallengeRequest, context: Any) -> Any:
        wait_ms = self.challenges.take(address_key(peer_host(context.peer())), time.monotonic())
        if wait_ms:
            raise RateLimited(retry_after_ms=wait_ms)
        challenge, until = await self.network.get_challenge(int(request.purpose))
        return passkey_pb2.GetChallengeResponse(
            challenge=challenge,
            expires_at_unix_ms=until,
            network_name=self.network.network_name,
            webauthn_rp_id=self.network.relying_party.rp_id,
        )

    @rpc
    async def Enrol(self, request: passkey_pb2.EnrolRequest, context: Any) -> Any:
        token_id, new_account = await self.network.enrol(
            challenge=request.challenge,
            kind=int(request.kind),
            algorithm=int(request.algorithm),
            public_key=request.public_key,
            label=request.label,
            signature=request.signature,
            existing=_proof(request.existing) if request.HasField("existing") else None,
            registration=(
                (request.webauthn.client_data_json, request.webauthn.attestation_object)
                if request.HasField("webauthn")
                else None
            ),
        )
        return passkey_pb2.EnrolResponse(token_id=token_id, new_account=new_account)

    @rpc
    async def ListTokens(self, request: passkey_pb2.ListTokensRequest, context: Any) -> Any:
        records = await self.network.list_tokens(_proof(request.proof))
        return passkey_pb2.ListTokensResponse(
            tokens=[
                passkey_pb2.TokenInfo(
                    token_id=t.token_id,
                    kind=t.kind,  # type: ignore[arg-type]
                    label=t.label,
                    created_at_unix_ms=t.created_ms,
                    revoked_at_unix_ms=t.revoked_ms or 0,
                    last_used_at_unix_ms=t.last_used_ms or 0,
                )
                for t in records
            ]
        )

    @rpc
    async def RevokeToken(self, request: passkey_pb2.RevokeTokenRequest, context: Any) -> Any:
        await self.network.revoke_token(_proof(request.proof), request.token_id)
        return passkey_pb2.RevokeTokenResponse()

    @rpc
    async def BeginAuth(self, request: passkey_pb2.BeginAuthRequest, context: Any) -> Any:
        c = await self.network.begin_auth(
            request.ticket, request.token_id, request.browser_key_hash
        )
        return passkey_pb2.BeginAuthResponse(
            nonce=c.nonce,
            spid=c.spid,
            sp_name=c.sp_name,
            sp_display_name=c.sp_display_name,
            browser=passkey_pb2.BrowserHints(
                ip=c.hints.ip, user_agent=c.hints.user_agent, origin=c.hints.origin
            ),
            auth_types=format_factors(c.requested),
            expires_at_unix_ms=c.expires_ms,
            sp_origins=list(c.sp_origins),
            webauthn_rp_id=self.network.relying_party.rp_id,
            browser_pq_key=c.browser_pq_key or b"",
        )

    @rpc
    async def CompleteAuth(self, request: passkey_pb2.CompleteAuthRequest, context: Any) -> Any:
        sealed = None
        if request.HasField("sealed_kc"):
            sealed = SealedKey(enc=request.sealed_kc.enc, ciphertext=request.sealed_kc.ciphertext)
        await self.network.complete_auth(
            request.ticket,
            token_id=request.token_id,
            nonce=request.nonce,
            user_verified=request.user_verified,
            sealed=sealed,
            proof=_signed(request.signature, request),
        )
        return passkey_pb2.CompleteAuthResponse()

    @rpc
    async def DeclineAuth(self, request: passkey_pb2.DeclineAuthRequest, context: Any) -> Any:
        await self.network.decline_auth(
            request.ticket,
            token_id=request.token_id,
            nonce=request.nonce,
            proof=_signed(request.signature, request),
        )
        return passkey_pb2.DeclineAuthResponse()

    # --- the PIN hardener's relay (docs/protocol.md §17) -----------------------

    @rpc
    async def GetPinHardener(self, request: passkey_pb2.GetPinHardenerRequest, context: Any) -> Any:
        user_id, keys = await self.pins.info(request.token_id)
        return passkey_pb2.GetPinHardenerResponse(
            caller=keys.caller,
            user_id=user_id,
            keys=[
                passkey_pb2.PinHardenerKey(version=v, public_key=pk)
                for v, pk in sorted(keys.keys.items())
            ],
            current_version=keys.current_version,
        )

    @rpc
    async def HardenPin(self, request: passkey_pb2.HardenPinRequest, context: Any) -> Any:
        wait_ms = self.pin_attempts.take(address_key(peer_host(context.peer())), time.monotonic())
        if wait_ms:
            raise RateLimited(
                f"too many PIN attempts from this address: retry in {wait_ms} ms",
                retry_after_ms=wait_ms,
            )
        r = await self.pins.harden(request.token_id, request.blinded_element, request.key_version)
        e = r.evaluation
        return passkey_pb2.HardenPinResponse(
            key_version=e.key_version,
            evaluated_element=e.evaluated_element,
            proof=e.proof,
            attempt_id=e.attempt_id,
            nonce=e.nonce,
            attempts_left=e.attempts_left,
            current_version=r.current_version,
        )

    @rpc
    async def ConfirmPin(self, request: passkey_pb2.ConfirmPinRequest, context: Any) -> Any:
        version = await self.pins.confirm(request.token_id, request.attempt_id, request.signature)
        return passkey_pb2.ConfirmPinResponse(key_version_recorded=version)

    @rpc
    async def EnrolPin(self, request: passkey_pb2.EnrolPinRequest, context: Any) -> Any:
        replaced = await self.pins.enrol(
            _proof(request.proof),
            request.success_public_key,
            attempt_id=request.attempt_id,
            replace_signature=request.replace_signature,
        )
        return passkey_pb2.EnrolPinResponse(replaced=replaced)
