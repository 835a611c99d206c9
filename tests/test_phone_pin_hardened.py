"""The phone PIN hardened by the network's hardener (issue 9, item 1).

Real parts throughout: an in-process network (TestNetwork) with a real
hardener beside it (hardener.testing.TestHardener, its own CA, mTLS, the
network registered as caller "network"), the phone app over a key store
file, and the PassKey API over TLS.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.cli import _config as cli_config
from authnet.cli import parser as cli_parser
from authnet.config import ConfigError
from authnet.errors import (
    HardenerKeyMismatch,
    HardenerNotConfigured,
    HardenerUnavailable,
    KeystoreError,
    PinInvalid,
    PinLocked,
    RateLimited,
    SignatureInvalid,
    TokenRevoked,
)
from authnet.protocol import labels
from authnet.protocol.encoding import b64u_decode
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from hardener import oprf
from hardener.testing import TestHardener
from simulators.phone.app import OFFLINE_PIN_WARNING, PhoneApp
from simulators.phone.cli import EXIT_ERROR, EXIT_OK
from tests.helpers import encodings, haystacks, login
from tests.test_phone_cli import Cli
from tokens import hardened_pin as hp
from tokens.api import PassKeyApi
from tokens.phone import PhoneKeyStore, _aad

PIN = "482915"
WRONG = [f"{n:06d}" for n in range(100000, 100020)]


@pytest.fixture
async def net(tmp_path: Path) -> AsyncIterator[TestNetwork]:
    async with TestNetwork(tmp_path / "net", hardener=True) as n:
        yield n


async def hardened_phone(net: TestNetwork, path: Path, pin: str = PIN) -> PhoneApp:
    phone = PhoneApp.create(path, pin=pin)
    await phone.enrol(net.addresses.passkey, net.ca_pem)
    assert phone.store.hardened, phone.pin_note
    return phone


async def unlock(net: TestNetwork, path: Path, pin: str) -> PhoneApp:
    """A fresh app instance on the file at `path`, unlocked with `pin`."""
    app = PhoneApp.open(path, pin=pin)
    await app.unlocked()
    return app


def doc(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def token_id(phone: PhoneApp) -> bytes:
    return phone.store.enrolments()[0].token_id


async def relay_guess(net: TestNetwork, phone: PhoneApp) -> hp.Evaluation:
    """One guess straight through the relay RPC (no app, no file)."""
    pinned = phone.store.pinned
    assert pinned is not None
    b = oprf.poprf_blind(b"a guess of my own", pinned.info, pinned.public_key)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        return await api.harden_pin(
            token_id=token_id(phone), blinded_element=b.blinded_element, key_version=0
        )


# --- the store ------------------------------------------------------------------


async def test_enrolling_with_a_hardener_seals_the_pin_under_it(
    net: TestNetwork, tmp_path: Path
) -> None:
    phone = await hardened_phone(net, tmp_path / "phone.json")
    d = doc(tmp_path / "phone.json")
    assert d["version"] == 2
    assert d["protection"] == "pin"
    sealed = d["sealed"]
    assert sealed["kdf"] == "argon2id+hardener"
    assert (sealed["t"], sealed["m"], sealed["p"]) == (2, 19456, 1)
    h = sealed["hardener"]
    assert h["caller"] == "network"
    assert h["user_id"] == "token:" + token_id(phone).hex()
    assert h["key_version"] == 1
    assert h["network"] == net.addresses.passkey
    assert "secrets" not in d
    assert "hardened" in phone.pin_note
    # The right PIN opens it, from a new app instance, through the network.
    app = await unlock(net, tmp_path / "phone.json", PIN)
    assert not app.token.locked
    assert app.token.user_verified


async def test_a_login_asks_for_the_pin_and_checks_it_through_the_hardener(
    net: TestNetwork, tmp_path: Path
) -> None:
    await hardened_phone(net, tmp_path / "phone.json")
    creds = await net.add_sp("shop", "Shop")
    async with AsyncSPClient(creds) as sp:
        app = PhoneApp.open(tmp_path / "phone.json", pin=PIN)
        run = await login(sp, app, auth_types="pc")
        assert run.report.accepted
        assert run.kc is not None
        wrong = PhoneApp.open(tmp_path / "phone.json", pin=WRONG[0])
        with pytest.raises(PinInvalid, match="9 attempts left"):
            await login(sp, wrong, auth_types="pc")


# --- the limit that a copied file cannot get around --------------------------------


async def test_eleven_wrong_pins_through_any_path_and_the_hardener_stops(
    net: TestNetwork, tmp_path: Path
) -> None:
    original = tmp_path / "phone.json"
    phone = await hardened_phone(net, original)
    copy = tmp_path / "stolen.json"
    shutil.copy(original, copy)
    guesses = iter(WRONG)
    # 4 wrong PINs in the app, 3 in a second app instance on the copied file,
    # 3 straight through the relay RPC: 10 in all.
    for _ in range(4):
        with pytest.raises(PinInvalid):
            await unlock(net, original, next(guesses))
    for _ in range(3):
        with pytest.raises(PinInvalid):
            await unlock(net, copy, next(guesses))
    lefts = [(await relay_guess(net, phone)).attempts_left for _ in range(3)]
    assert lefts == [2, 1, 0]
    # The copy's own counter, reset by its holder, changes nothing.
    stolen = doc(copy)
    assert stolen["pin_attempts_left"] == 3
    stolen["pin_attempts_left"] = 10
    copy.write_text(json.dumps(stolen))
    # The 11th is refused by the hardener, through every path, even with the right PIN.
    with pytest.raises(PinLocked, match=r"PIN locked: 10 wrong PINs") as locked:
        await unlock(net, copy, PIN)
    assert locked.value.detail["retries_left"] == 0
    with pytest.raises(PinLocked):
        await unlock(net, original, PIN)
    with pytest.raises(PinLocked):
        await relay_guess(net, phone)
    # The hardener's recovery step (its operator) unlocks the token again.
    assert net.hardener is not None
    net.hardener.unlock("network", "token:" + token_id(phone).hex())
    await unlock(net, original, PIN)


async def test_the_right_pin_resets_the_count(net: TestNetwork, tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    for guess in WRONG[:9]:
        with pytest.raises(PinInvalid):
            await unlock(net, path, guess)
    assert doc(path)["pin_attempts_left"] == 1
    await unlock(net, path, PIN)  # proven success: the count is back to 10
    assert doc(path)["pin_attempts_left"] == 10
    for guess in WRONG[9:17]:
        with pytest.raises(PinInvalid):
            await unlock(net, path, guess)
    with pytest.raises(PinInvalid, match="1 attempts left"):
        await unlock(net, path, WRONG[17])
    await unlock(net, path, PIN)  # the 10th evaluation, and a success
    await unlock(net, path, PIN)


async def test_a_claimed_success_without_the_success_key_resets_nothing(
    net: TestNetwork, tmp_path: Path
) -> None:
    phone = await hardened_phone(net, tmp_path / "phone.json")
    e = await relay_guess(net, phone)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        with pytest.raises(SignatureInvalid):
            await api.confirm_pin(
                token_id=token_id(phone), attempt_id=e.attempt_id, signature=b"\x01" * 64
            )
    assert (await relay_guess(net, phone)).attempts_left == e.attempts_left - 1


async def test_only_the_token_can_enrol_a_success_key(net: TestNetwork, tmp_path: Path) -> None:
    """Someone holding only the copied file (no authentication key) cannot
    enrol a success key of their own and reset the count with it."""
    phone = await hardened_phone(net, tmp_path / "phone.json")
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        challenge = await api.enrol_pin_challenge()
        with pytest.raises(SignatureInvalid):
            await api.enrol_pin(
                token_id=token_id(phone),
                challenge=challenge,
                signature=b"0" * 70,
                success_public_key=b"\x02" * 32,
            )


# --- the file alone ---------------------------------------------------------------


async def test_the_file_alone_does_not_check_a_guess(net: TestNetwork, tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    d = doc(path)
    sealed = d["sealed"]
    params = {k: sealed[k] for k in ("t", "m", "p")}
    salt = b64u_decode(sealed["salt"], field="salt")
    nonce = b64u_decode(sealed["nonce"], field="nonce")
    ct = b64u_decode(sealed["ciphertext"], field="ciphertext")
    store = PhoneKeyStore.load(path)
    pinned = store.pinned
    assert pinned is not None
    aad = hp.aad(store.public_key, params, pinned)
    # Argon2id of the RIGHT PIN, used every way the file would allow, opens nothing.
    x = hp.slow_hash(PIN, salt, params)
    hkdf = HKDF(hashes.SHA256(), 32, salt, labels.PHONE_KEYSTORE_KEY).derive(x)
    for key in (x, hkdf):
        for ad in (aad, b""):
            with pytest.raises(InvalidTag):
                AESGCM(key).decrypt(nonce, ct, ad)
    # And nothing else in the file depends on the PIN: the public part is the
    # same for any PIN, the only PIN-dependent value is the ciphertext.
    public = {k: v for k, v in sealed.items() if k not in ("nonce", "ciphertext")}
    assert set(public) == {"kdf", "t", "m", "p", "salt", "hardener"}
    assert set(d) == {
        "format", "version", "label", "public_key", "enrolments", "protection", "sealed",
        "pin_attempts_left",
    }  # fmt: skip
    # While the hardener's output for the right PIN does open it.
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        b = hp.blind(x, pinned)
        e = await api.harden_pin(
            token_id=store.enrolments()[0].token_id,
            blinded_element=b.blinded_element,
            key_version=pinned.key_version,
        )
    plain = AESGCM(hp.store_key(hp.finalize(b, e), salt)).decrypt(nonce, ct, aad)
    assert set(json.loads(plain)) == {"auth_key", "kc_secret", "success_key"}


async def test_an_argon2id_only_store_does_check_a_guess(tmp_path: Path) -> None:
    """The contrast: version 1 lets whoever holds the file test PINs offline."""
    path = tmp_path / "offline.json"
    PhoneApp.create(path, pin=PIN, offline_pin=True)
    sealed = doc(path)["sealed"]
    params = {k: sealed[k] for k in ("t", "m", "p")}
    key = hp.slow_hash(PIN, b64u_decode(sealed["salt"], field="salt"), params)
    store = PhoneKeyStore.load(path)
    plain = AESGCM(key).decrypt(
        b64u_decode(sealed["nonce"], field="nonce"),
        b64u_decode(sealed["ciphertext"], field="ciphertext"),
        _aad(store.public_key, params),
    )
    assert set(json.loads(plain)) == {"auth_key", "kc_secret"}


# --- failures that change nothing ----------------------------------------------------


async def test_hardener_down_is_a_clear_error_and_the_file_is_unchanged(
    net: TestNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    before = path.read_bytes()
    assert net.hardener is not None
    net.hardener.stop()
    with pytest.raises(HardenerUnavailable, match="could not be reached") as err:
        await unlock(net, path, PIN)
    assert err.value.retryable
    with pytest.raises(HardenerUnavailable):
        await unlock(net, path, WRONG[0])
    assert path.read_bytes() == before
    net.hardener.start()
    # Retryable: once the network's channel to the hardener is back, it opens.
    for _ in range(50):
        try:
            await unlock(net, path, PIN)
            break
        except HardenerUnavailable:
            await asyncio.sleep(0.1)
    else:
        pytest.fail("the store did not open once the hardener was back")


async def test_a_hardener_answering_with_another_key_is_refused(
    net: TestNetwork, tmp_path: Path
) -> None:
    """The network's data directory, served again but with a different
    hardener (its own keys, the same caller name): the proof does not verify
    against the pinned key, the store refuses and is left as it was."""
    path = tmp_path / "phone.json"
    phone = await hardened_phone(net, path)
    before = path.read_bytes()
    with TestHardener(tmp_path / "impostor") as other:
        async with TestNetwork(
            tmp_path / "net2", hardener=other, data_dir=net.config.data_dir
        ) as net2:
            store = PhoneKeyStore.load(path)
            async with PassKeyApi(net2.addresses.passkey, ca_pem=net2.ca_pem) as api:
                with pytest.raises(HardenerKeyMismatch, match="does not verify"):
                    await store.open_hardened(PIN, api, token_id=token_id(phone))
    assert path.read_bytes() == before
    await unlock(net, path, PIN)


async def test_a_network_without_a_hardener_says_so(tmp_path: Path) -> None:
    async with TestNetwork(tmp_path / "plain") as plain:
        phone = PhoneApp.create(tmp_path / "phone.json", pin=PIN)
        await phone.enrol(plain.addresses.passkey, plain.ca_pem)
        assert not phone.store.hardened
        assert phone.store.has_pin
        assert "no PIN hardener" in phone.pin_note
        async with PassKeyApi(plain.addresses.passkey, ca_pem=plain.ca_pem) as api:
            with pytest.raises(HardenerNotConfigured, match="this network has no hardener"):
                await api.pin_hardener(token_id(phone))
        # The Argon2id-only store still opens, without the network.
        assert not PhoneApp.open(tmp_path / "phone.json", pin=PIN).token.locked


# --- the person's choices -------------------------------------------------------------


async def test_offline_pin_keeps_the_argon2id_store_with_a_warning(
    net: TestNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "phone.json"
    phone = PhoneApp.create(path, pin=PIN, offline_pin=True)
    await phone.enrol(net.addresses.passkey, net.ca_pem)
    assert doc(path)["version"] == 1
    assert doc(path)["sealed"]["kdf"] == "argon2id"
    assert phone.pin_note == OFFLINE_PIN_WARNING
    assert "offline" in OFFLINE_PIN_WARNING
    assert "10 wrong PINs" in OFFLINE_PIN_WARNING
    # Opens without any network at all.
    app = PhoneApp.open(path, pin=PIN)
    assert not app.token.locked


async def test_changing_the_pin_replaces_the_success_key(net: TestNetwork, tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    app = PhoneApp.open(path, pin=PIN)
    await app.set_pin("917364")
    with pytest.raises(PinInvalid):
        await unlock(net, path, PIN)
    await unlock(net, path, "917364")


async def test_a_store_without_a_pin_gets_a_hardened_one(net: TestNetwork, tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    phone = PhoneApp.create(path)
    await phone.enrol(net.addresses.passkey, net.ca_pem)
    assert not phone.store.has_pin
    await phone.set_pin(PIN)
    assert doc(path)["version"] == 2
    with pytest.raises(PinInvalid):
        await unlock(net, path, WRONG[0])
    await unlock(net, path, PIN)


# --- rotation ----------------------------------------------------------------------


async def test_a_rotation_re_keys_the_store_at_the_next_unlock(
    net: TestNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    old_key = doc(path)["sealed"]["hardener"]["public_key"]
    assert net.hardener is not None
    assert net.node.pins is not None
    assert net.hardener.rotate() == 2
    net.node.pins.forget_keys()  # what the relay's 30 s cache would do by itself
    await unlock(net, path, PIN)
    h = doc(path)["sealed"]["hardener"]
    assert h["key_version"] == 2
    assert h["public_key"] != old_key
    await unlock(net, path, PIN)
    with pytest.raises(PinInvalid):
        await unlock(net, path, WRONG[0])
    # Nothing needs version 1 any more: it retires, and the store still opens.
    net.hardener.retire(1)
    await unlock(net, path, PIN)


# --- damaged version-2 files --------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["sealed"].update(kdf="argon2id"), "expected argon2id\\+hardener"),
        (lambda d: d["sealed"]["hardener"].update(key_version=0), "key_version"),
        (lambda d: d["sealed"]["hardener"].update(public_key="AAAA"), "public_key"),
        (lambda d: d["sealed"]["hardener"].update(caller=""), "caller"),
        (lambda d: d["sealed"].pop("hardener"), "hardener is missing"),
        (lambda d: d.update(protection="none"), "version-2 key store is PIN-protected"),
    ],
)
async def test_a_damaged_hardened_store_is_refused_at_load(
    net: TestNetwork, tmp_path: Path, edit: Any, message: str
) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    d = doc(path)
    edit(d)
    path.write_text(json.dumps(d))
    with pytest.raises(KeystoreError, match=message):
        PhoneKeyStore.load(path)


# --- passkey-phone --------------------------------------------------------------------


async def test_the_cli_hardens_at_enrolment_and_changes_the_pin(
    net: TestNetwork, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(monkeypatch)
    store, ca = tmp_path / "phone.json", tmp_path / "ca.crt"
    ca.write_bytes(net.ca_pem)
    r = await cli.run("--store", store, "--pin-stdin", "init", "--pin", stdin=PIN + "\n")
    assert r.code == EXIT_OK
    assert "hardened by the first network with a hardener" in r.out
    monkeypatch.setenv("PASSKEY_PIN", PIN)
    r = await cli.run("--store", store, "enrol", net.addresses.passkey, "--ca", ca)
    assert r.code == EXIT_OK, r.err
    assert "hardened by" in r.err
    shown = (await cli.run("--store", store, "show")).json()
    assert shown["pin_kind"] == "hardened"
    assert shown["pin_hardener"]["caller"] == "network"
    assert shown["pin_hardener"]["key_version"] == 1
    assert (await cli.run("--store", store, "tokens")).code == EXIT_OK

    monkeypatch.setenv("PASSKEY_NEW_PIN", "246813")
    r = await cli.run("--store", store, "set-pin")
    assert r.code == EXIT_OK, r.err
    assert "PIN set" in r.out
    r = await cli.run("--store", store, "tokens")
    assert r.code == EXIT_ERROR
    assert "wrong PIN: 9 attempts left" in r.err
    monkeypatch.setenv("PASSKEY_PIN", "246813")
    assert (await cli.run("--store", store, "tokens")).code == EXIT_OK


async def test_the_cli_warns_about_an_offline_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = Cli(monkeypatch)
    store = tmp_path / "phone.json"
    r = await cli.run("--store", store, "--pin-stdin", "init", "--offline-pin", stdin=PIN + "\n")
    assert r.code == EXIT_OK
    assert "checked on the phone only" in r.out
    assert OFFLINE_PIN_WARNING in r.err
    assert (await cli.run("--store", store, "show")).json()["pin_kind"] == "phone-only"


# --- the network's side: configuration -----------------------------------------------


async def test_a_network_given_a_hardener_without_credentials_refuses_to_start(
    tmp_path: Path,
) -> None:
    net = TestNetwork(tmp_path / "n", hardener_address="127.0.0.1:9")
    with pytest.raises(ConfigError, match="hardener_credentials: cannot read hardener caller"):
        async with net:
            pass


def test_serve_takes_the_hardener_and_its_credentials(tmp_path: Path) -> None:
    ns = cli_parser().parse_args(
        ["--data-dir", str(tmp_path), "serve", "--hardener", "hardener.example:7600",
         "--hardener-credentials", str(tmp_path / "creds")]
    )  # fmt: skip
    cfg = cli_config(ns)
    assert cfg.hardener_address == "hardener.example:7600"
    assert cfg.hardener_credentials_dir == tmp_path / "creds"
    default = cli_config(cli_parser().parse_args(["--data-dir", str(tmp_path), "serve"]))
    assert default.hardener_address == ""
    assert default.hardener_credentials_dir == tmp_path / "hardener"


async def test_one_address_cannot_spend_the_networks_budget_on_many_tokens(
    tmp_path: Path,
) -> None:
    async with TestNetwork(
        tmp_path / "net", hardener=True, pin_attempt_rate_per_s=0.001, pin_attempt_burst=3
    ) as net:
        phone = await hardened_phone(net, tmp_path / "phone.json")  # one HardenPin
        await relay_guess(net, phone)
        await relay_guess(net, phone)
        with pytest.raises(RateLimited, match="too many PIN attempts from this address") as err:
            await relay_guess(net, phone)
        assert err.value.retry_after_ms > 0


async def test_no_pin_and_no_hardened_value_in_the_networks_or_hardeners_data(
    net: TestNetwork, tmp_path: Path
) -> None:
    path = tmp_path / "phone.json"
    await hardened_phone(net, path)
    with pytest.raises(PinInvalid):
        await unlock(net, path, WRONG[0])
    await unlock(net, path, PIN)
    store = PhoneKeyStore.load(path)
    pinned = store.pinned
    assert pinned is not None
    sealed = store.doc["sealed"]
    params = {k: sealed[k] for k in ("t", "m", "p")}
    salt = b64u_decode(sealed["salt"], field="salt")
    x = hp.slow_hash(PIN, salt, params)
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api:
        b = hp.blind(x, pinned)
        e = await api.harden_pin(
            token_id=store.enrolments()[0].token_id,
            blinded_element=b.blinded_element,
            key_version=0,
        )
    y = hp.finalize(b, e)
    k = hp.store_key(y, salt)
    assert net.hardener is not None
    net.hardener.audit_entries()  # flushes the audit log
    stacks = haystacks(net)
    for f in net.hardener.root.rglob("*"):
        if f.is_file():
            stacks[f"hardener/{f.name}"] = f.read_bytes()
    assert any(name.startswith("hardener/") for name in stacks)
    needles = [PIN.encode(), *encodings(x), *encodings(y), *encodings(k)]
    for name, hay in stacks.items():
        for needle in needles:
            assert needle not in hay, f"a secret value in {name}"


async def test_a_backup_phone_joins_a_hardened_phones_account_with_its_own_budget(
    net: TestNetwork, tmp_path: Path
) -> None:
    first = await hardened_phone(net, tmp_path / "first.json")
    unlocked_first = PhoneApp.open(tmp_path / "first.json", pin=PIN)
    backup = PhoneApp.create(tmp_path / "backup.json", pin="135792")
    _, new_account = await backup.enrol(net.addresses.passkey, net.ca_pem, backup_of=unlocked_first)
    assert not new_account
    assert backup.store.hardened
    assert backup.store.pinned is not None
    assert first.store.pinned is not None
    assert backup.store.pinned.user_id != first.store.pinned.user_id
    for guess in WRONG[:3]:
        with pytest.raises(PinInvalid):
            await unlock(net, tmp_path / "backup.json", guess)
    # The first phone's budget is its own.
    assert (await relay_guess(net, first)).attempts_left == 9


async def test_a_revoked_phone_cannot_be_guessed_at_any_more(
    net: TestNetwork, tmp_path: Path
) -> None:
    lost = await hardened_phone(net, tmp_path / "lost.json")
    stolen = tmp_path / "stolen.json"
    shutil.copy(tmp_path / "lost.json", stolen)
    backup = PhoneApp.create(tmp_path / "backup.json")
    await backup.enrol(
        net.addresses.passkey,
        net.ca_pem,
        backup_of=PhoneApp.open(tmp_path / "lost.json", pin=PIN),
    )
    await backup.revoke(token_id(lost))
    with pytest.raises(TokenRevoked):
        await unlock(net, stolen, PIN)
    with pytest.raises(TokenRevoked):
        await relay_guess(net, lost)


async def test_a_success_key_the_operator_forgot_is_enrolled_again_at_the_next_unlock(
    net: TestNetwork, tmp_path: Path
) -> None:
    """`hardener unlock --forget-key` (the recovery step for a lost success
    key) clears the count and the key; the right PIN then re-enrols the key
    (signed by the token) and its successes reset the count again."""
    path = tmp_path / "phone.json"
    phone = await hardened_phone(net, path)
    for guess in WRONG[:5]:
        with pytest.raises(PinInvalid):
            await unlock(net, path, guess)
    assert net.hardener is not None
    net.hardener.unlock("network", "token:" + token_id(phone).hex(), forget_key=True)
    await unlock(net, path, PIN)
    for guess in WRONG[5:14]:
        with pytest.raises(PinInvalid):
            await unlock(net, path, guess)
    await unlock(net, path, PIN)  # the 10th: reported, so the count is back
    assert (await relay_guess(net, phone)).attempts_left == 9
