"""Random passwords (`vault generate`, `--password generate`): characters
drawn uniformly with the `secrets` module, at least one of each class asked for."""

from __future__ import annotations

import secrets
import string

from vault_api.client.errors import Usage

SYMBOLS = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
MIN_LENGTH, MAX_LENGTH, DEFAULT_LENGTH = 8, 128, 20


def generate(length: int = DEFAULT_LENGTH, *, symbols: bool = True) -> str:
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise Usage(f"a generated password is {MIN_LENGTH} to {MAX_LENGTH} characters")
    classes = [string.ascii_lowercase, string.ascii_uppercase, string.digits]
    if symbols:
        classes.append(SYMBOLS)
    alphabet = "".join(classes)
    while True:
        candidate = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in cls for c in candidate) for cls in classes):
            return candidate
