"""After a run through every operation, nothing in the hardener's data
directory or logs contains the test's inputs, outputs, blobs or passphrases."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardener import labels, oprf
from hardener.testing import TestHardener
from tests.hardener.conftest import raw, sign_success

PASSPHRASE = b"my grandma had a strange green bbq"
BLOB = b"spino's brother wraps this master key record 0123456789"


def forms(value: bytes) -> list[bytes]:
    """A value as it could appear in a file: raw, hex, base64, base64url."""
    import base64

    return [
        value,
        value.hex().encode(),
        base64.b64encode(value).rstrip(b"="),
        base64.urlsafe_b64encode(value).rstrip(b"="),
    ]


async def test_no_input_output_or_blob_in_data_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets: list[bytes] = [PASSPHRASE, BLOB]
    with TestHardener(tmp_path) as h:
        async with h.client("network") as c:
            pk = (await c.get_keys()).public_key()
            user = "alice:passphrase"
            info = labels.poprf_info("network", user)
            blinded = oprf.poprf_blind(PASSPHRASE, info, pk)
            ev = await c.evaluate(user, blinded.blinded_element)
            from hardener.client import finalize

            out = finalize(PASSPHRASE, user, "network", blinded, ev).output
            secrets += [blinded.blinded_element, ev.evaluated_element, ev.proof, out]
            key = Ed25519PrivateKey.generate()
            await c.enrol(user, raw(key))
            sig = sign_success(key, "network", user, ev)
            await c.report_success(user, ev.attempt_id, sig)
            secrets.append(sig)
            digest = bytes(range(32))
            mac = (await c.hash(user, digest)).mac
            secrets += [digest, mac]
            w = await c.wrap("rec", BLOB)
            w2 = await c.rewrap("rec", w.wrapped)
            assert await c.unwrap("rec", w2.wrapped) == BLOB
            h.rotate()
            await c.harden(user, PASSPHRASE, (await c.get_keys()).public_key())
        sk = h.server.service.keys.get(1).oprf_secret
        secrets.append(sk)
        h.stop()
        scan(tmp_path, secrets, caplog.text.encode())


def scan(root: Path, secrets: list[bytes], logs: bytes) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "audit.log" for p in files)
    assert any(p.name == "hardener.db" for p in files)
    contents = {p: p.read_bytes() for p in files}
    for s in secrets:
        for f in forms(s):
            for p, data in contents.items():
                assert f not in data, f"{p} contains a secret"
            assert f not in logs
