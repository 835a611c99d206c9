"""Registered devices, the passphrase bypass and one-time links (docs/devices.md).

No I/O. A device holds two key pairs of its own: an X25519 device key (the
HPKE recipient of its key-encryption key) and an Ed25519 signing key (its
registration and login proofs). Enabling bypass makes a random DKEK and two
wraps the server stores:

    KEK_b       = HKDF-SHA256(IKM = T, salt = DKEK, info = DEVICE_BYPASS_KEK)
    device_wrap = box(KEK_b, PKCS#8(skU),
                      aad = transcript(DEVICE_WRAP, user_id, device_id, u32(v), pkU))
    sealed_kek  = HPKE SealBase(dpk, pt = DKEK,
                                info = transcript(DEVICE_KEK, user_id, device_id, dpk))

T (the token factor, docs/vault.md 5.4) is mixed in, so the device wrap
opens only after a token login: a stolen device plus a stolen database open
nothing without a token.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol.encoding import transcript
from vault_api.crypto import aead, labels
from vault_api.crypto.content import pad
from vault_api.crypto.errors import (
    DeviceKekInvalid,
    DeviceProofInvalid,
    DeviceWrapInvalid,
    KeyMismatch,
    LinkInvalid,
    MalformedCiphertext,
)
from vault_api.crypto.ids import check_id, short, u32
from vault_api.crypto.safekeys import SUITE
from vault_api.crypto.userkeys import (
    PUBLIC_KEY_BYTES,
    private_key_from_pkcs8,
    private_key_pkcs8,
    public_key_bytes,
)

DKEK_BYTES: Final = 32
DEVICE_WRAP_BYTES: Final = aead.OVERHEAD + 48  # 76
SEALED_KEK_BYTES: Final = 32 + DKEK_BYTES + 16  # 80: enc || AES-128-GCM(DKEK)
SIGNATURE_BYTES: Final = 64
FINGERPRINT_BYTES: Final = 10
LINK_MAGIC: Final = b"ovl1"
LINK_KEY_BYTES: Final = 32


@dataclass(frozen=True, slots=True)
class DeviceKeys:
    """A device's two private keys (they never leave the device)."""

    device_id: bytes
    device_key: x25519.X25519PrivateKey = field(repr=False)
    signing_key: ed25519.Ed25519PrivateKey = field(repr=False)

    @property
    def public_key(self) -> bytes:
        return self.device_key.public_key().public_bytes_raw()

    @property
    def signing_public_key(self) -> bytes:
        return self.signing_key.public_key().public_bytes_raw()


def new_device(device_id: bytes | None = None) -> DeviceKeys:
    device_id = os.urandom(16) if device_id is None else device_id
    check_id(device_id, "device id")
    return DeviceKeys(
        device_id, x25519.X25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    )


def device_from_bytes(device_id: bytes, device_key: bytes, signing_key: bytes) -> DeviceKeys:
    """A device from its raw private keys (the CLI's device file)."""
    check_id(device_id, "device id")
    if len(device_key) != 32 or len(signing_key) != 32:
        raise MalformedCiphertext("a device's private keys are 32 raw bytes each")
    return DeviceKeys(
        device_id,
        x25519.X25519PrivateKey.from_private_bytes(device_key),
        ed25519.Ed25519PrivateKey.from_private_bytes(signing_key),
    )


# --- a device kept in a platform authenticator (WebAuthn PRF) ------------------------

PRF_BYTES: Final = 32


def prf_salt(user_id: bytes, device_id: bytes) -> bytes:
    """The PRF input (`eval.first`) of a device whose keys come from a WebAuthn
    credential: SHA-256(transcript(DEVICE_PRF_SALT, user_id, device_id))."""
    check_id(user_id, "user id")
    check_id(device_id, "device id")
    return hashlib.sha256(transcript(labels.DEVICE_PRF_SALT, user_id, device_id)).digest()


def _from_prf(prf_output: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=info).derive(prf_output)


def device_from_prf(device_id: bytes, prf_output: bytes) -> DeviceKeys:
    """A device's two keys from the 32-byte PRF output of its credential
    (docs/devices.md 1): HKDF-SHA256(IKM = output, salt = "", info = label)."""
    check_id(device_id, "device id")
    if len(prf_output) != PRF_BYTES:
        raise MalformedCiphertext(
            f"a WebAuthn PRF output is {PRF_BYTES} bytes, got {len(prf_output)}"
        )
    return device_from_bytes(
        device_id,
        _from_prf(prf_output, labels.DEVICE_PRF_X25519),
        _from_prf(prf_output, labels.DEVICE_PRF_ED25519),
    )


