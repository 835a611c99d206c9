"""The exact bytes each token signature covers.

Every message is `transcript(label, field, ...)`: a label naming its purpose
and length-prefixed fields in a fixed order, so a signature made for one
purpose can never be accepted for another.
"""

from __future__ import annotations

from authnet.protocol import labels
from authnet.protocol.encoding import transcript


def auth_response(
    *,
    ticket_hash: bytes,
    spid: bytes,
    browser_key_hash: bytes,
    nonce: bytes,
    token_id: bytes,
    user_verified: bool,
    sealed_digest: bytes | None,
) -> bytes:
    """A token's answer to BeginAuth. Binds the ticket, the SP, the browser key
    the person saw in the QR code, the network's fresh nonce, the token, whether
    the PIN was checked, and the sealed Kc (empty when none was requested)."""
    return transcript(
        labels.AUTH_RESPONSE,
        ticket_hash,
        spid,
        browser_key_hash,
        nonce,
        token_id,
        b"\x01" if user_verified else b"\x00",
        sealed_digest or b"",
    )


def webauthn_login(
    *, ticket_hash: bytes, spid: bytes, browser_key_hash: bytes, nonce: bytes
) -> bytes:
    """What a security key asserts when the page itself logs in with WebAuthn:
    the ticket, the SP, the key of the page waiting on it, and the network's
    fresh nonce. (Which credential signed is the assertion's; no token id is
    known before it.)"""
    return transcript(labels.WEBAUTHN_LOGIN, ticket_hash, spid, browser_key_hash, nonce)


def auth_decline(*, ticket_hash: bytes, spid: bytes, nonce: bytes, token_id: bytes) -> bytes:
    return transcript(labels.AUTH_DECLINE, ticket_hash, spid, nonce, token_id)


def enrol(*, challenge: bytes, kind: int, algorithm: int, public_key: bytes, label: str) -> bytes:
    """Proof of possession by a new token's key."""
    return transcript(
        labels.ENROL,
        challenge,
        kind.to_bytes(2, "big"),
        algorithm.to_bytes(2, "big"),
        public_key,
        label.encode("utf-8"),
    )


def add_token(*, challenge: bytes, token_id: bytes, new_public_key: bytes) -> bytes:
    """An enrolled token authorising a new token into its account."""
    return transcript(labels.ADD_TOKEN, challenge, token_id, new_public_key)


def list_tokens(*, challenge: bytes, token_id: bytes) -> bytes:
    return transcript(labels.LIST_TOKENS, challenge, token_id)


def revoke_token(*, challenge: bytes, token_id: bytes, target_token_id: bytes) -> bytes:
    return transcript(labels.REVOKE_TOKEN, challenge, token_id, target_token_id)


def enrol_pin(*, challenge: bytes, token_id: bytes, success_public_key: bytes) -> bytes:
    """A token registering (or replacing) the success key of its hardened PIN."""
    return transcript(labels.ENROL_PIN, challenge, token_id, success_public_key)
