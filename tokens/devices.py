"""Opening a token from options: which kind, and where it is.

| kind     | where                                                        |
|----------|--------------------------------------------------------------|
| `pkcs11` | `pkcs11_module` (a PKCS#11 .so) and `pkcs11_token` (its label) |
| `piv`    | `reader` (PC/SC reader name; default: the first with a card) |
| `otp`    | as `piv` (a YubiKey: PIV 9A authenticates, OTP slot 2 gives Kc) |
| `fido2`  | `fido2_sim` (a simulator state file), or the first USB key    |

FIDO2 keys hold one credential per network; `open_for_network` finds, among
the credentials enrolled on this computer, the one the plugged-in key holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from authnet.errors import MalformedInput, TokenUnavailable
from tokens.enrolments import EnrolmentBook
from tokens.passkey import PassKey, TokenKind

KINDS = ("fido2", "piv", "otp", "pkcs11")
DEFAULT_PKCS11_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


@dataclass(frozen=True, kw_only=True)
class TokenOptions:
    kind: str
    reader: str | None = None
    pkcs11_module: str = DEFAULT_PKCS11_MODULE
    pkcs11_token: str | None = None
    fido2_sim: Path | None = None
    label: str = ""


def _fido2_device(options: TokenOptions) -> object:
    if options.fido2_sim is not None:
        # The software key (simulators.ctap2): for tests, demos and trying things.
        from simulators.ctap2 import Authenticator, SoftCtapDevice

        return SoftCtapDevice(Authenticator(options.fido2_sim))
    from fido2.hid import CtapHidDevice

    for device in CtapHidDevice.list_devices():
        return device
    raise TokenUnavailable("no FIDO2 security key is plugged in")


def open_token(options: TokenOptions, *, rp_id: str | None = None) -> PassKey:
    """The token, not yet tied to a network (for provisioning and enrolment)."""
    if options.kind == "pkcs11":
        from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey

        if not options.pkcs11_token:
            raise MalformedInput("a PKCS#11 token needs --pkcs11-token LABEL")
        return Pkcs11PassKey(
            Pkcs11Config(module=options.pkcs11_module, token_label=options.pkcs11_token)
        )
    if options.kind in ("piv", "otp"):
        from tokens.piv import OtpPassKey, PivPassKey, SmartcardConfig

        config = SmartcardConfig(reader=options.reader, label=options.label or "smartcard")
        return OtpPassKey(config) if options.kind == "otp" else PivPassKey(config)
    if options.kind == "fido2":
        from tokens.fido2 import Fido2PassKey

        if rp_id is None:
            raise MalformedInput("a FIDO2 key is opened for a network (its RP id)")
        return Fido2PassKey(
            _fido2_device(options),  # type: ignore[arg-type]
            rp_id=rp_id,
            label=options.label or "security key",
        )
    raise MalformedInput(f"unknown token kind {options.kind!r}: use one of {', '.join(KINDS)}")


def open_for_network(
    options: TokenOptions, *, book: EnrolmentBook, network: str, rp_id: str
) -> PassKey:
    """The token, with its credential for `network` when it is a FIDO2 key."""
    token = open_token(options, rp_id=rp_id)
    if options.kind == "fido2":
        from tokens.fido2 import Fido2PassKey

        assert isinstance(token, Fido2PassKey)
        return Fido2PassKey.find(
            token.device,
            rp_id=rp_id,
            candidates=book.public_keys(network, TokenKind.FIDO2),
            label=token.label,
        )
    return token
