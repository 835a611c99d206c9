"""The PIV card application (NIST SP 800-73-4 part 2), as a YubiKey 5 runs it.

Supported: SELECT (application property template), GET DATA / PUT DATA on the
SP 800-73-4 data objects and YubiKey's 5FFFxx objects, VERIFY (PIN 80, the
empty form that reports retries, and P1=FF that resets the security status),
CHANGE REFERENCE DATA (PIN 80, PUK 81), RESET RETRY COUNTER, GENERAL
AUTHENTICATE (card management key 9B: external and mutual authentication;
ECDSA P-256 signatures and ECDH P-256 key agreement with 9A, 9C, 9D and 9E),
GENERATE ASYMMETRIC KEY PAIR (ECC P-256 in 9A, 9C, 9D and 9E), and YubiKey's
GET VERSION (FD), GET SERIAL (F8), GET METADATA (F7, firmware 5.3 and later),
SET MANAGEMENT KEY (FF), SET PIN RETRIES (FA) and RESET (FB).

The card management key is Triple DES (algorithm 03, or 00, which SP 800-78-4
table 6-2 also assigns to three-key Triple DES) or AES-128/192/256 (08, 0A, 0C;
AES from firmware 5.4, as on YubiKeys), with YubiKey's well-known
default value 010203040506070801020304050607080102030405060708: an AES-192 key
on firmware 5.7 and later, the same bytes as a Triple-DES key before.

Keys get YubiKey's default PIN policies unless GENERATE names one: 9A and 9D
"once" (the PIN once per session), 9C "always" (a VERIFY must come right
before each use of the key: any other command in between, or a use, spends
it), 9E "never".
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from . import security_object
from . import tlv as t
from .apdu import (
    SW_AUTH_METHOD_BLOCKED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_FILE_NOT_FOUND,
    SW_FUNCTION_NOT_SUPPORTED,
    SW_INCORRECT_DATA,
    SW_INCORRECT_P1P2,
    SW_INS_NOT_SUPPORTED,
    SW_NOT_ENOUGH_MEMORY,
    SW_REFERENCED_DATA_NOT_FOUND,
    SW_SECURITY_STATUS_NOT_SATISFIED,
    SW_WRONG_LENGTH,
    CommandApdu,
    SwError,
    sw_retries,
)
from .issuer import chuid_signature, new_content_signer
from .state import (
    ALG_3DES,
    ALG_AES192,
    ALG_ECC_P256,
    MANAGEMENT_BLOCK_SIZES,
    MANAGEMENT_KEY_SIZES,
    ORIGIN_GENERATED,
    PIN_POLICY_ALWAYS,
    PIN_POLICY_DEFAULT,
    PIN_POLICY_NEVER,
    PIN_POLICY_ONCE,
    TOUCH_POLICY_DEFAULT,
    TOUCH_POLICY_NEVER,
    CardState,
    ContentSigner,
    KeySlot,
    ManagementKey,
    PinObject,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_MANAGEMENT_KEY",
    "DEFAULT_PIN",
    "DEFAULT_PUK",
    "DEFAULT_RETRIES",
    "DISCOVERY_OBJECT",
    "KEY_MANAGEMENT_KEY",
    "KEY_PIN",
    "KEY_PUK",
    "KNOWN_OBJECTS",
    "OBJ_CCC",
    "OBJ_CERT_9A",
    "OBJ_CERT_9D",
    "OBJ_CHUID",
    "OBJ_DISCOVERY",
    "OBJ_KEY_HISTORY",
    "PIV_AID",
    "SLOT_AUTHENTICATION",
    "SLOT_CARD_AUTHENTICATION",
    "SLOT_KEY_MANAGEMENT",
    "SLOT_SIGNATURE",
    "PivApplet",
    "default_objects",
    "default_piv_state",
    "encode_fascn",
    "pad_pin",
]

PIV_AID = bytes.fromhex("A000000308000010000100")
PIV_PIX = PIV_AID[5:]  # 00 00 10 00 01 00

DEFAULT_PIN = b"123456"
DEFAULT_PUK = b"12345678"
DEFAULT_RETRIES = 3
DEFAULT_MANAGEMENT_KEY = bytes.fromhex("010203040506070801020304050607080102030405060708")

KEY_PIN = 0x80
KEY_PUK = 0x81
KEY_MANAGEMENT_KEY = 0x9B
SLOT_AUTHENTICATION = 0x9A
SLOT_SIGNATURE = 0x9C
SLOT_KEY_MANAGEMENT = 0x9D
SLOT_CARD_AUTHENTICATION = 0x9E
ASYMMETRIC_SLOTS = (
    SLOT_AUTHENTICATION,
    SLOT_SIGNATURE,
    SLOT_KEY_MANAGEMENT,
    SLOT_CARD_AUTHENTICATION,
)
# What PIN policy "default" (00, or no tag AA) means per slot on a YubiKey.
DEFAULT_PIN_POLICIES = {
    SLOT_AUTHENTICATION: PIN_POLICY_ONCE,
    SLOT_SIGNATURE: PIN_POLICY_ALWAYS,
    SLOT_KEY_MANAGEMENT: PIN_POLICY_ONCE,
    SLOT_CARD_AUTHENTICATION: PIN_POLICY_NEVER,
}

# YubiKey firmware that added what this card simulates (yubikit's checks).
FIRMWARE_METADATA = (5, 3, 0)  # GET METADATA
FIRMWARE_AES_MANAGEMENT_KEY = (5, 4, 0)  # AES card management keys
FIRMWARE_AES_DEFAULT = (5, 7, 0)  # the default management key is AES-192, not 3DES

# Data objects (SP 800-73-4 part 1 table 3), as integers of their tag bytes.
OBJ_CARD_AUTH_CERT = 0x5FC101
OBJ_CHUID = 0x5FC102
OBJ_FINGERPRINTS = 0x5FC103
OBJ_CERT_9A = 0x5FC105
OBJ_SECURITY = 0x5FC106
OBJ_CCC = 0x5FC107
OBJ_FACIAL_IMAGE = 0x5FC108
OBJ_PRINTED_INFORMATION = 0x5FC109
OBJ_CERT_9C = 0x5FC10A
OBJ_CERT_9D = 0x5FC10B
OBJ_KEY_HISTORY = 0x5FC10C
OBJ_IRIS_IMAGES = 0x5FC121
OBJ_SM_SIGNER = 0x5FC122
OBJ_PAIRING_CODE = 0x5FC123
OBJ_DISCOVERY = 0x7E
OBJ_BIT_GROUP = 0x7F61

PIV_OBJECTS = frozenset(
    {*range(OBJ_CARD_AUTH_CERT, OBJ_PAIRING_CODE + 1), OBJ_DISCOVERY, OBJ_BIT_GROUP}
    - {0x5FC104}  # unassigned in SP 800-73-4
)
YUBIKEY_OBJECTS = frozenset(range(0x5FFF00, 0x5FFF16))  # vendor objects ykman uses
KNOWN_OBJECTS = PIV_OBJECTS | YUBIKEY_OBJECTS
READ_ONLY_OBJECTS = frozenset({OBJ_DISCOVERY})
PIN_PROTECTED_OBJECTS = frozenset(
    {OBJ_FINGERPRINTS, OBJ_FACIAL_IMAGE, OBJ_PRINTED_INFORMATION, OBJ_IRIS_IMAGES, OBJ_PAIRING_CODE}
)
MAX_OBJECT_SIZE = 3052  # what a YubiKey 5 stores per object

# Tags of the dynamic authentication template (SP 800-73-4 part 2 table 7).
TAG_DYN_AUTH = 0x7C
TAG_WITNESS = 0x80
TAG_CHALLENGE = 0x81
TAG_RESPONSE = 0x82
TAG_EXPONENTIATION = 0x85

INS_VERIFY = 0x20
INS_CHANGE_REFERENCE = 0x24
INS_RESET_RETRY = 0x2C
INS_GENERATE = 0x47
INS_GENERAL_AUTHENTICATE = 0x87
INS_GET_DATA = 0xCB
INS_PUT_DATA = 0xDB
INS_GET_METADATA = 0xF7
INS_GET_SERIAL = 0xF8
INS_SET_PIN_RETRIES = 0xFA
INS_RESET = 0xFB
INS_GET_VERSION = 0xFD
INS_SET_MANAGEMENT_KEY = 0xFF

_CURVE = ec.SECP256R1()
ALG_3DES_LEGACY = 0x00  # SP 800-78-4 table 6-2: '00' is Triple DES too


def pad_pin(pin: bytes) -> bytes:
    """A PIN or PUK as PIV carries it: right-padded with FF to 8 bytes."""
    if len(pin) > 8:
        raise ValueError("a PIV PIN or PUK has at most 8 bytes")
    return pin + b"\xff" * (8 - len(pin))


def _well_formed_reference(padded: bytes) -> bool:
    """6 to 8 bytes, none of them FF, then FF padding to 8 (what YubiKeys accept)."""
    if len(padded) != 8:
        return False
    value = padded.rstrip(b"\xff")
    return len(value) >= 6 and b"\xff" not in value


# --- default data objects ---------------------------------------------------------

_FASCN_SS, _FASCN_FS, _FASCN_ES = 0xB, 0xD, 0xF


def encode_fascn(
    agency: str = "9999",
    system: str = "9999",
    credential: str = "999999",
    cs: str = "0",
    ici: str = "1",
    pi: str = "0000000000",
    oc: str = "3",
    oi: str = "0000",
    poa: str = "1",
) -> bytes:
    """The 25-byte FASC-N (TIG SCEPACS): 40 five-bit BCD characters (four data
    bits least significant first, then odd parity), closed by an LRC. The
    defaults are the non-federal issuer FASC-N 9999-9999-999999-0-1-0000000000300001."""
    fields = [(agency, 4), (system, 4), (credential, 6), (cs, 1), (ici, 1)]
    chars = [_FASCN_SS]
    for value, size in fields:
        if len(value) != size or not value.isdigit():
            raise ValueError("FASC-N fields are decimal digits of fixed sizes")
        chars += [int(c) for c in value]
        chars.append(_FASCN_FS)
    tail = pi + oc + oi + poa
    if len(pi) != 10 or len(oc) != 1 or len(oi) != 4 or len(poa) != 1 or not tail.isdigit():
        raise ValueError("FASC-N fields are decimal digits of fixed sizes")
    chars += [int(c) for c in tail]
    chars.append(_FASCN_ES)
    lrc = 0
    for c in chars:
        lrc ^= c
    chars.append(lrc)
    bits = 0
    for c in chars:
        data = [(c >> i) & 1 for i in range(4)]
        parity = 1 - (sum(data) & 1)
        for b in [*data, parity]:
            bits = (bits << 1) | b
    return bits.to_bytes(25, "big")


FASCN_NON_FEDERAL = encode_fascn()
# PIV AID and PIN usage policy 4000 (the PIV PIN only): a blank YubiKey has it too
DISCOVERY_OBJECT = t.tlv(0x4F, PIV_AID) + t.tlv(0x5F2F, b"\x40\x00")


def default_objects(signer: ContentSigner) -> dict[int, bytes]:
    """What an issuer writes at personalization: CHUID (non-federal FASC-N, random
    GUID, expiry 2030-01-01, signed by `signer`, a throwaway issuer key: issuer.py),
    CCC (random card identifier), Discovery object (PIV AID, PIN usage policy 4000:
    the PIV PIN only), an empty key history, and the Security Object over the
    CCC, CHUID, Discovery object and key history (security_object.py)."""
    signed = (
        t.tlv(0x30, FASCN_NON_FEDERAL)
        + t.tlv(0x34, secrets.token_bytes(16))
        + t.tlv(0x35, b"20300101")
    )
    chuid = signed + t.tlv(0x3E, chuid_signature(signed, signer)) + t.tlv(0xFE)
    card_id = bytes.fromhex("A000000116") + b"\xff\x02" + secrets.token_bytes(14)
    ccc = (
        t.tlv(0xF0, card_id)
        + t.tlv(0xF1, b"\x21")
        + t.tlv(0xF2, b"\x21")
        + t.tlv(0xF3)
        + t.tlv(0xF4, b"\x00")
        + t.tlv(0xF5, b"\x10")
        + t.tlv(0xF6)
        + t.tlv(0xF7)
        + t.tlv(0xFA)
        + t.tlv(0xFB)
        + t.tlv(0xFC)
        + t.tlv(0xFD)
        + t.tlv(0xFE)
    )
    key_history = t.tlv(0xC1, b"\x00") + t.tlv(0xC2, b"\x00") + t.tlv(0xFE)
    objects = {
        OBJ_CHUID: chuid,
        OBJ_CCC: ccc,
        OBJ_DISCOVERY: DISCOVERY_OBJECT,
        OBJ_KEY_HISTORY: key_history,
    }
    signed_hashes = security_object.security_object(objects, signer)
    if signed_hashes is None:
        raise RuntimeError("four covered objects always make a Security Object")
    objects[OBJ_SECURITY] = signed_hashes
    return objects


def default_management_algorithm(firmware: tuple[int, int, int]) -> int:
    """The algorithm of the factory management key: AES-192 from 5.7, 3DES before."""
    return ALG_AES192 if firmware >= FIRMWARE_AES_DEFAULT else ALG_3DES


def default_piv_state(
    firmware: tuple[int, int, int] = FIRMWARE_AES_DEFAULT,
) -> tuple[PinObject, PinObject, ManagementKey]:
    return (
        PinObject.new(pad_pin(DEFAULT_PIN), DEFAULT_RETRIES, is_default=True),
        PinObject.new(pad_pin(DEFAULT_PUK), DEFAULT_RETRIES, is_default=True),
        ManagementKey(
            default_management_algorithm(firmware), DEFAULT_MANAGEMENT_KEY, is_default=True
        ),
    )


def _object_tag(value: bytes) -> int:
    if not 1 <= len(value) <= 3:
        raise SwError(SW_INCORRECT_DATA, "bad object tag")
    return int.from_bytes(value, "big")


def _parse(data: bytes) -> list[tuple[int, bytes]]:
    try:
        return t.parse(data)
    except t.TlvError as e:
        raise SwError(SW_INCORRECT_DATA, str(e)) from None


def _ecb(algorithm: int, key: bytes, block: bytes, *, encrypt: bool) -> bytes:
    # SP 800-73-4 part 2 appendix A: the witness and challenge are single blocks
    # enciphered with the card management key; one-block ECB is the mandated form.
    # Triple DES comes from cryptography's "decrepit" module, where it now lives.
    cipher_algorithm = TripleDES(key) if algorithm == ALG_3DES else algorithms.AES(key)
    cipher = Cipher(cipher_algorithm, modes.ECB())  # noqa: S305
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(block) + ctx.finalize()


class PivApplet:
    """The PIV application. Its volatile security status lives here; everything
    persistent lives in the card's CardState (reached through `state()`)."""

    aid = PIV_AID
    chainable = frozenset({INS_GENERAL_AUTHENTICATE, INS_PUT_DATA, INS_GENERATE})

    def __init__(self, state: Callable[[], CardState]) -> None:
        self._state = state
        self._keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self.reset()

    # --- session ----------------------------------------------------------------

    def reset(self) -> None:
        """Power cycle or deselection: the security status returns to its initial state."""
        self.pin_verified = False
        self._pin_fresh = False  # the last command was a good VERIFY (PIN-always keys)
        self.mgmt_authenticated = False
        self._mgmt_pending: tuple[int, bytes] | None = None

    def select(self) -> bytes:
        """The application property template (SP 800-73-4 part 2 table 3)."""
        return t.tlv(
            0x61,
            t.tlv(0x4F, PIV_PIX)
            + t.tlv(0x79, t.tlv(0x4F, PIV_AID[:5]))
            + t.tlv(0x50, b"authnet virtual PIV")
            + t.tlv(
                0xAC,
                b"".join(t.tlv(0x80, bytes([alg])) for alg in sorted(MANAGEMENT_KEY_SIZES))
                + t.tlv(0x80, bytes([ALG_ECC_P256]))
                + t.tlv(0x06, b"\x00"),
            ),
        )

    def deselect(self) -> None:
        self.reset()

    def handle(self, apdu: CommandApdu) -> bytes:
        pending, self._mgmt_pending = self._mgmt_pending, None
        # A PIN-always key needs the VERIFY right before it: any other command
        # in between spends the verification (GENERAL AUTHENTICATE checks it).
        fresh, self._pin_fresh = self._pin_fresh, False
        ins = apdu.ins
        if ins == INS_GET_DATA:
            return self._get_data(apdu)
        if ins == INS_VERIFY:
            self._pin_fresh = fresh  # a status query keeps it; a new VERIFY renews it
            return self._verify(apdu)
        if ins == INS_GENERAL_AUTHENTICATE:
            return self._general_authenticate(apdu, pending, fresh=fresh)
        if ins == INS_PUT_DATA:
            return self._put_data(apdu)
        if ins == INS_GENERATE:
            return self._generate(apdu)
        if ins == INS_CHANGE_REFERENCE:
            return self._change_reference(apdu)
        if ins == INS_RESET_RETRY:
            return self._reset_retry(apdu)
        if ins == INS_GET_VERSION:
            self._no_data(apdu)
            return bytes(self._state().firmware)
        if ins == INS_GET_SERIAL:
            self._no_data(apdu)
            return self._state().serial.to_bytes(4, "big")
        if ins == INS_GET_METADATA:
            if self._state().firmware < FIRMWARE_METADATA:
                raise SwError(SW_INS_NOT_SUPPORTED, "GET METADATA needs firmware 5.3")
            return self._get_metadata(apdu)
        if ins == INS_SET_MANAGEMENT_KEY:
            return self._set_management_key(apdu)
        if ins == INS_SET_PIN_RETRIES:
            return self._set_pin_retries(apdu)
        if ins == INS_RESET:
            return self._reset_application(apdu)
        raise SwError(SW_INS_NOT_SUPPORTED)

    @staticmethod
    def _no_data(apdu: CommandApdu) -> None:
        if apdu.p1 != 0 or apdu.p2 != 0:
            raise SwError(SW_INCORRECT_P1P2)
        if apdu.data:
            raise SwError(SW_WRONG_LENGTH, "this command takes no data")

    def _require_mgmt(self) -> None:
        if not self.mgmt_authenticated:
            raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "card management key required")

    # --- data objects -----------------------------------------------------------

    def _get_data(self, apdu: CommandApdu) -> bytes:
        if (apdu.p1, apdu.p2) != (0x3F, 0xFF):
            raise SwError(SW_INCORRECT_P1P2)
        items = _parse(apdu.data)
        if len(items) != 1 or items[0][0] != 0x5C:
            raise SwError(SW_INCORRECT_DATA, "expected a tag list 5C")
        tag = _object_tag(items[0][1])
        if tag not in KNOWN_OBJECTS:
            raise SwError(SW_INCORRECT_DATA, "not a PIV data object")
        if tag in PIN_PROTECTED_OBJECTS and not self.pin_verified:
            raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "this object needs the PIN")
        content = self._state().objects.get(tag)
        if content is None:
            raise SwError(SW_FILE_NOT_FOUND)
        if tag in (OBJ_DISCOVERY, OBJ_BIT_GROUP):
            return t.tlv(tag, content)  # these two are returned in their own template
        return t.tlv(0x53, content)

    def _put_data(self, apdu: CommandApdu) -> bytes:
        if (apdu.p1, apdu.p2) != (0x3F, 0xFF):
            raise SwError(SW_INCORRECT_P1P2)
        self._require_mgmt()
        items = _parse(apdu.data)
        if len(items) == 1 and items[0][0] in (OBJ_DISCOVERY, OBJ_BIT_GROUP):
            # these two are written as their own template, not as 5C/53
            tag, content = items[0]
            if tag in READ_ONLY_OBJECTS:
                raise SwError(SW_FUNCTION_NOT_SUPPORTED, "the Discovery object is read-only")
        elif len(items) == 2 and items[0][0] == 0x5C and items[1][0] == 0x53:
            tag = _object_tag(items[0][1])
            content = items[1][1]
            if tag not in KNOWN_OBJECTS or tag in (OBJ_DISCOVERY, OBJ_BIT_GROUP):
                raise SwError(SW_INCORRECT_DATA, "not a writable data object")
        else:
            raise SwError(SW_INCORRECT_DATA, "expected 5C <tag> 53 <content>")
        if len(content) > MAX_OBJECT_SIZE:
            raise SwError(SW_NOT_ENOUGH_MEMORY, "object too large")
        state = self._state()
        if content:
            state.objects[tag] = content
        else:
            state.objects.pop(tag, None)  # an empty object deletes it
        if tag in security_object.COVERED_TAGS:
            security_object.refresh(state)  # re-sign the hashes, as the issuer would
        return b""

    # --- PIN and PUK --------------------------------------------------------------

    def _verify(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 not in (0x00, 0xFF):
            raise SwError(SW_INCORRECT_P1P2)
        if apdu.p2 != KEY_PIN:
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND, "only the PIV PIN (80) is verified")
        pin = self._state().pin
        if apdu.p1 == 0xFF:
            if apdu.data:
                raise SwError(SW_WRONG_LENGTH, "P1=FF takes no data")
            self.pin_verified = self._pin_fresh = False
            return b""
        if not apdu.data:
            if pin.blocked:
                raise SwError(SW_AUTH_METHOD_BLOCKED)
            if self.pin_verified:
                return b""
            raise SwError(sw_retries(pin.remaining))
        if len(apdu.data) != 8:
            raise SwError(SW_INCORRECT_DATA, "the PIN is 8 bytes, FF-padded")
        self._check_reference(pin, apdu.data)
        self.pin_verified = self._pin_fresh = True
        return b""

    def _check_reference(self, ref: PinObject, padded: bytes) -> None:
        """Compare, count down on failure (63Cx), reset the counter on success."""
        if ref.blocked:
            raise SwError(SW_AUTH_METHOD_BLOCKED)
        if not ref.matches(padded):
            ref.remaining -= 1
            if ref is self._state().pin:
                self.pin_verified = self._pin_fresh = False
            raise SwError(sw_retries(ref.remaining))
        ref.remaining = ref.max_retries

    def _change_reference(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            raise SwError(SW_INCORRECT_P1P2)
        state = self._state()
        if apdu.p2 == KEY_PIN:
            ref, default = state.pin, DEFAULT_PIN
        elif apdu.p2 == KEY_PUK:
            ref, default = state.puk, DEFAULT_PUK
        else:
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
        if len(apdu.data) != 16:
            raise SwError(SW_INCORRECT_DATA, "old and new value, 8 bytes each")
        if ref.blocked:
            raise SwError(SW_AUTH_METHOD_BLOCKED)
        old, new = apdu.data[:8], apdu.data[8:]
        if not _well_formed_reference(new):
            raise SwError(SW_INCORRECT_DATA, "the new value must be 6 to 8 bytes")
        self._check_reference(ref, old)
        ref.set_value(new, is_default=hmac.compare_digest(new, pad_pin(default)))
        return b""

    def _reset_retry(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            raise SwError(SW_INCORRECT_P1P2)
        if apdu.p2 != KEY_PIN:
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
        if len(apdu.data) != 16:
            raise SwError(SW_INCORRECT_DATA, "PUK and new PIN, 8 bytes each")
        state = self._state()
        if state.puk.blocked:
            raise SwError(SW_AUTH_METHOD_BLOCKED)
        puk, new = apdu.data[:8], apdu.data[8:]
        if not _well_formed_reference(new):
            raise SwError(SW_INCORRECT_DATA, "the new PIN must be 6 to 8 bytes")
        self._check_reference(state.puk, puk)
        state.pin.set_value(new, is_default=hmac.compare_digest(new, pad_pin(DEFAULT_PIN)))
        state.pin.remaining = state.pin.max_retries
        self.pin_verified = self._pin_fresh = False
        return b""

    # --- keys ---------------------------------------------------------------------

    def _private_key(self, slot: KeySlot) -> ec.EllipticCurvePrivateKey:
        key = self._keys.get(slot.private_value)
        if key is None:
            key = ec.derive_private_key(int.from_bytes(slot.private_value, "big"), _CURVE)
            if len(self._keys) > 16:
                self._keys.clear()
            self._keys[slot.private_value] = key
        return key

    @staticmethod
    def _public_template(key: ec.EllipticCurvePrivateKey) -> bytes:
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return t.tlv(0x86, point)

    def _generate(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00 or apdu.p2 not in ASYMMETRIC_SLOTS:
            raise SwError(SW_INCORRECT_P1P2, "keys can be generated in 9A, 9C, 9D and 9E")
        self._require_mgmt()
        outer = _parse(apdu.data)
        if len(outer) != 1 or outer[0][0] != 0xAC:
            raise SwError(SW_INCORRECT_DATA, "expected a control reference template AC")
        inner = _parse(outer[0][1])
        alg = t.find(inner, 0x80)
        if alg != bytes([ALG_ECC_P256]):
            raise SwError(SW_INCORRECT_DATA, "only ECC P-256 (11) is supported")
        pin_policy = t.find(inner, 0xAA) or bytes([PIN_POLICY_DEFAULT])
        touch_policy = t.find(inner, 0xAB) or bytes([TOUCH_POLICY_DEFAULT])
        if len(pin_policy) != 1 or pin_policy[0] > PIN_POLICY_ALWAYS:
            raise SwError(SW_INCORRECT_DATA, "bad PIN policy")
        if len(touch_policy) != 1 or touch_policy[0] not in (
            TOUCH_POLICY_DEFAULT,
            TOUCH_POLICY_NEVER,
        ):
            raise SwError(SW_INCORRECT_DATA, "this card has no touch sensor")
        key = ec.generate_private_key(_CURVE)
        value = key.private_numbers().private_value.to_bytes(32, "big")
        self._state().keys[apdu.p2] = KeySlot(
            algorithm=ALG_ECC_P256,
            private_value=value,
            pin_policy=pin_policy[0] or DEFAULT_PIN_POLICIES[apdu.p2],
            touch_policy=TOUCH_POLICY_NEVER,
            origin=ORIGIN_GENERATED,
        )
        return t.tlv(0x7F49, self._public_template(key))

    def _general_authenticate(
        self, apdu: CommandApdu, pending: tuple[int, bytes] | None, *, fresh: bool
    ) -> bytes:
        if apdu.p2 == KEY_MANAGEMENT_KEY:
            return self._authenticate_management(apdu, pending)
        if apdu.p2 not in ASYMMETRIC_SLOTS:
            raise SwError(SW_INCORRECT_P1P2, "no such key reference")
        slot = self._state().keys.get(apdu.p2)
        if slot is None:
            raise SwError(SW_REFERENCED_DATA_NOT_FOUND, "the slot holds no key")
        if apdu.p1 != slot.algorithm:
            raise SwError(SW_INCORRECT_P1P2, "algorithm does not match the key")
        if slot.pin_policy == PIN_POLICY_ONCE and not self.pin_verified:
            raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "verify the PIN first")
        if slot.pin_policy == PIN_POLICY_ALWAYS and not (self.pin_verified and fresh):
            raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "verify the PIN before each use")
        outer = _parse(apdu.data)
        if len(outer) != 1 or outer[0][0] != TAG_DYN_AUTH:
            raise SwError(SW_INCORRECT_DATA, "expected a dynamic authentication template")
        items = _parse(outer[0][1])
        tags = [tag for tag, _ in items]
        if sorted(tags) not in ([TAG_CHALLENGE, TAG_RESPONSE], [TAG_RESPONSE, TAG_EXPONENTIATION]):
            raise SwError(SW_INCORRECT_DATA, "expected 82 00 with 81 or 85")
        if t.find(items, TAG_RESPONSE) != b"":
            raise SwError(SW_INCORRECT_DATA, "82 requests the response and must be empty")
        key = self._private_key(slot)
        challenge = t.find(items, TAG_CHALLENGE)
        if challenge is not None:
            if len(challenge) != 32:
                raise SwError(SW_INCORRECT_DATA, "a P-256 signature input is 32 bytes")
            result = key.sign(challenge, ec.ECDSA(Prehashed(hashes.SHA256())))
        else:
            point = t.find(items, TAG_EXPONENTIATION) or b""
            if len(point) != 65 or point[0] != 0x04:
                raise SwError(SW_INCORRECT_DATA, "expected an uncompressed P-256 point")
            try:
                peer = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, point)
            except ValueError:
                raise SwError(SW_INCORRECT_DATA, "the point is not on P-256") from None
            result = key.exchange(ec.ECDH(), peer)
        return t.tlv(TAG_DYN_AUTH, t.tlv(TAG_RESPONSE, result))

    def _authenticate_management(
        self, apdu: CommandApdu, pending: tuple[int, bytes] | None
    ) -> bytes:
        mgmt = self._state().management_key
        # SP 800-78-4 table 6-2: algorithm identifier 00 is three-key Triple DES
        # in ECB, like 03 (both deprecated by SP 800-78-5). It is not "whatever the
        # card has": OpenSC's GET CHALLENGE (00 87 00 9B 7C 02 81 00) gets a
        # challenge from a Triple-DES card, 6A86 from an AES one.
        algorithm = ALG_3DES if apdu.p1 == ALG_3DES_LEGACY else apdu.p1
        if algorithm != mgmt.algorithm:
            raise SwError(SW_INCORRECT_P1P2, "algorithm does not match the management key")
        block = MANAGEMENT_BLOCK_SIZES[mgmt.algorithm]
        outer = _parse(apdu.data)
        if len(outer) != 1 or outer[0][0] != TAG_DYN_AUTH:
            raise SwError(SW_INCORRECT_DATA, "expected a dynamic authentication template")
        items = _parse(outer[0][1])
        shape = [(tag, len(value)) for tag, value in items]
        if shape == [(TAG_WITNESS, 0)]:
            # Mutual authentication, step 1: a witness, enciphered.
            witness = secrets.token_bytes(block)
            self._mgmt_pending = (TAG_WITNESS, witness)
            encrypted = _ecb(mgmt.algorithm, mgmt.key, witness, encrypt=True)
            return t.tlv(TAG_DYN_AUTH, t.tlv(TAG_WITNESS, encrypted))
        if shape == [(TAG_CHALLENGE, 0)]:
            # External authentication, step 1: a challenge in clear.
            challenge = secrets.token_bytes(block)
            self._mgmt_pending = (TAG_CHALLENGE, challenge)
            return t.tlv(TAG_DYN_AUTH, t.tlv(TAG_CHALLENGE, challenge))
        if sorted(shape) == [(TAG_WITNESS, block), (TAG_CHALLENGE, block)]:
            # Mutual authentication, step 2: the host deciphered the witness and
            # sends its own challenge for the card to encipher.
            ok = pending is not None and pending[0] == TAG_WITNESS
            expected = pending[1] if pending is not None else bytes(block)
            got = t.find(items, TAG_WITNESS) or b""
            if not (hmac.compare_digest(got, expected) and ok):
                self.mgmt_authenticated = False
                raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "wrong management key")
            self.mgmt_authenticated = True
            host_challenge = t.find(items, TAG_CHALLENGE) or b""
            response = _ecb(mgmt.algorithm, mgmt.key, host_challenge, encrypt=True)
            return t.tlv(TAG_DYN_AUTH, t.tlv(TAG_RESPONSE, response))
        if shape == [(TAG_RESPONSE, block)]:
            # External authentication, step 2: the challenge, enciphered by the host.
            ok = pending is not None and pending[0] == TAG_CHALLENGE
            challenge = pending[1] if pending is not None else bytes(block)
            expected = _ecb(mgmt.algorithm, mgmt.key, challenge, encrypt=True)
            got = t.find(items, TAG_RESPONSE) or b""
            if not (hmac.compare_digest(got, expected) and ok):
                self.mgmt_authenticated = False
                raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "wrong management key")
            self.mgmt_authenticated = True
            return b""
        raise SwError(SW_INCORRECT_DATA, "not a management key authentication step")

    # --- YubiKey extensions ----------------------------------------------------------

    def _get_metadata(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x00:
            raise SwError(SW_INCORRECT_P1P2)
        if apdu.data:
            raise SwError(SW_WRONG_LENGTH)
        state = self._state()
        if apdu.p2 in (KEY_PIN, KEY_PUK):
            ref = state.pin if apdu.p2 == KEY_PIN else state.puk
            return (
                t.tlv(0x01, b"\xff")
                + t.tlv(0x05, bytes([ref.is_default]))
                + t.tlv(0x06, bytes([ref.max_retries, max(ref.remaining, 0)]))
            )
        if apdu.p2 == KEY_MANAGEMENT_KEY:
            mgmt = state.management_key
            return (
                t.tlv(0x01, bytes([mgmt.algorithm]))
                + t.tlv(0x02, bytes([PIN_POLICY_DEFAULT, TOUCH_POLICY_NEVER]))
                + t.tlv(0x05, bytes([mgmt.is_default]))
            )
        if apdu.p2 in ASYMMETRIC_SLOTS:
            slot = state.keys.get(apdu.p2)
            if slot is None:
                raise SwError(SW_REFERENCED_DATA_NOT_FOUND)
            return (
                t.tlv(0x01, bytes([slot.algorithm]))
                + t.tlv(0x02, bytes([slot.pin_policy, slot.touch_policy]))
                + t.tlv(0x03, bytes([slot.origin]))
                + t.tlv(0x04, self._public_template(self._private_key(slot)))
            )
        raise SwError(SW_REFERENCED_DATA_NOT_FOUND)

    def _set_management_key(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0xFF or apdu.p2 != 0xFF:
            raise SwError(SW_INCORRECT_P1P2, "touch-required management keys are unsupported")
        self._require_mgmt()
        if len(apdu.data) < 3:
            raise SwError(SW_INCORRECT_DATA)
        alg = apdu.data[0]
        items = _parse(apdu.data[1:])
        size = MANAGEMENT_KEY_SIZES.get(alg)
        if size is None or len(items) != 1 or items[0][0] != KEY_MANAGEMENT_KEY:
            raise SwError(SW_INCORRECT_DATA, "expected a 3DES or AES key for 9B")
        if alg != ALG_3DES and self._state().firmware < FIRMWARE_AES_MANAGEMENT_KEY:
            raise SwError(SW_INCORRECT_DATA, "AES management keys need firmware 5.4")
        key = items[0][1]
        if len(key) != size:
            raise SwError(SW_INCORRECT_DATA, "wrong key size for the algorithm")
        is_default = hmac.compare_digest(key, DEFAULT_MANAGEMENT_KEY)
        self._state().management_key = ManagementKey(alg, key, is_default)
        return b""

    def _set_pin_retries(self, apdu: CommandApdu) -> bytes:
        if apdu.data:
            raise SwError(SW_WRONG_LENGTH)
        self._require_mgmt()
        if not self.pin_verified:
            raise SwError(SW_SECURITY_STATUS_NOT_SATISFIED, "verify the PIN first")
        if not (1 <= apdu.p1 <= 15 and 1 <= apdu.p2 <= 15):
            raise SwError(SW_INCORRECT_P1P2, "retries are 1..15")
        state = self._state()
        # As on a YubiKey, this also puts the PIN and PUK back to their defaults.
        state.pin = PinObject.new(pad_pin(DEFAULT_PIN), apdu.p1, is_default=True)
        state.puk = PinObject.new(pad_pin(DEFAULT_PUK), apdu.p2, is_default=True)
        self.pin_verified = self._pin_fresh = False
        return b""

    def _reset_application(self, apdu: CommandApdu) -> bytes:
        self._no_data(apdu)
        state = self._state()
        if not (state.pin.blocked and state.puk.blocked):
            raise SwError(SW_CONDITIONS_NOT_SATISFIED, "block the PIN and the PUK first")
        state.pin, state.puk, state.management_key = default_piv_state(state.firmware)
        state.keys.clear()
        state.content_signer = new_content_signer()
        state.objects = default_objects(state.content_signer)
        self.reset()
        return b""
