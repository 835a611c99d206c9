"""No secret in a repr: key versions, master keys, credentials, outputs."""

from __future__ import annotations

from pathlib import Path

from hardener.client import Hardened, HashOutput, Wrapped
from hardener.masterkey import FileMasterKey
from hardener.testing import TestHardener


def test_reprs_hide_secrets(hardener: TestHardener, tmp_path: Path) -> None:
    kv = hardener.server.service.keys.get(0)
    for secret, obj in [
        (kv.oprf_secret, kv),
        (kv.hash_key, kv),
        (kv.wrap_key, kv),
        (hardener.server.service.attempts.key, hardener.server.service.attempts),
    ]:
        assert repr(secret) not in repr(obj)
        assert secret.hex() not in repr(obj)
    mk = FileMasterKey.create(tmp_path / "k")
    assert repr((tmp_path / "k").read_bytes()) not in repr(mk)
    creds = hardener.caller_credentials("network")
    assert "PRIVATE KEY" not in repr(creds)
    assert b"PRIVATE KEY" in creds.key_pem
    mac = b"\x42" * 32
    out = HashOutput(key_version=1, mac=mac, attempt_id=b"a", nonce=b"n", attempts_left=9)
    assert repr(mac) not in repr(out)
    assert repr(mac) not in repr(Wrapped(wrapped=mac, key_version=1))
    assert repr(mac * 2) not in repr(Hardened(output=mac * 2, evaluation=None))  # type: ignore[arg-type]
