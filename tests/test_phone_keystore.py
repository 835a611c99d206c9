"""The phone key store (tokens.phone): secrets at rest, the PIN and its retry
counter, damaged files, enrolments, and how the file is written."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authnet.errors import KeystoreError, NotEnrolled, PinInvalid, PinLocked, PinRequired
from authnet.protocol.encoding import b64u_decode, b64u_encode
from authnet.protocol.signatures import Algorithm
from tokens.passkey import PassKey, TokenKind
from tokens.phone import PIN_ATTEMPTS, Enrolment, PhoneKeyStore, PhonePassKey

PIN = "482915"
WRONG = "000000"
SPID = bytes(range(16))
OTHER_SPID = bytes(range(16, 32))


def _verify(store: PhoneKeyStore, signature: bytes, message: bytes) -> None:
    key = serialization.load_der_public_key(store.public_key)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, message, ec.ECDSA(hashes.SHA256()))


def _secret_values(token: PhonePassKey) -> dict[str, bytes]:
    """The raw secrets an unlocked token holds (test-only peek)."""
    sec = token._secrets
    assert sec is not None
    der = sec.auth_key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    scalar = sec.auth_key.private_numbers().private_value.to_bytes(32, "big")
    return {"kc_secret": sec.kc_secret, "pkcs8": der, "scalar": scalar}


def _encodings(value: bytes) -> list[bytes]:
    return [
        value,
        b64u_encode(value).encode(),
        base64.b64encode(value),
        base64.b64encode(value).rstrip(b"="),
        value.hex().encode(),
        value.hex().upper().encode(),
    ]


def _rewrite(path: Path, change: Any) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _flip_b64u(text: str) -> str:
    raw = bytearray(b64u_decode(text, field="test"))
    raw[len(raw) // 2] ^= 0x01
    return b64u_encode(bytes(raw))


@pytest.fixture(scope="module")
def pin_store_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One PIN-protected store, made once (Argon2id is slow on purpose)."""
    path = tmp_path_factory.mktemp("pinstore") / "phone.json"
    PhoneKeyStore.create(path, label="pin phone", pin=PIN)
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


@pytest.fixture
def pin_store(tmp_path: Path, pin_store_doc: dict[str, Any]) -> Path:
    path = tmp_path / "phone.json"
    path.write_text(json.dumps(pin_store_doc))
    path.chmod(0o600)
    return path


# --- without a PIN --------------------------------------------------------------


def test_store_without_pin_is_usable_at_once_and_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "phone.json"
    store = PhoneKeyStore.create(path, label="Alice's phone")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not store.has_pin
    assert store.pin_attempts_left is None

    token = store.unlock()
    assert isinstance(token, PassKey)
    assert not token.locked
    assert not token.has_pin
    assert not token.user_verified
    d = token.description
    assert (d.kind, d.algorithm, d.label) == (TokenKind.PHONE, Algorithm.ES256, "Alice's phone")
    assert d.public_key == store.public_key
    _verify(store, token.sign(b"challenge"), b"challenge")

    kc = token.derive_kc(SPID)
    assert len(kc) == 32
    assert token.derive_kc(OTHER_SPID) != kc
    again = PhoneKeyStore.load(path).unlock()
    assert again.derive_kc(SPID) == kc
    _verify(store, again.sign(b"other"), b"other")
    with pytest.raises(PinInvalid, match="no PIN"):
        again.verify_pin("1234")


def test_create_refuses_to_overwrite_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    PhoneKeyStore.create(path, label="first")
    before = path.read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        PhoneKeyStore.create(path, label="second")
    with pytest.raises(KeystoreError, match="already exists"):
        PhoneKeyStore.create(path, label="second", pin=PIN)
    assert path.read_bytes() == before

    other = tmp_path / "other.json"
    other.write_text("not mine\n")
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        PhoneKeyStore.create(other, label="x")
    assert other.read_text() == "not mine\n"


@pytest.mark.parametrize("pin", ["", "1", "123"])
def test_short_pin_is_rejected_and_nothing_written(tmp_path: Path, pin: str) -> None:
    path = tmp_path / "phone.json"
    with pytest.raises(KeystoreError, match="at least 4 characters"):
        PhoneKeyStore.create(path, label="x", pin=pin)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


# --- with a PIN -----------------------------------------------------------------


