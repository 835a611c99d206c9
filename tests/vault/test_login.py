"""Login through authnet, sessions, CSRF, idle timeout, ticket renewal and
key slots, over a real socket with a real network and phone."""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import sqlalchemy as sa

from authnet.errors import TicketConsumed
from authnet.testing import TestCluster
from simulators.phone.app import PhoneApp
from tests.cluster.stores import cluster_kwargs
from tests.helpers import make_phone
from tests.vault.conftest import VaultServer, serve_vault
from tests.vault.driver import VaultClient, dec, enc
from vault_api import crypto as vc
from vault_api.db import make_engine
from vault_api.routes.login import content_security_policy
from vault_api.schema import sessions


def session_rows(vault: VaultServer) -> list[sa.Row[object]]:
    engine = make_engine(vault.db_url)
    try:
        with engine.connect() as c:
            return list(c.execute(sessions.select()).all())
    finally:
        engine.dispose()


async def test_login_creates_a_session_with_safe_cookie_flags(
    vault: VaultServer, alice_phone: PhoneApp
) -> None:
    async with vault.client() as c:
        ticket, kc = await c.scan(alice_phone)
        r = await c.call("POST", "/api/login", json={"ticket": ticket})
        s = r.json()
        cookies = SimpleCookie()
        for header in r.headers.get_list("set-cookie"):
            cookies.load(header)
        morsel = cookies["vault_session"]
        assert morsel["httponly"]
        assert morsel["samesite"].lower() == "strict"
        assert morsel["path"] == "/"
        assert not morsel["secure"]  # served over http:// here; https origins get Secure
        assert s["user"]["registered"] is False
        assert s["slot"] is None
        assert len(dec(s["key_id"])) == 16
        # The same session, after a page reload, gives the CSRF token again.
        again = await c.json("GET", "/api/session")
        assert again["csrf_token"] == s["csrf_token"]
        # Logging in again in this browser replaces the session.
        first_cookie = morsel.value
        await c.login(alice_phone)
        assert c.http.cookies["vault_session"] != first_cookie
        # Kc never reached the server: the page-side Kc is not in the response.
        assert enc(kc) not in r.text
        assert kc.hex() not in r.text
        rows = session_rows(vault)
        assert len(rows) == 1
        # The database keys the session by the cookie's hash, never the cookie.
        current = c.http.cookies["vault_session"]
        assert rows[0].session_hash == hashlib.sha256(current.encode()).digest()


async def test_a_ticket_is_redeemed_only_by_the_browser_it_was_issued_to(
    vault: VaultServer, alice_phone: PhoneApp
) -> None:
    async with vault.client() as page, vault.client() as thief:
        ticket, _ = await page.scan(alice_phone)
        r = await thief.call("POST", "/api/login", json={"ticket": ticket}, expect=403)
        assert r.json()["error"] == "ticket_not_yours"
        # The real page still logs in with it.
        await page.call("POST", "/api/login", json={"ticket": ticket})
        # ... once.
        r = await page.call("POST", "/api/login", json={"ticket": ticket}, expect=403)
        assert r.json()["error"] == "ticket_not_yours"


async def test_cross_origin_login_calls_are_refused(vault: VaultServer) -> None:
    async with vault.client() as c:
        r = await c.call(
            "POST", "/api/login/ticket", headers={"Origin": "https://evil.example"}, expect=403
        )
        assert r.json()["error"] == "cross_origin"


async def test_no_session_is_401(vault: VaultServer) -> None:
    async with vault.client() as c:
        r = await c.call("GET", "/api/safes", expect=401)
        assert r.json()["error"] == "unauthenticated"


async def test_responses_forbid_framing_sniffing_and_caching(vault: VaultServer) -> None:
    async with vault.client() as c:
        api = await c.call("GET", "/api/config")
        page = await c.call("GET", "/")
    for r in (api, page):
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
    assert api.headers["cache-control"] == "no-store"
    assert "authnet vault" in page.text


async def test_state_changes_need_the_csrf_token_and_change_nothing_without(
    vault: VaultServer, alice: VaultClient
) -> None:
    sid = await alice.create_safe("Home")
    ks, g = await alice.key(sid)
    iid = vc.new_id()
    body = {
        "id": enc(iid),
        **alice.item_body(sid, iid, {"type": "note", "title": "n"}, ks=ks, generation=g, version=1),
    }
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        r = await alice.call(
            "POST",
            f"/api/safes/{enc(sid)}/items",
            json=body,
            headers=headers,
            csrf=False,
            expect=403,
        )
        assert r.json()["error"] == "csrf"
    assert await alice.items(sid) == {}
    await alice.call("POST", f"/api/safes/{enc(sid)}/items", json=body, expect=201)
    assert list(await alice.items(sid)) == [iid]


