"""Where a token's registrations with networks are kept.

A phone keeps them in its own key store. Tokens plugged into a computer
(security keys, smartcards, HSMs) cannot store files, so the computer keeps an
enrolment book for them: one JSON file (0600, written atomically) mapping each
token, named by the SHA-256 of its public key, to its enrolments. Each
enrolment also records how to open the token again (its kind, reader, PKCS#11
module and token label, FIDO2 simulator file, label: `options`), so that a
command about one token can ask another token of the account to authorise it.
Books written before `options` existed are read as they are (no options).

The book is `$PASSKEY_BOOK`, else `$XDG_DATA_HOME/authnet/tokens.json`, else
`~/.local/share/authnet/tokens.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authnet.errors import AuthnetError, KeystoreError, NotEnrolled
from authnet.protocol.encoding import b64u_decode, b64u_encode


def default_book() -> Path:
    """$PASSKEY_BOOK, else $XDG_DATA_HOME/authnet/tokens.json (when that is an
    absolute path, as the XDG spec requires), else ~/.local/share/authnet/tokens.json."""
    explicit = os.environ.get("PASSKEY_BOOK")
    if explicit:
        return Path(explicit).expanduser()
    data = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data) if data and Path(data).is_absolute() else Path.home() / ".local" / "share"
    return base / "authnet" / "tokens.json"


# The book as the environment named it when this module was imported; commands
# call default_book() when they start.
DEFAULT_BOOK = default_book()


@dataclass(frozen=True, kw_only=True)
class Enrolment:
    """A token's registration with one network."""

    network: str  # PassKey API address, host:port
    network_name: str
    ca_pem: str  # the network CA, pinned at enrolment
    token_id: bytes
    enrolled_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "network": self.network,
            "network_name": self.network_name,
            "ca_pem": self.ca_pem,
            "token_id": b64u_encode(self.token_id),
            "enrolled_ms": self.enrolled_ms,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Enrolment:
        return cls(
            network=str(d["network"]),
            network_name=str(d["network_name"]),
            ca_pem=str(d["ca_pem"]),
            token_id=b64u_decode(str(d["token_id"]), field="token_id", length=16),
            enrolled_ms=int(d["enrolled_ms"]),
        )


@dataclass(frozen=True, kw_only=True)
class BookEntry:
    """One token's enrolment with one network, as the book has it."""

    public_key: bytes  # SPKI, or the FIDO2 credential (AttestedCredentialData)
    kind: int | None
    enrolment: Enrolment
    # How to open the token again (tokens.devices.TokenOptions as JSON); None in
    # books written before these were recorded.
    options: dict[str, Any] | None


def token_key(public_key: bytes) -> str:
    """How the book names a token: the SHA-256 of its public key (SPKI)."""
    return hashlib.sha256(public_key).hexdigest()


def find(enrolments: list[Enrolment], network: str, *, what: str = "this token") -> Enrolment:
    for e in enrolments:
        if e.network == network:
            return e
    known = ", ".join(e.network for e in enrolments) or "none"
    raise NotEnrolled(
        f"{what} is not enrolled with the network at {network} (enrolled with: {known})"
    )


class EnrolmentBook:
    def __init__(self, path: Path | None = None) -> None:
        self.path = default_book() if path is None else path

    def _load(self) -> dict[str, list[dict[str, Any]]]:
        try:
            doc = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise KeystoreError(f"cannot read the enrolment book {self.path}: {e}") from None
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise KeystoreError(f"{self.path} is not a version-1 enrolment book")
        tokens = doc.get("tokens", {})
        if not isinstance(tokens, dict):
            raise KeystoreError(f"{self.path} is damaged")
        return tokens

    def _save(self, tokens: dict[str, list[dict[str, Any]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"version": 1, "tokens": tokens}, f, indent=1)
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def enrolments(self, public_key: bytes) -> list[Enrolment]:
        return [Enrolment.from_json(e) for e in self._load().get(token_key(public_key), [])]

    def ca_for(self, network: str) -> bytes | None:
        """The network CA pinned when a token here enrolled with `network`."""
        for entries in self._load().values():
            for e in entries:
                if e.get("network") == network:
                    return str(e["ca_pem"]).encode()
        return None

    def public_keys(self, network: str, kind: int) -> list[bytes]:
        """Public keys of the tokens of `kind` enrolled here with `network`
        (for FIDO2: the credentials, to find the one a plugged-in key holds)."""
        found = []
        for entries in self._load().values():
            for e in entries:
                if e.get("network") == network and e.get("kind") == kind and "public_key" in e:
                    found.append(b64u_decode(str(e["public_key"]), field="public_key"))
        return found

    def enrolment_for(self, public_key: bytes, network: str) -> Enrolment:
        return find(self.enrolments(public_key), network)

    def entries(self, network: str) -> list[BookEntry]:
        """Every token enrolled here with `network`."""
        found = []
        for key, entries in self._load().items():
            for e in entries:
                if e.get("network") != network:
                    continue
                try:
                    enrolment = Enrolment.from_json(e)
                    public_key = (
                        b64u_decode(str(e["public_key"]), field="public_key")
                        if "public_key" in e
                        else None
                    )
                except (KeyError, TypeError, ValueError, AuthnetError) as err:
                    raise KeystoreError(f"{self.path} is damaged ({key[:12]}...: {err})") from None
                options = e.get("options")
                found.append(
                    BookEntry(
                        public_key=public_key or b"",
                        kind=e.get("kind") if isinstance(e.get("kind"), int) else None,
                        enrolment=enrolment,
                        options=options if isinstance(options, dict) else None,
                    )
                )
        return found

    def entry_for_token(self, network: str, token_id: bytes) -> BookEntry:
        """The token enrolled here with `network` as `token_id`."""
        for entry in self.entries(network):
            if entry.enrolment.token_id == token_id:
                return entry
        raise NotEnrolled(
            f"no token on this computer is enrolled with {network} as {b64u_encode(token_id)} "
            f"(see `passkey tokens`; the enrolment book is {self.path})"
        )

    def add(
        self,
        public_key: bytes,
        enrolment: Enrolment,
        *,
        kind: int,
        options: dict[str, Any] | None = None,
    ) -> None:
        tokens = self._load()
        key = token_key(public_key)
        others = [e for e in tokens.get(key, []) if e.get("network") != enrolment.network]
        entry = {**enrolment.to_json(), "kind": kind, "public_key": b64u_encode(public_key)}
        if options is not None:
            entry["options"] = options
        tokens[key] = [*others, entry]
        self._save(tokens)

    def forget(self, network: str, token_id: bytes) -> bool:
        """Remove the enrolment of `token_id` with `network` (it was revoked).
        Returns whether the book had it."""
        tokens = self._load()
        wanted = b64u_encode(token_id)
        removed = False
        for key in list(tokens):
            kept = [
                e
                for e in tokens[key]
                if not (e.get("network") == network and e.get("token_id") == wanted)
            ]
            if len(kept) != len(tokens[key]):
                removed = True
                if kept:
                    tokens[key] = kept
                else:
                    del tokens[key]
        if removed:
            self._save(tokens)
        return removed
