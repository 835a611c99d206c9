"""The virtual card: ISO 7816-4 command processing, applet selection, persistence.

`VirtualCard.process(apdu) -> response` is all a reader needs (it does no I/O
except writing its own state file). It parses short and extended APDUs, keeps
command chaining (CLA 10) for the PIV commands that carry large data, hands
out long responses in pieces with 61xx and GET RESPONSE (00 C0 00 00 Le), and
dispatches everything else to the selected application (PIV or YubiKey OTP).

Status words are those real cards return: 6700 malformed APDU, 6E00 class
not supported, 6D00 instruction not supported, 6A86 wrong P1/P2, 6A82
application or data object not found, 6A80 bad data, 6982 security status not
satisfied, 63Cx wrong PIN with x tries left, 6983 blocked, 6883/6884 broken or
unsupported chaining, 6985 GET RESPONSE with nothing pending, 6581 if the
state file cannot be written (the command is then undone).

The card never raises out of `process`: an unexpected exception is logged,
counted in `internal_errors`, rolled back to the last persisted state, and
answered with 6F00.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import secrets
import threading
from pathlib import Path
from typing import Protocol

from .apdu import (
    SW_CHAINING_NOT_SUPPORTED,
    SW_CLA_NOT_SUPPORTED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_FILE_NOT_FOUND,
    SW_INCORRECT_P1P2,
    SW_INS_NOT_SUPPORTED,
    SW_LAST_COMMAND_EXPECTED,
    SW_NO_PRECISE_DIAGNOSIS,
    SW_NOT_ENOUGH_MEMORY,
    SW_OK,
    SW_WRONG_LENGTH,
    CommandApdu,
    SwError,
    sw_bytes,
    sw_more_data,
)
from .issuer import new_content_signer
from .otp import OtpApplet
from .piv import (
    ASYMMETRIC_SLOTS,
    DEFAULT_MANAGEMENT_KEY,
    DEFAULT_PIN,
    DEFAULT_PUK,
    DEFAULT_RETRIES,
    DISCOVERY_OBJECT,
    KNOWN_OBJECTS,
    OBJ_DISCOVERY,
    PivApplet,
    default_management_algorithm,
    default_objects,
    pad_pin,
)
from .state import (
    ALG_3DES,
    MANAGEMENT_KEY_SIZES,
    CardState,
    CardStateError,
    ManagementKey,
    OtpSlot,
    PinObject,
    write_atomic,
)

__all__ = ["DEFAULT_FIRMWARE", "VirtualCard", "build_atr"]

log = logging.getLogger(__name__)

DEFAULT_FIRMWARE = (5, 7, 1)
SW_MEMORY_FAILURE = 0x6581
INS_SELECT = 0xA4
INS_GET_RESPONSE = 0xC0
MAX_CHAIN = 4096  # the largest command a chain may assemble


def build_atr(historical: bytes) -> bytes:
    """An ISO 7816-3 ATR for T=1 with the given historical bytes and its TCK.

    TS 3B, T0 Fk, TA1 13, TB1 00, TC1 00, TD1 81 (T=1 follows), TD2 31 (TA3 TB3,
    T=1), TA3 FE (IFSC 254), TB3 15 (BWI/CWI), historical bytes, TCK: the same
    interface bytes a YubiKey 5 presents."""
    if len(historical) > 15:
        raise ValueError("at most 15 historical bytes")
    body = bytes([0xF0 | len(historical), 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15]) + historical
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


# Category 80 (compact-TLV): card capabilities 73 C0 21 C0, issuer data 5x "authnet".
ATR = build_atr(bytes.fromhex("8073C021C0") + b"\x57" + b"authnet")


class Applet(Protocol):
    aid: bytes
    chainable: frozenset[int]

    def reset(self) -> None: ...
    def select(self) -> bytes: ...
    def deselect(self) -> None: ...
    def handle(self, apdu: CommandApdu) -> bytes: ...


def _check_reference_value(value: bytes, what: str) -> bytes:
    if not 6 <= len(value) <= 8 or b"\xff" in value:
        raise ValueError(f"the {what} must be 6 to 8 bytes (no FF)")
    return pad_pin(value)


class VirtualCard:
    """A PIV + YubiKey OTP card whose memory is a JSON file (or only RAM)."""

    def __init__(self, state: CardState, path: Path | None = None) -> None:
        _validate(state)
        self._lock = threading.RLock()
        self._state = state
        self._path = path
        self._persisted = state.dumps()
        self.piv = PivApplet(self._get_state)
        self.otp = OtpApplet(self._get_state)
        self._applets: tuple[Applet, ...] = (self.piv, self.otp)
        self._selected: Applet | None = None
        self._chain: tuple[int, int, int, bytearray] | None = None
        self._pending = b""
        self.internal_errors = 0

    # --- construction --------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path | None = None,
        *,
        pin: bytes = DEFAULT_PIN,
        puk: bytes = DEFAULT_PUK,
        pin_retries: int = DEFAULT_RETRIES,
        puk_retries: int = DEFAULT_RETRIES,
        management_key: bytes = DEFAULT_MANAGEMENT_KEY,
        management_algorithm: int | None = None,
        serial: int | None = None,
        firmware: tuple[int, int, int] = DEFAULT_FIRMWARE,
        otp_slot1_secret: bytes | None = None,
        otp_slot2_secret: bytes | None = None,
        personalize: bool = True,
    ) -> VirtualCard:
        """A new card; with `path`, its state file is created (never overwritten).

        Defaults are a YubiKey's: PIN 123456, PUK 12345678, 3 tries each, management
        key 010203040506070801020304050607080102030405060708, as AES-192 (algorithm
        0A) on firmware 5.7 and later and as Triple DES (03) before, unless
        `management_algorithm` says otherwise (AES needs firmware 5.4).
        `personalize` writes a CHUID, CCC, Discovery object, key history and the
        Security Object as an issuer would (the card keeps the issuer's throwaway
        content signer to re-sign the Security Object); without it only the
        Discovery object exists."""
        if not (1 <= pin_retries <= 15 and 1 <= puk_retries <= 15):
            raise ValueError("retries are 1..15")
        if management_algorithm is None:
            management_algorithm = default_management_algorithm(firmware)
        size = MANAGEMENT_KEY_SIZES.get(management_algorithm)
        if size is None or len(management_key) != size:
            raise ValueError("the management key must be 3DES, AES-128, AES-192 or AES-256")
        if management_algorithm != ALG_3DES and firmware < (5, 4, 0):
            raise ValueError("AES management keys need firmware 5.4 or later")
        padded_pin = _check_reference_value(pin, "PIN")
        padded_puk = _check_reference_value(puk, "PUK")
        signer = new_content_signer() if personalize else None
        if signer is not None:
            objects = default_objects(signer)
        else:  # a blank YubiKey: only the Discovery object
            objects = {OBJ_DISCOVERY: DISCOVERY_OBJECT}
        state = CardState(
            serial=secrets.randbelow(90_000_000) + 10_000_000 if serial is None else serial,
            firmware=firmware,
            pin=PinObject.new(padded_pin, pin_retries, is_default=_same(pin, DEFAULT_PIN)),
            puk=PinObject.new(padded_puk, puk_retries, is_default=_same(puk, DEFAULT_PUK)),
            management_key=ManagementKey(
                management_algorithm,
                management_key,
                is_default=_same(management_key, DEFAULT_MANAGEMENT_KEY),
            ),
            objects=objects,
            content_signer=signer,
        )
        for slot, secret in ((1, otp_slot1_secret), (2, otp_slot2_secret)):
            if secret is not None:
                state.otp_slots[slot] = OtpSlot(_otp_secret(secret))
        if not 0 <= state.serial <= 0xFFFFFFFF:
            raise ValueError("the serial number is 32 bits")
        if path is not None:
            path = Path(path)
            if path.exists():
                raise CardStateError(f"{path} already exists; refusing to overwrite a card")
            write_atomic(path, state.dumps())
        return cls(state, path)

    @classmethod
    def load(cls, path: Path) -> VirtualCard:
        """The card whose state is in `path` (raises CardStateError)."""
        path = Path(path)
        state = CardState.load(path)
        try:
            return cls(state, path)
        except CardStateError as e:
            raise CardStateError(f"{path} is not a valid card state: {e}") from None

    @classmethod
    def load_or_create(cls, path: Path, **options: object) -> VirtualCard:
        """Resume the card in `path`, or create it there with `options` (see create)."""
        path = Path(path)
        if path.exists():
            return cls.load(path)
        return cls.create(path, **options)  # type: ignore[arg-type]

    # --- properties ------------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        return ATR

    @property
    def serial(self) -> int:
        return self._state.serial

    @property
    def path(self) -> Path | None:
        return self._path

    def snapshot(self) -> CardState:
        """A copy of the non-volatile state (for tests and tools)."""
        with self._lock:
            return self._state.copy()

    def _get_state(self) -> CardState:
        return self._state

    # --- host-side configuration -------------------------------------------------------

    def configure_otp_hmac(self, slot: int, secret: bytes | None, *, lt64: bool = True) -> None:
        """Program an OTP slot for HMAC-SHA1 challenge-response (None: clear it).
        A secret shorter than 20 bytes is zero-padded, which HMAC treats alike."""
        if slot not in (1, 2):
            raise ValueError("OTP slots are 1 and 2")
        with self._lock:
            if secret is None:
                self._state.otp_slots.pop(slot, None)
            else:
                self._state.otp_slots[slot] = OtpSlot(_otp_secret(secret), lt64)
            self._state.otp_program_sequence = (self._state.otp_program_sequence + 1) % 256
            self._persist()

    # --- power -----------------------------------------------------------------------

    def reset(self) -> None:
        """Power-up, warm reset or power-down: nothing selected, security status cleared."""
        with self._lock:
            for applet in self._applets:
                applet.reset()
            self._selected = None
            self._chain = None
            self._pending = b""

    power_on = reset
    power_off = reset

    # --- commands -----------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """One command APDU in, one response APDU (data + SW1 SW2) out."""
        with self._lock:
            try:
                response = self._process(bytes(apdu))
            except Exception:
                log.exception("virtual card: internal error on %s", bytes(apdu).hex())
                self.internal_errors += 1
                self._rollback()
                return sw_bytes(SW_NO_PRECISE_DIAGNOSIS)
            try:
                self._persist()
            except OSError:
                log.exception("virtual card: cannot write %s", self._path)
                self._rollback()
                return sw_bytes(SW_MEMORY_FAILURE)
            return response

    def _persist(self) -> None:
        text = self._state.dumps()
        if text != self._persisted:
            if self._path is not None:
                write_atomic(self._path, text)
            self._persisted = text

    def _rollback(self) -> None:
        self._state = CardState.loads(self._persisted)
        self.reset()

    def _process(self, raw: bytes) -> bytes:
        if len(raw) < 4:
            return sw_bytes(SW_WRONG_LENGTH)
        if raw[0] & 0xEF != 0x00:
            return sw_bytes(SW_CLA_NOT_SUPPORTED)
        try:
            apdu = CommandApdu.parse(raw)
        except SwError as e:
            return sw_bytes(e.sw)
        if apdu.ins == INS_GET_RESPONSE:
            return self._get_response(apdu)
        self._pending = b""
        try:
            full = self._assemble(apdu)
            if full is None:
                return sw_bytes(SW_OK)
            if full.ins == INS_SELECT:
                data = self._select(full)
            elif self._selected is None:
                raise SwError(SW_INS_NOT_SUPPORTED, "no application selected")
            else:
                data = self._selected.handle(full)
        except SwError as e:
            return sw_bytes(e.sw)
        return self._respond(data, full)

    def _assemble(self, apdu: CommandApdu) -> CommandApdu | None:
        """Command chaining: collect CLA 10 parts; the CLA 00 part completes the command."""
        chained = bool(apdu.cla & 0x10)
        chain, self._chain = self._chain, None
        header = (apdu.ins, apdu.p1, apdu.p2)
        if chain is not None and chain[:3] != header:
            raise SwError(SW_LAST_COMMAND_EXPECTED, "a chain was interrupted")
        if chained:
            applet = self._selected
            if apdu.ins == INS_SELECT or applet is None or apdu.ins not in applet.chainable:
                raise SwError(SW_CHAINING_NOT_SUPPORTED)
        if chain is None and not chained:
            return apdu
        buffer = chain[3] if chain is not None else bytearray()
        buffer += apdu.data
        if len(buffer) > MAX_CHAIN:
            raise SwError(SW_NOT_ENOUGH_MEMORY, "chained command too long")
        if chained:
            self._chain = (*header, buffer)
            return None
        return dataclasses.replace(apdu, cla=apdu.cla & 0xEF, data=bytes(buffer))

    def _select(self, apdu: CommandApdu) -> bytes:
        if apdu.p1 != 0x04 or apdu.p2 not in (0x00, 0x0C):
            raise SwError(SW_INCORRECT_P1P2, "only SELECT by AID")
        aid = apdu.data
        target = None
        if 5 <= len(aid) <= 16:
            for applet in self._applets:
                if applet.aid.startswith(aid):  # right-truncated AIDs select too
                    target = applet
                    break
        if target is None:
            raise SwError(SW_FILE_NOT_FOUND, "no such application")
        if self._selected is not target:
            if self._selected is not None:
                self._selected.deselect()
            target.reset()
            self._selected = target
        data = target.select()
        return b"" if apdu.p2 == 0x0C else data

    def _respond(self, data: bytes, apdu: CommandApdu) -> bytes:
        ne = apdu.le if apdu.le is not None else (65536 if apdu.extended else 256)
        if len(data) > ne:
            self._pending = data[ne:]
            return data[:ne] + sw_bytes(sw_more_data(len(self._pending)))
        return data + sw_bytes(SW_OK)

    def _get_response(self, apdu: CommandApdu) -> bytes:
        if apdu.cla != 0x00:
            self._pending = b""
            return sw_bytes(SW_CHAINING_NOT_SUPPORTED)
        if apdu.p1 != 0 or apdu.p2 != 0 or apdu.data:
            self._pending = b""
            return sw_bytes(SW_INCORRECT_P1P2)
        if not self._pending:
            return sw_bytes(SW_CONDITIONS_NOT_SATISFIED)
        ne = apdu.le if apdu.le is not None else 256
        data, self._pending = self._pending[:ne], self._pending[ne:]
        sw = sw_more_data(len(self._pending)) if self._pending else SW_OK
        return data + sw_bytes(sw)


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def _otp_secret(secret: bytes) -> bytes:
    if not 1 <= len(secret) <= 20:
        raise ValueError("an HMAC-SHA1 challenge-response secret is 1 to 20 bytes")
    return secret.ljust(20, b"\x00")


def _validate(state: CardState) -> None:
    for slot in state.keys:
        if slot not in ASYMMETRIC_SLOTS:
            raise CardStateError(f"key slot {slot:02x} is not supported")
    for tag in state.objects:
        if tag not in KNOWN_OBJECTS:
            raise CardStateError(f"{tag:x} is not a PIV data object")
        if len(state.objects[tag]) == 0:
            raise CardStateError(f"data object {tag:x} is empty")
