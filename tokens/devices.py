"""Opening a token from options: which kind, and where it is.

| kind     | where                                                        |
|----------|--------------------------------------------------------------|
| `pkcs11` | `pkcs11_module` (a PKCS#11 .so) and `pkcs11_token` (its label) |
| `piv`    | `reader` (PC/SC reader name; default: the first with a card) |
| `otp`    | as `piv` (a YubiKey: PIV 9C authenticates, OTP slot 2 gives Kc) |
| `fido2`  | `fido2_sim` (a simulator state file), or the first USB key    |

FIDO2 keys hold one credential per network; `open_for_network` finds, among
the credentials enrolled on this computer, the one the plugged-in key holds.
`open_enrolled` opens one particular enrolled token again from what the
enrolment book recorded about it (to authorise adding another token).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authnet.errors import AuthnetError, MalformedInput, NotEnrolled, TokenUnavailable
from authnet.protocol.encoding import b64u_encode
from tokens.enrolments import BookEntry, EnrolmentBook
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

    def to_json(self) -> dict[str, Any]:
        """What the enrolment book keeps: only what applies to the kind."""
        out: dict[str, Any] = {"kind": self.kind, "label": self.label}
        if self.kind in ("piv", "otp"):
            out["reader"] = self.reader
        elif self.kind == "pkcs11":
            out["pkcs11_module"] = self.pkcs11_module
            out["pkcs11_token"] = self.pkcs11_token
        elif self.kind == "fido2":
            out["fido2_sim"] = str(self.fido2_sim) if self.fido2_sim is not None else None
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TokenOptions:
        def text(key: str) -> str | None:
            value = d.get(key)
            if value is not None and not isinstance(value, str):
                raise MalformedInput(f"the enrolment book's token option {key} is not text")
            return value

        kind = text("kind")
        if kind not in KINDS:
            raise MalformedInput(f"the enrolment book names an unknown token kind {kind!r}")
        sim = text("fido2_sim")
        return cls(
            kind=kind,
            reader=text("reader"),
            pkcs11_module=text("pkcs11_module") or DEFAULT_PKCS11_MODULE,
            pkcs11_token=text("pkcs11_token"),
            fido2_sim=Path(sim) if sim else None,
            label=text("label") or "",
        )


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


_KIND_NAMES = {int(k): k.name.lower() for k in TokenKind}


def enrolled_options(entry: BookEntry) -> TokenOptions:
    """How to open the token of a book entry. Entries from books written before
    the options were recorded give only the kind: a smartcard is then looked for
    in every reader, a FIDO2 key is the first one plugged in; a PKCS#11 token
    cannot be found without its label."""
    if entry.options is not None:
        return TokenOptions.from_json(entry.options)
    kind = _KIND_NAMES.get(entry.kind or 0)
    if kind not in ("piv", "otp", "fido2"):
        raise MalformedInput(
            f"the enrolment book does not say how to open token "
            f"{b64u_encode(entry.enrolment.token_id)} (it was enrolled by an older passkey"
            + ("; a PKCS#11 token needs its module and label" if kind == "pkcs11" else "")
            + ")"
        )
    return TokenOptions(kind=kind)


def open_enrolled(entry: BookEntry, *, rp_id: str) -> PassKey:
    """The token of a book entry, opened again, and checked to be that token
    (the same public key, or for FIDO2 a key that holds the credential)."""
    options = enrolled_options(entry)
    name = b64u_encode(entry.enrolment.token_id)
    if options.kind == "fido2":
        from tokens.fido2 import Fido2PassKey

        device = _fido2_device(options)
        return Fido2PassKey.find(
            device,  # type: ignore[arg-type]
            rp_id=rp_id,
            candidates=[entry.public_key],
            label=options.label or "security key",
        )
    if options.kind in ("piv", "otp"):
        # The reader it was enrolled in first, then any other: the card may have
        # moved, and the new token's card may be in another reader.
        from tokens.piv import reader_names

        readers = [options.reader] if options.reader else []
        readers += [r for r in reader_names() if r not in readers]
        for reader in readers:
            try:
                token = open_token(dataclasses.replace(options, reader=reader))
            except AuthnetError:
                continue
            if _is(token, entry.public_key):
                return token
            token.close()
        raise TokenUnavailable(
            f"no card in any reader is token {name}: insert it and retry (or was it "
            "re-provisioned?)"
        )
    token = open_token(options, rp_id=rp_id)
    if not _is(token, entry.public_key):
        token.close()
        raise NotEnrolled(
            f"the PKCS#11 token {options.pkcs11_token!r} is not token {name} any more "
            "(re-initialised, or another token with that label?)"
        )
    return token


def _is(token: PassKey, public_key: bytes) -> bool:
    with contextlib.suppress(AuthnetError):
        return token.description.public_key == public_key
    return False