async def test_idle_timeout_ends_the_session(vault: VaultServer, alice: VaultClient) -> None:
    await alice.call("GET", "/api/me")
    vault.clock.advance(vault.settings.idle_timeout_seconds - 30)
    await alice.call("GET", "/api/me")  # activity keeps it alive
    vault.clock.advance(vault.settings.idle_timeout_seconds - 30)
    await alice.call("GET", "/api/me")
    vault.clock.advance(vault.settings.idle_timeout_seconds + 1)
    r = await alice.call("GET", "/api/me", expect=401)
    assert r.json()["error"] == "session_expired"
    assert session_rows(vault) == []


async def test_logout_ends_the_session_and_its_ticket(
    vault: VaultServer, alice: VaultClient
) -> None:
    ticket = session_rows(vault)[0].ticket
    await alice.logout()
    r = await alice.call("GET", "/api/me", expect=401)
    assert r.json()["error"] == "unauthenticated"  # the cookie was cleared
    async with vault.net.sp_client(vault.creds) as sp:
        with pytest.raises(TicketConsumed):
            await sp.get_puid(ticket)


async def test_the_ticket_is_renewed_while_the_session_is_used(
    vault: VaultServer, alice: VaultClient
) -> None:
    first = session_rows(vault)[0].ticket
    vault.clock.advance(vault.settings.renew_interval_seconds + 1)
    await alice.call("GET", "/api/me")
    second = session_rows(vault)[0].ticket
    assert second != first
    async with vault.net.sp_client(vault.creds) as sp:
        with pytest.raises(TicketConsumed):  # PutTicket consumed the old one
            await sp.get_puid(first)
        who = await sp.get_puid(second)
    assert who.key_id == enc(alice.key_id or b"")


async def test_revoking_the_token_ends_the_session_at_the_next_renewal(
    vault: VaultServer, alice: VaultClient, alice_phone: PhoneApp, tmp_path: object
) -> None:
    backup = await make_phone(vault.net, tmp_path / "backup.json", backup_of=alice_phone)  # type: ignore[operator]
    enrolment = alice_phone.enrolment(None)
    await backup.revoke(enrolment.token_id)
    vault.clock.advance(vault.settings.renew_interval_seconds + 1)
    r = await alice.call("GET", "/api/me", expect=401)
    assert r.json()["error"] == "session_ended"
    assert session_rows(vault) == []


async def test_two_tokens_of_one_account_each_open_the_vault(
    vault: VaultServer, alice: VaultClient, alice_phone: PhoneApp, tmp_path: object
) -> None:
    backup = await make_phone(vault.net, tmp_path / "backup.json", backup_of=alice_phone)  # type: ignore[operator]
    sid = await alice.create_safe("Home")
    iid = await alice.add_item(sid, {"type": "login", "title": "Mail", "password": "pw-1"})
    # A slot for a token the session has not proved is refused.
    other_kid = vc.new_id()
    assert alice.private_key is not None
    assert alice.user_id is not None
    slot = vc.make_slot(b"k" * 32, alice.private_key, user_id=alice.user_id, key_id=other_kid)
    r = await alice.call(
        "PUT",
        f"/api/me/slots/{enc(other_kid)}",
        json={"keypair_version": 1, "slot": enc(slot)},
        expect=403,
    )
    assert r.json()["error"] == "key_id_not_proven"
    backup_kid = await alice.add_token(backup)
    me = await alice.json("GET", "/api/me")
    assert {dec(s["key_id"]) for s in me["slots"]} == {alice.key_id, backup_kid}

    # A fresh browser with only the backup token opens the same vault.
    async with vault.client() as c:
        s = await c.login(backup)
        assert dec(s["key_id"]) == backup_kid
        assert s["user"]["user_id"] == enc(alice.user_id)
        assert c.private_key is not None
        assert vc.public_key_bytes(c.private_key) == alice.public_key
        assert (await c.items(sid))[iid]["password"] == "pw-1"
        # The phone's slot does not open with the backup's Kc.
        phone_slot = next(x for x in me["slots"] if dec(x["key_id"]) == alice.key_id)
        with pytest.raises(vc.SlotInvalid):
            vc.open_slot(
                c.kc[backup_kid],
                dec(phone_slot["slot"]),
                user_id=alice.user_id,
                key_id=alice.key_id or b"",
                keypair_version=1,
                public_key=alice.public_key or b"",
            )
    # The last slot cannot be removed; one of two can.
    await alice.call("DELETE", f"/api/me/slots/{enc(backup_kid)}", expect=204)
    r = await alice.call("DELETE", f"/api/me/slots/{enc(alice.key_id or b'')}", expect=409)
    assert r.json()["error"] == "last_slot"