def test_pin_store_holds_no_secret_in_any_encoding(tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    store = PhoneKeyStore.create(path, label="pin phone", pin=PIN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    raw = path.read_bytes()
    token = store.unlock(PIN)
    assert token.user_verified
    assert not token.locked
    values = _secret_values(token)
    values["kc"] = token.derive_kc(SPID)
    for name, value in values.items():
        for form in _encodings(value):
            assert form not in raw, f"{name} appears in the key store file"
    assert PIN.encode() not in raw
    doc = json.loads(raw)
    assert doc["protection"] == "pin"
    assert "secrets" not in doc
    assert doc["pin_attempts_left"] == PIN_ATTEMPTS
    # The public part stays readable without the PIN.
    assert doc["label"] == "pin phone"
    assert b64u_decode(doc["public_key"], field="public_key") == store.public_key


def test_right_pin_unlocks_and_kc_is_stable_across_reloads(pin_store: Path) -> None:
    first = PhoneKeyStore.load(pin_store).unlock(PIN)
    kc = first.derive_kc(SPID)
    message = b"sign me"
    _verify(first.store, first.sign(message), message)

    later = PhoneKeyStore.load(pin_store).unlock(None)
    assert later.locked
    later.verify_pin(PIN)
    assert later.derive_kc(SPID) == kc
    assert _secret_values(later) == _secret_values(first)
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == PIN_ATTEMPTS


def test_wrong_pin_counts_down_persistently_and_right_pin_resets(pin_store: Path) -> None:
    with pytest.raises(PinInvalid) as first:
        PhoneKeyStore.load(pin_store).unlock(WRONG)
    assert first.value.detail["retries_left"] == PIN_ATTEMPTS - 1
    assert "attempts left" in first.value.message
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == PIN_ATTEMPTS - 1

    # A fresh process (reload) continues the count rather than starting over.
    token = PhoneKeyStore.load(pin_store).unlock(None)
    with pytest.raises(PinInvalid) as second:
        token.verify_pin(WRONG)
    assert second.value.detail["retries_left"] == PIN_ATTEMPTS - 2
    assert token.locked
    assert not token.user_verified
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == PIN_ATTEMPTS - 2

    PhoneKeyStore.load(pin_store).unlock(PIN)
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == PIN_ATTEMPTS
    with pytest.raises(PinInvalid) as third:
        PhoneKeyStore.load(pin_store).unlock(WRONG)
    assert third.value.detail["retries_left"] == PIN_ATTEMPTS - 1


def test_ten_wrong_pins_lock_the_store_for_good(pin_store: Path) -> None:
    for n in range(1, PIN_ATTEMPTS):
        with pytest.raises(PinInvalid) as e:
            PhoneKeyStore.load(pin_store).unlock(f"{n:06d}")
        assert e.value.detail["retries_left"] == PIN_ATTEMPTS - n
    with pytest.raises(PinLocked) as last:
        PhoneKeyStore.load(pin_store).unlock(WRONG)
    assert last.value.detail["retries_left"] == 0
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == 0

    with pytest.raises(PinLocked, match="re-create"):
        PhoneKeyStore.load(pin_store).unlock(PIN)
    token = PhoneKeyStore.load(pin_store).unlock(None)
    with pytest.raises(PinLocked):
        token.verify_pin(PIN)
    assert token.locked
    with pytest.raises(PinRequired):
        token.sign(b"x")
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == 0


def test_locked_token_refuses_to_sign_or_derive(pin_store: Path) -> None:
    store = PhoneKeyStore.load(pin_store)
    token = store.unlock(None)
    assert token.has_pin
    assert token.locked
    assert not token.user_verified
    assert "unlocked=False" in repr(token)
    assert token.description.public_key == store.public_key
    with pytest.raises(PinRequired, match="PIN"):
        token.sign(b"message")
    with pytest.raises(PinRequired):
        token.derive_kc(SPID)

    token.verify_pin(PIN)
    assert not token.locked
    assert token.user_verified
    kc = token.derive_kc(SPID)
    token.close()
    assert token.locked
    assert not token.user_verified
    with pytest.raises(PinRequired):
        token.derive_kc(SPID)
    assert len(kc) == 32


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("t", lambda s: s.update(t=s["t"] + 1)),
        ("m", lambda s: s.update(m=s["m"] - 8)),
        ("p", lambda s: s.update(p=s["p"] + 1)),
        ("salt", lambda s: s.update(salt=_flip_b64u(s["salt"]))),
        ("nonce", lambda s: s.update(nonce=_flip_b64u(s["nonce"]))),
        ("ciphertext", lambda s: s.update(ciphertext=_flip_b64u(s["ciphertext"]))),
        ("ciphertext tag", lambda s: s.update(ciphertext=s["ciphertext"][:-4] + "AAAA")),
    ],
)
def test_tampered_sealed_fields_make_the_right_pin_fail(
    pin_store: Path, field: str, change: Any
) -> None:
    _rewrite(pin_store, lambda doc: change(doc["sealed"]))
    with pytest.raises(PinInvalid):
        PhoneKeyStore.load(pin_store).unlock(PIN)
    assert PhoneKeyStore.load(pin_store).pin_attempts_left == PIN_ATTEMPTS - 1


