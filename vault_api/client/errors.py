"""What the `vault` command refuses, and the exit status each refusal gives.

Every failure a person can cause or meet (a bad option, an item that is not
there, a stale version, a session that ended, a ciphertext that does not
open) is a `CliError` with a message that says what happened and what to do,
and an exit status scripts can branch on. Messages carry names, ids and
versions; never a key, a PIN, a cookie or a secret field's value.
"""

from __future__ import annotations

import enum
from typing import Any


class Exit(enum.IntEnum):
    """Exit statuses of `vault` (docs/vault.md, "The vault command")."""

    OK = 0
    ERROR = 1  # anything else: the server failed, the network is unreachable
    USAGE = 2  # bad arguments or input (argparse uses 2 too); nothing changed
    NOT_FOUND = 3  # no such safe, item, folder, field, file or version
    CONFLICT = 4  # 409: changed meanwhile (stale version, name taken); nothing written
    LOGIN = 5  # not logged in, the session ended, the login failed or was declined
    FORBIDDEN = 6  # 403: the role (or the server) does not allow it; nothing changed
    REFUSED = 7  # a ciphertext did not open: tampering, a wrong token, a substituted key


class CliError(Exception):
    def __init__(self, message: str, status: Exit = Exit.ERROR) -> None:
        self.message = message
        self.status = status
        super().__init__(message)


class NotFound(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.NOT_FOUND)


class Usage(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.USAGE)


_BY_HTTP_STATUS = {
    400: Exit.USAGE,
    401: Exit.LOGIN,
    403: Exit.FORBIDDEN,
    404: Exit.NOT_FOUND,
    409: Exit.CONFLICT,
    413: Exit.USAGE,
    422: Exit.USAGE,
}


def passphrase_required(facts: dict[str, Any]) -> str:
    """The CLI's words for 403 `passphrase_required` (docs/vault.md 5.4): who
    requires it, and the command that complies."""
    org = facts.get("organisation")
    server = facts.get("required_by") == "server"
    if server and isinstance(org, str):
        who = f"this vault and your organisation {org!r} require"
    elif isinstance(org, str):
        who = f"your organisation {org!r} requires"
    else:
        who = "this vault requires"
    return (
        f"{who} a vault passphrase and this account has none yet, so its safes stay "
        "closed: set one with `vault passphrase set` (it asks twice), then run this again"
    )


# Refusals the CLI words itself, from the server's facts (it knows the commands).
_WORDING = {"passphrase_required": passphrase_required}


class ApiError(CliError):
    """The server refused a request: `{"error": ..., "message": ..., facts}`."""

    def __init__(self, http_status: int, error: str, message: str, facts: dict[str, Any]) -> None:
        wording = _WORDING.get(error)
        if wording is not None:
            message = wording(facts)
        super().__init__(message, _BY_HTTP_STATUS.get(http_status, Exit.ERROR))
        self.http_status = http_status
        self.error = error
        self.facts = facts

    @property
    def ended_session(self) -> bool:
        """The session is gone (timed out, logged out, ended by the network)."""
        return self.http_status == 401
