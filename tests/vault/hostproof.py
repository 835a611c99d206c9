"""The host-proof check: scan everything the server keeps (the database, as
files and as a logical dump of every table, and the file store) for secrets
that must never reach it: plaintexts, Kc, private keys, safe and file keys.

    found = scan(haystacks(db_url, blob_dir), {"alice's Kc": kc, ...})
    assert found == []

Each secret is looked for in five spellings (raw, hex both cases, base64 and
base64url), as tests/test_leaks.py does for the network.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.helpers import encodings
from vault_api.db import make_engine
from vault_api.schema import METADATA

# Shorter needles would match by chance somewhere in megabytes of ciphertext.
MIN_NEEDLE = 8


def dump(db_url: str) -> bytes:
    """Every value of every table, bytes as they are and text as UTF-8."""
    engine = make_engine(db_url)
    out = bytearray()
    try:
        with engine.connect() as c:
            for table in METADATA.sorted_tables:
                for row in c.execute(sa.select(table)):
                    for value in row:
                        if isinstance(value, bytes):
                            out += value
                        elif value is not None:
                            out += str(value).encode("utf-8")
                        out += b"\x00"
    finally:
        engine.dispose()
    return bytes(out)


def haystacks(db_url: str, blob_dir: Path) -> dict[str, bytes]:
    stacks = {"database dump": dump(db_url)}
    if db_url.startswith("sqlite:///"):
        db_file = Path(db_url.removeprefix("sqlite:///"))
        for f in db_file.parent.glob(db_file.name + "*"):
            stacks[f.name] = f.read_bytes()
    for f in sorted(blob_dir.rglob("*")):
        if f.is_file():
            stacks[f"blob {f.name}"] = f.read_bytes()
    return stacks


def scan(stacks: dict[str, bytes], needles: dict[str, bytes]) -> list[str]:
    found = []
    for what, secret in needles.items():
        assert len(secret) >= MIN_NEEDLE, f"{what} is too short to look for"
        for spelling in encodings(secret):
            for where, stack in stacks.items():
                if spelling in stack:
                    found.append(f"{what} in {where}")
    return found