def test_swapped_public_key_makes_the_right_pin_fail(pin_store: Path, tmp_path: Path) -> None:
    # The public key is bound into the AEAD's associated data.
    other = PhoneKeyStore.create(tmp_path / "other.json", label="other")
    _rewrite(pin_store, lambda doc: doc.update(public_key=b64u_encode(other.public_key)))
    with pytest.raises(PinInvalid):
        PhoneKeyStore.load(pin_store).unlock(PIN)


# --- damaged files --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "cannot read key store"),
        (b"{not json", "cannot read key store"),
        (b"\xff\xfe\x00garbage", "cannot read key store"),
        (b"[1, 2, 3]", "is not a phone key store of version 1 or 2"),
        (b'{"format": "something-else", "version": 1}', "is not a phone key store of version"),
        (b'{"format": "authnet-phone-keystore", "version": 3}', "of version 1 or 2"),
        (b'{"format": "authnet-phone-keystore", "version": 2}', "is damaged"),
    ],
)
def test_unreadable_or_foreign_file_is_a_keystore_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "phone.json"
    path.write_bytes(content)
    with pytest.raises(KeystoreError, match=message) as e:
        PhoneKeyStore.load(path)
    assert str(path) in e.value.message


def test_missing_file_and_directory_are_keystore_errors(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="passkey-phone init"):
        PhoneKeyStore.load(tmp_path / "nothing.json")
    with pytest.raises(KeystoreError, match="cannot read key store"):
        PhoneKeyStore.load(tmp_path)


def _drop(key: str) -> Any:
    return lambda doc: doc.pop(key)


def _sealed(**values: Any) -> Any:
    return lambda doc: doc["sealed"].update(values)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_drop("label"), id="no-label"),
        pytest.param(_drop("public_key"), id="no-public-key"),
        pytest.param(_drop("sealed"), id="no-sealed"),
        pytest.param(_drop("pin_attempts_left"), id="no-counter"),
        pytest.param(_drop("protection"), id="no-protection"),
        pytest.param(lambda doc: doc.update(public_key="not base64!"), id="public-key-text"),
        pytest.param(lambda doc: doc.update(public_key="AAAA"), id="public-key-not-spki"),
        pytest.param(lambda doc: doc.update(protection="none"), id="protection-none"),
        pytest.param(lambda doc: doc.update(pin_attempts_left="ten"), id="counter-text"),
        pytest.param(lambda doc: doc.update(pin_attempts_left=-1), id="counter-negative"),
        pytest.param(lambda doc: doc.update(pin_attempts_left=11), id="counter-too-big"),
        pytest.param(lambda doc: doc.update(enrolments={"a": 1}), id="enrolments-dict"),
        pytest.param(lambda doc: doc.update(enrolments=[{"network": "x:1"}]), id="enrolment"),
        pytest.param(_sealed(kdf="pbkdf2"), id="kdf-name"),
        pytest.param(_sealed(t=0), id="t-zero"),
        pytest.param(_sealed(m="lots"), id="m-text"),
        pytest.param(_sealed(m=1 << 40), id="m-huge"),
        pytest.param(_sealed(p=0), id="p-zero"),
        pytest.param(_sealed(p=True), id="p-bool"),
        pytest.param(_sealed(salt="!!"), id="salt-text"),
        pytest.param(_sealed(nonce=b64u_encode(b"short")), id="nonce-short"),
        pytest.param(lambda doc: doc["sealed"].pop("ciphertext"), id="no-ciphertext"),
    ],
)
def test_damaged_pin_store_is_a_keystore_error(pin_store: Path, change: Any) -> None:
    _rewrite(pin_store, change)
    damaged = pin_store.read_bytes()
    with pytest.raises(KeystoreError, match="damaged") as e:
        PhoneKeyStore.load(pin_store).unlock(PIN)
    assert str(pin_store) in e.value.message
    # A damaged file is not a wrong PIN: nothing is written back.
    assert pin_store.read_bytes() == damaged


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(_drop("secrets"), id="no-secrets"),
        pytest.param(
            lambda doc: doc["secrets"].update(kc_secret=b64u_encode(b"short")), id="kc-short"
        ),
        pytest.param(lambda doc: doc["secrets"].update(auth_key="AAAA"), id="auth-key"),
        pytest.param(lambda doc: doc.update(protection="pin"), id="protection-pin"),
        pytest.param(lambda doc: doc.update(protection="rot13"), id="protection-unknown"),
    ],
)
def test_damaged_plain_store_is_a_keystore_error(tmp_path: Path, change: Any) -> None:
    path = tmp_path / "phone.json"
    PhoneKeyStore.create(path, label="plain")
    _rewrite(path, change)
    with pytest.raises(KeystoreError, match="damaged"):
        PhoneKeyStore.load(path).unlock()


