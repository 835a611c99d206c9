"""Organisations and their policy (docs/devices.md 6, 9): membership and
roles, the last admin, and the downgrade rule (turning a permission off, or
joining an organisation, removes the dependent wraps in the same step)."""

from __future__ import annotations

from simulators.phone.app import PhoneApp
from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient, enc
from tests.vault.test_devices import (
    bypass_login,
    enable_bypass,
    error,
    register_device,
    registration,
    rows,
    with_passphrase,
)
from vault_api.crypto import devices as dc
from vault_api.schema import devices as devices_table


async def test_members_roles_and_the_last_admin(
    vault: VaultServer, alice: VaultClient, bob: VaultClient
) -> None:
    org = await alice.json("POST", "/api/orgs", json={"name": "Acme"}, expect=201)
    oid = org["org_id"]
    assert org["role"] == "admin"
    assert [m["handle"] for m in org["members"]] == ["alice"]
    assert org["policy"]["organisation"] == {"org_id": oid, "name": "Acme", "role": "admin"}
    r = await alice.call("POST", "/api/orgs", json={"name": "Again"}, expect=409)
    assert error(r) == "already_member"
    # Bob cannot see it until added; then he is told.
    r = await bob.call("GET", f"/api/orgs/{oid}", expect=404)
    assert error(r) == "org_not_found"
    m = await alice.json("POST", f"/api/orgs/{oid}/members", json={"handle": "bob"}, expect=201)
    assert m["role"] == "member"
    assert m["handle"] == "bob"
    s = await bob.json("GET", "/api/session")
    assert "org.join" in [n["action"] for n in s["notices"]]
    assert s["policy"]["organisation"]["role"] == "member"
    assert (await bob.json("GET", "/api/me/policy"))["organisation"]["name"] == "Acme"
    r = await alice.call("POST", f"/api/orgs/{oid}/members", json={"handle": "bob"}, expect=409)
    assert error(r) == "already_member"
    r = await alice.call("POST", f"/api/orgs/{oid}/members", json={"handle": "nobody"}, expect=404)
    assert error(r) == "user_not_found"
    # Members may not administer.
    r = await bob.call("PATCH", f"/api/orgs/{oid}/policy", json={"allow_bypass": False}, expect=403)
    assert error(r) == "not_org_admin"
    r = await bob.call("GET", f"/api/orgs/{oid}/audit", expect=403)
    assert error(r) == "not_org_admin"
    alice_id = enc(alice.user_id)  # type: ignore[arg-type]
    bob_id = enc(bob.user_id)  # type: ignore[arg-type]
    r = await bob.call("DELETE", f"/api/orgs/{oid}/members/{alice_id}", expect=403)
    assert error(r) == "not_org_admin"
    # Never the last admin.
    r = await alice.call(
        "PATCH", f"/api/orgs/{oid}/members/{alice_id}", json={"role": "member"}, expect=409
    )
    assert error(r) == "last_admin"
    r = await alice.call("DELETE", f"/api/orgs/{oid}/members/{alice_id}", expect=409)
    assert error(r) == "last_admin"
    up = await alice.json("PATCH", f"/api/orgs/{oid}/members/{bob_id}", json={"role": "admin"})
    assert up["role"] == "admin"
    await alice.call("DELETE", f"/api/orgs/{oid}/members/{alice_id}", expect=204)  # leaves
    assert (await alice.json("GET", "/api/me/policy"))["organisation"] is None
    await alice.call("GET", f"/api/orgs/{oid}", expect=404)
    events = (await bob.json("GET", f"/api/orgs/{oid}/audit"))["events"]
    assert [e["action"] for e in events] == [
        "member.leave",
        "member.role",
        "member.add",
        "org.create",
    ]
    assert events[1]["actor_handle"] == "alice"
    assert events[1]["detail"]["new"] == "admin"
    # Bob removes nobody else and leaves last: the organisation is gone.
    await bob.call("DELETE", f"/api/orgs/{oid}/members/{bob_id}", expect=204)
    await bob.call("GET", f"/api/orgs/{oid}", expect=404)


