"""Keys at rest: sealed under a 0600 key file or an AES key inside a PKCS#11
token (SoftHSM2); the database alone opens nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hardener.admin import Pkcs11Options
from hardener.datadir import DataDir
from hardener.errors import KeystoreError
from hardener.keys import KeyRing
from hardener.masterkey import FileMasterKey
from hardener.server import HardenerServer
from hardener.store import Store
from hardener.testing import TestHardener
from simulators.softhsm import SoftHsm
from tests.hardener.conftest import element


async def test_keys_in_a_pkcs11_token(tmp_path: Path) -> None:
    hsm = SoftHsm.shared()
    token = hsm.new_token()
    pin_file = tmp_path / "pin"
    pin_file.write_text(token.pin)
    pin_file.chmod(0o600)
    opts = Pkcs11Options(module=hsm.module, token_label=token.label, pin_file=pin_file)
    with TestHardener(tmp_path, pkcs11=opts) as h:
        config = h.data.config()
        assert config.master_key.kind == "pkcs11"
        assert not (h.root / "master.key").exists()
        async with h.client("network") as c:
            pk = (await c.get_keys()).public_key()
            first = await c.harden("u", b"secret", pk)
            w = await c.wrap("r", b"blob")
            assert h.rotate() == 2  # a new version sealed by the token
            h.restart()  # keys unsealed again through the token
            assert (await c.harden("u", b"secret", pk, key_version=1)).output == first.output
            assert await c.unwrap("r", w.wrapped) == b"blob"
            assert (await c.get_keys()).current_version == 2
        # Another token cannot open the sealed keys.
        other = hsm.new_token()
        pin_file.write_text(other.pin)
        from hardener.masterkey import Pkcs11MasterKey

        wrong = Pkcs11MasterKey(module=hsm.module, token_label=other.label, pin_file=pin_file)
        store = Store(h.data.db)
        try:
            with pytest.raises(KeystoreError, match="no key"):
                KeyRing.load(store, wrong)
        finally:
            store.close()
            wrong.close()


def test_key_file_is_private_and_required(tmp_path: Path) -> None:
    with TestHardener(tmp_path) as h:
        key = h.root / "master.key"
        assert key.stat().st_mode & 0o777 == 0o600
        assert (h.root / "ca.key").stat().st_mode & 0o777 == 0o600
        assert (h.root / "server.key").stat().st_mode & 0o777 == 0o600
        for name in ("hardener.db", "hardener.db-wal", "audit.log"):
            assert (h.root / name).stat().st_mode & 0o777 == 0o600, name
        creds = h.credentials_dir("network") / "caller.key"
        assert creds.stat().st_mode & 0o777 == 0o600
        original = key.read_bytes()
        h.stop()
        key.chmod(0o644)
        with pytest.raises(KeystoreError, match="chmod 600"):
            HardenerServer(h.root)
        key.chmod(0o600)
        key.write_bytes(os.urandom(32))  # another master key
        with pytest.raises(KeystoreError, match="does not open"):
            HardenerServer(h.root)
        key.write_bytes(original)
        h.start()


def test_a_master_key_is_never_overwritten(tmp_path: Path) -> None:
    FileMasterKey.create(tmp_path / "k")
    with pytest.raises(KeystoreError, match="refusing"):
        FileMasterKey.create(tmp_path / "k")


def test_sealed_keys_are_bound_to_version_and_purpose(tmp_path: Path) -> None:
    with TestHardener(tmp_path) as h:
        h.rotate()
        h.stop()
        store = Store(DataDir(h.root).db)
        try:
            # Swap version 1's and 2's sealed OPRF keys: neither opens.
            store.conn.execute(
                "UPDATE keys SET sealed_oprf = (SELECT sealed_hash FROM keys k2"
                " WHERE k2.version = keys.version)"
            )
            mk = DataDir(h.root).master_key()
            with pytest.raises(KeystoreError):
                KeyRing.load(store, mk)
        finally:
            store.close()


async def test_evaluations_use_unsealed_keys(hardener: TestHardener) -> None:
    async with hardener.client("network") as c:
        assert (await c.evaluate("u", element(b"x"))).key_version == 1