# --- fingerprint and proofs ---------------------------------------------------------


def _check_public(public_key: bytes, signing_key: bytes) -> None:
    check_id(public_key, "device public key", PUBLIC_KEY_BYTES)
    check_id(signing_key, "device signing key", 32)


def fingerprint(*, user_id: bytes, device_id: bytes, public_key: bytes, signing_key: bytes) -> str:
    """Five groups of four hex digits (80 bits), shown on both screens at approval."""
    check_id(user_id, "user id")
    check_id(device_id, "device id")
    _check_public(public_key, signing_key)
    digest = hashlib.sha256(
        transcript(labels.DEVICE_FINGERPRINT, user_id, device_id, public_key, signing_key)
    ).digest()[:FINGERPRINT_BYTES]
    text = digest.hex()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def registration_message(
    *, user_id: bytes, device_id: bytes, public_key: bytes, signing_key: bytes
) -> bytes:
    check_id(user_id, "user id")
    check_id(device_id, "device id")
    _check_public(public_key, signing_key)
    return transcript(labels.DEVICE_REGISTRATION, user_id, device_id, public_key, signing_key)


def login_message(*, user_id: bytes, device_id: bytes, nonce: bytes) -> bytes:
    check_id(user_id, "user id")
    check_id(device_id, "device id")
    check_id(nonce, "device nonce", 32)
    return transcript(labels.DEVICE_LOGIN, user_id, device_id, nonce)


def registration_proof(device: DeviceKeys, *, user_id: bytes) -> bytes:
    return device.signing_key.sign(
        registration_message(
            user_id=user_id,
            device_id=device.device_id,
            public_key=device.public_key,
            signing_key=device.signing_public_key,
        )
    )


def login_proof(device: DeviceKeys, *, user_id: bytes, nonce: bytes) -> bytes:
    return device.signing_key.sign(
        login_message(user_id=user_id, device_id=device.device_id, nonce=nonce)
    )


def verify_proof(signing_key: bytes, proof: bytes, message: bytes, *, device_id: bytes) -> None:
    """The server's check of a registration or login proof."""
    if len(proof) != SIGNATURE_BYTES:
        raise DeviceProofInvalid(f"a device proof is {SIGNATURE_BYTES} bytes, got {len(proof)}")
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(signing_key).verify(proof, message)
    except (InvalidSignature, ValueError):
        raise DeviceProofInvalid(
            f"the proof of device {short(device_id)} does not verify with its signing key"
        ) from None


# --- the bypass wraps ---------------------------------------------------------------


def new_dkek() -> bytes:
    return os.urandom(DKEK_BYTES)


def bypass_kek(token_factor: bytes, dkek: bytes) -> bytes:
    """KEK_b = HKDF(IKM = T, salt = DKEK): needs the token (T) and the device (DKEK)."""
    aead.check_key(token_factor, "token factor")
    aead.check_key(dkek, "device key-encryption key")
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=dkek, info=labels.DEVICE_BYPASS_KEK
    ).derive(token_factor)


def device_wrap_aad(
    *, user_id: bytes, device_id: bytes, keypair_version: int, public_key: bytes
) -> bytes:
    check_id(user_id, "user id")
    check_id(device_id, "device id")
    check_id(public_key, "public key", PUBLIC_KEY_BYTES)
    return transcript(
        labels.DEVICE_WRAP, user_id, device_id, u32(keypair_version, "key pair version"), public_key
    )


def make_device_wrap(
    token_factor: bytes,
    dkek: bytes,
    private_key: x25519.X25519PrivateKey,
    *,
    user_id: bytes,
    device_id: bytes,
    keypair_version: int,
) -> bytes:
    aad = device_wrap_aad(
        user_id=user_id,
        device_id=device_id,
        keypair_version=keypair_version,
        public_key=public_key_bytes(private_key),
    )
    return aead.seal(bypass_kek(token_factor, dkek), private_key_pkcs8(private_key), aad)


