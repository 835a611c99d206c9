"""PassKey backends for smartcards over PC/SC (pyscard): PIV cards and
YubiKeys (NIST SP 800-73-4), and the YubiKey OTP applet's HMAC-SHA1
challenge-response.

PIV (kind `piv`):
* authentication: slot 9A's P-256 key signs SHA-256(transcript) with GENERAL
  AUTHENTICATE (the host hashes, the card signs the digest);
* Kc: slot 9D's key does ECDH with H = hash_to_curve(SPID) (RFC 9380); the
  shared x-coordinate feeds HKDF (salt "authnet/v1 piv kc"). Nobody knows H's
  discrete logarithm, so only the card can compute this value;
* both need the PIN (VERIFY, key reference 80), whose retry counter the card
  keeps and reports (63Cx).

OTP (kind `otp`): the same card's 9A key authenticates, and Kc comes from the
OTP applet's slot-2 HMAC-SHA1 over transcript("authnet/v1 otp challenge",
SPID), which many YubiKey owners have configured already (KeePassXC uses it).

`provision()` generates the 9A and 9D keys (after card-management-key
authentication) and stores a self-signed certificate for 9A in its PIV data
object, where standard middleware finds it.

The BER-TLV and APDU encoding here is written independently of the card
simulator's (simulators/smartcard), so the two check each other over pcscd.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID
from smartcard.Exceptions import CardConnectionException, NoCardException, SmartcardException
from smartcard.System import readers

from authnet.errors import (
    AuthnetError,
    KeystoreError,
    PinInvalid,
    PinLocked,
    PinRequired,
    TokenUnavailable,
)
from authnet.protocol import labels
from authnet.protocol.kc import derive_kc, otp_challenge, piv_peer_point
from authnet.protocol.signatures import Algorithm, spki
from tokens.passkey import TokenDescription, TokenKind

PIV_AID = bytes.fromhex("A000000308000010000100")
OTP_AID = bytes.fromhex("A0000005272001")
SLOT_AUTH = 0x9A
SLOT_KC = 0x9D
KEY_MANAGEMENT = 0x9B
ALG_P256 = 0x11
ALG_AES192 = 0x0A
CERT_9A = 0x5FC105
# YubiKey's factory card-management key (AES-192 since firmware 5.7).
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

SW_OK = 0x9000


class CardError(KeystoreError):
    """The card answered with an unexpected status word."""

    def __init__(self, what: str, sw: int) -> None:
        super().__init__(f"{what}: the card answered {sw:04X}", status_word=sw)


# --- BER-TLV and APDUs (ISO 7816-4) -----------------------------------------------


def tlv(tag: int, value: bytes = b"") -> bytes:
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + n.to_bytes(2, "big")
    return tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big") + length + value


def parse_tlv(data: bytes) -> dict[int, bytes]:
    """One level of BER-TLV: tag -> value (first occurrence)."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1F == 0x1F:  # multi-byte tag
            while True:
                tag = (tag << 8) | data[i]
                i += 1
                if not data[i - 1] & 0x80:
                    break
        n = data[i]
        i += 1
        if n & 0x80:
            size = n & 0x7F
            n = int.from_bytes(data[i : i + size], "big")
            i += size
        if i + n > len(data):
            raise CardError("a card response was cut short", SW_OK)
        out.setdefault(tag, data[i : i + n])
        i += n
    return out


