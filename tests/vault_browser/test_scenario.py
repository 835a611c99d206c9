"""The issue's scenario end to end in headless Chromium, then the host-proof check.

Alice logs in by QR code (the phone simulator reads it off a screenshot),
makes a safe, items of every type, a folder and a file; shares the safe with
Bob as viewer after comparing fingerprints. Bob logs in in a second browser
context and reads everything, but cannot change it: the page offers no way,
and a request forced past the page gets 403 with nothing changed. Alice
removes Bob; the safe key rotates; Bob loses access. Alice downloads the file
and gets the same bytes. Then the server's database and file store are
scanned for every plaintext, Kc, private key, safe key and file key used:
none is there."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from authnet.protocol.encoding import b64u_decode
from simulators.phone.app import PhoneApp
from tests.vault.hostproof import haystacks, scan
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite
from vault_api import crypto as vc

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LOGIN = {
    "type": "login",
    "title": "Bank of Narnia",
    "username": "alice@narnia.example",
    "password": "Tr0ub4dor&3-xyzzy-5521",
    "urls": ["https://bank.narnia.example/login"],
    "totp": "otpauth://totp/Bank:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DP&issuer=Bank",
    "notes": "security question answer: aslan-wardrobe-1947",
}
CARD = {
    "type": "card",
    "title": "Household Visa card",
    "cardholder": "Alice Pevensie",
    "number": "4111222233334444",
    "expiry": "09/2031",
    "code": "8675",
}
NOTE = {"type": "note", "title": "Alarm code", "notes": "the alarm code is 7319-0042-8865"}

STATUS_LOG = """
window.__statusLog = [];
document.addEventListener("DOMContentLoaded", () => {
  const el = document.getElementById("status");
  if (el) new MutationObserver(() => window.__statusLog.push(el.textContent))
    .observe(el, { childList: true, characterData: true, subtree: true });
});
"""

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
BEFORE_SESSION = ("/api/login/ticket", "/api/login")


def record_requests(page: Page) -> list[tuple[str, str, str | None]]:
    """Every state-changing API request the page makes: (method, path, CSRF header)."""
    seen: list[tuple[str, str, str | None]] = []

    def on_request(request: Any) -> None:
        p = re.sub(r"^https?://[^/]+", "", request.url)
        if request.method in STATE_CHANGING and p.startswith("/api/"):
            seen.append((request.method, p, request.headers.get("x-csrf-token")))

    page.on("request", on_request)
    return seen


async def forced(page: Page, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """A request made from the page's origin past the UI, with the session's CSRF token."""
    token = await ui.csrf_token(page)
    got = await page.evaluate(
        """async ([method, path, token, body]) => {
             const r = await fetch(path, { method, headers: { "Content-Type": "application/json",
               "X-CSRF-Token": token }, body: body === null ? undefined : JSON.stringify(body) });
             return { status: r.status, body: await r.json().catch(() => null) };
           }""",
        [method, path, token, body],
    )
    assert isinstance(got, dict)
    return got


def item_rows(db: Path) -> dict[bytes, tuple[int, int, bytes]]:
    with sqlite3.connect(db) as c:
        return {
            r[0]: (r[1], r[2], r[3])
            for r in c.execute("SELECT item_id, version, generation, ct FROM items")
        }


async def test_share_read_revoke_rotate_and_the_server_holds_no_secret(
    browsers: Browsers,
    vault: VaultSite,
    alice_phone: PhoneApp,
    bob_phone: PhoneApp,
    tmp_path: Path,
) -> None:
    alice = await browsers.page()
    await alice.add_init_script(STATUS_LOG)
    alice_requests = record_requests(alice)
    bob = await browsers.page()
    bob_requests = record_requests(bob)

    # --- Alice: log in by QR, register, make a safe with a folder, items and a file.
    await ui.sign_up(alice, vault, alice_phone, "alice")
    await ui.create_safe(alice, "Household secrets")
    await alice.get_by_role("button", name="New folder").click()
    await alice.get_by_label("Name of the folder").fill("Money matters")
    await alice.locator("dialog").get_by_role("button", name="OK", exact=True).click()
    await ui.wait_status(alice, "Folder Money matters created")
    await ui.add_item(alice, LOGIN)
    await ui.add_item(alice, CARD, folder="Money matters")
    await ui.add_item(alice, NOTE)
    document = os.urandom(2_500_000)
    doc_path = tmp_path / "merger-plan.pdf"
    doc_path.write_bytes(document)
    await ui.select_item(alice, LOGIN["title"])
    # A slow uplink (1 MB/s, Chromium's network emulation), so the upload shows its progress.
    cdp = await alice.context.new_cdp_session(alice)
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 1_000_000},
    )
    await alice.locator("#attach-input").set_input_files(str(doc_path))
    await ui.wait_status(alice, r"Uploaded merger-plan\.pdf", wait_ms=30_000)
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    log = await alice.evaluate("window.__statusLog")
    assert "Encrypting 100%" in log, log
    uploading = [int(m[1]) for s in log if (m := re.fullmatch(r"Uploading (\d+)%", s))]
    assert any(0 < pct < 100 for pct in uploading), log
    assert uploading == sorted(uploading)
    await expect(alice.locator("#item-body")).to_contain_text("merger-plan.pdf")

    # The live TOTP code is RFC 6238's for the secret (one of the current or next window).
    code = (await alice.locator(".totp-code").text_content()) or ""
    otp_secret = base64.b32decode("JBSWY3DPEHPK3PXPJBSWY3DP")
    now = int(time.time())
    assert code in {_totp(otp_secret, now + d) for d in (-1, 0, 1, 2)}

    # --- Bob registers, so Alice can share with him.
    await ui.sign_up(bob, vault, bob_phone, "bob")
    await bob.get_by_role("button", name="Account and tokens").click()
    bob_fingerprint = await bob.locator("#my-fingerprint").text_content()
    assert bob_fingerprint is not None
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{8}){3}", bob_fingerprint)
    await bob.keyboard.press("Escape")

    # --- Alice shares as viewer, after comparing the fingerprint Bob read to her.
    await alice.get_by_role("button", name="Members").click()
    await alice.get_by_label("Share with (handle)").fill("bob")
    await alice.get_by_role("button", name="Look up").click()
    await expect(alice.locator("#share-fingerprint")).to_have_text(bob_fingerprint)
    share = alice.get_by_role("button", name="Share with bob")
    await expect(share).to_be_disabled()  # until the fingerprints are confirmed
    await alice.get_by_label("The fingerprints match").check()
    await alice.get_by_label("Role").select_option("viewer")
    await share.click()
    await ui.wait_status(alice, "Shared with bob as viewer")
    await alice.keyboard.press("Escape")

    # --- Bob reads everything, and cannot change anything.
    await bob.get_by_role("button", name="Reload safes").click()
    await ui.open_safe(bob, "Household secrets")
    await expect(bob.locator("#list-count")).to_have_text("3 items")
    await expect(bob.locator("#safe-note")).to_have_text(re.compile("viewer"))
    for name in ("New item", "Import", "New folder"):
        await expect(bob.get_by_role("button", name=name)).to_be_hidden()
    await ui.select_item(bob, LOGIN["title"])
    await expect(bob.locator("#item-body")).to_contain_text(LOGIN["username"])
    await bob.get_by_role("button", name="Show the password").click()
    await expect(bob.locator("#item-body")).to_contain_text(LOGIN["password"])
    for name in ("Edit", "Delete", "Attach file"):
        await expect(
            bob.locator("#item-body").get_by_role("button", name=name, exact=True)
        ).to_have_count(0)
    async with bob.expect_download() as dl:
        await bob.get_by_role("button", name="Download merger-plan.pdf").click()
    assert await ui.downloaded(await dl.value) == document
    await ui.select_item(bob, CARD["title"])
    await bob.get_by_role("button", name="Show the card number").click()
    await expect(bob.locator("#item-body")).to_contain_text(CARD["number"])
    await expect(bob.locator("#item-body")).to_contain_text("Money matters")

    # A write forced past the page: 403 role_forbidden, and nothing changed.
    contents = await forced(bob, "GET", "/api/safes")
    sid_text = contents["body"]["safes"][0]["id"]
    before = item_rows(vault.db_path)
    some_item = next(iter(before))
    put = await forced(
        bob,
        "PUT",
        f"/api/safes/{sid_text}/items/{vc_b64(some_item)}",
        {
            "expected_version": 1,
            "folder_id": None,
            "generation": 1,
            "schema": 1,
            "ct": vc_b64(os.urandom(60)),
        },
    )
    assert put["status"] == 403
    assert put["body"]["error"] == "role_forbidden"
    deleted = await forced(
        bob, "DELETE", f"/api/safes/{sid_text}/items/{vc_b64(some_item)}?expected_version=1"
    )
    assert deleted["status"] == 403
    assert item_rows(vault.db_path) == before

    # --- Alice removes Bob: the key rotates at once.
    await alice.get_by_role("button", name="Members").click()
    await alice.get_by_role("button", name="Remove bob").click()
    await alice.locator("#confirm-dialog").get_by_role("button", name="Remove").click()
    await ui.wait_status(alice, r"The safe key was rotated \(key generation 2\)", wait_ms=30_000)
    await alice.keyboard.press("Escape")
    after = item_rows(vault.db_path)
    assert {g for _, g, _ in after.values()} == {2}
    assert {k: v for k, (v, _, _) in after.items()} == {k: v for k, (v, _, _) in before.items()}
    assert all(after[k][2] != before[k][2] for k in before)  # every ciphertext re-encrypted

    # Bob has lost access: the page says so, and the server refuses him.
    await bob.get_by_role("button", name="Reload safes").click()
    await expect(bob.locator("#alert")).to_contain_text("no longer yours to read")
    await expect(bob.locator("#safe-list li")).to_have_count(0)
    gone = await forced(bob, "GET", f"/api/safes/{sid_text}/contents")
    assert (gone["status"], gone["body"]["error"]) == (404, "safe_not_found")

    # Alice still reads everything at generation 2; the file downloads byte for byte.
    await ui.open_safe(alice, "Household secrets")
    await expect(alice.locator("#list-count")).to_have_text("3 items")
    await ui.select_item(alice, LOGIN["title"])
    async with alice.expect_download() as dl:
        await alice.get_by_role("button", name="Download merger-plan.pdf").click()
    assert await ui.downloaded(await dl.value) == document
    await alice.get_by_role("button", name="Audit log").click()
    await expect(alice.locator("#audit-dialog")).to_contain_text("rotation.commit")
    await expect(alice.locator("#audit-dialog")).to_contain_text("member.remove")
    await alice.keyboard.press("Escape")

    # Every state-changing request after login carried the session's CSRF token.
    for requests, least in ((alice_requests, 10), (bob_requests, 1)):
        after_login = [r for r in requests if not r[1].startswith(BEFORE_SESSION)]
        assert len(after_login) >= least
        assert [(m, p) for m, p, token in after_login if not token] == []

    # --- Host-proof: nothing secret in the database or the file store.
    needles = await secrets_used(vault, {"alice": alice_phone, "bob": bob_phone}, sid_text)
    needles.update(
        {
            "a password": LOGIN["password"].encode(),
            "an item title": LOGIN["title"].encode(),
            "a user name": LOGIN["username"].encode(),
            "a note": LOGIN["notes"].encode(),
            "a TOTP secret": b"JBSWY3DPEHPK3PXPJBSWY3DP",
            "a card number": CARD["number"].encode(),
            "a card title": CARD["title"].encode(),
            "a secure note": NOTE["notes"].encode(),
            "a folder name": b"Money matters",
            "a safe name": b"Household secrets",
            "a file name": b"merger-plan.pdf",
            "the file's start": document[:64],
            "the file's end": document[-64:],
        }
    )
    stacks = haystacks(vault.db_url, vault.settings.blob_path)
    assert any(k.startswith("blob ") for k in stacks)
    assert scan(stacks, needles) == []
    # The scan does find what is there: public keys and ciphertexts.
    with sqlite3.connect(vault.db_path) as c:
        pk = c.execute("SELECT public_key FROM users WHERE handle = 'alice'").fetchone()[0]
    found = scan(stacks, {"alice's public key": pk, "a ciphertext": next(iter(after.values()))[2]})
    assert "alice's public key in database dump" in found
    assert "a ciphertext in database dump" in found


def vc_b64(b: bytes) -> str:
    from authnet.protocol.encoding import b64u_encode

    return b64u_encode(b)


def _totp(secret: bytes, t: int, digits: int = 6) -> str:
    import hmac

    mac = hmac.new(secret, (t // 30).to_bytes(8, "big"), hashlib.sha1).digest()
    o = mac[-1] & 15
    return str((int.from_bytes(mac[o : o + 4], "big") & 0x7FFFFFFF) % 10**digits).zfill(digits)


async def secrets_used(
    vault: VaultSite, phones: dict[str, PhoneApp], sid_text: str
) -> dict[str, bytes]:
    """Every key the pages used, recomputed from the tokens: each Kc (the phone
    derives it for the vault's SPID), the slot key and private key it opens, the
    safe keys (current one sealed to Alice, the older through the chain) and the
    file keys. The pages held them only as non-extractable CryptoKeys."""
    spid = vault.creds.spid
    sid = b64u_decode(sid_text, field="safe id")
    out: dict[str, bytes] = {}
    with sqlite3.connect(vault.db_path) as c:
        users = {
            h: (uid, pk)
            for uid, h, pk in c.execute("SELECT user_id, handle, public_key FROM users")
        }
        slots = list(c.execute("SELECT user_id, key_id, keypair_version, slot FROM key_slots"))
        sealed = {
            uid: (g, s)
            for uid, g, s in c.execute(
                "SELECT user_id, generation, sealed_key FROM memberships WHERE safe_id = ?", (sid,)
            )
        }
        links = {
            g: p
            for g, p in c.execute(
                "SELECT generation, previous_key FROM safe_keys WHERE safe_id = ?", (sid,)
            )
            if p
        }
        wraps = list(
            c.execute("SELECT file_id, generation, key_wrap FROM files WHERE safe_id = ?", (sid,))
        )
    private = {}
    for who, phone in phones.items():
        kc = phone.token.derive_kc(spid)
        out[f"{who}'s Kc"] = kc
        out[f"{who}'s slot key"] = vc.slot_kek(kc)
        uid, pk = users[who]
        for s_uid, kid, version, slot in slots:
            if s_uid == uid:
                sk = vc.open_slot(
                    kc, slot, user_id=uid, key_id=kid, keypair_version=version, public_key=pk
                )
                private[who] = sk
                out[f"{who}'s private key"] = sk.private_bytes_raw()
                out[f"{who}'s private key (PKCS#8)"] = vc.private_key_pkcs8(sk)
    assert set(private) == {"alice", "bob"}
    alice_uid = users["alice"][0]
    g, s = sealed[alice_uid]
    assert g == 2
    current = vc.open_safe_key(s, private["alice"], safe_id=sid, user_id=alice_uid, generation=g)
    keys = vc.key_chain(current, safe_id=sid, current_generation=g, links=links)
    assert set(keys) == {1, 2}
    for gen, key in keys.items():
        out[f"safe key generation {gen}"] = key
    assert wraps
    for fid, gen, wrap in wraps:
        out[f"file key {fid.hex()[:6]}"] = vc.unwrap_file_key(
            keys[gen], wrap, safe_id=sid, file_id=fid, generation=gen
        )
    return out
