"""What a token app shows the person: before they confirm a login, who asks
(the SP) and from where (the browser the network saw); and the account's
tokens. Shared by the phone app, `passkey` and the local agent."""

from __future__ import annotations

import datetime as dt
import hashlib

from authnet.protocol.encoding import b64u_encode
from authnet.protocol.factors import format_factors
from authnet.v1 import passkey_pb2
from tokens.handshake import AuthRequest
from tokens.passkey import TokenKind


def kind_name(kind: int) -> str:
    """`fido2`, `piv`, ...; the number for a kind this version does not know."""
    known = {k.value for k in TokenKind}
    return TokenKind(kind).name.lower() if kind in known else str(kind)


def token_line(t: passkey_pb2.TokenInfo, *, mine: bytes, this: str = "this token") -> str:
    """One line of a token list: id, kind, state, enrolment time, label."""
    state = "revoked" if t.revoked_at_unix_ms else "active"
    when = dt.datetime.fromtimestamp(t.created_at_unix_ms / 1000, dt.UTC)
    line = f"{b64u_encode(t.token_id)}  {kind_name(t.kind):7} {state:8} {when:%Y-%m-%d %H:%M}Z  "
    return line + t.label + (f"  ({this})" if bytes(t.token_id) == mine else "")


def describe(request: AuthRequest) -> list[str]:
    """What the phone shows before the person confirms (anti-phishing hints)."""
    origin = request.browser_origin or "(none sent: not a web browser)"
    registered = request.origin_registered
    if not request.browser_origin:
        mark = "check that this is your own device"
    elif registered is None:
        mark = "SP lists no origins"
    else:
        mark = "registered for this SP" if registered else "NOT registered for this SP"
    wants = {"c": "a client key", "p": "your PIN"}
    asks = [wants[f] for f in format_factors(request.requested)] or ["sign-in only"]
    return [
        f"Log in to {request.sp_display_name} ({request.sp_name})?",
        f"  requested from  {request.browser_ip or '?'}",
        f"  browser         {request.browser_user_agent[:80] or '?'}",
        f"  page origin     {origin}  [{mark}]",
        f"  asks for        {', '.join(asks)}",
    ]


def key_fingerprint(public_key: bytes) -> str:
    """A public key as people compare it: the first 16 bytes of SHA-256 over its
    SubjectPublicKeyInfo (DER), in hex, in 8 groups of 4 joined by ':'. (Kc
    fingerprints are 4 groups of 8 joined by '-', so the two are not confused.)"""
    digest = hashlib.sha256(public_key).hexdigest()[:32]
    return ":".join(digest[i : i + 4] for i in range(0, 32, 4))
