"""tests/vectors/vault-devices.json: the devices' client-side format
(docs/devices.md 1-4 and 7) as test vectors, made by the Python reference
vault_api/crypto/devices.py from fixed inputs. The page's JavaScript is
tested against the same file. Regenerate after a deliberate format change:

    .venv/bin/python -m tests.vault.test_device_vectors > tests/vectors/vault-devices.json

Bytes are lowercase hex. HPKE (sealed_kek) is sealed with a chosen ephemeral
key (tests/vault/hpke_reference.py) so another implementation can reproduce
it; the device's private key is given so that it can be opened as well.
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol.encoding import transcript
from tests.vault import hpke_reference
from tests.vectorfiles import load
from vault_api import crypto as vc
from vault_api.crypto import aead, devices, labels
from vault_api.crypto.content import pad
from vault_api.crypto.errors import VaultCryptoError

SOURCE = (
    "authnet vault devices format v1 (docs/devices.md 1-4, 7), made by the Python reference "
    "vault_api/crypto/devices.py from the fixed inputs listed; "
    "tests/vault/test_device_vectors.py regenerates it"
)


def fixed(name: str, n: int = 32) -> bytes:
    out, counter = b"", 0
    while len(out) < n:
        out += hashlib.sha256(f"vault-devices vectors {name} {counter}".encode()).digest()
        counter += 1
    return out[:n]


def h(b: bytes) -> str:
    return b.hex()


def _device(n: int) -> devices.DeviceKeys:
    return devices.device_from_bytes(
        fixed(f"device id {n}", 16), fixed(f"device key {n}"), fixed(f"signing key {n}")
    )


def _devices() -> list[dict[str, Any]]:
    out = []
    uid = fixed("user id", 16)
    for n in (1, 2):
        d = _device(n)
        nonce = fixed(f"device nonce {n}")
        reg = devices.registration_message(
            user_id=uid,
            device_id=d.device_id,
            public_key=d.public_key,
            signing_key=d.signing_public_key,
        )
        login = devices.login_message(user_id=uid, device_id=d.device_id, nonce=nonce)
        out.append(
            {
                "user_id": h(uid),
                "device_id": h(d.device_id),
                "device_private_key": h(fixed(f"device key {n}")),
                "signing_private_key": h(fixed(f"signing key {n}")),
                "public_key": h(d.public_key),
                "signing_key": h(d.signing_public_key),
                "fingerprint": devices.fingerprint(
                    user_id=uid,
                    device_id=d.device_id,
                    public_key=d.public_key,
                    signing_key=d.signing_public_key,
                ),
                "registration_message": h(reg),
                "registration_proof": h(devices.registration_proof(d, user_id=uid)),
                "device_nonce": h(nonce),
                "login_message": h(login),
                "login_proof": h(devices.login_proof(d, user_id=uid, nonce=nonce)),
            }
        )
    return out


def _bypass() -> list[dict[str, Any]]:
    out = []
    uid = fixed("user id", 16)
    sk = x25519.X25519PrivateKey.from_private_bytes(fixed("user private key"))
    pk = vc.public_key_bytes(sk)
    for n, version in ((1, 1), (2, 4)):
        d = _device(n)
        t, dkek = fixed(f"token factor {n}"), fixed(f"dkek {n}")
        kek = devices.bypass_kek(t, dkek)
        aad = devices.device_wrap_aad(
            user_id=uid, device_id=d.device_id, keypair_version=version, public_key=pk
        )
        wrap_nonce = fixed(f"wrap nonce {n}", 12)
        wrap = aead.seal_with_nonce(kek, wrap_nonce, vc.private_key_pkcs8(sk), aad)
        info = devices.device_kek_info(user_id=uid, device_id=d.device_id, public_key=d.public_key)
        ikm_e = fixed(f"ephemeral ikm {n}")
        sk_e = hpke_reference.derive_key_pair(ikm_e)
        enc, ct = hpke_reference.seal_base(d.public_key, info, b"", dkek, sk_e)
        out.append(
            {
                "user_id": h(uid),
                "device_id": h(d.device_id),
                "device_private_key": h(fixed(f"device key {n}")),
                "device_public_key": h(d.public_key),
                "token_factor": h(t),
                "dkek": h(dkek),
                "bypass_kek": h(kek),
                "keypair_version": version,
                "private_key": h(fixed("user private key")),
                "private_key_pkcs8": h(vc.private_key_pkcs8(sk)),
                "public_key": h(pk),
                "device_wrap_aad": h(aad),
                "device_wrap_nonce": h(wrap_nonce),
                "device_wrap": h(wrap),
                "kek_info": h(info),
                "ikmE": h(ikm_e),
                "skE": h(sk_e.private_bytes_raw()),
                "sealed_kek": h(enc + ct),
            }
        )
    return out


def _links() -> list[dict[str, Any]]:
    out = []
    for n, text in ((1, b'{"title":"wifi","password":"correct horse"}'), (2, b"")):
        key, link_id, nonce = (
            fixed(f"link key {n}"),
            fixed(f"link id {n}", 16),
            fixed(f"ln {n}", 12),
        )
        aad = devices.link_aad(link_id)
        blob = devices.LINK_MAGIC + link_id + aead.seal_with_nonce(key, nonce, pad(text), aad)
        out.append(
            {
                "key": h(key),
                "link_id": h(link_id),
                "nonce": h(nonce),
                "plaintext": h(text),
                "padded": h(pad(text)),
                "aad": h(aad),
                "blob": h(blob),
            }
        )
    return out


def _prf() -> list[dict[str, Any]]:
    """Devices kept in a platform authenticator: a fixed PRF output -> their keys."""
    out = []
    for n in (1, 2):
        uid, device_id, prf = (
            fixed(f"prf user id {n}", 16),
            fixed(f"prf device id {n}", 16),
            fixed(f"prf output {n}"),
        )
        d = devices.device_from_prf(device_id, prf)
        out.append(
            {
                "user_id": h(uid),
                "device_id": h(device_id),
                "prf_salt": h(devices.prf_salt(uid, device_id)),
                "prf_output": h(prf),
                "device_private_key": h(d.device_key.private_bytes_raw()),
                "signing_private_key": h(d.signing_key.private_bytes_raw()),
                "public_key": h(d.public_key),
                "signing_key": h(d.signing_public_key),
            }
        )
    return out


def _negative() -> list[dict[str, Any]]:
    b = _bypass()[0]
    wrap = bytearray(bytes.fromhex(b["device_wrap"]))
    wrap[-1] ^= 1
    sealed = bytearray(bytes.fromhex(b["sealed_kek"]))
    sealed[40] ^= 1
    link = _links()[0]
    blob = bytearray(bytes.fromhex(link["blob"]))
    blob[-1] ^= 1
    d = _devices()[0]
    proof = bytearray(bytes.fromhex(d["login_proof"]))
    proof[0] ^= 1
    return [
        {"case": "device_wrap tampered", "kind": "device_wrap", "vector": 0,
         "device_wrap": h(bytes(wrap)), "error": "device_wrap_invalid"},
        {"case": "device_wrap of another key pair version", "kind": "device_wrap", "vector": 0,
         "keypair_version": 2, "error": "device_wrap_invalid"},
        {"case": "sealed_kek tampered", "kind": "sealed_kek", "vector": 0,
         "sealed_kek": h(bytes(sealed)), "error": "device_kek_invalid"},
        {"case": "sealed_kek opened by device 2", "kind": "sealed_kek", "vector": 0,
         "device": 1, "error": "device_kek_invalid"},
        {"case": "link blob tampered", "kind": "link", "vector": 0,
         "blob": h(bytes(blob)), "error": "link_invalid"},
        {"case": "login proof tampered", "kind": "login_proof", "vector": 0,
         "login_proof": h(bytes(proof)), "error": "device_proof_invalid"},
    ]  # fmt: skip


def build() -> dict[str, Any]:
    return {
        "source": SOURCE,
        "encoding": "bytes are lowercase hex",
        "constants": {
            "dkek_bytes": devices.DKEK_BYTES,
            "device_wrap_bytes": devices.DEVICE_WRAP_BYTES,
            "sealed_kek_bytes": devices.SEALED_KEK_BYTES,
            "signature_bytes": devices.SIGNATURE_BYTES,
            "fingerprint_bytes": devices.FINGERPRINT_BYTES,
            "link_magic": devices.LINK_MAGIC.decode(),
            "link_key_bytes": devices.LINK_KEY_BYTES,
            "hpke_suite": {"kem_id": 32, "kdf_id": 1, "aead_id": 1},
        },
        "labels": {
            name.lower(): getattr(labels, name).decode()
            for name in (
                "DEVICE_BYPASS_KEK",
                "DEVICE_WRAP",
                "DEVICE_KEK",
                "DEVICE_REGISTRATION",
                "DEVICE_LOGIN",
                "DEVICE_FINGERPRINT",
                "ONE_TIME_LINK",
                "DEVICE_PRF_SALT",
                "DEVICE_PRF_X25519",
                "DEVICE_PRF_ED25519",
            )
        },
        "device": _devices(),
        "bypass": _bypass(),
        "link": _links(),
        "prf": _prf(),
        "negative": _negative(),
    }


# --- the tests ----------------------------------------------------------------------

# Run as a module (regenerating the file), the file is not read.
V: dict[str, Any] = {} if __name__ == "__main__" else load("vault-devices.json")


def bb(value: str) -> bytes:
    return bytes.fromhex(value)


def test_the_file_is_what_the_generator_makes() -> None:
    assert build() == V


def test_every_device_label_is_in_the_file() -> None:
    assert set(V["labels"].values()) == {label.decode() for label in labels.DEVICES}


@pytest.mark.parametrize("v", V.get("device", []), ids=lambda v: v["device_id"][:8])
def test_fingerprint_messages_and_proofs(v: dict[str, Any]) -> None:
    d = devices.device_from_bytes(
        bb(v["device_id"]), bb(v["device_private_key"]), bb(v["signing_private_key"])
    )
    assert d.public_key.hex() == v["public_key"]
    assert d.signing_public_key.hex() == v["signing_key"]
    fp = devices.fingerprint(
        user_id=bb(v["user_id"]),
        device_id=d.device_id,
        public_key=d.public_key,
        signing_key=d.signing_public_key,
    )
    assert fp == v["fingerprint"]
    assert len(fp) == 24
    spk = bb(v["signing_key"])
    devices.verify_proof(
        spk, bb(v["registration_proof"]), bb(v["registration_message"]), device_id=d.device_id
    )
    devices.verify_proof(spk, bb(v["login_proof"]), bb(v["login_message"]), device_id=d.device_id)
    ed25519.Ed25519PublicKey.from_public_bytes(spk).verify(
        bb(v["login_proof"]), bb(v["login_message"])
    )


@pytest.mark.parametrize("v", V.get("bypass", []), ids=lambda v: str(v["keypair_version"]))
def test_bypass_wraps_open(v: dict[str, Any]) -> None:
    assert devices.bypass_kek(bb(v["token_factor"]), bb(v["dkek"])).hex() == v["bypass_kek"]
    assert len(bb(v["device_wrap"])) == devices.DEVICE_WRAP_BYTES
    assert len(bb(v["sealed_kek"])) == devices.SEALED_KEK_BYTES
    d = devices.device_from_bytes(bb(v["device_id"]), bb(v["device_private_key"]), bytes(32))
    dkek = devices.open_dkek(bb(v["sealed_kek"]), d, user_id=bb(v["user_id"]))
    assert dkek.hex() == v["dkek"]
    sk = devices.open_device_wrap(
        bb(v["token_factor"]),
        dkek,
        bb(v["device_wrap"]),
        user_id=bb(v["user_id"]),
        device_id=d.device_id,
        keypair_version=v["keypair_version"],
        public_key=bb(v["public_key"]),
    )
    assert sk.private_bytes_raw().hex() == v["private_key"]
    # The reference's own sealer (random ephemeral key) opens the same way.
    again = devices.seal_dkek(
        dkek, user_id=bb(v["user_id"]), device_id=d.device_id, public_key=d.public_key
    )
    assert devices.open_dkek(again, d, user_id=bb(v["user_id"])) == dkek


@pytest.mark.parametrize("v", V.get("link", []), ids=lambda v: v["link_id"][:8])
def test_links_open(v: dict[str, Any]) -> None:
    assert devices.open_link(bb(v["blob"]), bb(v["key"])).hex() == v["padded"]


@pytest.mark.parametrize("v", V.get("prf", []), ids=lambda v: v["device_id"][:8])
def test_prf_devices(v: dict[str, Any]) -> None:
    uid, device_id = bb(v["user_id"]), bb(v["device_id"])
    salt = devices.prf_salt(uid, device_id)
    assert salt.hex() == v["prf_salt"]
    assert salt == hashlib.sha256(transcript(labels.DEVICE_PRF_SALT, uid, device_id)).digest()
    d = devices.device_from_prf(device_id, bb(v["prf_output"]))
    assert d.public_key.hex() == v["public_key"]
    assert d.signing_public_key.hex() == v["signing_key"]
    assert d.device_key.private_bytes_raw().hex() == v["device_private_key"]
    # The PRF output is the only secret: HKDF with an empty salt and the labels as info.
    x = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=labels.DEVICE_PRF_X25519)
    assert x.derive(bb(v["prf_output"])).hex() == v["device_private_key"]
    e = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=labels.DEVICE_PRF_ED25519)
    assert e.derive(bb(v["prf_output"])).hex() == v["signing_private_key"]
    # A proof made with the derived keys verifies with the derived public key.
    msg = devices.login_message(user_id=uid, device_id=device_id, nonce=bytes(32))
    devices.verify_proof(
        d.signing_public_key,
        devices.login_proof(d, user_id=uid, nonce=bytes(32)),
        msg,
        device_id=device_id,
    )


def test_a_prf_output_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(VaultCryptoError) as caught:
        devices.device_from_prf(bytes(16), bytes(31))
    assert caught.value.code == "malformed_ciphertext"
    assert "32 bytes, got 31" in str(caught.value)


def _refuse(n: dict[str, Any]) -> None:
    b, lk, dv = V["bypass"][n["vector"]], V["link"][n["vector"]], V["device"][n["vector"]]
    if n["kind"] == "device_wrap":
        devices.open_device_wrap(
            bb(b["token_factor"]),
            bb(b["dkek"]),
            bb(n.get("device_wrap", b["device_wrap"])),
            user_id=bb(b["user_id"]),
            device_id=bb(b["device_id"]),
            keypair_version=n.get("keypair_version", b["keypair_version"]),
            public_key=bb(b["public_key"]),
        )
    elif n["kind"] == "sealed_kek":
        other = V["bypass"][n.get("device", n["vector"])]
        d = devices.device_from_bytes(
            bb(b["device_id"]), bb(other["device_private_key"]), bytes(32)
        )
        devices.open_dkek(bb(n.get("sealed_kek", b["sealed_kek"])), d, user_id=bb(b["user_id"]))
    elif n["kind"] == "link":
        devices.open_link(bb(n["blob"]), bb(lk["key"]))
    else:
        devices.verify_proof(
            bb(dv["signing_key"]),
            bb(n["login_proof"]),
            bb(dv["login_message"]),
            device_id=bb(dv["device_id"]),
        )


@pytest.mark.parametrize("n", V.get("negative", []), ids=lambda n: n["case"])
def test_negative_cases_are_refused_by_name(n: dict[str, Any]) -> None:
    with pytest.raises(VaultCryptoError) as caught:
        _refuse(n)
    assert caught.value.code == n["error"]


def main() -> None:
    json.dump(build(), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