async def test_a_token_of_another_account_cannot_be_added(
    vault: VaultServer, alice: VaultClient, bob_phone: PhoneApp
) -> None:
    ticket, _ = await alice.scan(bob_phone)
    r = await alice.call("POST", "/api/session/tokens", json={"ticket": ticket}, expect=403)
    assert r.json()["error"] == "other_account"


async def test_registering_twice_or_a_taken_handle_is_409(
    vault: VaultServer, alice: VaultClient, bob_phone: PhoneApp
) -> None:
    r = await alice.call(
        "POST",
        "/api/me",
        json={"handle": "alice2", "public_key": enc(b"\x09" * 32), "slot": enc(b"\x00" * 76)},
        expect=409,
    )
    assert r.json()["error"] == "already_registered"
    async with vault.client() as bob:
        await bob.login(bob_phone)
        r = await bob.call(
            "POST",
            "/api/me",
            json={"handle": "alice", "public_key": enc(b"\x09" * 32), "slot": enc(b"\x00" * 76)},
            expect=409,
        )
        assert r.json()["error"] == "handle_taken"
        # Not registered yet: the safes are closed to this session.
        r = await bob.call("GET", "/api/safes", expect=403)
        assert r.json()["error"] == "not_registered"


async def test_an_unreachable_network_postpones_renewal_until_the_ticket_ends(
    vault: VaultServer, alice: VaultClient
) -> None:
    before = session_rows(vault)[0]
    await vault.net.node.stop(grace=0)
    vault.clock.advance(vault.settings.renew_interval_seconds + 1)
    await alice.call("GET", "/api/me")  # still served: the ticket has time left
    after = session_rows(vault)[0]
    assert after.ticket == before.ticket
    assert after.renewed_ms > before.renewed_ms  # the next try waits an interval
    vault.clock.advance(600)
    await alice.call("GET", "/api/me")  # 661 s in: still within the ticket's 1200 s
    vault.clock.advance(600)
    r = await alice.call("GET", "/api/me", expect=401)  # 1261 s: the ticket is over
    assert r.json()["error"] == "session_ended"
    assert session_rows(vault) == []


def _connect_sources(csp: str) -> list[str]:
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    return directives["connect-src"].split()


async def test_the_page_may_connect_to_every_gateway_a_ticket_listed(
    db_url: str, tmp_path: Path
) -> None:
    """On a cluster the page resumes its wait on another node's gateway
    (docs/protocol.md 16.3): its Content-Security-Policy lets it, once the
    vault has seen a ticket that lists them."""
    async with (
        cluster_kwargs("memory") as kwargs,
        TestCluster(tmp_path / "net", **kwargs) as cluster,
        serve_vault(cluster.nodes[0], db_url, tmp_path) as vault,
        vault.client() as c,
    ):
        origins = [n.addresses.gateway_url.rstrip("/") for n in cluster.nodes]
        sockets = ["ws" + o.removeprefix("http") for o in origins]
        before = _connect_sources((await c.call("GET", "/")).headers["content-security-policy"])
        assert origins[0] in before
        assert origins[1] not in before
        ticket = (await c.call("POST", "/api/login/ticket", expect=201)).json()
        assert [u.rstrip("/") for u in ticket["gateway_urls"]] == origins
        after = _connect_sources((await c.call("GET", "/")).headers["content-security-policy"])
        assert set(origins + sockets) <= set(after)
        assert after[0] == "'self'"


def test_a_gateway_url_that_is_not_a_plain_origin_stays_out_of_the_policy() -> None:
    csp = content_security_policy(
        [
            "http://127.0.0.1:7480",
            "https://gw2.example:8443/path",
            "https://evil.example; script-src *",
            "javascript:alert(1)",
            "https://[::1]:7480",
        ]
    )
    assert _connect_sources(csp) == [
        "'self'",
        "http://127.0.0.1:7480",
        "ws://127.0.0.1:7480",
        "https://gw2.example:8443",
        "wss://gw2.example:8443",
        "https://[::1]:7480",
        "wss://[::1]:7480",
        "http://127.0.0.1:7481",
    ]
    assert "script-src *" not in csp
