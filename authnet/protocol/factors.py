"""Authentication factors ("auth types"), spelled as WWPass spells them.

`p`: user verification (the token's PIN, or its equivalent) was checked.
`c`: the login delivers a client key Kc, sealed to the browser.
Possession of an enrolled token is always proven and has no letter.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from authnet.errors import MalformedInput


class Factor(enum.Enum):
    PIN = "p"
    CLIENT_KEY = "c"


Factors = frozenset[Factor]

_ORDER = {Factor.PIN: 0, Factor.CLIENT_KEY: 1}


def parse_factors(text: str) -> Factors:
    """Parse an auth_types string such as "pc". Letters may repeat; order is free."""
    if not isinstance(text, str) or len(text) > 8:
        raise MalformedInput("auth_types must be a short string of letters p and c")
    out: set[Factor] = set()
    for ch in text:
        try:
            out.add(Factor(ch))
        except ValueError:
            raise MalformedInput(
                f"unknown auth type {ch!r}: use 'p' (PIN) and/or 'c' (client key)"
            ) from None
    return frozenset(out)


def _spell(factors: Iterable[Factor]) -> str:
    return "".join(f.value for f in sorted(set(factors), key=_ORDER.__getitem__))


# Every set of factors, spelled: a login's answers spell them four times.
_SPELLED: dict[Factors, str] = {
    frozenset(s): _spell(s) for s in ((), (Factor.PIN,), (Factor.CLIENT_KEY,), tuple(Factor))
}


def format_factors(factors: Iterable[Factor]) -> str:
    if isinstance(factors, frozenset):
        spelled = _SPELLED.get(factors)
        if spelled is not None:
            return spelled
    return _spell(factors)
