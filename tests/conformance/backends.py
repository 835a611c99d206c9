"""The token kinds under test, each with its simulator.

A `Backend` makes fresh tokens of one kind and says what the kind can do (does
it report PIN retries? can it be removed?), so the one conformance suite in
test_passkey_conformance.py runs unchanged against every kind. Backends that
need a component (SoftHSM2, pcscd) start it or fail loudly; none is skipped.
"""

from __future__ import annotations

import atexit
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fido2.ctap import CtapDevice
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin

from simulators.ctap2 import Authenticator, SoftCtapDevice
from simulators.smartcard import Pcscd, VirtualCard, reader_name, virtual_card
from simulators.softhsm import SoftHsm
from tokens.fido2 import Fido2PassKey
from tokens.passkey import PassKey
from tokens.phone import PhoneKeyStore
from tokens.piv import OtpPassKey, PivPassKey, SmartcardConfig
from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey

# TestNetwork's public host, which is the network's WebAuthn RP id.
RP_ID = "localhost"


@dataclass
class Made:
    """One token made for a test: the PassKey (unlocked), and how to get the
    same physical token again, locked, as a fresh process would."""

    token: PassKey
    reopen: Callable[[], PassKey]
    pin: str
    # Make the token unusable as a removed (or locked) device is; None when
    # the kind has no such state.
    remove: Callable[[], None] | None = None
    cleanup: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class Backend:
    name: str
    make: Callable[[Path], Made]
    # Whether a wrong PIN reports how many tries are left.
    reports_retries: bool


def _phone(tmp: Path) -> Made:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"phone-{len(list(tmp.glob('phone-*')))}.json"
    store = PhoneKeyStore.create(path, label="conformance phone", pin="2468")
    return Made(
        token=store.unlock("2468"),
        reopen=lambda: PhoneKeyStore.load(path).unlock(None),
        pin="2468",
    )


def _pkcs11(tmp: Path) -> Made:
    hsm = SoftHsm.shared()
    made = hsm.new_token()
    config = Pkcs11Config(module=hsm.module, token_label=made.label)
    token = Pkcs11PassKey.provision(config, pin=made.pin)

    def reopen() -> PassKey:
        # As a fresh process: PKCS#11 logins are per application, so the first
        # handle must let go of the token.
        token.close()
        return Pkcs11PassKey(config)

    def remove() -> None:
        hsm.pull_out(made.label)  # its storage goes, as a pulled-out token's would

    return Made(token=token, reopen=reopen, pin=made.pin, remove=remove, cleanup=[token.close])


class Unpluggable(CtapDevice):
    """A simulated security key that can be pulled out: every call then fails
    the way a vanished USB device does (OSError)."""

    def __init__(self, inner: CtapDevice) -> None:
        self.inner = inner
        self.plugged = True

    @property
    def version(self) -> int:
        return int(self.inner.version)

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def call(
        self, cmd: int, data: bytes = b"", event: Any = None, on_keepalive: Any = None
    ) -> bytes:
        if not self.plugged:
            raise OSError("the device was unplugged")
        return bytes(self.inner.call(cmd, data, event, on_keepalive))

    def close(self) -> None:
        self.inner.close()

    @classmethod
    def list_devices(cls) -> Any:
        return iter(())


def _fido2(tmp: Path) -> Made:
    tmp.mkdir(parents=True, exist_ok=True)
    device = Unpluggable(SoftCtapDevice(Authenticator(tmp / "fido2-key.json")))
    ClientPin(Ctap2(device)).set_pin("1234")
    token = Fido2PassKey(device, rp_id=RP_ID, label="conformance key")
    token.verify_pin("1234")

    def reopen() -> PassKey:
        return Fido2PassKey(device, rp_id=RP_ID, credential=token.description.public_key or None)

    def remove() -> None:
        device.plugged = False

    return Made(token=token, reopen=reopen, pin="1234", remove=remove)


class _Readers:
    """pcscd (started once for the process) and vpcd's two readers, lent to
    one card at a time."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self.pcscd: Pcscd | None = None
        self.free = [0, 1]

    def start(self) -> Pcscd:
        if self.pcscd is None:
            self._stack = contextlib.ExitStack()
            self.pcscd = self._stack.enter_context(Pcscd.ensure())
            atexit.register(self._stack.close)
        return self.pcscd


READERS = _Readers()


def _card(kind: type[PivPassKey]) -> Callable[[Path], Made]:
    def make(tmp: Path) -> Made:
        tmp.mkdir(parents=True, exist_ok=True)
        pcscd = READERS.start()
        index = READERS.free.pop(0)
        stack = contextlib.ExitStack()
        stack.callback(READERS.free.append, index)
        card = VirtualCard.create(tmp / "card.json", otp_slot2_secret=secrets.token_bytes(20))
        # Other programs may use the readers too: wait for ours rather than fail.
        slot = stack.enter_context(virtual_card(card, reader=index, pcscd=pcscd, timeout=60))
        config = SmartcardConfig(reader=reader_name(index), label="conformance card")
        # Each kind provisions its own slots (piv: 9A and 9D; otp: 9C).
        kind.provision(config, pin="123456").close()
        token = kind(config)
        token.verify_pin("123456")
        opened: list[PassKey] = [token]

        def reopen() -> PassKey:
            again = kind(config)
            opened.append(again)
            return again

        def cleanup() -> None:
            for t in opened:
                t.close()
            stack.close()

        return Made(token=token, reopen=reopen, pin="123456", remove=slot.remove, cleanup=[cleanup])

    return make


BACKENDS = [
    Backend(name="phone", make=_phone, reports_retries=True),
    Backend(name="pkcs11", make=_pkcs11, reports_retries=False),
    Backend(name="fido2", make=_fido2, reports_retries=True),
    Backend(name="piv", make=_card(PivPassKey), reports_retries=True),
    Backend(name="otp", make=_card(OtpPassKey), reports_retries=True),
]