def apdu(ins: int, p1: int, p2: int, data: bytes = b"", *, cla: int = 0, le: bool = True) -> bytes:
    """A short APDU (Lc <= 255), Le = 00 (up to 256 bytes) when `le`."""
    if len(data) > 255:
        raise ValueError("short APDUs carry at most 255 bytes")
    out = bytes([cla, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + data
    return out + (b"\x00" if le else b"")


def _pin_bytes(pin: str) -> bytes:
    raw = pin.encode("utf-8")
    if not 6 <= len(raw) <= 8:
        raise PinInvalid("a PIV PIN has 6 to 8 characters", retries_left=None)
    return raw + b"\xff" * (8 - len(raw))


def _one_block(key: bytes, block: bytes, *, decrypt: bool) -> bytes:
    # PIV's management-key challenge-response (SP 800-73-4 Appendix A): one AES
    # block, the block cipher itself rather than a mode over data.
    cipher = Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


# --- the card link ----------------------------------------------------------------


class CardLink:
    """One pyscard connection to a card, kept open for the session (a
    disconnect powers the card down and forgets the verified PIN)."""

    def __init__(self, reader: str | None = None) -> None:
        self.reader_name = reader
        self._conn: Any = None
        self.connect()

    def connect(self) -> None:
        try:
            available = readers()
        except SmartcardException as e:
            raise TokenUnavailable(f"PC/SC is not available (is pcscd running?): {e}") from None
        chosen = [r for r in available if self.reader_name in (None, str(r))]
        if not chosen:
            raise TokenUnavailable(f"no smartcard reader named {self.reader_name!r}")
        last: Exception | None = None
        for reader in chosen:
            conn = reader.createConnection()
            try:
                conn.connect()
            except (NoCardException, CardConnectionException) as e:
                last = e
                with contextlib.suppress(SmartcardException):
                    conn.release()
                continue
            self._conn, self.reader_name = conn, str(reader)
            return
        raise TokenUnavailable(f"no card in the reader ({last})" if last else "no card")

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        if self._conn is None:
            raise TokenUnavailable("the card connection is closed")
        try:
            data, sw1, sw2 = self._conn.transmit(list(command))
            out = bytes(data)
            while sw1 == 0x61:  # more data: GET RESPONSE
                data, sw1, sw2 = self._conn.transmit([0x00, 0xC0, 0x00, 0x00, sw2])
                out += bytes(data)
        except (CardConnectionException, NoCardException) as e:
            raise TokenUnavailable(f"the card was removed or stopped answering ({e})") from None
        return out, (sw1 << 8) | sw2

    def ok(self, what: str, command: bytes) -> bytes:
        data, sw = self.transmit(command)
        if sw != SW_OK:
            raise CardError(what, sw)
        return data

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SmartcardException):
                self._conn.disconnect()
            with contextlib.suppress(SmartcardException):
                self._conn.release()
            self._conn = None


# --- PIV operations -----------------------------------------------------------------


class PivApplet:
    def __init__(self, link: CardLink) -> None:
        self.link = link

    def select(self) -> None:
        self.link.ok("selecting PIV", apdu(0xA4, 0x04, 0x00, PIV_AID))

    def verify(self, pin: str) -> None:
        _, sw = self.link.transmit(apdu(0x20, 0x00, 0x80, _pin_bytes(pin), le=False))
        if sw == SW_OK:
            return
        if sw >> 4 == 0x63C:
            left = sw & 0x0F
            if left == 0:
                raise PinLocked("wrong PIN; the card's PIN is now blocked", retries_left=0)
            raise PinInvalid(f"wrong PIN: {left} tries left", retries_left=left)
        if sw == 0x6983:
            raise PinLocked("the card's PIN is blocked: unblock it with the PUK", retries_left=0)
        raise CardError("verifying the PIN", sw)

    def authenticate_management(self, key: bytes) -> None:
        """Mutual authentication with the card management key (9B, AES-192)."""
        out = self.link.ok(
            "management key", apdu(0x87, ALG_AES192, KEY_MANAGEMENT, tlv(0x7C, tlv(0x80)))
        )
        witness = parse_tlv(parse_tlv(out)[0x7C])[0x80]
        challenge = os.urandom(16)
        response = tlv(
            0x7C,
            tlv(0x80, _one_block(key, witness, decrypt=True)) + tlv(0x81, challenge),
        )
        out = self.link.ok("management key", apdu(0x87, ALG_AES192, KEY_MANAGEMENT, response))
        answer = parse_tlv(parse_tlv(out)[0x7C])[0x82]
        if answer != _one_block(key, challenge, decrypt=False):
            raise KeystoreError("the card did not prove knowledge of the management key")

    def generate(self, slot: int) -> ec.EllipticCurvePublicKey:
        out = self.link.ok(
            f"generating the {slot:02X} key",
            apdu(0x47, 0x00, slot, tlv(0xAC, tlv(0x80, bytes([ALG_P256])))),
        )
        point = parse_tlv(parse_tlv(out)[0x7F49])[0x86]
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)

    def sign_digest(self, slot: int, digest: bytes) -> bytes:
        out = self.link.ok(
            "signing", apdu(0x87, ALG_P256, slot, tlv(0x7C, tlv(0x82) + tlv(0x81, digest)))
        )
        return parse_tlv(parse_tlv(out)[0x7C])[0x82]

    def ecdh(self, slot: int, point: bytes) -> bytes:
        out = self.link.ok(
            "key agreement", apdu(0x87, ALG_P256, slot, tlv(0x7C, tlv(0x82) + tlv(0x85, point)))
        )
        return parse_tlv(parse_tlv(out)[0x7C])[0x82]

    def get_object(self, tag: int) -> bytes | None:
        data, sw = self.link.transmit(apdu(0xCB, 0x3F, 0xFF, tlv(0x5C, tag.to_bytes(3, "big"))))
        if sw == 0x6A82:
            return None
        if sw != SW_OK:
            raise CardError("reading a data object", sw)
        return parse_tlv(data)[0x53]

    def put_object(self, tag: int, content: bytes) -> None:
        data = tlv(0x5C, tag.to_bytes(3, "big")) + tlv(0x53, content)
        parts = [data[i : i + 255] for i in range(0, len(data), 255)]
        for part in parts[:-1]:
            self.link.ok("writing a data object", apdu(0xDB, 0x3F, 0xFF, part, cla=0x10, le=False))
        self.link.ok("writing a data object", apdu(0xDB, 0x3F, 0xFF, parts[-1], le=False))


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        size = (n.bit_length() + 7) // 8
        length = bytes([0x80 | size]) + n.to_bytes(size, "big")
    return bytes([tag]) + length + content


