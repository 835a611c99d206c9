"""The vault passphrase, its history and the recovery slot, through a real
hardener (hardener.testing.TestHardener: its own CA, mTLS gRPC) with the
vault server as its caller that only relays (docs/vault.md 5.4-5.6)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from authnet.protocol.encoding import b64u_encode
from hardener import labels as hlabels
from hardener import oprf
from hardener.testing import TestHardener
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone
from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient, dec, enc
from tests.vault.hostproof import haystacks, scan
from vault_api import crypto as vc
from vault_api.client.factors import FactorError, harden, hardener_info, params_of
from vault_api.crypto import factors as ff
from vault_api.db import make_engine
from vault_api.schema import account_events, key_slots, passphrase_wraps

PASSPHRASE = "my grandma had a strange green bbq"
NEW_PASSPHRASE = "when I jump I can not stop laughing"
RECOVERY = "francesco taught me about hashes and distribution"


def rows(vault: VaultServer, table: sa.Table) -> list[sa.Row[object]]:
    engine = make_engine(vault.db_url)
    try:
        with engine.connect() as c:
            return list(c.execute(sa.select(table)).all())
    finally:
        engine.dispose()


async def _logged_in(vault: VaultServer, phone: PhoneApp) -> VaultClient:
    c = vault.client()
    await c.login(phone)
    return c


async def test_passphrase_needs_both_factors(hvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        sid = await alice.create_safe("Home")
        await alice.add_item(sid, {"type": "login", "title": "Mail", "password": "pw1"})
        await alice.set_passphrase(PASSPHRASE)
        # Every token slot now holds the token factor, not the private key.
        slots = rows(hvault, key_slots)
        assert [r.kind for r in slots] == ["kc+passphrase"]
        assert len(slots[0].slot) == ff.TOKEN_SLOT_BYTES

    async with hvault.client() as again:
        await again.login(alice_phone)
        assert again.private_key is None  # Kc alone does not open it
        assert again.slot is not None
        assert again.slot["kind"] == "kc+passphrase"
        kc = again.kc[again.key_id]  # type: ignore[index]
        # Kc alone: the slot opens only to T; the plain slot format refuses it.
        with pytest.raises(vc.MalformedCiphertext):
            vc.open_slot(
                kc,
                dec(again.slot["slot"]),
                user_id=again.user_id,  # type: ignore[arg-type]
                key_id=again.key_id,  # type: ignore[arg-type]
                keypair_version=1,
                public_key=again.public_key,  # type: ignore[arg-type]
            )
        # ... and T with a wrong passphrase does not open the wrap.
        with pytest.raises(FactorError) as wrong:
            await again.unlock_passphrase("not the passphrase at all")
        assert wrong.value.code == "passphrase_invalid"
        assert "attempts left" in wrong.value.message
        # The passphrase alone (hardened correctly) with another token factor does not open it.
        factors = await again.json("GET", "/api/me/factors")
        record = factors["passphrase"]
        info = await hardener_info(again.send)
        params = params_of(record)
        h = await harden(
            again.send,
            PASSPHRASE,
            purpose="passphrase",
            user_id=again.user_id,  # type: ignore[arg-type]
            params=params,
            caller=info.caller,
        )
        fk = ff.hardened_key(h.y, purpose="passphrase", user_id=again.user_id, params=params)  # type: ignore[arg-type]
        with pytest.raises(vc.PassphraseInvalid):
            ff.open_passphrase_wrap(
                ff.passphrase_kek(os.urandom(32), fk),
                dec(record["wrap"]),
                user_id=again.user_id,  # type: ignore[arg-type]
                keypair_version=1,
                public_key=again.public_key,  # type: ignore[arg-type]
                params=params,
            )
        # Both: the vault opens, and the safe with it.
        await again.unlock_passphrase(PASSPHRASE)
        items = await again.items(sid)
        assert [i["password"] for i in items.values()] == ["pw1"]


async def test_change_then_roll_back_with_the_old(
    hvault: VaultServer, alice_phone: PhoneApp
) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        sid = await alice.create_safe("Home")
        await alice.add_item(sid, {"type": "note", "title": "n", "notes": "kept"})
        await alice.set_passphrase(PASSPHRASE)
        out = await alice.change_passphrase(NEW_PASSPHRASE)
        assert len(out["history"]) == 1
        assert out["history"][0]["expires_ms"] > out["history"][0]["replaced_ms"]

    async with hvault.client() as forgot:
        await forgot.login(alice_phone)
        # The old passphrase no longer opens the current wrap...
        with pytest.raises(FactorError):
            await forgot.unlock_passphrase(PASSPHRASE)
        # ... but rolls back to the kept one, which it opens.
        await forgot.rollback_passphrase(PASSPHRASE)
        assert forgot.private_key is not None
        assert [i["notes"] for i in (await forgot.items(sid)).values()] == ["kept"]
        states = sorted(r.state for r in rows(hvault, passphrase_wraps))
        assert states == ["current", "history"]

    async with hvault.client() as later:
        await later.login(alice_phone)
        await later.unlock_passphrase(PASSPHRASE)  # the old one is current again
        with pytest.raises(FactorError):
            await later.unlock_passphrase(NEW_PASSPHRASE)
    actions = [r.action for r in rows(hvault, account_events)]
    assert actions == ["passphrase.set", "passphrase.change", "passphrase.rollback"]


async def test_history_expires(hvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        await alice.set_passphrase(PASSPHRASE)
        await alice.change_passphrase(NEW_PASSPHRASE)
        assert len((await alice.json("GET", "/api/me/factors"))["history"]) == 1
    hvault.clock.advance(3601)  # passphrase_history_seconds = 3600 in hvault
    async with hvault.client() as later:
        await later.login(alice_phone)
        f = await later.json("GET", "/api/me/factors")
        assert f["history"] == []
        with pytest.raises(FactorError) as e:
            await later.rollback_passphrase(PASSPHRASE)
        assert e.value.code == "no_history"
        await later.unlock_passphrase(NEW_PASSPHRASE)


async def test_recover_after_losing_every_token(
    hvault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    async with hvault.client() as alice, hvault.client() as other_session:
        await alice.login(alice_phone)
        await alice.register("alice")
        sid = await alice.create_safe("Home")
        await alice.add_item(sid, {"type": "login", "title": "Bank", "password": "s3cret"})
        await alice.set_passphrase(PASSPHRASE)
        await alice.setup_recovery(RECOVERY)
        await other_session.login(alice_phone)  # another browser of hers, still open
        alice_uid = alice.user_id

        # Every token lost: a new phone is a new authnet account (a new PUID).
        new_phone = await make_phone(hvault.net, tmp_path / "new-phone.json", label="new phone")
        async with hvault.client() as rescued:
            await rescued.login(new_phone)
            assert rescued.user_id != alice_uid
            with pytest.raises(FactorError) as wrong:
                await rescued.recover("alice", "not the recovery passphrase")
            assert wrong.value.code == "recovery_invalid"
            session = await rescued.recover("alice", RECOVERY)
            assert dec(session["user"]["user_id"]) == alice_uid
            assert session["slot"]["kind"] == "kc"
            items = await rescued.items(sid)
            assert [i["password"] for i in items.values()] == ["s3cret"]
            # The lost tokens' slots and the passphrase are gone; the new token is the only one.
            slots = rows(hvault, key_slots)
            assert [(r.key_id, r.kind) for r in slots] == [(rescued.key_id, "kc")]
            assert rows(hvault, passphrase_wraps) == []

        # The recovery is in the account's audit log, and her other session is told.
        events = [r.action for r in rows(hvault, account_events)]
        assert events[-1] == "account.recover"
        s = await other_session.json("GET", "/api/session")
        assert [n["action"] for n in s["notices"]][-1] == "account.recover"

        # A new token logs in straight to the recovered account.
        async with hvault.client() as next_time:
            await next_time.login(new_phone)
            assert next_time.user_id == alice_uid
            assert next_time.private_key is not None


async def test_recovery_code_and_unproven_completion(
    hvault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        code = await alice.setup_recovery()
        assert len(code) == 29
        assert code.count("-") == 4
    async with hvault.client() as bob:
        await bob.login(bob_phone)
        # A signature by any other key is refused before anything changes.
        r = await bob.call(
            "POST",
            "/api/recovery/complete",
            json={
                "handle": "alice",
                "attempt_id": enc(b"x" * 16),
                "nonce": enc(b"y" * 16),
                "signature": enc(b"z" * 64),
                "keypair_version": 1,
                "slot": enc(b"s" * vc.userkeys.SLOT_BYTES),
            },
            expect=403,
        )
        assert r.json()["error"] == "recovery_unproven"
        assert len(rows(hvault, key_slots)) == 1
        # The code in lower case without hyphens is the same code.
        await bob.recover("alice", code.lower().replace("-", " "))
        assert bob.private_key is not None


async def test_eleventh_wrong_passphrase_is_refused_by_the_hardener(
    hvault: VaultServer, alice_phone: PhoneApp, hardener: TestHardener
) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        await alice.set_passphrase(PASSPHRASE)
        for i in range(10):
            with pytest.raises(FactorError) as e:
                await alice.unlock_passphrase(f"wrong passphrase {i}")
            assert e.value.code == "passphrase_invalid"
        # The 11th evaluation is refused, even with the right passphrase.
        with pytest.raises(AssertionError, match="423"):
            await alice.unlock_passphrase(PASSPHRASE)
        r = await alice.call(
            "POST",
            "/api/hardener/evaluate",
            json={"purpose": "passphrase", "blinded_element": enc(_blinded())},
            expect=423,
        )
        assert r.json()["error"] == "hardener_locked"
        # The recovery secret has its own budget, untouched.
        await alice.setup_recovery(RECOVERY)
        # The operator's recovery step unlocks it; the right passphrase then works.
        hardener.unlock("vault", f"{b64u_encode(alice.user_id)}:passphrase")  # type: ignore[arg-type]
        await alice.unlock_passphrase(PASSPHRASE)


async def test_success_resets_the_count(hvault: VaultServer, alice_phone: PhoneApp) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        await alice.set_passphrase(PASSPHRASE)
        for _ in range(3):
            for i in range(4):
                with pytest.raises(FactorError):
                    await alice.unlock_passphrase(f"wrong {i}")
            await alice.unlock_passphrase(PASSPHRASE)  # a proven success resets the count
        ev = await alice.json(
            "POST",
            "/api/hardener/evaluate",
            json={"purpose": "passphrase", "blinded_element": enc(_blinded())},
        )
        assert ev["attempts_left"] == 9


def _blinded() -> bytes:
    return oprf.poprf_blind(
        os.urandom(32), b"info", oprf.generate_key_pair().public
    ).blinded_element


async def test_hardener_down_is_a_clear_error_and_nothing_changes(
    hvault: VaultServer, alice_phone: PhoneApp, hardener: TestHardener
) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        await alice.set_passphrase(PASSPHRASE)
        before = [(r.wrap_id, r.wrap) for r in rows(hvault, passphrase_wraps)]
        hardener.stop()
        try:
            r = await alice.call("GET", "/api/hardener", expect=503)
            assert r.json()["error"] == "hardener_unavailable"
            r = await alice.call(
                "POST",
                "/api/hardener/evaluate",
                json={"purpose": "passphrase", "blinded_element": enc(_blinded())},
                expect=503,
            )
            assert "cannot be reached" in r.json()["message"]
        finally:
            hardener.restart()
        assert [(r.wrap_id, r.wrap) for r in rows(hvault, passphrase_wraps)] == before
        # Once it is back (the channel reconnects within gRPC's backoff), unlock works.
        for _ in range(150):
            if (await alice.call("GET", "/api/hardener", expect=None)).status_code == 200:
                break
            await asyncio.sleep(0.2)
        await alice.unlock_passphrase(PASSPHRASE)


async def test_no_hardener_configured(vault: VaultServer, alice: VaultClient) -> None:
    h = await alice.json("GET", "/api/hardener")
    assert h["enabled"] is False
    r = await alice.call(
        "POST",
        "/api/hardener/evaluate",
        json={"purpose": "passphrase", "blinded_element": enc(os.urandom(32))},
        expect=409,
    )
    assert r.json()["error"] == "hardener_not_configured"
    assert "hardener_address" in r.json()["message"]


async def test_server_refuses_a_weak_count_or_another_key(
    hvault: VaultServer, alice_phone: PhoneApp
) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        info = await hardener_info(alice.send)
        wrap = {
            "id": enc(os.urandom(16)),
            "salt": enc(os.urandom(16)),
            "iterations": 999_999,
            "key_version": info.current_version,
            "hardener_public_key": enc(oprf.generate_key_pair().public),
            "wrap": enc(os.urandom(ff.WRAP_BYTES)),
        }
        body = {
            "wrap": wrap,
            "token_slots": [{"key_id": enc(alice.key_id), "slot": enc(os.urandom(60))}],  # type: ignore[arg-type]
        }
        r = await alice.call("PUT", "/api/me/passphrase", json=body, expect=409)
        assert r.json()["error"] == "hardener_key_mismatch"
        wrap["iterations"] = 999
        wrap["hardener_public_key"] = enc(info.keys[info.current_version])
        r = await alice.call("PUT", "/api/me/passphrase", json=body, expect=422)
        assert "wrap.iterations" in r.json()["message"]
        assert [r.kind for r in rows(hvault, key_slots)] == ["kc"]
        assert rows(hvault, passphrase_wraps) == []


async def test_server_sees_no_passphrase_or_hardened_value(
    hvault: VaultServer,
    alice_phone: PhoneApp,
    hardener: TestHardener,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    secrets: dict[str, bytes] = {}
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        await alice.set_passphrase(PASSPHRASE)
        await alice.change_passphrase(NEW_PASSPHRASE)
        code = await alice.setup_recovery()
        # What the client derived: x, y, F for the current wrap (recomputed here).
        f = await alice.json("GET", "/api/me/factors")
        params = params_of(f["passphrase"])
        info = await hardener_info(alice.send)
        x = ff.slow_hash(NEW_PASSPHRASE, purpose="passphrase", user_id=alice.user_id, params=params)  # type: ignore[arg-type]
        uid = ff.hardener_user_id(alice.user_id, "passphrase")  # type: ignore[arg-type]
        async with hardener.client("vault") as hc:
            y = (await hc.harden(uid, x, params.hardener_public_key)).output
        secrets = {
            "passphrase": PASSPHRASE.encode(),
            "new passphrase": NEW_PASSPHRASE.encode(),
            "recovery code": code.encode(),
            "recovery code (normalised)": code.replace("-", "").encode(),
            "slow hash x": x,
            "hardened y": y,
            "hardened key F": ff.hardened_key(
                y, purpose="passphrase", user_id=alice.user_id, params=params
            ),  # type: ignore[arg-type]
            "token factor T": alice.token_factor,  # type: ignore[dict-item]
            "private key": alice.private_key.private_bytes_raw(),  # type: ignore[union-attr]
        }
        assert info.caller == "vault"
    found = scan(haystacks(hvault.db_url, hvault.settings.blob_path), secrets)
    assert found == []
    logs = "\n".join(r.getMessage() for r in caplog.records).encode()
    assert scan({"logs": logs}, secrets) == []
    hardener_files = {str(p): p.read_bytes() for p in hardener.root.rglob("*") if p.is_file()}
    assert scan(hardener_files, secrets) == []


async def test_hardener_user_ids_and_labels() -> None:
    uid = bytes(range(16))
    assert ff.hardener_user_id(uid, "passphrase") == f"{b64u_encode(uid)}:passphrase"
    assert hlabels.poprf_info("vault", "u:passphrase").startswith(b"hardener/v1 user")


async def test_rotation_rekeys_the_wrap_at_the_next_unlock(
    hvault: VaultServer, alice_phone: PhoneApp, hardener: TestHardener
) -> None:
    async with hvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")
        await alice.set_passphrase(PASSPHRASE)
        assert (await alice.json("GET", "/api/me/factors"))["passphrase"]["key_version"] == 1
        assert hardener.rotate() == 2
    async with hvault.client() as later:
        await later.login(alice_phone)
        await later.unlock_passphrase(PASSPHRASE)  # opens under v1, re-seals under v2
        f = await later.json("GET", "/api/me/factors")
        assert f["passphrase"]["key_version"] == 2
        assert [h["key_version"] for h in f["history"]] == [1]
    async with hvault.client() as again:
        await again.login(alice_phone)
        await again.unlock_passphrase(PASSPHRASE)  # now straight under v2
        status = {s.version: s for s in hardener.status()}
        assert status[1].users == 0  # nothing of this vault's still needs version 1
        assert status[2].users == 1
    hardener.retire(1)
    async with hvault.client() as after:
        await after.login(alice_phone)
        await after.unlock_passphrase(PASSPHRASE)
