"""CTAP status codes (the first byte of every CTAP2 response) and the
exception the authenticator raises internally to answer with one.

The codes are python-fido2's `CtapError.ERR`, so a status the simulator
returns is the very value the client library raises."""

from __future__ import annotations

from fido2.ctap import CtapError

Status = CtapError.ERR
"""CTAP1/CTAP2 status codes (CTAP 2.1 §8.2), e.g. `Status.PIN_INVALID`."""


class CtapFail(Exception):
    """Ends a command with a non-success status byte."""

    def __init__(self, status: Status, reason: str = "") -> None:
        super().__init__(f"{status.name}{': ' + reason if reason else ''}")
        self.status = status
        self.reason = reason
