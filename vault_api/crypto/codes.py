"""Codes people read and type: Crockford's base32 (0-9 and A-Z without I, L,
O, U), shown in groups of five, read forgivingly (case, spaces and hyphens
ignored, O read as 0, I and L as 1). The recovery code (docs/vault.md 5.6) and
a device request's code (docs/devices.md 5) are such codes."""

from __future__ import annotations

import secrets
from typing import Final

ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
GROUP: Final = 5
_LOOKALIKES: Final = str.maketrans({"O": "0", "I": "1", "L": "1", "-": None, " ": None})


def random_code(symbols: int) -> str:
    """`symbols` random symbols (5 bits each), ungrouped."""
    return "".join(secrets.choice(ALPHABET) for _ in range(symbols))


def canonical(text: str, symbols: int) -> str | None:
    """The code `text` was typed as, ungrouped; None if it is not `symbols` symbols."""
    code = text.upper().translate(_LOOKALIKES)
    if len(code) != symbols or any(c not in ALPHABET for c in code):
        return None
    return code


def grouped(code: str) -> str:
    """The code in groups of five joined by "-", as shown."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))
