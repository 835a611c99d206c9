"""PassKey backends for smartcards over PC/SC (pyscard): PIV cards and
YubiKeys (NIST SP 800-73-4), and the YubiKey OTP applet's HMAC-SHA1
challenge-response.

PIV (kind `piv`), slots 9A and 9D:
* authentication: slot 9A's P-256 key signs SHA-256(transcript) with GENERAL
  AUTHENTICATE (the host hashes, the card signs the digest);
* Kc: slot 9D's key does ECDH with H = hash_to_curve(SPID) (RFC 9380); the
  shared x-coordinate feeds HKDF (salt "authnet/v1 piv kc"). Nobody knows H's
  discrete logarithm, so only the card can compute this value;
* both need the PIN (VERIFY, key reference 80), whose retry counter the card
  keeps and reports (63Cx).

OTP (kind `otp`), slot 9C and the OTP applet's slot 2: a token of its own,
with an authentication key of its own, so that one card can be both tokens
without two Kc under one enrolment (protocol §6.1: Kc per token and SP):
* authentication: slot 9C's P-256 key (PIV's "digital signature" key) signs
  SHA-256(transcript). Its PIN policy is "always" (SP 800-73-4 requires it for
  9C, and it is YubiKey's default): a VERIFY must come right before each
  signature, so the PIN is kept in memory for the session;
* Kc: the OTP applet's slot-2 HMAC-SHA1 over transcript("authnet/v1 otp
  challenge", SPID), which many YubiKey owners have configured already
  (KeePassXC uses it). Selecting the OTP applet makes the card forget the PIN.

`provision()` (per kind: 9A and 9D for piv, 9C for otp) refuses slots that
already hold keys unless forced, verifies the PIN and authenticates with the
card management key before it changes anything, then generates the keys and
stores a self-signed certificate for every key it made in the slot's PIV data
object (5FC105 for 9A, 5FC10A for 9C, 5FC10B for 9D), with the key usage a PIV
issuer gives that slot (digitalSignature for 9A; digitalSignature and
nonRepudiation for 9C; keyAgreement for 9D), so that standard middleware
(OpenSC's PKCS#11 module lists a PIV key only beside its certificate) sees
every key. Cards provisioned before 9D had a certificate keep working: only
9A's (or 9C's) certificate is read, for the public key.

The card management key (9B) may be Triple DES (algorithm 03, YubiKeys before
firmware 5.7 and many PIV cards), AES-128 (08), AES-192 (0A, YubiKey 5.7 and
later) or AES-256 (0C). Unless told, the algorithm is asked of the card
(YubiKey GET METADATA, firmware 5.3 and later), else inferred from the key's
length; a 24-byte key is tried as AES-192 and then as Triple DES, since a card
refuses a management-key challenge for the wrong algorithm.

The BER-TLV and APDU encoding here is written independently of the card
simulator's (simulators/smartcard), so the two check each other over pcscd.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from cryptography import x509
from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
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
    MalformedInput,
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
SLOT_AUTH = 0x9A  # PIV authentication: the piv token's authentication key
SLOT_SIGN = 0x9C  # digital signature: the otp token's authentication key
SLOT_KC = 0x9D  # key management: the piv token's Kc (ECDH)
KEY_MANAGEMENT = 0x9B
ALG_P256 = 0x11
CERT_9A = 0x5FC105
CERT_9C = 0x5FC10A
CERT_9D = 0x5FC10B
CERTIFICATES = {SLOT_AUTH: CERT_9A, SLOT_SIGN: CERT_9C, SLOT_KC: CERT_9D}

# Card management key algorithms (SP 800-78-4 table 6-2): name -> (id, key bytes).
ALG_3DES = 0x03
ALG_AES128 = 0x08
ALG_AES192 = 0x0A
ALG_AES256 = 0x0C
MANAGEMENT_ALGORITHMS = {
    "3des": ALG_3DES,
    "aes128": ALG_AES128,
    "aes192": ALG_AES192,
    "aes256": ALG_AES256,
}
_KEY_SIZES = {ALG_3DES: 24, ALG_AES128: 16, ALG_AES192: 24, ALG_AES256: 32}
_BLOCK_SIZES = {ALG_3DES: 8, ALG_AES128: 16, ALG_AES192: 16, ALG_AES256: 16}
_NAMES = {
    ALG_3DES: "Triple DES",
    ALG_AES128: "AES-128",
    ALG_AES192: "AES-192",
    ALG_AES256: "AES-256",
}
# YubiKey's factory card management key: these bytes as AES-192 since firmware
# 5.7, and as a Triple-DES key before.
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

SW_OK = 0x9000
SW_SECURITY_STATUS = 0x6982
SW_NOT_FOUND = 0x6A88


class CardError(KeystoreError):
    """The card answered with an unexpected status word."""

    def __init__(self, what: str, sw: int) -> None:
        super().__init__(f"{what}: the card answered {sw:04X}", status_word=sw)
        self.sw = sw


def management_algorithm(name: str) -> int:
    """`3des`, `aes128`, `aes192` or `aes256` as the PIV algorithm id."""
    try:
        return MANAGEMENT_ALGORITHMS[name.lower()]
    except KeyError:
        raise MalformedInput(
            f"unknown management key algorithm {name!r}: use one of "
            + ", ".join(MANAGEMENT_ALGORITHMS)
        ) from None


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


def _one_block(algorithm: int, key: bytes, block: bytes, *, decrypt: bool) -> bytes:
    # PIV's management-key challenge-response (SP 800-73-4 Appendix A): one block
    # of the card management key's cipher (8 bytes for Triple DES, 16 for AES),
    # the block cipher itself rather than a mode over data. Triple DES lives in
    # cryptography's "decrepit" module now; PIV cards still use it.
    cipher_algorithm = TripleDES(key) if algorithm == ALG_3DES else algorithms.AES(key)
    cipher = Cipher(cipher_algorithm, modes.ECB())  # noqa: S305
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


def reader_names() -> list[str]:
    """The PC/SC readers attached now (names as `--reader` takes them)."""
    try:
        return [str(r) for r in readers()]
    except SmartcardException as e:
        raise TokenUnavailable(f"PC/SC is not available (is pcscd running?): {e}") from None


# --- PIV operations -----------------------------------------------------------------


class _WrongAlgorithm(Exception):
    """The card refused a management-key challenge for this algorithm."""


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

    def metadata(self, reference: int) -> dict[int, bytes] | None:
        """YubiKey's GET METADATA (F7, firmware 5.3 and later) for a key reference:
        its TLVs; {} for an empty slot; None when the card does not know the
        command (an older YubiKey, another PIV card)."""
        data, sw = self.link.transmit(apdu(0xF7, 0x00, reference))
        if sw == SW_OK:
            return parse_tlv(data)
        if sw == SW_NOT_FOUND:
            return {}
        return None

    def management_key_algorithm(self) -> int | None:
        """The card management key's algorithm, when the card says (YubiKey 5.3+)."""
        meta = self.metadata(KEY_MANAGEMENT)
        found = (meta or {}).get(0x01)
        return found[0] if found and len(found) == 1 else None

    def authenticate_management(self, key: bytes, algorithm: int | None = None) -> int:
        """Mutual authentication with the card management key (9B). Without
        `algorithm`, the card's own (GET METADATA), else the one the key's
        length implies: 16 bytes AES-128, 32 AES-256, 24 AES-192 and then Triple
        DES if the card refuses AES-192. Returns the algorithm that worked."""
        if algorithm is not None:
            candidates = [algorithm]
        else:
            told = self.management_key_algorithm()
            if told is not None:
                if told not in _KEY_SIZES:
                    raise KeystoreError(
                        f"the card's management key uses algorithm {told:02X}, "
                        "which passkey does not support"
                    )
                candidates = [told]
            else:
                candidates = {
                    16: [ALG_AES128],
                    24: [ALG_AES192, ALG_3DES],
                    32: [ALG_AES256],
                }.get(len(key), [])
                if not candidates:
                    raise MalformedInput(
                        "a card management key has 16, 24 or 32 bytes (32, 48 or 64 hex "
                        f"digits), not {len(key)}"
                    )
        for alg in candidates:
            if len(key) != _KEY_SIZES[alg]:
                raise MalformedInput(
                    f"the card management key is {_NAMES[alg]}, a key of {_KEY_SIZES[alg]} "
                    f"bytes ({2 * _KEY_SIZES[alg]} hex digits); the key given has {len(key)}"
                )
            try:
                self._mutual(key, alg)
            except _WrongAlgorithm:
                continue
            return alg
        tried = " or ".join(_NAMES[a] for a in candidates)
        raise KeystoreError(
            f"the card refused the management key as {tried}: the card's management key "
            "uses another algorithm (see --management-key-algorithm)"
        )

    def _mutual(self, key: bytes, alg: int) -> None:
        block = _BLOCK_SIZES[alg]
        out, sw = self.link.transmit(apdu(0x87, alg, KEY_MANAGEMENT, tlv(0x7C, tlv(0x80))))
        if sw in (0x6A80, 0x6A86):  # YubiKeys: P1 is not the key's algorithm
            raise _WrongAlgorithm
        if sw != SW_OK:
            raise CardError("management key", sw)
        witness = parse_tlv(parse_tlv(out).get(0x7C, b"")).get(0x80, b"")
        if len(witness) != block:  # a witness of another cipher's block size
            raise _WrongAlgorithm
        challenge = os.urandom(block)
        response = tlv(
            0x7C,
            tlv(0x80, _one_block(alg, key, witness, decrypt=True)) + tlv(0x81, challenge),
        )
        out, sw = self.link.transmit(apdu(0x87, alg, KEY_MANAGEMENT, response))
        if sw == SW_SECURITY_STATUS:
            raise KeystoreError(
                f"the card refused the management key: wrong key (as {_NAMES[alg]})"
            )
        if sw != SW_OK:
            raise CardError("management key", sw)
        answer = parse_tlv(parse_tlv(out).get(0x7C, b"")).get(0x82)
        if answer != _one_block(alg, key, challenge, decrypt=False):
            raise KeystoreError("the card did not prove knowledge of the management key")

    def generate(self, slot: int) -> ec.EllipticCurvePublicKey:
        """A new P-256 key in `slot`, with the card's default PIN policy for it."""
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

    def slot_holds_key(self, slot: int) -> bool:
        """Whether `slot` holds a key: GET METADATA where the card has it, else
        whether the slot's certificate object exists (all a PIV card shows)."""
        meta = self.metadata(slot)
        if meta is not None:
            return bool(meta)
        return self.get_object(CERTIFICATES[slot]) is not None


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


