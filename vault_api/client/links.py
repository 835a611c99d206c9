"""One-time links (docs/devices.md 7): an item sealed under a fresh key K, the
blob deposited at the one-time key proxy, and the link

    <vault URL>/once#<proxy token>.<base64url(K)>

Everything after `#` is the fragment: no server sees it when a browser opens
the link. The proxy holds the blob without K; the vault never sees either.
No I/O here: the link's text, its lifetime, and sealing and opening the item.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from vault_api.client.factors import FactorError
from vault_api.client.keys import dec, enc
from vault_api.crypto import devices as dv
from vault_api.crypto.errors import VaultCryptoError

MIN_TTL_S: Final = 600
MAX_TTL_S: Final = 7 * 86_400
DEFAULT_TTL: Final = "1d"
ONCE_PATH: Final = "/once"
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_TTL = re.compile(r"(\d+)([smhd]?)")


def parse_ttl(text: str) -> int:
    """'10m', '12h', '1d', '7d' or seconds; 10 minutes to 7 days."""
    m = _TTL.fullmatch(text.strip().lower())
    if not m:
        raise FactorError(
            f"--ttl is a number and a unit (s, m, h, d), e.g. 10m, 12h, 1d; not {text!r}",
            code="invalid",
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise FactorError(
            "a one-time link lives 10 minutes to 7 days (--ttl 10m ... 7d)", code="invalid"
        )
    return seconds


@dataclass(frozen=True, kw_only=True)
class Link:
    vault_url: str  # where /once is served, without the path
    token: str
    key: bytes

    def text(self) -> str:
        return f"{self.vault_url}{ONCE_PATH}#{self.token}.{enc(self.key)}"


def _damaged(why: str) -> FactorError:
    return FactorError(f"the link is damaged ({why})", code="link_damaged")


def parse_link(url: str) -> Link:
    """The vault's URL, the proxy token and K from a link as `vault send` prints it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _damaged("it is not an http(s) URL")
    if not parts.path.endswith(ONCE_PATH):
        raise _damaged(f"its path is not {ONCE_PATH}")
    token, dot, key_text = parts.fragment.rpartition(".")
    if not dot or not token or not key_text:
        raise _damaged("the part after # is not TOKEN.KEY; was it cut when copied?")
    try:
        key = dec(key_text)
    except Exception:
        raise _damaged("its key is not base64url") from None
    if len(key) != dv.LINK_KEY_BYTES:
        raise _damaged(f"its key is {len(key)} bytes, not {dv.LINK_KEY_BYTES}")
    base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(ONCE_PATH)]}"
    return Link(vault_url=base, token=token, key=key)


def seal_item(content: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(blob, K) for an item's content (the JSON the page and CLI store, 7.3)."""
    text = json.dumps(dict(content), separators=(",", ":"), ensure_ascii=False)
    return dv.seal_link(text.encode("utf-8"))


def open_item(blob: bytes, key: bytes) -> dict[str, Any]:
    try:
        padded = dv.open_link(blob, key)
    except VaultCryptoError:
        raise _damaged(
            "AES-GCM refused it: its key or token was changed, or the stored blob was modified"
        ) from None
    try:
        content = json.loads(padded.decode("utf-8"))  # the padding is JSON whitespace
    except (UnicodeDecodeError, ValueError):
        raise _damaged("it opened, but holds no item") from None
    if not isinstance(content, dict):
        raise _damaged("it opened, but holds no item")
    return content