def test_plain_store_whose_key_does_not_match_its_public_key_is_refused(tmp_path: Path) -> None:
    a = PhoneKeyStore.create(tmp_path / "a.json", label="a")
    b_path = tmp_path / "b.json"
    PhoneKeyStore.create(b_path, label="b")
    _rewrite(b_path, lambda doc: doc.update(public_key=b64u_encode(a.public_key)))
    with pytest.raises(KeystoreError, match="damaged"):
        PhoneKeyStore.load(b_path)


# --- enrolments -----------------------------------------------------------------


def _enrolment(network: str, n: int) -> Enrolment:
    return Enrolment(
        network=network,
        network_name=f"net {n}",
        ca_pem="-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n",
        token_id=bytes([n]) * 16,
        enrolled_ms=1_700_000_000_000 + n,
    )


def test_enrolments_add_replace_remove_persist(tmp_path: Path) -> None:
    path = tmp_path / "phone.json"
    store = PhoneKeyStore.create(path, label="x")
    assert store.enrolments() == []
    with pytest.raises(NotEnrolled, match=r"enrolled with: none"):
        store.enrolment_for("a.example:7444")

    a, b = _enrolment("a.example:7444", 1), _enrolment("b.example:7444", 2)
    store.add_enrolment(a)
    store.add_enrolment(b)
    assert PhoneKeyStore.load(path).enrolments() == [a, b]
    assert PhoneKeyStore.load(path).enrolment_for("b.example:7444") == b

    a2 = _enrolment("a.example:7444", 3)
    store.add_enrolment(a2)
    reloaded = PhoneKeyStore.load(path)
    assert sorted(reloaded.enrolments(), key=lambda e: e.network) == [a2, b]
    assert reloaded.enrolment_for("a.example:7444").token_id == bytes([3]) * 16

    reloaded.remove_enrolment("a.example:7444")
    final = PhoneKeyStore.load(path)
    assert final.enrolments() == [b]
    with pytest.raises(NotEnrolled) as e:
        final.enrolment_for("a.example:7444")
    assert "a.example:7444" in e.value.message
    assert "b.example:7444" in e.value.message
    assert Enrolment.from_json(b.to_json()) == b


def test_enrolments_are_readable_without_the_pin(pin_store: Path) -> None:
    store = PhoneKeyStore.load(pin_store)
    store.add_enrolment(_enrolment("a.example:7444", 1))
    again = PhoneKeyStore.load(pin_store)
    assert again.enrolment_for("a.example:7444").network_name == "net 1"
    assert again.unlock(None).locked


# --- writing the file -----------------------------------------------------------


def test_saves_leave_no_temporary_files_and_keep_mode(pin_store: Path) -> None:
    store = PhoneKeyStore.load(pin_store)
    store.add_enrolment(_enrolment("a.example:7444", 1))
    with pytest.raises(PinInvalid):
        store.unlock(WRONG)
    store.unlock(PIN)
    store.remove_enrolment("a.example:7444")
    assert [p.name for p in pin_store.parent.iterdir()] == [pin_store.name]
    assert stat.S_IMODE(pin_store.stat().st_mode) == 0o600


def test_failed_save_keeps_the_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "phone.json"
    store = PhoneKeyStore.create(path, label="x")
    before = path.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.add_enrolment(_enrolment("a.example:7444", 1))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["phone.json"]
    assert PhoneKeyStore.load(path).enrolments() == []