def _self_signed(piv: PivApplet, public: ec.EllipticCurvePublicKey, label: str) -> bytes:
    """A self-signed certificate for the 9A key, signed by the card.

    cryptography signs certificates only with keys it holds, so the certificate
    is built with a throwaway key of the same algorithm, and its to-be-signed
    part (which names ecdsa-with-SHA256 and carries the card's public key) is
    signed again by the card: Certificate = SEQUENCE(tbs, algorithm, BIT STRING).
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"authnet PIV {label}")])
    now = dt.datetime.now(dt.UTC)
    draft = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    tbs = draft.tbs_certificate_bytes
    signature = piv.sign_digest(SLOT_AUTH, hashlib.sha256(tbs).digest())
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-with-SHA256
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    cert = x509.load_der_x509_certificate(der)
    public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    return der


@dataclass(frozen=True, kw_only=True)
class SmartcardConfig:
    reader: str | None = None  # None: the first reader holding a card
    label: str = "smartcard"


class PivPassKey:
    """A PIV card (or YubiKey PIV) as a PassKey."""

    kind = TokenKind.PIV

    def __init__(self, config: SmartcardConfig) -> None:
        self.config = config
        self.link = CardLink(config.reader)
        self.piv = PivApplet(self.link)
        self._verified = False
        self._pin: str | None = None
        self._public: bytes | None = None
        self.piv.select()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reader={self.link.reader_name!r}, locked={self.locked})"

    @classmethod
    def provision(
        cls,
        config: SmartcardConfig,
        *,
        pin: str,
        management_key: bytes = DEFAULT_MANAGEMENT_KEY,
    ) -> PivPassKey:
        """Generate the 9A and 9D keys and store 9A's certificate. Replaces keys
        already in those slots."""
        token = cls(config)
        token.piv.authenticate_management(management_key)
        auth = token.piv.generate(SLOT_AUTH)
        token.piv.generate(SLOT_KC)
        token.verify_pin(pin)
        cert = _self_signed(token.piv, auth, config.label)
        token.piv.authenticate_management(management_key)
        token.piv.put_object(CERT_9A, tlv(0x70, cert) + tlv(0x71, b"\x00") + tlv(0xFE))
        token._public = spki(auth)
        return token

    # --- PassKey -------------------------------------------------------------

    def _public_key(self) -> bytes:
        if self._public is None:
            container = self.piv.get_object(CERT_9A)
            if container is None:
                raise KeystoreError("the card has no authnet key in slot 9A: provision it")
            cert = x509.load_der_x509_certificate(parse_tlv(container)[0x70])
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise KeystoreError("slot 9A does not hold a P-256 key")
            self._public = spki(key)
        return self._public

    @property
    def description(self) -> TokenDescription:
        return TokenDescription(
            kind=self.kind,
            label=self.config.label,
            algorithm=Algorithm.ES256,
            public_key=self._public_key(),
        )

    @property
    def has_pin(self) -> bool:
        return True

    @property
    def locked(self) -> bool:
        return not self._verified

    @property
    def user_verified(self) -> bool:
        return self._verified

    def verify_pin(self, pin: str) -> None:
        self.piv.select()
        self.piv.verify(pin)
        self._verified, self._pin = True, pin

    def _require(self) -> None:
        if not self._verified:
            raise PinRequired("the card needs its PIN")

    def sign(self, message: bytes) -> bytes:
        self._require()
        raw = self.piv.sign_digest(SLOT_AUTH, hashlib.sha256(message).digest())
        decode_dss_signature(raw)  # a DER ECDSA signature, or CardError below
        return raw

    def derive_kc(self, spid: bytes) -> bytes:
        self._require()
        shared = self.piv.ecdh(SLOT_KC, _point(piv_peer_point(spid)))
        if len(shared) != 32:
            raise KeystoreError("the card's key agreement returned an odd result")
        return derive_kc(shared, spid, salt=labels.KC_PIV_SALT)

    def close(self) -> None:
        self._verified, self._pin = False, None
        self.link.close()


class OtpPassKey(PivPassKey):
    """A YubiKey whose Kc comes from the OTP applet's slot-2 HMAC-SHA1; the PIV
    9A key authenticates. Selecting the OTP applet makes the card forget the
    verified PIN, so the PIN is kept for the session and given again."""

    kind = TokenKind.OTP

    def derive_kc(self, spid: bytes) -> bytes:
        self._require()
        self.link.ok("selecting the OTP applet", apdu(0xA4, 0x04, 0x00, OTP_AID))
        try:
            data, sw = self.link.transmit(apdu(0x01, 0x38, 0x00, otp_challenge(spid)))
            if sw == 0x6A88 or (sw == SW_OK and not data):
                raise KeystoreError("the YubiKey's OTP slot 2 is not set up for challenge-response")
            if sw != SW_OK:
                raise CardError("the OTP challenge-response", sw)
            if len(data) != 20:
                raise KeystoreError("the OTP applet returned an odd HMAC-SHA1 response")
            return derive_kc(data, spid, salt=labels.KC_OTP_SALT)
        finally:
            self._back_to_piv()

    def _back_to_piv(self) -> None:
        with contextlib.suppress(AuthnetError):
            self.piv.select()
            if self._pin is not None:
                self.piv.verify(self._pin)
