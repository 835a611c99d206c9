"""A phone PIN hardened by the network's hardener (key store version 2).

What the key store's key is made of (docs/protocol.md §17):

    x  = Argon2id(PIN, salt, t, m, p)                          (on the phone)
    y  = POPRF_ristretto255-SHA512(hardener key, x,
                                   info = poprf_info(caller, user_id))  (blind,
         relayed by the network, unblinded and proof-checked on the phone
         against the public key the store pinned)
    K  = HKDF-SHA256(ikm = y, salt = salt, info = "authnet/v1 phone keystore key")

So the file alone does not let anyone check a guess (y needs the hardener, which
counts every evaluation against the token's budget), and the hardener alone
does not either (it never sees x or y, and has no ciphertext). A successful
unlock signs the hardener's success message with the Ed25519 success key that
lives inside the sealed secrets; that proven success, and nothing else,
resets the token's count.

This module is the protocol: plain functions over bytes, and the `PinRelay`
interface the steps are run through (the network's PassKey API implements it,
`tokens.api.PassKeyApi`). No I/O of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authnet.errors import HardenerKeyMismatch, KeystoreError
from authnet.protocol import labels
from authnet.protocol.encoding import transcript
from hardener import labels as hlabels
from hardener import oprf

KDF = "argon2id+hardener"


# --- what the store pins ------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PinnedHardener:
    """The public facts a version-2 key store keeps about its hardener."""

    # The PassKey address of the network that relays (one of the enrolments).
    network: str
    # The network's caller name at the hardener, and this token's user id there.
    caller: str
    user_id: str
    key_version: int
    # The version's 32-byte POPRF public key: an evaluation whose proof does
    # not verify against it is refused.
    public_key: bytes

    @property
    def info(self) -> bytes:
        return hlabels.poprf_info(self.caller, self.user_id)


@dataclass(frozen=True, kw_only=True)
class HardenerInfo:
    """What GetPinHardener says: the caller name, the token's user id, and the
    public key of every usable version."""

    caller: str
    user_id: str
    keys: dict[int, bytes]
    current_version: int

    def pin(self, network: str, version: int | None = None) -> PinnedHardener:
        v = self.current_version if version is None else version
        if v not in self.keys:
            raise HardenerKeyMismatch(
                f"the network's hardener has no usable key version {v}: nothing was changed"
            )
        return PinnedHardener(
            network=network,
            caller=self.caller,
            user_id=self.user_id,
            key_version=v,
            public_key=self.keys[v],
        )


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """One relayed evaluation (HardenPin's answer)."""

    key_version: int
    evaluated_element: bytes
    proof: bytes
    attempt_id: bytes
    nonce: bytes
    attempts_left: int
    # The hardener's current version, as the network last saw it (0: unknown).
    current_version: int = 0


class PinRelay(Protocol):
    """The network's relay to its hardener (PassKey API, §17)."""

    async def pin_hardener(self, token_id: bytes) -> HardenerInfo: ...

    async def harden_pin(
        self, *, token_id: bytes, blinded_element: bytes, key_version: int
    ) -> Evaluation: ...

    async def confirm_pin(self, *, token_id: bytes, attempt_id: bytes, signature: bytes) -> int: ...

    async def enrol_pin(
        self,
        *,
        token_id: bytes,
        challenge: bytes,
        signature: bytes,
        success_public_key: bytes,
        attempt_id: bytes = b"",
        replace_signature: bytes = b"",
    ) -> bool: ...

    async def enrol_pin_challenge(self) -> bytes: ...


# --- the steps ----------------------------------------------------------------


def slow_hash(pin: str, salt: bytes, params: dict[str, int]) -> bytes:
    """x = Argon2id(UTF-8(PIN), salt, t, m, p, 32 bytes): the step in front."""
    return hash_secret_raw(
        pin.encode("utf-8"),
        salt,
        time_cost=params["t"],
        memory_cost=params["m"],
        parallelism=params["p"],
        hash_len=32,
        type=Type.ID,
    )


@dataclass(frozen=True)
class Blinding:
    """One blinded PIN hash, kept on the phone until the answer comes back."""

    x: bytes = field(repr=False)
    blind: bytes = field(repr=False)
    blinded_element: bytes
    tweaked_key: bytes
    pinned: PinnedHardener


def blind(x: bytes, pinned: PinnedHardener) -> Blinding:
    try:
        b = oprf.poprf_blind(x, pinned.info, pinned.public_key)
    except oprf.OprfError:
        raise KeystoreError(
            "the key store's pinned hardener key is not a valid public key: the file is damaged"
        ) from None
    return Blinding(x, b.blind, b.blinded_element, b.tweaked_key, pinned)


def finalize(b: Blinding, e: Evaluation) -> bytes:
    """y, after checking the proof against the pinned key. A hardener that
    answers under another key (or another version) is refused."""
    if e.key_version != b.pinned.key_version:
        raise HardenerKeyMismatch(
            f"the hardener answered under key version {e.key_version}, not the pinned "
            f"{b.pinned.key_version}: nothing was changed"
        )
    try:
        y: bytes = oprf.poprf_finalize(
            b.x,
            b.blind,
            e.evaluated_element,
            b.blinded_element,
            e.proof,
            b.pinned.info,
            b.tweaked_key,
        )
    except oprf.OprfError:
        raise HardenerKeyMismatch(
            "the hardener's answer does not verify against the key this key store pinned "
            f"(version {b.pinned.key_version}): refused, nothing was changed. If the hardener's "
            "operator replaced its key, ask them; a hardener that changes its key is not trusted"
        ) from None
    return y


def store_key(y: bytes, salt: bytes) -> bytes:
    """K = HKDF-SHA256(ikm = y, salt, info = "authnet/v1 phone keystore key")."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=salt, info=labels.PHONE_KEYSTORE_KEY
    ).derive(y)


def aad(public_key: bytes, params: dict[str, int], pinned: PinnedHardener) -> bytes:
    """What the sealed secrets are bound to: the token's public key, the KDF and
    its parameters, and the hardener facts (caller, user id, version, pinned key)."""
    return transcript(
        labels.PHONE_KEYSTORE,
        public_key,
        KDF.encode(),
        *(params[k].to_bytes(4, "big") for k in ("t", "m", "p")),
        pinned.caller.encode(),
        pinned.user_id.encode(),
        pinned.key_version.to_bytes(4, "big"),
        pinned.public_key,
    )


def success_signature(key: Ed25519PrivateKey, pinned: PinnedHardener, e: Evaluation) -> bytes:
    """The proven success the hardener resets the count on."""
    return key.sign(hlabels.success_message(pinned.caller, pinned.user_id, e.attempt_id, e.nonce))


def replace_signature(
    old: Ed25519PrivateKey, pinned: PinnedHardener, e: Evaluation, new_public_key: bytes
) -> bytes:
    """The old success key authorising its replacement (a PIN change)."""
    return old.sign(
        hlabels.enrol_message(pinned.caller, pinned.user_id, e.attempt_id, e.nonce, new_public_key)
    )


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


__all__ = [
    "KDF",
    "Blinding",
    "Evaluation",
    "HardenerInfo",
    "PinRelay",
    "PinnedHardener",
    "aad",
    "blind",
    "finalize",
    "raw_public",
    "replace_signature",
    "slow_hash",
    "store_key",
    "success_signature",
]
