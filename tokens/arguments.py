"""Command lines that take token ids.

Token ids are 22 base64url characters, and one in 64 starts with "-", which
argparse takes for an option ("unrecognized arguments: -Xy..."). People copy
ids from `tokens` listings, so the commands accept them as they are: an id
given as an option's value becomes `--option=ID`, and a positional one moves
behind "--".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_DASHED_ID = re.compile(r"-[A-Za-z0-9_-]{21}")


def protect_token_ids(argv: Sequence[str], *, value_options: Iterable[str] = ()) -> list[str]:
    """`argv` with every token id that starts with "-" made safe for argparse."""
    takes_value = set(value_options)
    out: list[str] = []
    moved: list[str] = []
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            out.extend(args[i:])
            break
        if _DASHED_ID.fullmatch(arg):
            if out and out[-1] in takes_value:
                out[-1] = f"{out[-1]}={arg}"
            else:
                moved.append(arg)
            continue
        out.append(arg)
    if not moved:
        return out
    if "--" in out:
        at = out.index("--")
        return out[: at + 1] + moved + out[at + 1 :]
    return [*out, "--", *moved]
