"""Registered devices, the passphrase bypass and device approval
(docs/devices.md 2-5, 9), against the real server with a real hardener; the
client side is the Python reference crypto (vault_api/crypto/devices.py)."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from authnet.testing import TestNetwork
from hardener.testing import TestHardener
from keyproxy import grants as kg
from simulators.phone.app import PhoneApp
from tests.vault.conftest import VaultServer, serve_hardened_vault
from tests.vault.driver import VaultClient, dec, enc
from tests.vault.hostproof import haystacks, scan
from vault_api import grants
from vault_api.client import factors
from vault_api.crypto import devices as dc
from vault_api.db import make_engine
from vault_api.schema import devices as devices_table

PASSPHRASE = "my grandma had a strange green bbq"
KEYPROXY = "http://127.0.0.1:7490"
# Written by the page's work; until then /once is a clean 404.
ONCE_PAGE = Path(__file__).resolve().parents[2] / "vault_api" / "static" / "once.html"


# --- helpers (test_orgs uses them too) ------------------------------------------------


def rows(vault: VaultServer, table: sa.Table) -> list[sa.Row[Any]]:
    engine = make_engine(vault.db_url)
    try:
        with engine.connect() as c:
            return list(c.execute(sa.select(table)).all())
    finally:
        engine.dispose()


def registration(c: VaultClient, device: dc.DeviceKeys, name: str = "Firefox on Linux") -> Any:
    assert c.user_id is not None
    return {
        "device_id": enc(device.device_id),
        "name": name,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
        "public_key": enc(device.public_key),
        "signing_key": enc(device.signing_public_key),
        "proof": enc(dc.registration_proof(device, user_id=c.user_id)),
    }


def token_factor(c: VaultClient) -> bytes:
    if c.token_factor is not None:
        return c.token_factor
    assert c.key_id is not None
    assert c.slot is not None
    return factors.token_factor(c.kc[c.key_id], user=c.user(), slot=c.slot)


def bypass_wraps(c: VaultClient, device: dc.DeviceKeys) -> tuple[bytes, bytes, bytes]:
    """(DKEK, device_wrap, sealed_kek) as the page makes them (docs/devices.md 3)."""
    assert c.user_id is not None
    assert c.private_key is not None
    dkek = dc.new_dkek()
    wrap = dc.make_device_wrap(
        token_factor(c),
        dkek,
        c.private_key,
        user_id=c.user_id,
        device_id=device.device_id,
        keypair_version=c.keypair_version,
    )
    sealed = dc.seal_dkek(
        dkek, user_id=c.user_id, device_id=device.device_id, public_key=device.public_key
    )
    return dkek, wrap, sealed


async def with_passphrase(vault: VaultServer, phone: PhoneApp, handle: str) -> VaultClient:
    """A registered account with a vault passphrase; this session is unlocked with it."""
    c = vault.client()
    await c.login(phone)
    await c.register(handle)
    await c.set_passphrase(PASSPHRASE)
    return c


async def unlocked_session(vault: VaultServer, phone: PhoneApp) -> VaultClient:
    c = vault.client()
    await c.login(phone)
    await c.unlock_passphrase(PASSPHRASE)
    return c


async def register_device(c: VaultClient, name: str = "Firefox on Linux") -> dc.DeviceKeys:
    device = dc.new_device()
    out = await c.json("POST", "/api/me/devices", json=registration(c, device, name), expect=201)
    assert out["current"] is True
    return device


async def enable_bypass(c: VaultClient, device: dc.DeviceKeys) -> dict[str, Any]:
    _, wrap, sealed = bypass_wraps(c, device)
    return dict(
        await c.json(
            "PUT",
            f"/api/me/devices/{enc(device.device_id)}/bypass",
            json={
                "keypair_version": c.keypair_version,
                "device_wrap": enc(wrap),
                "sealed_kek": enc(sealed),
            },
        )
    )


async def bypass_login(
    c: VaultClient, device: dc.DeviceKeys, *, expect: int = 200
) -> dict[str, Any]:
    """POST /open with the proof over this session's nonce; on success open the
    wraps with T from the token login, as the page does."""
    s = await c.json("GET", "/api/session")
    assert c.user_id is not None
    nonce = dec(s["device_nonce"])
    proof = dc.login_proof(device, user_id=c.user_id, nonce=nonce)
    r = await c.call(
        "POST",
        f"/api/me/devices/{enc(device.device_id)}/open",
        json={"proof": enc(proof)},
        expect=expect,
    )
    body = dict(r.json())
    if expect == 200:
        dkek = dc.open_dkek(dec(body["sealed_kek"]), device, user_id=c.user_id)
        assert c.public_key is not None
        c.private_key = dc.open_device_wrap(
            token_factor(c),
            dkek,
            dec(body["device_wrap"]),
            user_id=c.user_id,
            device_id=device.device_id,
            keypair_version=body["keypair_version"],
            public_key=c.public_key,
        )
    return body


def error(r: Any) -> str:
    return str(r.json()["error"])


# --- registration ----------------------------------------------------------------------


async def test_registration_needs_a_passphrase_unlocked_session(
    hvault: VaultServer, alice_phone: PhoneApp
) -> None:
    async with hvault.client() as c:
        await c.login(alice_phone)
        await c.register("alice")
        device = dc.new_device()
        r = await c.call("POST", "/api/me/devices", json=registration(c, device), expect=409)
        assert error(r) == "passphrase_unset"
        await c.set_passphrase(PASSPHRASE)

    async with hvault.client() as fresh:
        await fresh.login(alice_phone)
        s = await fresh.json("GET", "/api/session")
        assert s["passphrase_unlocked"] is False
        assert s["device_id"] is None
        assert len(dec(s["device_nonce"])) == 32
        assert s["policy"]["allow_device_registration"] is True
        assert s["policy"]["organisation"] is None
        r = await fresh.call(
            "POST", "/api/me/devices", json=registration(fresh, device), expect=403
        )
        assert error(r) == "unlock_required"
        await fresh.unlock_passphrase(PASSPHRASE)
        assert (await fresh.json("GET", "/api/session"))["passphrase_unlocked"] is True
        # A proof by another key, or over other fields, is refused.
        bad = registration(fresh, device)
        bad["name"] = "x"
        bad["signing_key"] = enc(dc.new_device().signing_public_key)
        r = await fresh.call("POST", "/api/me/devices", json=bad, expect=403)
        assert error(r) == "device_proof_invalid"
        out = await fresh.json(
            "POST", "/api/me/devices", json=registration(fresh, device), expect=201
        )
        assert out["device_id"] == enc(device.device_id)
        assert out["state"] == "active"
        assert out["bypass"] is False
        assert out["current"] is True
        assert out["expires_ms"] == out["last_used_ms"] + 7776000 * 1000
        assert out["fingerprint"] == dc.fingerprint(
            user_id=fresh.user_id,  # type: ignore[arg-type]
            device_id=device.device_id,
            public_key=device.public_key,
            signing_key=device.signing_public_key,
        )
        assert (await fresh.json("GET", "/api/session"))["device_id"] == enc(device.device_id)
        r = await fresh.call(
            "POST", "/api/me/devices", json=registration(fresh, device), expect=409
        )
        assert error(r) == "device_exists"
        # Rename, list, and the account's log.
        renamed = await fresh.json(
            "PATCH", f"/api/me/devices/{enc(device.device_id)}", json={"name": "Work laptop"}
        )
        assert renamed["name"] == "Work laptop"
        listed = await fresh.json("GET", "/api/me/devices")
        assert [d["name"] for d in listed["devices"]] == ["Work laptop"]
        events = await fresh.json("GET", "/api/me/events")
        actions = [e["action"] for e in events["events"]]
        assert actions[:2] == ["device.rename", "device.register"]
        r = await fresh.call(
            "PATCH", f"/api/me/devices/{enc(os.urandom(16))}", json={"name": "x"}, expect=404
        )
        assert error(r) == "device_not_found"
        await fresh.call(
            "PATCH", f"/api/me/devices/{enc(device.device_id)}", json={"name": ""}, expect=422
        )


async def test_bypass_login_and_its_refusals(
    hvault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    alice = await with_passphrase(hvault, alice_phone, "alice")
    async with alice:
        device = await register_device(alice)
        on = await enable_bypass(alice, device)
        assert on["bypass"] is True
        sk_before = alice.private_key
        assert sk_before is not None

    async with hvault.client() as again:
        await again.login(alice_phone)
        assert again.private_key is None
        before = await again.json("GET", "/api/session")
        used_nonce = dec(before["device_nonce"])
        assert again.user_id is not None
        used_proof = dc.login_proof(device, user_id=again.user_id, nonce=used_nonce)
        await bypass_login(again, device)
        assert again.private_key is not None
        assert again.private_key.private_bytes_raw() == sk_before.private_bytes_raw()
        s = await again.json("GET", "/api/session")
        assert s["device_id"] == enc(device.device_id)
        assert s["passphrase_unlocked"] is False
        # The nonce is single use: the proof just accepted is refused when
        # replayed, and the session has a fresh nonce, which opens again.
        assert dec(s["device_nonce"]) != used_nonce
        replay = await again.call(
            "POST",
            f"/api/me/devices/{enc(device.device_id)}/open",
            json={"proof": enc(used_proof)},
            expect=403,
        )
        assert replay.json()["error"] == "device_proof_invalid"
        await bypass_login(again, device)
        # A bypass-unlocked session cannot register devices.
        r2 = await again.call(
            "POST", "/api/me/devices", json=registration(again, dc.new_device()), expect=403
        )
        assert error(r2) == "unlock_required"

    async with hvault.client() as wrong:
        await wrong.login(alice_phone)
        impostor = dc.DeviceKeys(device.device_id, device.device_key, dc.new_device().signing_key)
        r = await bypass_login(wrong, impostor, expect=403)
        assert r["error"] == "device_proof_invalid"
        # Tampered and oversized wraps are refused by size; the server cannot open them.
        path = f"/api/me/devices/{enc(device.device_id)}/bypass"
        await wrong.unlock_passphrase(PASSPHRASE)
        _, wrap, sealed = bypass_wraps(wrong, device)
        for body in (
            {"keypair_version": 1, "device_wrap": enc(wrap + b"x"), "sealed_kek": enc(sealed)},
            {"keypair_version": 1, "device_wrap": enc(wrap), "sealed_kek": enc(sealed[:-1])},
            {"keypair_version": 1, "device_wrap": enc(wrap), "sealed_kek": "@@"},
        ):
            r3 = await wrong.call("PUT", path, json=body, expect=422)
            assert error(r3) == "invalid"
        r3 = await wrong.call(
            "PUT",
            path,
            json={"keypair_version": 2, "device_wrap": enc(wrap), "sealed_kek": enc(sealed)},
            expect=409,
        )
        assert error(r3) == "keypair_version"
        # A modified (right-sized) wrap is stored and found by the client.
        tampered = bytearray(wrap)
        tampered[20] ^= 1
        await wrong.json(
            "PUT",
            path,
            json={
                "keypair_version": 1,
                "device_wrap": enc(bytes(tampered)),
                "sealed_kek": enc(sealed),
            },
        )

    async with hvault.client() as victim:
        await victim.login(alice_phone)
        with pytest.raises(dc.DeviceWrapInvalid):
            await bypass_login(victim, device)

    bob = await with_passphrase(hvault, bob_phone, "bob")
    async with bob:
        r = await bypass_login(bob, device, expect=404)
        assert r["error"] == "device_not_found"
        # Bypass off: the device stays, the wraps go.
    async with hvault.client() as a:
        await a.login(alice_phone)
        await a.call("DELETE", f"/api/me/devices/{enc(device.device_id)}/bypass", expect=204)
        r = await bypass_login(a, device, expect=409)
        assert r["error"] == "bypass_off"
        (row,) = rows(hvault, devices_table)
        assert row.device_wrap is None
        assert row.sealed_kek is None
        assert row.state == "active"


async def test_revocation_deletes_wraps_and_ends_bound_sessions(
    hvault: VaultServer, alice_phone: PhoneApp
) -> None:
    alice = await with_passphrase(hvault, alice_phone, "alice")
    device = await register_device(alice)
    await enable_bypass(alice, device)
    async with hvault.client() as bound:
        await bound.login(alice_phone)
        await bypass_login(bound, device)
        async with hvault.client() as other:
            await other.login(alice_phone)
            # The registering session is bound too; revoke from a third one.
            await other.call("DELETE", f"/api/me/devices/{enc(device.device_id)}", expect=204)
            r = await bound.call("GET", "/api/session", expect=401)
            assert error(r) == "session_ended"
            r = await alice.call("GET", "/api/me/devices", expect=401)
            assert error(r) == "session_ended"
            (row,) = rows(hvault, devices_table)
            assert row.state == "revoked"
            assert row.device_wrap is None
            assert row.sealed_kek is None
            listed = await other.json("GET", "/api/me/devices")
            assert [d["state"] for d in listed["devices"]] == ["revoked"]
            r2 = await bypass_login(other, device, expect=410)
            assert r2["error"] == "device_revoked"
            events = [e["action"] for e in (await other.json("GET", "/api/me/events"))["events"]]
            assert "device.revoke" in events
            # Kept 30 days, then gone.
            hvault.clock.advance(31 * 86400)
    await alice.http.aclose()
    async with hvault.client() as later:
        await later.login(alice_phone)
        assert (await later.json("GET", "/api/me/devices"))["devices"] == []


async def test_an_unused_device_expires(hvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with await with_passphrase(hvault, alice_phone, "alice") as alice:
        device = await register_device(alice)
        await enable_bypass(alice, device)
    hvault.clock.advance(7776000 + 60)
    async with hvault.client() as later:
        await later.login(alice_phone)
        r = await bypass_login(later, device, expect=410)
        assert r["error"] == "device_expired"
        (row,) = rows(hvault, devices_table)
        assert row.state == "expired"
        assert row.device_wrap is None
        listed = await later.json("GET", "/api/me/devices")
        assert listed["devices"][0]["state"] == "expired"
        assert listed["devices"][0]["expires_ms"] is None
        events = [e["action"] for e in (await later.json("GET", "/api/me/events"))["events"]]
        assert "device.expire" in events


async def test_a_bypass_login_keeps_the_device_alive(
    hvault: VaultServer, alice_phone: PhoneApp
) -> None:
    async with await with_passphrase(hvault, alice_phone, "alice") as alice:
        device = await register_device(alice)
        await enable_bypass(alice, device)
    for _ in range(2):
        hvault.clock.advance(7776000 - 3600)
        async with hvault.client() as c:
            await c.login(alice_phone)
            await bypass_login(c, device)


async def test_recovery_deletes_every_device_wrap(
    hvault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    async with await with_passphrase(hvault, alice_phone, "alice") as alice:
        device = await register_device(alice)
        await enable_bypass(alice, device)
        secret = await alice.setup_recovery()
    async with hvault.client() as c:
        await c.login(bob_phone)  # a new token
        s = await c.recover("alice", secret)
        assert s["device_id"] is None
        assert s["passphrase_unlocked"] is False
    (row,) = rows(hvault, devices_table)
    assert row.device_wrap is None
    assert row.sealed_kek is None


# --- approval through the proxy -----------------------------------------------------------


@pytest_asyncio.fixture
async def pvault(
    net: TestNetwork, db_url: str, tmp_path: Path, hardener: TestHardener
) -> AsyncIterator[VaultServer]:
    """hvault with a one-time key proxy URL configured."""
    async with serve_hardened_vault(
        net, db_url, tmp_path, hardener, keyproxy_url=KEYPROXY
    ) as server:
        yield server


def request_body(c: VaultClient, device: dc.DeviceKeys, claim: bytes) -> dict[str, Any]:
    return {
        **registration(c, device, "Chromium on macOS"),
        "claim_hash": enc(hashlib.sha256(claim).digest()),
    }


async def test_approval_of_a_new_device(pvault: VaultServer, alice_phone: PhoneApp) -> None:
    a = await with_passphrase(pvault, alice_phone, "alice")
    async with a, pvault.client() as b:
        await b.login(alice_phone)  # B: a token login, no passphrase typed
        device_b, claim = dc.new_device(), os.urandom(32)
        made = await b.json(
            "POST", "/api/devices/requests", json=request_body(b, device_b, claim), expect=201
        )
        code = made["code"]
        assert len(code) == 11
        assert code[5] == "-"
        assert all(ch in "0123456789ABCDEFGHJKMNPQRSTVWXYZ" for ch in code.replace("-", ""))
        assert made["expires_ms"] > pvault.clock()
        # A sees B's keys and proof, and checks them.
        seen = await a.json("GET", f"/api/devices/requests/{code.lower()}")
        assert seen["state"] == "pending"
        assert seen["proxy_token"] is None
        dc.verify_proof(
            dec(seen["signing_key"]),
            dec(seen["proof"]),
            dc.registration_message(
                user_id=a.user_id,  # type: ignore[arg-type]
                device_id=dec(seen["device_id"]),
                public_key=dec(seen["public_key"]),
                signing_key=dec(seen["signing_key"]),
            ),
            device_id=dec(seen["device_id"]),
        )
        # A makes DKEK and the device wrap for B, deposits sealed_kek at the proxy (its token).
        dkek, wrap, sealed = bypass_wraps(a, device_b)
        token = "kp1_" + enc(os.urandom(24))
        approved = await a.json(
            "POST",
            f"/api/devices/requests/{code}/approve",
            json={"keypair_version": 1, "device_wrap": enc(wrap), "proxy_token": token},
        )
        assert approved["bypass"] is False
        assert approved["current"] is False
        r = await a.call(
            "POST",
            f"/api/devices/requests/{code}/approve",
            json={"keypair_version": 1, "device_wrap": enc(wrap), "proxy_token": token},
            expect=409,
        )
        assert error(r) == "request_not_pending"
        # Only the requesting session sees the proxy token.
        assert (await a.json("GET", f"/api/devices/requests/{code}"))["proxy_token"] is None
        polled = await b.json("GET", f"/api/devices/requests/{code}")
        assert polled["state"] == "approved"
        assert polled["proxy_token"] == token
        # B (having claimed sealed_kek at the proxy) finishes the bypass and is bound.
        out = await b.json(
            "PUT",
            f"/api/me/devices/{enc(device_b.device_id)}/bypass",
            json={"keypair_version": 1, "sealed_kek": enc(sealed)},
        )
        assert out["bypass"] is True
        assert out["current"] is True
        assert dc.open_dkek(sealed, device_b, user_id=b.user_id) == dkek  # type: ignore[arg-type]
    async with pvault.client() as b2:
        await b2.login(alice_phone)
        await bypass_login(b2, device_b)
        assert b2.private_key is not None


async def test_wrong_codes_lock_the_requests_and_refusal(
    pvault: VaultServer, alice_phone: PhoneApp
) -> None:
    a = await with_passphrase(pvault, alice_phone, "alice")
    async with a, pvault.client() as b:
        await b.login(alice_phone)
        device_b = dc.new_device()
        made = await b.json(
            "POST", "/api/devices/requests", json=request_body(b, device_b, b"s" * 32), expect=201
        )
        await a.call("DELETE", f"/api/devices/requests/{made['code']}", expect=204)
        assert (await b.json("GET", f"/api/devices/requests/{made['code']}"))["state"] == "refused"
        for n in range(10):
            r = await a.call("GET", f"/api/devices/requests/ZZZZZ-ZZZZ{n}", expect=404)
            assert error(r) == "request_not_found"
        r = await a.call("GET", f"/api/devices/requests/{made['code']}", expect=429)
        assert error(r) == "too_many_attempts"
        assert r.json()["retry_after_ms"] > 0
        pvault.clock.advance(pvault.settings.device_request_seconds + 1)
        r = await a.call("GET", f"/api/devices/requests/{made['code']}", expect=404)
        assert error(r) == "request_not_found"  # expired by now
        # ... and the lock is over; polling an expired code of one's own is not a guess.
        for _ in range(12):
            r = await b.call("GET", f"/api/devices/requests/{made['code']}", expect=404)
        r = await a.call("GET", "/api/devices/requests/ZZZZZ-ZZZZZ", expect=404)
        assert error(r) == "request_not_found"


async def test_without_a_proxy_approval_is_off(hvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with await with_passphrase(hvault, alice_phone, "alice") as a:
        config = await a.json("GET", "/api/config")
        assert config["keyproxy_url"] is None
        r = await a.call(
            "POST", "/api/devices/requests", json=request_body(a, dc.new_device(), b"s"), expect=409
        )
        assert error(r) == "keyproxy_not_configured"
        th = enc(hashlib.sha256(b"t").digest())
        r = await a.call("POST", "/api/keyproxy/grant", json={"token_hash": th}, expect=409)
        assert error(r) == "keyproxy_not_configured"


async def test_config_csp_and_the_once_page(pvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with pvault.client() as c:
        assert (await c.json("GET", "/api/config"))["keyproxy_url"] == KEYPROXY
        page = await c.call("GET", "/")
        assert KEYPROXY in page.headers["content-security-policy"]
        for path in ("/once", "/once.html"):
            r = await c.call("GET", path, expect=None)
            if ONCE_PAGE.exists():
                assert r.status_code == 200
                csp = r.headers["content-security-policy"]
                assert "script-src 'self'" in csp
                assert KEYPROXY in csp
                assert "frame-ancestors 'none'" in csp
            else:
                assert r.status_code == 404
                assert r.json()["error"] == "not_found"


async def test_claim_grant(pvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with pvault.client() as c:
        await c.login(alice_phone)
        await c.register("alice")
        token_hash = enc(hashlib.sha256(b"kp1_token").digest())
        g = await c.json("POST", "/api/keyproxy/grant", json={"token_hash": token_hash})
        assert g["issuer"] == "vault"
        assert g["subject"] == enc(c.user_id)  # type: ignore[arg-type]
        assert g["expires_ms"] > pvault.clock()
        assert len(dec(g["grant"])) == kg.GRANT_BYTES
        key_file = pvault.settings.data_dir / grants.KEY_FILE
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        public = dec(grants.issuer_public_key(pvault.settings.data_dir))
        # The proxy's own check accepts it for this deposit and subject only.
        check = {"issuer": "vault", "subject": g["subject"], "token": token_hash}
        kg.verify_grant(public, dec(g["grant"]), **check, now_ms=pvault.clock())
        other = enc(hashlib.sha256(b"kp1_other").digest())
        with pytest.raises(kg.GrantInvalid):
            kg.verify_grant(
                public, dec(g["grant"]), **{**check, "token": other}, now_ms=pvault.clock()
            )
        with pytest.raises(kg.GrantInvalid):
            kg.verify_grant(public, dec(g["grant"]), **check, now_ms=g["expires_ms"] + 1)
        r = await c.call("POST", "/api/keyproxy/grant", json={"token_hash": "abc"}, expect=422)
        assert error(r) == "invalid"


# --- host-proof ----------------------------------------------------------------------------


async def test_the_server_never_holds_device_secrets(
    pvault: VaultServer, alice_phone: PhoneApp
) -> None:
    a = await with_passphrase(pvault, alice_phone, "alice")
    async with a, pvault.client() as b:
        device_a = await register_device(a)
        dkek_a, wrap, sealed = bypass_wraps(a, device_a)
        await a.json(
            "PUT",
            f"/api/me/devices/{enc(device_a.device_id)}/bypass",
            json={"keypair_version": 1, "device_wrap": enc(wrap), "sealed_kek": enc(sealed)},
        )
        await b.login(alice_phone)
        device_b, claim = dc.new_device(), os.urandom(32)
        made = await b.json(
            "POST", "/api/devices/requests", json=request_body(b, device_b, claim), expect=201
        )
        dkek_b, wrap_b, _ = bypass_wraps(a, device_b)
        await a.json(
            "POST",
            f"/api/devices/requests/{made['code']}/approve",
            json={"keypair_version": 1, "device_wrap": enc(wrap_b), "proxy_token": "kp1_t"},
        )
        assert a.private_key is not None
        needles = {
            "device A's key": device_a.device_key.private_bytes_raw(),
            "device A's signing key": device_a.signing_key.private_bytes_raw(),
            "device B's key": device_b.device_key.private_bytes_raw(),
            "device B's signing key": device_b.signing_key.private_bytes_raw(),
            "DKEK A": dkek_a,
            "DKEK B": dkek_b,
            "claim secret": claim,
            "the request code": made["code"].replace("-", "").encode(),
            "the passphrase": PASSPHRASE.encode(),
            "the account's private key": a.private_key.private_bytes_raw(),
            "T": token_factor(a),
        }
        found = scan(haystacks(pvault.db_url, pvault.settings.blob_path), needles)
        assert found == []


def test_the_issuer_key_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vault_api import cli

    assert cli.main(["--data-dir", str(tmp_path), "keyproxy-issuer"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == grants.issuer_public_key(tmp_path)
    assert len(dec(printed)) == 32
    assert stat.S_IMODE((tmp_path / grants.KEY_FILE).stat().st_mode) == 0o600
    (tmp_path / grants.KEY_FILE).chmod(0o644)
    assert cli.main(["--data-dir", str(tmp_path), "keyproxy-issuer"]) == 2
    assert "readable by others" in capsys.readouterr().err