def open_device_wrap(
    token_factor: bytes,
    dkek: bytes,
    wrap: bytes,
    *,
    user_id: bytes,
    device_id: bytes,
    keypair_version: int,
    public_key: bytes,
) -> x25519.X25519PrivateKey:
    aad = device_wrap_aad(
        user_id=user_id, device_id=device_id, keypair_version=keypair_version, public_key=public_key
    )
    if len(wrap) != DEVICE_WRAP_BYTES:
        raise MalformedCiphertext(f"a device wrap is {DEVICE_WRAP_BYTES} bytes, got {len(wrap)}")
    try:
        der = aead.open_box(bypass_kek(token_factor, dkek), wrap, aad, what="device wrap")
    except aead.Unopened:
        raise DeviceWrapInvalid(
            f"the device wrap of device {short(device_id)} for user {short(user_id)} does not "
            "open: it was modified, made for another device, account or key pair version, or "
            "this token's factor is not the one it was made with"
        ) from None
    private_key = private_key_from_pkcs8(der)
    if public_key_bytes(private_key) != public_key:
        raise KeyMismatch("the device wrap holds a private key that is not the account's")
    return private_key


def device_kek_info(*, user_id: bytes, device_id: bytes, public_key: bytes) -> bytes:
    check_id(user_id, "user id")
    check_id(device_id, "device id")
    check_id(public_key, "device public key", PUBLIC_KEY_BYTES)
    return transcript(labels.DEVICE_KEK, user_id, device_id, public_key)


def seal_dkek(dkek: bytes, *, user_id: bytes, device_id: bytes, public_key: bytes) -> bytes:
    """DKEK sealed (HPKE base mode, the safe keys' suite) to the device's public key."""
    aead.check_key(dkek, "device key-encryption key")
    info = device_kek_info(user_id=user_id, device_id=device_id, public_key=public_key)
    try:
        pk = x25519.X25519PublicKey.from_public_bytes(public_key)
        return SUITE.encrypt(dkek, pk, info)
    except ValueError:
        raise MalformedCiphertext("the device public key is not a usable X25519 key") from None


def open_dkek(sealed: bytes, device: DeviceKeys, *, user_id: bytes) -> bytes:
    info = device_kek_info(
        user_id=user_id, device_id=device.device_id, public_key=device.public_key
    )
    if len(sealed) != SEALED_KEK_BYTES:
        raise MalformedCiphertext(
            f"a sealed device key-encryption key is {SEALED_KEK_BYTES} bytes, got {len(sealed)}"
        )
    try:
        dkek = SUITE.decrypt(sealed, device.device_key, info)
    except (InvalidTag, ValueError):
        dkek = b""
    if len(dkek) != DKEK_BYTES:
        raise DeviceKekInvalid(
            f"the key-encryption key sealed to device {short(device.device_id)} does not open "
            "with this device's key: it was modified, or sealed to another device or account"
        )
    return dkek


# --- one-time links -----------------------------------------------------------------


def link_aad(link_id: bytes) -> bytes:
    check_id(link_id, "link id")
    return transcript(labels.ONE_TIME_LINK, link_id)


def seal_link(plaintext: bytes, *, key: bytes | None = None) -> tuple[bytes, bytes]:
    """(blob, K): the blob goes to the proxy, K only into the link's fragment."""
    key = os.urandom(LINK_KEY_BYTES) if key is None else key
    aead.check_key(key, "link key")
    link_id = os.urandom(16)
    return LINK_MAGIC + link_id + aead.seal(key, pad(plaintext), link_aad(link_id)), key


def open_link(blob: bytes, key: bytes) -> bytes:
    """The padded plaintext of a one-time link (the caller strips the padding)."""
    aead.check_key(key, "link key")
    if len(blob) < len(LINK_MAGIC) + 16 + aead.OVERHEAD or not blob.startswith(LINK_MAGIC):
        raise MalformedCiphertext("this is not a one-time link's blob")
    link_id = blob[len(LINK_MAGIC) : len(LINK_MAGIC) + 16]
    try:
        return aead.open_box(key, blob[len(LINK_MAGIC) + 16 :], link_aad(link_id), what="link")
    except aead.Unopened:
        raise LinkInvalid(
            "the one-time link does not open: the link is damaged (its key or token was "
            "changed) or the stored blob was modified"
        ) from None
