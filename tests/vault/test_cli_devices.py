"""The CLI as a trusted device, device approval and one-time links, through the
real `vault` command, a real authnet network, hardener, vault server and
one-time key proxy (docs/devices.md 3-5, 7, 8)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from authnet.testing import TestNetwork
from hardener.testing import TestHardener
from keyproxy.testing import TestKeyProxy
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone
from tests.vault.clirunner import VaultCli
from tests.vault.conftest import VaultServer, serve_hardened_vault
from tests.vault.driver import VaultClient, dec, enc
from tests.vault.hostproof import haystacks, scan
from vault_api import grants
from vault_api.client import devices, factors, links
from vault_api.client.api import VaultApi
from vault_api.client.device_commands import Proxy
from vault_api.crypto import devices as dv

PASS = "my grandma had a strange green bbq"
BOB_PASS = "when I jump I can not stop laughing"
SECRET_PASSWORD = "c0rrect-h0rse-battery-staple"


@pytest.fixture
def keyproxy(tmp_path: Path) -> Iterator[TestKeyProxy]:
    with TestKeyProxy(tmp_path / "keyproxy") as kp:
        yield kp


@pytest_asyncio.fixture
async def dvault(
    net: TestNetwork,
    db_url: str,
    tmp_path: Path,
    hardener: TestHardener,
    keyproxy: TestKeyProxy,
) -> AsyncIterator[VaultServer]:
    """The vault with a hardener (the passphrase) and a one-time key proxy."""
    async with serve_hardened_vault(
        net, db_url, tmp_path, hardener, keyproxy_url=keyproxy.http_url
    ) as server:
        # The proxy's operator registers the vault as a grant issuer (docs/keyproxy.md).
        keyproxy.add_issuer("vault", grants.issuer_public_key(server.settings.data_dir))
        yield server


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    monkeypatch.setenv("VAULT_CONFIG_DIR", str(folder))
    return folder


def _json(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def _device_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("device-*.json")) if folder.exists() else []


def _secrets_of(path: Path) -> list[str]:
    """The device file's private keys, as it spells them."""
    data = json.loads(path.read_text())
    return [data["device_key"], data["signing_key"]]


async def _put_wraps(state: Path, device_id: str, wrap: bytes, sealed: bytes) -> None:
    """Store wraps for the device as a session of the account may (an attacker
    with the database could too): the CLI must find they do not open."""
    s = _json(state)
    async with VaultApi(s["server"]) as api:
        api.resume(s["session_cookie"], s["csrf_token"])
        await api.session()
        await api.call(
            "PUT",
            f"/api/me/devices/{device_id}/bypass",
            json={"keypair_version": 1, "device_wrap": enc(wrap), "sealed_kek": enc(sealed)},
        )


