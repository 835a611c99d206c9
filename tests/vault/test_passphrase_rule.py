"""The passphrase rule (docs/vault.md 5.4): when this vault's
`require_passphrase` or the account's organisation's policy requires a vault
passphrase and the account has none, every route of vault data answers 403
`passphrase_required` (nothing is stored), while the routes needed to comply
or to look around stay open. Real server, real hardener, real CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from authnet.testing import TestNetwork
from hardener.testing import TestHardener
from simulators.phone.app import PhoneApp
from tests.helpers import make_phone
from tests.vault.clirunner import logged_in
from tests.vault.conftest import VaultServer, serve_hardened_vault
from tests.vault.driver import VaultClient, enc
from tests.vault.test_devices import (
    PASSPHRASE,
    bypass_login,
    enable_bypass,
    register_device,
    rows,
    with_passphrase,
)
from vault_api.client.errors import Exit
from vault_api.config import ConfigError, Settings
from vault_api.schema import items as items_table
from vault_api.schema import safes as safes_table

# Open whatever the rule: the account, its factors and the hardener relay,
# its policy, its devices list, its audit log, the session.
OPEN_READS = (
    "/api/session",
    "/api/me",
    "/api/me/factors",
    "/api/me/events",
    "/api/me/policy",
    "/api/me/devices",
    "/api/hardener",
    "/api/health",
)


@pytest_asyncio.fixture
async def rvault(
    net: TestNetwork, db_url: str, tmp_path: Path, hardener: TestHardener
) -> AsyncIterator[VaultServer]:
    """A vault whose operator requires a passphrase of every account."""
    async with serve_hardened_vault(
        net, db_url, tmp_path, hardener, require_passphrase=True
    ) as server:
        yield server


def refusal(r: Any) -> dict[str, Any]:
    assert r.status_code == 403, r.text
    body: dict[str, Any] = r.json()
    assert body["error"] == "passphrase_required", body
    assert "vault passphrase set" in body["message"]
    return body


def item_update(c: VaultClient, sid: bytes, iid: bytes, ks: bytes, notes: str) -> dict[str, Any]:
    body = c.item_body(
        sid, iid, {"type": "note", "title": "Plan", "notes": notes}, ks=ks, generation=1, version=2
    )
    return {"expected_version": 1, **body}


async def test_the_server_setting_closes_the_safes_until_a_passphrase_is_set(
    rvault: VaultServer, alice_phone: PhoneApp, bob_phone: PhoneApp
) -> None:
    bob = await with_passphrase(rvault, bob_phone, "bob")
    async with bob, rvault.client() as alice:
        await alice.login(alice_phone)
        await alice.register("alice")  # registering is open: a passphrase needs a key pair
        # Bob has one: his safe works, and he shares it with Alice.
        sid = await bob.create_safe("Shared")
        iid = await bob.add_item(sid, {"type": "note", "title": "Plan", "notes": "v1"})
        await bob.share(sid, "alice", "editor")
        ks = bob.safe_keys[(sid, 1)]
        update = item_update(alice, sid, iid, ks, "alice was here")
        items_before, safes_before = rows(rvault, items_table), rows(rvault, safes_table)

        # Alice has none: a safe read and an item write are refused, with who and how.
        body = refusal(await alice.call("GET", f"/api/safes/{enc(sid)}", expect=None))
        assert body["required_by"] == "server"
        assert body["organisation"] is None
        assert body["message"].startswith("this vault requires a vault passphrase")
        path = f"/api/safes/{enc(sid)}/items/{enc(iid)}"
        refusal(await alice.call("PUT", path, json=update, expect=None))
        refusal(await alice.call("GET", "/api/safes", expect=None))
        refusal(await alice.call("GET", f"/api/safes/{enc(sid)}/contents", expect=None))
        refusal(await alice.call("GET", "/api/users/bob", expect=None))  # sharing
        refusal(await alice.call("POST", "/api/keyproxy/grant", json={}, expect=None))
        # Nothing stored changed.
        assert rows(rvault, items_table) == items_before
        assert rows(rvault, safes_table) == safes_before
        # What she needs to comply, or to look around, answers.
        for open_path in OPEN_READS:
            await alice.call("GET", open_path)
        policy = await alice.json("GET", "/api/me/policy")
        assert policy["organisation"] is None

        # Setting the passphrase lifts it at once, in the same session.
        await alice.set_passphrase(PASSPHRASE)
        assert (await alice.safe(sid))["role"] == "editor"
        await alice.call("PUT", path, json=update)
        assert [i["notes"] for i in (await bob.items(sid)).values()] == ["alice was here"]

        # A device bypass login (no passphrase typed) is fine: the account has one.
        device = await register_device(bob)
        await enable_bypass(bob, device)
    async with rvault.client() as b2:
        await b2.login(bob_phone)
        await bypass_login(b2, device)
        assert len(await b2.json("GET", "/api/safes")) == 1


async def test_an_organisation_policy_closes_only_its_members_safes(
    hvault: VaultServer,
    net: TestNetwork,
    tmp_path: Path,
    alice_phone: PhoneApp,
    bob_phone: PhoneApp,
) -> None:
    carol_phone = await make_phone(net, tmp_path / "carol-phone.json", label="carol phone")
    alice = await with_passphrase(hvault, alice_phone, "alice")
    async with alice, hvault.client() as bob, hvault.client() as carol:
        for c, phone, handle in ((bob, bob_phone, "bob"), (carol, carol_phone, "carol")):
            await c.login(phone)
            await c.register(handle)
        sid = await bob.create_safe("Bob's")
        iid = await bob.add_item(sid, {"type": "note", "title": "Plan", "notes": "v1"})
        carol_sid = await carol.create_safe("Carol's")
        oid = (await alice.json("POST", "/api/orgs", json={"name": "Acme"}, expect=201))["org_id"]
        await alice.json("POST", f"/api/orgs/{oid}/members", json={"handle": "bob"}, expect=201)
        await bob.safe(sid)  # the policy does not require one yet

        out = await alice.json(
            "PATCH", f"/api/orgs/{oid}/policy", json={"require_passphrase": True}
        )
        assert out["policy"]["require_passphrase"] is True
        # Bob, a member without a passphrase, is refused, naming the organisation.
        body = refusal(await bob.call("GET", f"/api/safes/{enc(sid)}", expect=None))
        assert body["required_by"] == "organisation"
        assert body["organisation"] == "Acme"
        assert "your organisation 'Acme' requires" in body["message"]
        ks = bob.safe_keys[(sid, 1)]
        update = item_update(bob, sid, iid, ks, "changed")
        before = rows(hvault, items_table)
        path = f"/api/safes/{enc(sid)}/items/{enc(iid)}"
        refusal(await bob.call("PUT", path, json=update, expect=None))
        assert rows(hvault, items_table) == before
        # He can still see his organisation and what it asks.
        assert (await bob.json("GET", f"/api/orgs/{oid}"))["name"] == "Acme"
        assert (await bob.json("GET", "/api/me/policy"))["require_passphrase"] is True
        # Alice (a member with a passphrase) and Carol (no member) are not refused.
        await alice.call("GET", "/api/safes")
        await carol.safe(carol_sid)
        await carol.add_item(carol_sid, {"type": "note", "title": "Mine", "notes": "ok"})

        # Turning the policy off lifts it at once.
        await alice.json("PATCH", f"/api/orgs/{oid}/policy", json={"require_passphrase": False})
        await bob.call("PUT", path, json=update)
        assert [i["notes"] for i in (await bob.items(sid)).values()] == ["changed"]
        # On again, then Bob leaves the organisation: lifted too.
        await alice.json("PATCH", f"/api/orgs/{oid}/policy", json={"require_passphrase": True})
        refusal(await bob.call("GET", "/api/safes", expect=None))
        await bob.call("DELETE", f"/api/orgs/{oid}/members/{enc(bob.user_id)}", expect=204)  # type: ignore[arg-type]
        await bob.call("GET", "/api/safes")


async def test_the_cli_says_who_requires_it_and_the_command(
    rvault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    cli = await logged_in(rvault.url, tmp_path, tmp_path / "alice-phone.json", "alice")
    assert "vault passphrase set" in cli.results[-1].err  # the login's warning
    r = await cli.run("safes")
    assert r.code == Exit.FORBIDDEN
    assert r.err.startswith("vault: this vault requires a vault passphrase"), r.err
    assert "`vault passphrase set`" in r.err
    assert len(r.err.strip().splitlines()) == 1
    r = await cli.run("create-safe", "Home")
    assert r.code == Exit.FORBIDDEN
    await cli.ok("passphrase", "set", "--new", "stdin", stdin=PASSPHRASE + "\n")
    await cli.ok("create-safe", "Home", "--passphrase", "stdin", stdin=PASSPHRASE + "\n")
    r = await cli.ok("safes", "--passphrase", "stdin", stdin=PASSPHRASE + "\n")
    assert "Home" in r.out


def test_the_server_setting_needs_a_hardener(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="require_passphrase needs a hardener"):
        Settings(data_dir=tmp_path, require_passphrase=True)
