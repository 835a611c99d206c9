"""The CLI's device keys in the OS keyring (docs/devices.md 8), through the real
`vault` command, vault, hardener and proxy, and a real gnome-keyring on a
private D-Bus session bus (tests.vault.device_fixtures)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from simulators.phone.app import PhoneApp
from tests.vault.clirunner import VaultCli
from tests.vault.conftest import VaultServer
from tests.vault.device_fixtures import OsKeyring, os_keyring  # noqa: F401
from tests.vault.driver import dec
from tests.vault.hostproof import scan
from tests.vault.test_cli_devices import config_dir, dvault, keyproxy  # noqa: F401
from vault_api.client import devices
from vault_api.crypto import devices as dv

PASS = "my grandma had a strange green bbq"
SERVICE = "authnet-vault device"


def _device_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("device-*.json")) if folder.exists() else []


def _only_device_file(folder: Path) -> Path:
    files = _device_files(folder)
    assert len(files) == 1, files
    return files[0]


def _entry(user_id: str, device_id: str) -> dict[str, str] | None:
    secret = keyring.get_password(SERVICE, f"{user_id}:{device_id}")
    return None if secret is None else json.loads(secret)


async def _register(cli: VaultCli, *extra: str) -> dict[str, str]:
    return await cli.json(
        "device", "register", "--bypass", *extra, "--passphrase", "stdin", stdin=PASS + "\n"
    )


async def test_cli_keyring_device_register_login_missing_and_revoke(
    dvault: VaultServer,  # noqa: F811
    alice_phone: PhoneApp,
    tmp_path: Path,
    config_dir: Path,  # noqa: F811
    os_keyring: OsKeyring,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = tmp_path / "alice-phone.json"
    cli = VaultCli(dvault.url, tmp_path / "state.json")
    await cli.ok("login", "--phone", store, "--handle", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok("add", "Home", "note", "Plan", "--notes", "the plan")
    await cli.ok("passphrase", "set", "--new", "stdin", stdin=PASS + "\n")
    user_id = (await cli.json("status"))["user_id"]

    row = await _register(cli, "--name", "laptop", "--keyring")
    device_id = row["device_id"]
    device_file = _only_device_file(config_dir)
    assert stat.S_IMODE(device_file.stat().st_mode) == 0o600
    on_disk = json.loads(device_file.read_text())
    assert on_disk["keyring"] is True
    assert on_disk["device_id"] == device_id
    assert on_disk["user_id"] == user_id
    assert on_disk["name"] == "laptop"
    assert "device_key" not in on_disk
    assert "signing_key" not in on_disk

    # The keyring holds both keys, and they are the registered device's.
    entry = _entry(user_id, device_id)
    assert entry is not None
    keys = dv.device_from_bytes(dec(device_id), dec(entry["device_key"]), dec(entry["signing_key"]))
    fp = dv.fingerprint(
        user_id=dec(user_id),
        device_id=keys.device_id,
        public_key=keys.public_key,
        signing_key=keys.signing_public_key,
    )
    (listed,) = (await cli.json("device", "list"))["devices"]
    assert listed["fingerprint"] == fp
    assert listed["this_cli"] is True
    raw_keys = {
        "the device key": dec(entry["device_key"]),
        "the signing key": dec(entry["signing_key"]),
    }
    assert scan({"the device file": device_file.read_bytes()}, raw_keys) == []

    # The bypass login reads the keys from the keyring: no passphrase.
    r = await cli.ok("login", "--phone", store)
    assert "unlocked with this device's bypass (laptop" in r.err
    r = await cli.ok("items", "Home")
    assert "Plan" in r.out
    assert "passphrase accepted" not in r.err

    # Revoking this CLI's device deletes its keyring entry and its file.
    r = await cli.ok("device", "revoke", "this")
    assert "OS keyring entry" in r.out
    assert _entry(user_id, device_id) is None
    assert not device_file.exists()

    # Registered again (VAULT_DEVICE_KEYRING=1), then its entry is deleted
    # behind the CLI's back: the login names it and asks for the passphrase.
    monkeypatch.setenv("VAULT_DEVICE_KEYRING", "1")
    row = await _register(cli, "--name", "laptop 2")
    monkeypatch.delenv("VAULT_DEVICE_KEYRING")
    device_id = row["device_id"]
    device_file = _only_device_file(config_dir)
    assert json.loads(device_file.read_text())["keyring"] is True
    entry = _entry(user_id, device_id)
    assert entry is not None
    raw_keys |= {
        "the second device key": dec(entry["device_key"]),
        "the second signing key": dec(entry["signing_key"]),
    }
    assert scan({"the device file": device_file.read_bytes()}, raw_keys) == []
    assert "unlocked with this device's bypass" in (await cli.ok("items", "Home")).err

    keyring.delete_password(SERVICE, f"{user_id}:{device_id}")
    r = await cli.run("login", "--phone", store)
    assert r.code == 2, r.err
    assert "device_keyring_missing" in r.err
    assert "the OS keyring holds no key for this device" in r.err
    r = await cli.ok("login", "--phone", store, "--passphrase", "stdin", stdin=PASS + "\n")
    assert "device_keyring_missing" in r.err
    assert "passphrase accepted" in r.err

    # A device whose entry is gone is still listed and revoked from its file.
    (listed,) = [d for d in (await cli.json("device", "list"))["devices"] if d["this_cli"]]
    assert listed["device_id"] == device_id
    await cli.ok("device", "revoke", "this")
    assert not device_file.exists()

    for res in cli.results:
        for secret in raw_keys.values():
            for spelling in (secret.hex(), devices.enc(secret)):
                assert spelling not in res.out + res.err
        assert PASS not in res.out + res.err


async def test_cli_keyring_unavailable(
    dvault: VaultServer,  # noqa: F811
    alice_phone: PhoneApp,
    tmp_path: Path,
    config_dir: Path,  # noqa: F811
    os_keyring: OsKeyring,  # noqa: F811
) -> None:
    store = tmp_path / "alice-phone.json"
    cli = VaultCli(dvault.url, tmp_path / "state.json")
    await cli.ok("login", "--phone", store, "--handle", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok("passphrase", "set", "--new", "stdin", stdin=PASS + "\n")
    secret_service = keyring.get_keyring()

    # No usable backend (keyring's own fail backend): registration is refused
    # before the vault learns of the device.
    keyring.set_keyring(fail.Keyring())
    r = await cli.run("device", "register", "--keyring", "--passphrase", "stdin", stdin=PASS + "\n")
    assert r.code == 1, r.err
    assert "device_keyring_unavailable" in r.err
    assert "keyring.backends.fail.Keyring" in r.err
    assert _device_files(config_dir) == []
    assert (await cli.json("device", "list"))["devices"] == []

    # Registered with a keyring that then is unusable: named, then the passphrase.
    keyring.set_keyring(secret_service)
    await _register(cli, "--keyring")
    keyring.set_keyring(fail.Keyring())
    r = await cli.run("items", "Home")
    assert r.code == 2, r.err
    assert "device_keyring_unavailable" in r.err
    r = await cli.ok("items", "Home", "--passphrase", "stdin", stdin=PASS + "\n")
    assert "device_keyring_unavailable" in r.err
    assert "passphrase accepted" in r.err
    keyring.set_keyring(secret_service)
    assert "unlocked with this device's bypass" in (await cli.ok("items", "Home")).err
