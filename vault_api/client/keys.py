"""The keys a logged-in client holds in memory (docs/vault.md sections 1, 5, 6),
opened from what the API returns. No I/O: functions of JSON objects.

    ring = Keyring.from_slot(kc, user_id=..., public_key=..., slot=session["slot"])
    ks, g = ring.safe_key(safe)                   # a Safe object of the API
    keys = ring.generations(safe, links)          # every generation, for history

Nothing here is ever written anywhere: Kc is used once to open the key slot
and then dropped; the private key and the safe keys live as long as the
process (one command, or a `vault shell`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from authnet.protocol.encoding import b64u_decode, b64u_encode
from vault_api import crypto as vc
from vault_api.client.errors import CliError, Exit


def dec(text: str, what: str = "value") -> bytes:
    return b64u_decode(text, field=what)


def opt_dec(text: str | None) -> bytes | None:
    return None if text is None else dec(text)


def enc(data: bytes) -> str:
    return b64u_encode(data)


def refused(e: vc.VaultCryptoError) -> CliError:
    """A ciphertext that does not open, said so (never worked around)."""
    return CliError(f"refused: {e.message} ({e.code})", Exit.REFUSED)


def new_account(kc: bytes, *, user_id: bytes, key_id: bytes) -> tuple[Keyring, bytes]:
    """A first login: a new key pair and its first key slot (docs/vault.md 5.1, 5.2)."""
    private_key = vc.generate_key_pair()
    slot = vc.make_slot(kc, private_key, user_id=user_id, key_id=key_id)
    ring = Keyring(
        user_id=user_id,
        public_key=vc.public_key_bytes(private_key),
        private_key=private_key,
        keypair_version=1,
        kc=kc,
        key_id=key_id,
    )
    return ring, slot


@dataclass(kw_only=True)
class Keyring:
    user_id: bytes
    public_key: bytes
    private_key: x25519.X25519PrivateKey = field(repr=False)
    keypair_version: int
    # The session token's Kc and key id, kept for the process's life only by
    # commands that make slots (a vault passphrase needs one per token).
    kc: bytes | None = field(default=None, repr=False)
    key_id: bytes | None = None
    # With a vault passphrase set: the token factor T (docs/vault.md 5.4).
    token_factor: bytes | None = field(default=None, repr=False)
    # (safe id, generation) -> Ks
    _safe_keys: dict[tuple[bytes, int], bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def from_slot(cls, kc: bytes, *, user: Mapping[str, Any], slot: Mapping[str, Any]) -> Keyring:
        """Open the private key from this token's key slot. A slot that does
        not open is refused: never a reason to make a new key pair (5.2)."""
        user_id, public_key = dec(user["user_id"]), dec(user["public_key"])
        key_id = dec(slot["key_id"])
        try:
            private_key = vc.open_slot(
                kc,
                dec(slot["slot"]),
                user_id=user_id,
                key_id=key_id,
                keypair_version=int(slot["keypair_version"]),
                public_key=public_key,
            )
        except vc.VaultCryptoError as e:
            raise CliError(
                f"refused: this token's key slot does not open ({e.code}). Either the slot "
                "was modified, or the client key the network delivered is not this token's "
                "(a substituted key). Nothing was changed; no new key pair was made.",
                Exit.REFUSED,
            ) from None
        return cls(
            user_id=user_id,
            public_key=public_key,
            private_key=private_key,
            keypair_version=int(slot["keypair_version"]),
            kc=kc,
            key_id=key_id,
        )

    @property
    def fingerprint(self) -> str:
        return vc.fingerprint(user_id=self.user_id, public_key=self.public_key)

    def remember(self, safe_id: bytes, generation: int, key: bytes) -> None:
        self._safe_keys[(safe_id, generation)] = key

    def safe_key(self, safe: Mapping[str, Any]) -> tuple[bytes, int]:
        """The current Ks of a safe, from the key sealed to this user."""
        sid, g = dec(safe["id"]), int(safe["generation"])
        known = self._safe_keys.get((sid, g))
        if known is not None:
            return known, g
        try:
            ks = vc.open_safe_key(
                dec(safe["sealed_key"]),
                self.private_key,
                safe_id=sid,
                user_id=self.user_id,
                generation=g,
            )
        except vc.VaultCryptoError as e:
            raise refused(e) from None
        self._safe_keys[(sid, g)] = ks
        return ks, g

    def generations(self, safe: Mapping[str, Any], chain: Mapping[str, Any]) -> dict[int, bytes]:
        """Every generation's key reachable from the current one, through the
        key chain (`GET /api/safes/{id}/keys`)."""
        sid = dec(safe["id"])
        ks, g = self.safe_key(safe)
        links = {
            int(k["generation"]): dec(k["previous_key"])
            for k in chain["keys"]
            if k.get("previous_key")
        }
        try:
            keys = vc.key_chain(ks, safe_id=sid, current_generation=g, links=links)
        except vc.VaultCryptoError as e:
            raise refused(e) from None
        for gen, key in keys.items():
            self._safe_keys[(sid, gen)] = key
        return keys
