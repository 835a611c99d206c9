"""The YubiKey OTP application over CCID: HMAC-SHA1 challenge-response.

This is the interface KeePassXC (and ykman, ykchalresp over NFC) use to derive
keys from a YubiKey:

    SELECT A0 00 00 05 27 20 01     -> status: firmware (3), program sequence,
                                       touch level (2, little-endian; bit 0x01
                                       slot 1 configured, 0x02 slot 2 configured)
    00 03 00 00                      -> the same status
    00 01 38 00 Lc <challenge>       -> HMAC-SHA1(slot 2 secret, challenge), 20 bytes
    00 01 30 00 Lc <challenge>       -> the same with slot 1
    00 01 10 00                      -> the serial number, 4 bytes big-endian

Slots are programmed through `VirtualCard.configure_otp_hmac` (the host-side
configuration frame of the real key is not implemented). With the usual
"HMAC_LT64" setting a 64-byte challenge is taken as padded: its trailing run
of bytes equal to its last byte is removed first (KeePassXC pads that way);
shorter challenges are used as they are. A slot that is not configured
answers 6A88 (referenced data not found).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac

from .apdu import (
    SW_INCORRECT_P1P2,
    SW_INS_NOT_SUPPORTED,
    SW_REFERENCED_DATA_NOT_FOUND,
    SW_WRONG_LENGTH,
    CommandApdu,
    SwError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from .state import CardState

__all__ = ["OTP_AID", "OtpApplet", "hmac_challenge"]

OTP_AID = bytes.fromhex("A0000005272001")

INS_API_REQUEST = 0x01
INS_STATUS = 0x03
CMD_DEVICE_SERIAL = 0x10
CMD_HMAC_SLOT1 = 0x30
CMD_HMAC_SLOT2 = 0x38
HMAC_CHALLENGE_SIZE = 64

CONFIG1_VALID = 0x01
CONFIG2_VALID = 0x02


def hmac_challenge(challenge: bytes, *, lt64: bool) -> bytes:
    """The challenge the key actually MACs (see the module docstring)."""
    if lt64 and len(challenge) == HMAC_CHALLENGE_SIZE:
        return challenge.rstrip(challenge[-1:])
    return challenge


class OtpApplet:
    aid = OTP_AID
    chainable: frozenset[int] = frozenset()

    def __init__(self, state: Callable[[], CardState]) -> None:
        self._state = state

    def reset(self) -> None:
        pass  # no volatile state

    def deselect(self) -> None:
        pass

    def status(self) -> bytes:
        state = self._state()
        touch = (CONFIG1_VALID if 1 in state.otp_slots else 0) | (
            CONFIG2_VALID if 2 in state.otp_slots else 0
        )
        return bytes(state.firmware) + bytes([state.otp_program_sequence]) + bytes([touch, 0])

    def select(self) -> bytes:
        return self.status()

    def handle(self, apdu: CommandApdu) -> bytes:
        if apdu.ins == INS_STATUS:
            return self.status()
        if apdu.ins != INS_API_REQUEST:
            raise SwError(SW_INS_NOT_SUPPORTED)
        if apdu.p2 != 0:
            raise SwError(SW_INCORRECT_P1P2)
        if apdu.p1 == CMD_DEVICE_SERIAL:
            return self._state().serial.to_bytes(4, "big")
        if apdu.p1 in (CMD_HMAC_SLOT1, CMD_HMAC_SLOT2):
            slot = self._state().otp_slots.get(1 if apdu.p1 == CMD_HMAC_SLOT1 else 2)
            if slot is None:
                raise SwError(SW_REFERENCED_DATA_NOT_FOUND, "slot not configured")
            n = len(apdu.data)
            if n > HMAC_CHALLENGE_SIZE or (not slot.lt64 and n != HMAC_CHALLENGE_SIZE):
                raise SwError(SW_WRONG_LENGTH, "challenge of the wrong size")
            mac = crypto_hmac.HMAC(slot.secret, hashes.SHA1())  # noqa: S303  # the YubiKey's MAC
            mac.update(hmac_challenge(apdu.data, lt64=slot.lt64))
            return mac.finalize()
        raise SwError(SW_INCORRECT_P1P2)
