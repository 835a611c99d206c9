"""Version 2 of the phone key store: the PIN hardened by the network's hardener.

The operations over a `PhoneKeyStore` document whose protocol is in
`tokens.hardened_pin` (docs/protocol.md §17): setting or changing the PIN
(a new success key, enrolled by a token-signed EnrolPin), unlocking through
the network's relay, and the lazy re-key after the hardener rotated its key.
Every step that can fail runs before the file is written.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from authnet.errors import (
    AuthnetError,
    ChallengeInvalid,
    HardenerRefused,
    HardenerUnavailable,
    KeystoreError,
    NetworkUnavailable,
    PinInvalid,
    PinLocked,
)
from authnet.protocol import messages
from authnet.protocol.encoding import b64u_decode, b64u_encode
from tokens import hardened_pin as hp
from tokens.enrolments import Enrolment
from tokens.phone_secrets import (
    ARGON2,
    HARDENED_VERSION,
    MIN_PIN_LENGTH,
    PIN_ATTEMPTS,
    StoreSecrets,
    kek,
)

if TYPE_CHECKING:
    from tokens.phone import PhoneKeyStore


class HardenedStore:
    """The version-2 operations on one key store."""

    def __init__(self, store: PhoneKeyStore) -> None:
        self.store = store

    def _params(self) -> dict[str, int]:
        return {k: int(self.store.doc["sealed"][k]) for k in ("t", "m", "p")}

    def _salt(self) -> bytes:
        return b64u_decode(self.store.doc["sealed"]["salt"], field="salt")

    def _sealed_doc(
        self,
        sec: StoreSecrets,
        *,
        pinned: hp.PinnedHardener,
        params: dict[str, int],
        salt: bytes,
        y: bytes,
    ) -> dict[str, Any]:
        """The document with `sec` sealed under K = HKDF(y, salt) (not saved)."""
        nonce = secrets.token_bytes(12)
        ct = AESGCM(hp.store_key(y, salt)).encrypt(
            nonce, sec.to_bytes(), hp.aad(self.store.public_key, params, pinned)
        )
        doc = {k: v for k, v in self.store.doc.items() if k not in ("secrets", "sealed")}
        doc["version"] = HARDENED_VERSION
        doc["protection"] = "pin"
        doc["sealed"] = {
            "kdf": hp.KDF,
            **params,
            "salt": b64u_encode(salt),
            "nonce": b64u_encode(nonce),
            "ciphertext": b64u_encode(ct),
            "hardener": {
                "network": pinned.network,
                "caller": pinned.caller,
                "user_id": pinned.user_id,
                "key_version": pinned.key_version,
                "public_key": b64u_encode(pinned.public_key),
            },
        }
        doc["pin_attempts_left"] = PIN_ATTEMPTS
        return doc

    async def _evaluate(
        self, relay: hp.PinRelay, token_id: bytes, x: bytes, pinned: hp.PinnedHardener
    ) -> tuple[bytes, hp.Evaluation]:
        b = hp.blind(x, pinned)
        e = await relay.harden_pin(
            token_id=token_id, blinded_element=b.blinded_element, key_version=pinned.key_version
        )
        return hp.finalize(b, e), e

    async def set_pin(
        self,
        sec: StoreSecrets,
        pin: str,
        relay: hp.PinRelay,
        enrolment: Enrolment,
        *,
        old: tuple[StoreSecrets, hp.PinnedHardener] | None = None,
    ) -> StoreSecrets:
        """Seal `sec` under `pin` hardened by `enrolment`'s network: a new
        success key is enrolled (the token signs the request; `old` = the
        current secrets and hardener when replacing one), one evaluation is
        spent and at once proven a success. Nothing is saved unless every step
        succeeded; returns the secrets as sealed (with their success key)."""
        if len(pin) < MIN_PIN_LENGTH:
            raise KeystoreError(f"a PIN needs at least {MIN_PIN_LENGTH} characters")
        info = await relay.pin_hardener(enrolment.token_id)
        pinned = info.pin(enrolment.network)
        if old is not None and (old[1].caller, old[1].user_id) != (pinned.caller, pinned.user_id):
            raise KeystoreError(
                "this key store's PIN is hardened by another network: change it there"
            )
        salt = secrets.token_bytes(16)
        y, e = await self._evaluate(relay, enrolment.token_id, kek(pin, salt, ARGON2), pinned)
        success = Ed25519PrivateKey.generate()
        new = sec.with_success_key(success)
        public_success = hp.raw_public(success)
        replace = b""
        if old is not None and old[0].success_key is not None:
            replace = hp.replace_signature(old[0].success_key, pinned, e, public_success)
        await self._enrol(
            relay,
            enrolment.token_id,
            sec,
            public_success,
            attempt_id=e.attempt_id if replace else b"",
            replace_signature=replace,
        )
        self.store.doc = self._sealed_doc(new, pinned=pinned, params=dict(ARGON2), salt=salt, y=y)
        self.store.save()
        if not replace:  # a replacement is itself the proven success of attempt e
            await self._report(relay, enrolment.token_id, new, pinned, e)
        return new

    async def _report(
        self,
        relay: hp.PinRelay,
        token_id: bytes,
        sec: StoreSecrets,
        pinned: hp.PinnedHardener,
        e: hp.Evaluation,
    ) -> bool:
        """Prove the success to the hardener (resets the count). A network or
        hardener that is away now does not undo the unlock: the next proven
        success resets the count as well."""
        if sec.success_key is None:
            raise KeystoreError("this hardened key store has no success key: set the PIN again")
        signature = hp.success_signature(sec.success_key, pinned, e)
        try:
            await relay.confirm_pin(token_id=token_id, attempt_id=e.attempt_id, signature=signature)
        except (NetworkUnavailable, HardenerUnavailable, ChallengeInvalid):
            # Away, or a retried call whose first try may have been recorded.
            return False
        except HardenerRefused as err:
            if err.detail.get("hardener_code") != "not_enrolled":
                raise
            # The hardener's operator forgot this token's success key (its
            # recovery step for a lost one): the unlocked token enrols it
            # again, signing the request, and reports the success.
            await self._enrol(relay, token_id, sec, hp.raw_public(sec.success_key))
            await relay.confirm_pin(token_id=token_id, attempt_id=e.attempt_id, signature=signature)
        return True

    async def _enrol(
        self,
        relay: hp.PinRelay,
        token_id: bytes,
        sec: StoreSecrets,
        success_public_key: bytes,
        *,
        attempt_id: bytes = b"",
        replace_signature: bytes = b"",
    ) -> bool:
        """EnrolPin, signed by the token's authentication key."""
        challenge = await relay.enrol_pin_challenge()
        return await relay.enrol_pin(
            token_id=token_id,
            challenge=challenge,
            signature=sec.auth_key.sign(
                messages.enrol_pin(
                    challenge=challenge, token_id=token_id, success_public_key=success_public_key
                ),
                ec.ECDSA(hashes.SHA256()),
            ),
            success_public_key=success_public_key,
            attempt_id=attempt_id,
            replace_signature=replace_signature,
        )

    async def open(self, pin: str, relay: hp.PinRelay, *, token_id: bytes) -> StoreSecrets:
        """Unlock a version-2 store through the network. A wrong PIN spends one
        of the token's attempts at the hardener; the file's own counter only
        mirrors what the hardener said. After a rotation of the hardener's key
        the store is re-sealed under the current version (lazy re-key)."""
        pinned = self.store.pinned
        if pinned is None:
            raise KeystoreError("this key store's PIN is not hardened")
        sealed = self.store.doc["sealed"]
        params, salt = self._params(), self._salt()
        x = kek(pin, salt, params)
        y, e = await self._evaluate(relay, token_id, x, pinned)
        try:
            plain = AESGCM(hp.store_key(y, salt)).decrypt(
                b64u_decode(sealed["nonce"], field="nonce"),
                b64u_decode(sealed["ciphertext"], field="ciphertext"),
                hp.aad(self.store.public_key, params, pinned),
            )
        except InvalidTag:
            self.store.doc["pin_attempts_left"] = min(e.attempts_left, PIN_ATTEMPTS)
            self.store.save()
            if e.attempts_left == 0:
                raise PinLocked(
                    "wrong PIN; the PIN is now locked at the network's hardener "
                    f"({PIN_ATTEMPTS} wrong PINs)",
                    retries_left=0,
                ) from None
            raise PinInvalid(
                f"wrong PIN: {e.attempts_left} attempts left", retries_left=e.attempts_left
            ) from None
        sec = StoreSecrets.from_json(json.loads(plain))
        if self.store.doc["pin_attempts_left"] != PIN_ATTEMPTS:
            self.store.doc["pin_attempts_left"] = PIN_ATTEMPTS
            self.store.save()
        await self._report(relay, token_id, sec, pinned, e)
        if e.current_version and e.current_version != pinned.key_version:
            await self._rekey(relay, token_id, sec, x, salt, pinned)
        return sec

    async def _rekey(
        self,
        relay: hp.PinRelay,
        token_id: bytes,
        sec: StoreSecrets,
        x: bytes,
        salt: bytes,
        old: hp.PinnedHardener,
    ) -> bool:
        """Re-seal under the hardener's current key version and report the
        success on it. False (nothing changed) when the new version cannot be
        had now; the store then stays on its version until the next unlock.
        (The unlock under the old version was reported first, so this second
        evaluation never finds the budget spent by the first.)"""
        try:
            info = await relay.pin_hardener(token_id)
            pinned = info.pin(old.network)
            if (pinned.caller, pinned.user_id) != (old.caller, old.user_id):
                return False
            y, e = await self._evaluate(relay, token_id, x, pinned)
        except AuthnetError:
            # Best effort: the unlock itself has succeeded (and was reported);
            # the store stays on its version and tries again next time.
            return False
        self.store.doc = self._sealed_doc(sec, pinned=pinned, params=self._params(), salt=salt, y=y)
        self.store.save()
        await self._report(relay, token_id, sec, pinned, e)
        return True