async def test_cli_device_register_bypass_tamper_and_revoke(
    dvault: VaultServer, alice_phone: PhoneApp, tmp_path: Path, config_dir: Path
) -> None:
    store = tmp_path / "alice-phone.json"
    cli = VaultCli(dvault.url, tmp_path / "state.json")
    await cli.ok("login", "--phone", store, "--handle", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok("add", "Home", "note", "Plan", "--notes", "the plan")

    # No passphrase yet: nothing to bypass, registration is refused and says why.
    r = await cli.run("device", "register")
    assert r.code == 4, r.err
    assert "passphrase_unset" in r.err
    assert _device_files(config_dir) == []

    await cli.ok("passphrase", "set", "--new", "stdin", stdin=PASS + "\n")
    r = await cli.ok(
        "device", "register", "--name", "laptop", "--passphrase", "stdin", stdin=PASS + "\n"
    )
    assert "registered this CLI as device" in r.out
    files = _device_files(config_dir)
    assert len(files) == 1
    device_file = files[0]
    state = await cli.json("status")
    assert device_file.name == f"device-{state['user_id']}.json"
    assert stat.S_IMODE(device_file.stat().st_mode) == 0o600
    device_id = device_file.read_text().split('"device_id": "')[1].split('"')[0]

    listed = await cli.json("device", "list")
    (row,) = listed["devices"]
    assert row["name"] == "laptop"
    assert row["state"] == "active"
    assert row["bypass"] is False
    assert row["this_cli"] is True

    # Bypass off: the login says so and asks for the passphrase (none given: no terminal).
    r = await cli.run("items", "Home")
    assert r.code == 2
    assert "bypass_off" in r.err

    await cli.ok("device", "bypass", "on", "--passphrase", "stdin", stdin=PASS + "\n")
    assert (await cli.json("device", "list"))["devices"][0]["bypass"] is True

    # With the bypass: login and every command unlock without the passphrase.
    r = await cli.ok("login", "--phone", store)
    assert "unlocked with this device's bypass" in r.err
    r = await cli.ok("items", "Home")
    assert "Plan" in r.out
    assert "passphrase accepted" not in r.err
    cookie = _json(tmp_path / "state.json")["session_cookie"]
    r = await cli.ok("items", "Home")  # a second command: the same session, a fresh nonce
    assert "Plan" in r.out
    assert "unlocked with this device's bypass" in r.err
    assert _json(tmp_path / "state.json")["session_cookie"] == cookie

    # A device file others can read is refused by name; the passphrase still works.
    device_file.chmod(0o644)
    r = await cli.run("items", "Home")
    assert r.code == 2
    assert "device_file_mode" in r.err
    r = await cli.ok("items", "Home", "--passphrase", "stdin", stdin=PASS + "\n")
    assert "device_file_mode" in r.err
    assert "passphrase accepted" in r.err
    device_file.chmod(0o600)

    # Tampered wraps: each named, then the passphrase opens the vault.
    user_id = dec(state["user_id"])
    local = devices.load(user_id, config_dir)
    assert local is not None
    good_wrap, good_sealed = devices.bypass_wraps(
        token_factor=os.urandom(32),  # not this account's T: the wrap cannot open
        private_key=dv.new_device().device_key,
        user_id=user_id,
        keypair_version=1,
        device_id=local.device_id,
        device_public_key=local.keys.public_key,
    )
    await _put_wraps(cli.state, device_id, good_wrap, good_sealed)
    r = await cli.ok("items", "Home", "--passphrase", "stdin", stdin=PASS + "\n")
    assert "device_wrap_invalid" in r.err
    assert "passphrase accepted" in r.err
    flipped = bytes([good_sealed[0] ^ 1]) + good_sealed[1:]
    await _put_wraps(cli.state, device_id, good_wrap, flipped)
    r = await cli.ok("items", "Home", "--passphrase", "stdin", stdin=PASS + "\n")
    assert "device_kek_invalid" in r.err
    assert "passphrase accepted" in r.err

    await cli.ok("device", "bypass", "on", "--passphrase", "stdin", stdin=PASS + "\n")
    assert "unlocked with this device's bypass" in (await cli.ok("items", "Home")).err

    # Another user's device file is not used, even copied under that user's name.
    bob_store = tmp_path / "bob-phone.json"
    await make_phone(dvault.net, bob_store, label="bob phone")
    bob = VaultCli(dvault.url, tmp_path / "bob-state.json")
    await bob.ok("login", "--phone", bob_store, "--handle", "bob")
    await bob.ok("passphrase", "set", "--new", "stdin", stdin=BOB_PASS + "\n")
    bob_id = (await bob.json("status"))["user_id"]
    copy = config_dir / f"device-{bob_id}.json"
    copy.write_bytes(device_file.read_bytes())
    copy.chmod(0o600)
    r = await bob.ok("safes", "--passphrase", "stdin", stdin=BOB_PASS + "\n")
    assert "device_file_other_user" in r.err
    assert "passphrase accepted" in r.err
    copy.unlink()

    # Revoked from another session: the next login says why and asks for the passphrase.
    async with VaultClient(dvault.url) as other:
        await other.login(alice_phone)
        await other.call("DELETE", f"/api/me/devices/{device_id}", expect=204)
    r = await cli.run("login", "--phone", store)
    assert r.code == 2
    assert "device_revoked" in r.err
    r = await cli.ok("login", "--phone", store, "--passphrase", "stdin", stdin=PASS + "\n")
    assert "device_revoked" in r.err
    assert "passphrase accepted" in r.err
    assert (await cli.json("device", "list"))["devices"][0]["state"] == "revoked"

    secrets = [PASS, BOB_PASS, *_secrets_of(device_file)]
    for res in cli.results + bob.results:
        for s in secrets:
            assert s not in res.out + res.err


async def test_cli_send_and_open_link_once(
    dvault: VaultServer,
    alice_phone: PhoneApp,
    tmp_path: Path,
    config_dir: Path,
    keyproxy: TestKeyProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = tmp_path / "alice-phone.json"
    cli = VaultCli(dvault.url, tmp_path / "state.json")
    await cli.ok("login", "--phone", store, "--handle", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok(
        "add",
        "Home",
        "login",
        "Wifi",
        "--username",
        "guest",
        "--password",
        "stdin",
        stdin=SECRET_PASSWORD + "\n",
    )
    assert (await cli.run("send", "Home", "Wifi", "--ttl", "5m")).code == 2

    r = await cli.ok("send", "Home", "Wifi", "--ttl", "1h")
    link = r.out.strip()
    assert link.startswith(f"{dvault.url}/once#")
    assert "\n" not in link
    assert SECRET_PASSWORD not in r.out + r.err

    # Anyone may open it, with no session: the status does not use it up.
    reader = VaultCli(dvault.url, tmp_path / "reader-state.json")
    for _ in range(2):
        r = await reader.ok("open-link", link, "--status")
        assert "waiting to be opened" in r.out
    r = await reader.run("open-link", link)  # no terminal to confirm on
    assert r.code == 2
    r = await reader.ok("open-link", link, "--yes")
    assert SECRET_PASSWORD in r.out
    assert "guest" in r.out
    r = await reader.run("open-link", link, "--yes")
    assert r.code == 3
    assert "already opened" in r.err
    r = await reader.run("open-link", link, "--status")
    assert r.code == 3
    assert "already opened" in r.err

    # A damaged link: its key changed, AES-GCM refuses it by name.
    link2 = (await cli.ok("send", "Home", "Wifi")).out.strip()
    head, key = link2.rsplit(".", 1)
    bad = head + "." + ("A" if key[0] != "A" else "B") + key[1:]
    r = await reader.run("open-link", bad, "--yes")
    assert r.code == 7
    assert "link is damaged" in r.err
    assert "link_damaged" in r.err
    r = await reader.run("open-link", link2.split("#")[0] + "#nothing", "--yes")
    assert r.code == 7
    assert "link_damaged" in r.err
    for res in cli.results:
        assert SECRET_PASSWORD not in res.out + res.err

    # Host-proof: with a link waiting at the proxy, neither the vault's
    # database and files, nor the proxy's data directory, nor any log holds the
    # item's password, the link's key or its token.
    link3 = (await cli.ok("send", "Home", "Wifi")).out.strip()
    token3, key3 = link3.split("#", 1)[1].split(".", 1)
    stacks = haystacks(dvault.db_url, dvault.settings.blob_path)
    for f in sorted(keyproxy.data_dir.rglob("*")):
        if f.is_file():
            stacks[f"keyproxy {f.name}"] = f.read_bytes()
    stacks["logs"] = caplog.text.encode()
    needles = {
        "the item's password": SECRET_PASSWORD.encode(),
        "the link's key": dec(key3),
        "the link's token": token3.encode(),
    }
    assert scan(stacks, needles) == []
    status = await reader.ok("open-link", link3, "--status")
    assert "waiting to be opened" in status.out


async def test_cli_approves_a_page_style_device_request(
    dvault: VaultServer, alice_phone: PhoneApp, tmp_path: Path, config_dir: Path
) -> None:
    store = tmp_path / "alice-phone.json"
    cli = VaultCli(dvault.url, tmp_path / "state.json")
    await cli.ok("login", "--phone", store, "--handle", "alice")
    await cli.ok("passphrase", "set", "--new", "stdin", stdin=PASS + "\n")

    async with VaultClient(dvault.url) as b:  # browser B, as the page does it
        await b.login(alice_phone)
        assert b.user_id is not None
        keys = dv.new_device()
        claim = os.urandom(32)
        body = {
            "device_id": enc(keys.device_id),
            "name": "Firefox on Linux",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0",
            "public_key": enc(keys.public_key),
            "signing_key": enc(keys.signing_public_key),
            "proof": enc(dv.registration_proof(keys, user_id=b.user_id)),
            "claim_hash": enc(hashlib.sha256(claim).digest()),
        }
        fp = dv.fingerprint(
            user_id=b.user_id,
            device_id=keys.device_id,
            public_key=keys.public_key,
            signing_key=keys.signing_public_key,
        )
        # A refusal first: B's request is refused, and B sees it.
        refused = await b.json("POST", "/api/devices/requests", json=body, expect=201)
        r = await cli.ok("device", "approve", refused["code"], "--refuse")
        assert fp in r.err
        assert "refused" in r.out
        gone = await b.json("GET", f"/api/devices/requests/{refused['code']}")
        assert gone["state"] == "refused"

        keys = dv.new_device()
        body.update(
            device_id=enc(keys.device_id),
            public_key=enc(keys.public_key),
            signing_key=enc(keys.signing_public_key),
            proof=enc(dv.registration_proof(keys, user_id=b.user_id)),
        )
        fp = dv.fingerprint(
            user_id=b.user_id,
            device_id=keys.device_id,
            public_key=keys.public_key,
            signing_key=keys.signing_public_key,
        )
        req = await b.json("POST", "/api/devices/requests", json=body, expect=201)
        code = req["code"]
        r = await cli.ok(
            "device",
            "approve",
            code.lower().replace("-", " "),
            "--yes",
            "--passphrase",
            "stdin",
            stdin=PASS + "\n",
        )
        assert fp in r.err
        assert "Firefox on Linux" in r.err
        assert "approved" in r.out

        # B claims the sealed KEK at the proxy with its secret and finishes.
        got = await b.json("GET", f"/api/devices/requests/{code}")
        assert got["state"] == "approved"
        assert got["proxy_token"]
        config = await b.json("GET", "/api/config")
        token_hash = enc(hashlib.sha256(got["proxy_token"].encode()).digest())
        grant = await b.json("POST", "/api/keyproxy/grant", json={"token_hash": token_hash})
        proxy = Proxy(config["keyproxy_url"])
        try:
            sealed = await proxy.claim(got["proxy_token"], secret=claim, grant=grant["grant"])
        finally:
            await proxy.close()
        dkek = dv.open_dkek(sealed, keys, user_id=b.user_id)
        await b.json(
            "PUT",
            f"/api/me/devices/{enc(keys.device_id)}/bypass",
            json={"keypair_version": 1, "sealed_kek": enc(sealed)},
        )
        # B's bypass login: the account's private key without the passphrase.
        s = await b.json("GET", "/api/session")
        proof = dv.login_proof(keys, user_id=b.user_id, nonce=dec(s["device_nonce"]))
        wraps = await b.json(
            "POST", f"/api/me/devices/{enc(keys.device_id)}/open", json={"proof": enc(proof)}
        )
        assert b.slot is not None
        assert b.key_id is not None
        t = factors.token_factor(b.kc[b.key_id], user=b.user(), slot=b.slot)
        assert dv.open_dkek(dec(wraps["sealed_kek"]), keys, user_id=b.user_id) == dkek
        sk = dv.open_device_wrap(
            t,
            dkek,
            dec(wraps["device_wrap"]),
            user_id=b.user_id,
            device_id=keys.device_id,
            keypair_version=int(wraps["keypair_version"]),
            public_key=dec(b.user()["public_key"]),
        )
        assert sk.public_key().public_bytes_raw() == dec(b.user()["public_key"])

    listed = (await cli.json("device", "list"))["devices"]
    assert [d["name"] for d in listed] == ["Firefox on Linux"]
    assert listed[0]["fingerprint"] == fp
    assert listed[0]["bypass"] is True
    for res in cli.results:
        assert PASS not in res.out + res.err
        assert enc(claim) not in res.out + res.err


def test_link_text_lifetimes_and_sealing() -> None:
    blob, key = links.seal_item({"type": "note", "title": "T", "notes": "n"})
    link = links.Link(vault_url="https://vault.example/v", token="tok_-1", key=key)
    back = links.parse_link(link.text())
    assert back == link
    assert links.open_item(blob, back.key)["notes"] == "n"
    assert [links.parse_ttl(t) for t in ("10m", "12h", "1d", "7d", "3600")] == [
        600,
        43_200,
        86_400,
        604_800,
        3600,
    ]
    for bad in ("5m", "8d", "1w", "", "-1d"):
        with pytest.raises(factors.FactorError) as e:
            links.parse_ttl(bad)
        assert e.value.code == "invalid"
    cut = link.text()[:-3]
    for damaged in (cut, "https://vault.example/once", "ftp://x/once#a.b", link.text() + "x"):
        with pytest.raises(factors.FactorError) as e:
            links.open_item(blob, links.parse_link(damaged).key)
        assert e.value.code == "link_damaged"
    with pytest.raises(factors.FactorError) as e:
        links.open_item(blob[:-1] + bytes([blob[-1] ^ 1]), key)
    assert e.value.code == "link_damaged"