async def test_turning_bypass_off_removes_every_wrap_at_once(
    hvault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    alice = await with_passphrase(hvault, alice_phone, "alice")
    bob = await with_passphrase(hvault, bob_phone, "bob")
    async with alice, bob:
        oid = (await alice.json("POST", "/api/orgs", json={"name": "Acme"}, expect=201))["org_id"]
        await alice.json("POST", f"/api/orgs/{oid}/members", json={"handle": "bob"}, expect=201)
        dev_a = await register_device(alice)
        await enable_bypass(alice, dev_a)
        dev_b = await register_device(bob)
        await enable_bypass(bob, dev_b)
        out = await alice.json("PATCH", f"/api/orgs/{oid}/policy", json={"allow_bypass": False})
        assert out["removed"] == {"wraps": 2, "devices": 0}
        assert out["policy"]["allow_bypass"] is False
        assert all(
            r.device_wrap is None and r.sealed_kek is None for r in rows(hvault, devices_table)
        )
        assert [r.state for r in rows(hvault, devices_table)] == ["active", "active"]
        (event, *_) = (await alice.json("GET", f"/api/orgs/{oid}/audit"))["events"]
        assert event["action"] == "policy.change"
        assert event["detail"]["old"]["allow_bypass"] is True
        assert event["detail"]["new"]["allow_bypass"] is False
        assert event["detail"]["removed"] == {"wraps": 2, "devices": 0}
        assert event["detail"]["admin"] == "alice"
        async with hvault.client() as b2:
            await b2.login(bob_phone)
            r = await bypass_login(b2, dev_b, expect=403)
            assert r["error"] == "policy_forbids"
            assert r["policy"] == "allow_bypass"
            r2 = await b2.call(
                "PUT",
                f"/api/me/devices/{enc(dev_b.device_id)}/bypass",
                json={"keypair_version": 1, "device_wrap": "A" * 102, "sealed_kek": "A" * 107},
                expect=403,
            )
            assert error(r2) == "unlock_required"
        # Registration off: every member's device is revoked and its sessions end.
        out = await alice.json(
            "PATCH", f"/api/orgs/{oid}/policy", json={"allow_device_registration": False}
        )
        assert out["removed"] == {"wraps": 0, "devices": 2}
        assert [r.state for r in rows(hvault, devices_table)] == ["revoked", "revoked"]
        r = await bob.call("GET", "/api/session", expect=401)
        assert error(r) == "session_ended"


async def test_joining_an_organisation_applies_its_policy(
    hvault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    alice = await with_passphrase(hvault, alice_phone, "alice")
    bob = await with_passphrase(hvault, bob_phone, "bob")
    async with alice, bob:
        oid = (await alice.json("POST", "/api/orgs", json={"name": "Acme"}, expect=201))["org_id"]
        out = await alice.json(
            "PATCH",
            f"/api/orgs/{oid}/policy",
            json={"allow_bypass": False, "device_expiry_seconds": 3600},
        )
        assert out["removed"] == {"wraps": 0, "devices": 0}
        assert out["policy"]["device_expiry_seconds"] == 3600
        dev_b = await register_device(bob)
        await enable_bypass(bob, dev_b)
        await alice.json("POST", f"/api/orgs/{oid}/members", json={"handle": "bob"}, expect=201)
        (row,) = rows(hvault, devices_table)
        assert row.device_wrap is None
        (event, *_) = (await alice.json("GET", f"/api/orgs/{oid}/audit"))["events"]
        assert event["action"] == "member.add"
        assert event["detail"]["removed"] == {"wraps": 1, "devices": 0}
        policy = await bob.json("GET", "/api/me/policy")
        assert policy["allow_bypass"] is False
        assert policy["device_expiry_seconds"] == 3600
        listed = await bob.json("GET", "/api/me/devices")
        assert listed["devices"][0]["expires_ms"] == listed["devices"][0]["last_used_ms"] + 3600_000
        r = await bob.call(
            "PUT",
            f"/api/me/devices/{enc(dev_b.device_id)}/bypass",
            json={"keypair_version": 1, "device_wrap": "A" * 102, "sealed_kek": "A" * 107},
            expect=403,
        )
        assert error(r) == "policy_forbids"
        await alice.json(
            "PATCH", f"/api/orgs/{oid}/policy", json={"allow_device_registration": False}
        )
        r = await alice.call(
            "POST", "/api/me/devices", json=registration(alice, dc.new_device()), expect=403
        )
        assert error(r) == "policy_forbids"
        assert r.json()["policy"] == "allow_device_registration"