# The key usage a PIV issuer's certificate gives each slot's key (the FPKI
# Common Policy profiles: PIV Authentication, Digital Signature, Key Management).
_KEY_USAGE_FLAGS = {
    "digital_signature": False,
    "content_commitment": False,
    "key_encipherment": False,
    "data_encipherment": False,
    "key_agreement": False,
    "key_cert_sign": False,
    "crl_sign": False,
    "encipher_only": False,
    "decipher_only": False,
}
KEY_USAGES = {
    SLOT_AUTH: x509.KeyUsage(**{**_KEY_USAGE_FLAGS, "digital_signature": True}),
    SLOT_SIGN: x509.KeyUsage(
        **{**_KEY_USAGE_FLAGS, "digital_signature": True, "content_commitment": True}
    ),
    SLOT_KC: x509.KeyUsage(**{**_KEY_USAGE_FLAGS, "key_agreement": True}),
}
_SLOT_NAMES = {SLOT_AUTH: "authentication", SLOT_SIGN: "signature", SLOT_KC: "key agreement"}


def _card_certificate(
    sign_digest: Callable[[bytes], bytes],
    public: ec.EllipticCurvePublicKey,
    common_name: str,
    key_usage: x509.KeyUsage,
    *,
    issuer: tuple[str, ec.EllipticCurvePublicKey] | None = None,
) -> bytes:
    """A certificate for a card key, signed by the card: self-signed with that
    key (as `ykman piv certificates generate` does, for any slot), or with
    `issuer` (its name and public key) by that other card key.

    cryptography signs certificates only with keys it holds, so the certificate
    is built with a throwaway key of the same algorithm, and its to-be-signed
    part (which names ecdsa-with-SHA256 and carries the card's public key) is
    signed again by the card: Certificate = SEQUENCE(tbs, algorithm, BIT STRING).
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issuer_name, signer = (common_name, public) if issuer is None else issuer
    now = dt.datetime.now(dt.UTC)
    draft = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(key_usage, critical=True)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    tbs = draft.tbs_certificate_bytes
    signature = sign_digest(hashlib.sha256(tbs).digest())
    algorithm = _der(0x30, _der(0x06, bytes.fromhex("2a8648ce3d040302")))  # ecdsa-with-SHA256
    der = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    cert = x509.load_der_x509_certificate(der)
    signer.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))
    return der


@dataclass(frozen=True, kw_only=True)
class SmartcardConfig:
    reader: str | None = None  # None: the first reader holding a card
    label: str = "smartcard"


class PivPassKey:
    """A PIV card (or YubiKey PIV) as a PassKey: 9A authenticates, 9D gives Kc."""

    kind = TokenKind.PIV
    name: ClassVar[str] = "piv"
    # The authentication key's slot, and every slot `provision` generates.
    auth_slot: ClassVar[int] = SLOT_AUTH
    slots: ClassVar[tuple[int, ...]] = (SLOT_AUTH, SLOT_KC)

    def __init__(self, config: SmartcardConfig) -> None:
        self.config = config
        self.link = CardLink(config.reader)
        self.piv = PivApplet(self.link)
        self._verified = False
        self._pin: str | None = None
        self._public: bytes | None = None
        try:
            self.piv.select()
        except BaseException:
            self.link.close()
            raise

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reader={self.link.reader_name!r}, locked={self.locked})"

    @classmethod
    def provision(
        cls,
        config: SmartcardConfig,
        *,
        pin: str,
        management_key: bytes = DEFAULT_MANAGEMENT_KEY,
        management_algorithm: int | None = None,
        force: bool = False,
    ) -> Self:
        """Generate this kind's keys (piv: 9A and 9D; otp: 9C) and store a
        certificate for each. Nothing on the card changes unless
        the slots are empty (or `force`), the PIN is right and the card accepts
        the management key. Returns the token, unlocked."""
        token = cls(config)
        try:
            token._provision(
                pin=pin,
                management_key=management_key,
                management_algorithm=management_algorithm,
                force=force,
            )
        except BaseException:
            token.close()
            raise
        return token

    def _provision(
        self,
        *,
        pin: str,
        management_key: bytes,
        management_algorithm: int | None,
        force: bool,
    ) -> None:
        self._check_can_provision()
        taken = [f"{slot:02X}" for slot in self.slots if self.piv.slot_holds_key(slot)]
        if taken and not force:
            held = (
                f"slots {' and '.join(taken)} of this card already hold keys"
                if len(taken) > 1
                else f"slot {taken[0]} of this card already holds a key"
            )
            raise KeystoreError(
                f"{held}: re-provisioning replaces the keys, so every enrolment and every "
                "client key (Kc) made with them is lost. Use --force to do it anyway"
            )
        # Everything that can refuse comes before anything that changes the card.
        self.verify_pin(pin)
        algorithm = self.piv.authenticate_management(management_key, management_algorithm)
        publics = {slot: self.piv.generate(slot) for slot in self.slots}
        base = f"authnet {self.name.upper()} {self.config.label}"
        names = {s: base if s == self.auth_slot else f"{base} {_SLOT_NAMES[s]}" for s in publics}
        certificates = {}
        for slot, public in publics.items():
            sign = functools.partial(self._sign_slot_digest, slot)
            try:
                certificates[slot] = _card_certificate(sign, public, names[slot], KEY_USAGES[slot])
            except CardError as e:
                # SP 800-73-4 gives an ECC key-management key (9D) only key
                # agreement; a card that enforces it will not sign with it. Then
                # the authentication key issues that key's certificate.
                if slot == self.auth_slot or e.sw == SW_SECURITY_STATUS:
                    raise
                certificates[slot] = _card_certificate(
                    self._sign_digest,
                    public,
                    names[slot],
                    KEY_USAGES[slot],
                    issuer=(names[self.auth_slot], publics[self.auth_slot]),
                )
        self.piv.select()
        self.piv.authenticate_management(management_key, algorithm)
        for slot, cert in certificates.items():
            self.piv.put_object(
                CERTIFICATES[slot], tlv(0x70, cert) + tlv(0x71, b"\x00") + tlv(0xFE)
            )
        self._public = spki(publics[self.auth_slot])

    def _check_can_provision(self) -> None:
        """What else the kind needs of the card before provisioning (nothing here)."""

    # --- PassKey -------------------------------------------------------------

    def _public_key(self) -> bytes:
        if self._public is None:
            container = self.piv.get_object(CERTIFICATES[self.auth_slot])
            if container is None:
                raise KeystoreError(
                    f"the card has no authnet {self.name} key (no certificate for slot "
                    f"{self.auth_slot:02X}): run `passkey provision --token {self.name}`"
                )
            cert = x509.load_der_x509_certificate(parse_tlv(container)[0x70])
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise KeystoreError(f"slot {self.auth_slot:02X} does not hold a P-256 key")
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

    def _again_after_verify(self, operation: Callable[[], bytes]) -> bytes:
        """`operation`, once more after SELECT and VERIFY if the card forgot the
        PIN meanwhile (another program, or another token on the same card,
        selected another applet)."""
        try:
            return operation()
        except CardError as e:
            if e.sw != SW_SECURITY_STATUS or self._pin is None:
                raise
        self.piv.select()
        self.piv.verify(self._pin)
        return operation()

    def _sign_digest(self, digest: bytes) -> bytes:
        return self._again_after_verify(lambda: self.piv.sign_digest(self.auth_slot, digest))

    def _sign_slot_digest(self, slot: int, digest: bytes) -> bytes:
        """A signature by `slot`'s key (its certificate's self-signature)."""
        if slot == self.auth_slot:
            return self._sign_digest(digest)
        return self._again_after_verify(lambda: self.piv.sign_digest(slot, digest))

    def sign(self, message: bytes) -> bytes:
        self._require()
        raw = self._sign_digest(hashlib.sha256(message).digest())
        decode_dss_signature(raw)  # a DER ECDSA signature, or CardError below
        return raw

    def derive_kc(self, spid: bytes) -> bytes:
        self._require()
        point = _point(piv_peer_point(spid))
        shared = self._again_after_verify(lambda: self.piv.ecdh(SLOT_KC, point))
        if len(shared) != 32:
            raise KeystoreError("the card's key agreement returned an odd result")
        return derive_kc(shared, spid, salt=labels.KC_PIV_SALT)

    def close(self) -> None:
        self._verified, self._pin = False, None
        self.link.close()


class OtpPassKey(PivPassKey):
    """A YubiKey whose Kc comes from the OTP applet's slot-2 HMAC-SHA1 and whose
    9C key authenticates: a token apart from the same card's PIV token. 9C's PIN
    policy is "always", and selecting the OTP applet makes the card forget the
    PIN, so the PIN is kept for the session and verified before each signature."""

    kind = TokenKind.OTP
    name: ClassVar[str] = "otp"
    auth_slot: ClassVar[int] = SLOT_SIGN
    slots: ClassVar[tuple[int, ...]] = (SLOT_SIGN,)

    def _check_can_provision(self) -> None:
        # Without a challenge-response secret in slot 2 the token could enrol but
        # never give a Kc: refuse before anything changes.
        try:
            status, sw = self.link.transmit(apdu(0xA4, 0x04, 0x00, OTP_AID))
        finally:
            self.piv.select()
        if sw != SW_OK:
            raise KeystoreError(
                f"this card has no YubiKey OTP applet (it answered {sw:04X}): the otp token "
                "needs a YubiKey"
            )
        if len(status) >= 5 and not status[4] & 0x02:
            raise KeystoreError(
                "the YubiKey's OTP slot 2 is not set up for challenge-response: program it "
                "first (ykman otp chalresp --generate 2)"
            )

    def _sign_digest(self, digest: bytes) -> bytes:
        # PIN policy "always": VERIFY right before the signature, every time.
        if self._pin is None:
            raise PinRequired("the card needs its PIN")
        self.piv.select()
        self.piv.verify(self._pin)
        return self.piv.sign_digest(self.auth_slot, digest)

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
            with contextlib.suppress(AuthnetError):
                self.piv.select()
