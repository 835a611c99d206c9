"""The token kinds under test, each with its simulator.

A `Backend` makes fresh tokens of one kind and says what the kind can do (does
it report PIN retries? can it be removed?), so the one conformance suite in
test_passkey_conformance.py runs unchanged against every kind. Backends that
need a component (SoftHSM2, pcscd) start it or fail loudly; none is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from simulators.softhsm import SoftHsm
from tokens.passkey import PassKey
from tokens.phone import PhoneKeyStore
from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey


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

    return Made(token=token, reopen=reopen, pin=made.pin, cleanup=[token.close])


BACKENDS = [
    Backend(name="phone", make=_phone, reports_retries=True),
    Backend(name="pkcs11", make=_pkcs11, reports_retries=False),
]
