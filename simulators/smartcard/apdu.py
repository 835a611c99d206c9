"""ISO 7816-4 command APDUs and status words.

`CommandApdu.parse` accepts the four cases in short and extended form:

    case 1   CLA INS P1 P2
    case 2S  CLA INS P1 P2 Le                      (Le 00 means 256)
    case 3S  CLA INS P1 P2 Lc data                 (Lc 01..FF)
    case 4S  CLA INS P1 P2 Lc data Le
    case 2E  CLA INS P1 P2 00 Le1 Le2              (0000 means 65536)
    case 3E  CLA INS P1 P2 00 Lc1 Lc2 data         (Lc 0001..FFFF)
    case 4E  CLA INS P1 P2 00 Lc1 Lc2 data Le1 Le2

Anything else is a wrong length (6700). `CommandApdu.to_bytes` is the inverse
and picks the short form whenever the fields fit.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SW_AUTH_METHOD_BLOCKED",
    "SW_CHAINING_NOT_SUPPORTED",
    "SW_CLA_NOT_SUPPORTED",
    "SW_CONDITIONS_NOT_SATISFIED",
    "SW_FILE_NOT_FOUND",
    "SW_FUNCTION_NOT_SUPPORTED",
    "SW_INCORRECT_DATA",
    "SW_INCORRECT_P1P2",
    "SW_INS_NOT_SUPPORTED",
    "SW_LAST_COMMAND_EXPECTED",
    "SW_NOT_ENOUGH_MEMORY",
    "SW_NO_PRECISE_DIAGNOSIS",
    "SW_OK",
    "SW_REFERENCED_DATA_NOT_FOUND",
    "SW_SECURITY_STATUS_NOT_SATISFIED",
    "SW_WRONG_LENGTH",
    "CommandApdu",
    "SwError",
    "sw_bytes",
    "sw_more_data",
    "sw_retries",
]

SW_OK = 0x9000
SW_WRONG_LENGTH = 0x6700
SW_LAST_COMMAND_EXPECTED = 0x6883
SW_CHAINING_NOT_SUPPORTED = 0x6884
SW_SECURITY_STATUS_NOT_SATISFIED = 0x6982
SW_AUTH_METHOD_BLOCKED = 0x6983
SW_CONDITIONS_NOT_SATISFIED = 0x6985
SW_INCORRECT_DATA = 0x6A80
SW_FUNCTION_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_INCORRECT_P1P2 = 0x6A86
SW_REFERENCED_DATA_NOT_FOUND = 0x6A88
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_NO_PRECISE_DIAGNOSIS = 0x6F00


def sw_retries(n: int) -> int:
    """63Cx: verification failed, x further tries allowed (x saturates at 15)."""
    return 0x63C0 | min(max(n, 0), 15)


def sw_more_data(n: int) -> int:
    """61xx: xx more bytes available through GET RESPONSE (00: 256 or more)."""
    return 0x6100 | (n if n < 256 else 0)


def sw_bytes(sw: int) -> bytes:
    return sw.to_bytes(2, "big")


class SwError(Exception):
    """A command ended with a status word other than 9000 and no data."""

    def __init__(self, sw: int, message: str = "") -> None:
        super().__init__(f"SW {sw:04X}" + (f": {message}" if message else ""))
        self.sw = sw


@dataclass(frozen=True)
class CommandApdu:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    """Ne, the maximum response length the host accepts (1..65536), or None when
    the APDU has no Le field."""
    extended: bool = False

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Raises SwError(6700) for anything that is not one of the ISO cases."""
        n = len(raw)
        if n < 4:
            raise SwError(SW_WRONG_LENGTH, "shorter than a header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        if not body:
            return cls(cla, ins, p1, p2)
        if len(body) == 1:
            return cls(cla, ins, p1, p2, le=body[0] or 256)
        if body[0] != 0:
            lc = body[0]
            if len(body) == 1 + lc:
                return cls(cla, ins, p1, p2, body[1:])
            if len(body) == 2 + lc:
                return cls(cla, ins, p1, p2, body[1 : 1 + lc], body[-1] or 256)
            raise SwError(SW_WRONG_LENGTH, "Lc does not match the data")
        # body[0] == 0 and more follows: extended length
        if len(body) == 3:
            le = int.from_bytes(body[1:3], "big") or 65536
            return cls(cla, ins, p1, p2, le=le, extended=True)
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise SwError(SW_WRONG_LENGTH, "extended Lc of zero")
        if len(body) == 3 + lc:
            return cls(cla, ins, p1, p2, body[3:], extended=True)
        if len(body) == 5 + lc:
            le = int.from_bytes(body[-2:], "big") or 65536
            return cls(cla, ins, p1, p2, body[3 : 3 + lc], le, extended=True)
        raise SwError(SW_WRONG_LENGTH, "extended Lc does not match the data")

    def to_bytes(self) -> bytes:
        header = bytes([self.cla, self.ins, self.p1, self.p2])
        if not 0 <= len(self.data) <= 65535:
            raise ValueError("data too long for an APDU")
        if self.le is not None and not 1 <= self.le <= 65536:
            raise ValueError("Le must be 1..65536")
        extended = self.extended or len(self.data) > 255 or (self.le is not None and self.le > 256)
        out = bytearray(header)
        if extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
            if self.le is not None:
                if not self.data:
                    out += b"\x00"
                out += (self.le % 65536).to_bytes(2, "big")
        else:
            if self.data:
                out += bytes([len(self.data)]) + self.data
            if self.le is not None:
                out += bytes([self.le % 256])
        return bytes(out)
