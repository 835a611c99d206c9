"""Time-based one-time passwords (RFC 6238, over HOTP: RFC 4226).

An item's `totp` is an `otpauth://totp/...` URI (the text of the QR code a
site shows) or a bare base32 secret (then SHA-1, 6 digits, 30 seconds, the
defaults every authenticator app assumes). The HMAC is the one the site
chose (SHA-1 almost everywhere; RFC 6238 also names SHA-256 and SHA-512):
HMAC-SHA-1 is a sound PRF, which is all HOTP asks of it.

No I/O and no clock: callers pass the time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from vault_api.client.errors import Usage

ALGORITHMS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}


@dataclass(frozen=True, kw_only=True)
class TotpSpec:
    secret: bytes
    digits: int = 6
    period: int = 30
    algorithm: str = "SHA1"

    def __repr__(self) -> str:  # never the secret
        return f"TotpSpec(digits={self.digits}, period={self.period}, {self.algorithm})"


def decode_base32(text: str) -> bytes:
    """A base32 secret as people copy them: any case, spaces or dashes, no padding."""
    cleaned = re.sub(r"[\s-]", "", text).upper().rstrip("=")
    if not cleaned or not re.fullmatch(r"[A-Z2-7]+", cleaned):
        raise Usage("a TOTP secret is base32 (letters A-Z and digits 2-7)")
    try:
        return base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))
    except binascii.Error:
        raise Usage("the TOTP secret is not valid base32") from None


def parse(value: str) -> TotpSpec:
    """An item's `totp` field: an otpauth://totp URI or a base32 secret."""
    value = value.strip()
    if not value.lower().startswith("otpauth://"):
        return TotpSpec(secret=decode_base32(value))
    url = urlsplit(value)
    if url.netloc.lower() != "totp":
        raise Usage(f"only time-based codes are supported (otpauth://totp), not {url.netloc!r}")
    query = {k.lower(): v[-1] for k, v in parse_qs(url.query).items()}
    if "secret" not in query:
        raise Usage("the otpauth URI has no secret")
    algorithm = query.get("algorithm", "SHA1").upper()
    if algorithm not in ALGORITHMS:
        raise Usage(f"unknown TOTP algorithm {algorithm!r}: SHA1, SHA256 or SHA512")
    try:
        digits = int(query.get("digits", "6"))
        period = int(query.get("period", "30"))
    except ValueError:
        raise Usage("the otpauth URI's digits and period are whole numbers") from None
    if not 6 <= digits <= 10 or not 1 <= period <= 3600:
        raise Usage("the otpauth URI asks for 6 to 10 digits and a period of 1 s to 1 h")
    return TotpSpec(
        secret=decode_base32(unquote(query["secret"])),
        digits=digits,
        period=period,
        algorithm=algorithm,
    )


def hotp(secret: bytes, counter: int, *, digits: int = 6, algorithm: str = "SHA1") -> str:
    """RFC 4226 section 5.3: HMAC, dynamic truncation, modulo 10^digits."""
    mac = hmac.digest(secret, struct.pack(">Q", counter), ALGORITHMS[algorithm])
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def code_at(spec: TotpSpec, unix_time: float) -> str:
    """RFC 6238 section 4: the counter is floor((time - T0) / period), T0 = 0."""
    return hotp(
        spec.secret, int(unix_time // spec.period), digits=spec.digits, algorithm=spec.algorithm
    )


def seconds_left(spec: TotpSpec, unix_time: float) -> int:
    return spec.period - int(unix_time % spec.period)
