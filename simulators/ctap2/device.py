"""The authenticator as a python-fido2 `CtapDevice`, without HID framing:
`call(CTAPHID.CBOR, ...)` hands the bytes straight to `Authenticator.process`.

    device = SoftCtapDevice(Authenticator(path))
    ctap = fido2.ctap2.Ctap2(device)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from threading import Event

from fido2.ctap import STATUS, CtapDevice, CtapError
from fido2.hid import CAPABILITY, CTAPHID

from simulators.ctap2.authenticator import KEEPALIVE_UPNEEDED, Authenticator


class SoftCtapDevice(CtapDevice):
    """A CTAP2-only device (no U2F/CTAPHID_MSG) around an Authenticator.

    CBOR, PING and WINK are answered; any other CTAPHID command raises
    `CtapError(INVALID_COMMAND)`, as python-fido2's HID device does when a key
    answers CTAPHID_ERROR. `event` cancels a pending user-presence request
    (CTAP2_ERR_KEEPALIVE_CANCEL); `on_keepalive` receives STATUS.UPNEEDED
    whenever the device starts waiting for a touch."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.winks = 0

    @property
    def capabilities(self) -> int:
        return int(CAPABILITY.CBOR | CAPABILITY.WINK | CAPABILITY.NMSG)

    def call(
        self,
        cmd: int,
        data: bytes = b"",
        event: Event | None = None,
        on_keepalive: Callable[[STATUS], None] | None = None,
    ) -> bytes:
        if cmd == CTAPHID.CBOR:
            if not data:
                raise CtapError(CtapError.ERR.INVALID_LENGTH)

            def keepalive(status: int) -> None:
                if on_keepalive is not None and status == KEEPALIVE_UPNEEDED:
                    on_keepalive(STATUS.UPNEEDED)

            return self.authenticator.process(
                data[0], bytes(data[1:]), cancel=event, keepalive=keepalive
            )
        if cmd == CTAPHID.PING:
            return bytes(data)
        if cmd == CTAPHID.WINK:
            self.winks += 1
            return b""
        raise CtapError(CtapError.ERR.INVALID_COMMAND)

    @classmethod
    def list_devices(cls) -> Iterator[SoftCtapDevice]:
        """Software devices are constructed, never discovered."""
        return iter(())

    def __repr__(self) -> str:
        return f"SoftCtapDevice({self.authenticator.state_path!r})"
