"""The CLI's I/O-free parts: RFC 6238 codes against the RFC's own vectors,
item edits that keep what they do not know, field lookup, and the exporters'
formats read back by the importers."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from vault_api.client import exporters, importers, items, passwords, totp
from vault_api.client.contents import Folder, Item, OpenedSafe
from vault_api.client.errors import NotFound, Usage

# RFC 6238 appendix B: seeds are the ASCII digits repeated to the hash's size.
SEEDS = {
    "SHA1": b"12345678901234567890",
    "SHA256": b"12345678901234567890123456789012",
    "SHA512": b"1234567890123456789012345678901234567890123456789012345678901234",
}
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("t", "sha1", "sha256", "sha512"), RFC6238)
def test_totp_matches_rfc6238_appendix_b(t: int, sha1: str, sha256: str, sha512: str) -> None:
    for algorithm, expected in (("SHA1", sha1), ("SHA256", sha256), ("SHA512", sha512)):
        secret = base64.b32encode(SEEDS[algorithm]).decode().rstrip("=")
        uri = f"otpauth://totp/RFC:test?secret={secret}&algorithm={algorithm}&digits=8"
        assert totp.code_at(totp.parse(uri), t) == expected, (t, algorithm)


def test_rfc4226_hotp_vectors() -> None:
    # RFC 4226 appendix D.
    expected = ["755224", "287082", "359152", "969429", "338314",
                "254676", "287922", "162583", "399871", "520489"]  # fmt: skip
    assert [totp.hotp(SEEDS["SHA1"], c) for c in range(10)] == expected


def test_totp_secrets_as_people_paste_them() -> None:
    plain = totp.parse("jbsw y3dp ehpk 3pxp")
    assert plain.secret == b"Hello!\xde\xad\xbe\xef"
    assert (plain.digits, plain.period, plain.algorithm) == (6, 30, "SHA1")
    assert totp.seconds_left(plain, 59) == 1
    assert "Hello" not in repr(plain)  # never the secret
    assert "b'" not in repr(plain)
    for bad, message in [
        ("not base32!", "base32"),
        ("otpauth://hotp/x?secret=JBSWY3DP", "time-based"),
        ("otpauth://totp/x?digits=6", "no secret"),
        ("otpauth://totp/x?secret=JBSWY3DP&algorithm=MD5", "algorithm"),
        ("otpauth://totp/x?secret=JBSWY3DP&digits=12", "6 to 10 digits"),
        ("otpauth://totp/x?secret=JBSWY3DP&period=x", "whole numbers"),
    ]:
        with pytest.raises(Usage, match=message):
            totp.parse(bad)


def test_an_edit_keeps_unknown_fields_and_changes_only_what_it_names() -> None:
    item = {
        "type": "login",
        "title": "Mail",
        "username": "alice",
        "password": "old",
        "x-from-the-future": [1, 2],
        "fields": [{"name": "PIN", "value": "1", "hidden": True}],
    }
    ch = items.Changes(values={"password": "new", "username": ""})
    ch.set_fields.append(("PIN", "2", True))
    ch.set_fields.append(("Note", "n", False))
    out = items.apply(item, ch)
    assert out == {
        "type": "login",
        "title": "Mail",
        "password": "new",
        "x-from-the-future": [1, 2],
        "fields": [
            {"name": "PIN", "value": "2", "hidden": True},
            {"name": "Note", "value": "n", "hidden": False},
        ],
    }
    assert item["password"] == "old"  # the original is not touched
    assert items.changed(item, out) == ["Note", "PIN", "password", "username"]
    assert repr(items.Changes(values={"password": "n3w-secret"})) == (
        "Changes(fields=['password'], custom=0)"
    )
    with pytest.raises(Usage, match="no field 'number'"):
        items.apply(item, items.Changes(values={"number": "4111111111111111"}))
    card = items.new_item(
        "card", "C", items.Changes(values={"expiry": "3/29", "number": "4111 1111 1111 1111"})
    )
    assert (card["expiry"], card["number"]) == ("03/2029", "4111111111111111")


def test_get_field_reads_standard_then_custom_fields() -> None:
    item = {
        "type": "login",
        "title": "T",
        "urls": ["https://a", "https://b"],
        "fields": [{"name": "password", "value": "custom", "hidden": True},
                   {"name": "API key", "value": "k", "hidden": True}],
    }  # fmt: skip
    assert items.get_field(item, "url") == "https://a"
    assert items.get_field(item, "api KEY") == "k"
    # No standard password here, so the custom field of that name answers; field: forces it.
    assert items.get_field(item, "password") == "custom"
    assert items.get_field({**item, "password": "std"}, "password") == "std"
    assert items.get_field({**item, "password": "std"}, "field:password") == "custom"
    with pytest.raises(NotFound, match="it has: title, url, urls, password, API key"):
        items.get_field(item, "username")


def test_masked_items_hide_every_secret_value() -> None:
    item = {
        "type": "card",
        "title": "Visa",
        "number": "4111111111111111",
        "code": "737",
        "pin": "0000",
        "fields": [{"name": "Online", "value": "web-pw", "hidden": True}],
    }
    shown, hidden = items.masked(item)
    assert set(hidden) == {"number", "code", "pin", "Online"}
    text = repr(shown) + "\n".join(items.describe(item, reveal=False))
    for secret in ("4111111111111111", "737", "0000", "web-pw"):
        assert secret not in text
    assert "4111111111111111" in "\n".join(items.describe(item, reveal=True))
    assert items.summary(item) == "card ending 1111"


def test_generated_passwords() -> None:
    pw = passwords.generate(24)
    assert len(pw) == 24
    assert any(c in passwords.SYMBOLS for c in pw)
    assert passwords.generate(12, symbols=False).isalnum()
    assert len({passwords.generate() for _ in range(20)}) == 20
    with pytest.raises(Usage):
        passwords.generate(4)


def _safe(*contents: tuple[dict[str, Any], bytes | None]) -> OpenedSafe:
    folder = Folder(id=b"f" * 16, parent_id=None, name="Work", version=1, generation=1)
    return OpenedSafe(
        id=b"s" * 16,
        name="S",
        name_version=1,
        generation=1,
        role="admin",
        rotation_needed=False,
        key=b"k" * 32,
        folders={folder.id: folder},
        items=[
            Item(
                id=bytes([n]) * 16,
                folder_id=fid,
                version=1,
                generation=1,
                schema=1,
                content=dict(c),
                updated_ms=0,
            )
            for n, (c, fid) in enumerate(contents)
        ],
        files={},
    )


def test_exports_read_back_through_the_importers() -> None:
    login = {
        "type": "login",
        "title": "Mail",
        "username": "a",
        "password": 'p,"q"',
        "urls": ["https://m", "https://n"],
        "totp": "JBSWY3DPEHPK3PXP",
        "notes": "line1\nline2",
        "fields": [{"name": "F", "value": "v", "hidden": True}],
    }
    note = {"type": "note", "title": "N", "notes": "secret note"}
    card = {"type": "card", "title": "C", "number": "4111111111111111", "expiry": "07/2031",
            "code": "123", "cardholder": "A", "brand": "Visa"}  # fmt: skip
    safe = _safe((login, b"f" * 16), (note, None), (card, None))
    bw = exporters.export(safe, "bitwarden")
    parsed = importers.parse(bw.text, importers.detect(bw.text))
    assert {(c.folder, c.title): c.content for c in parsed.items} == {
        ("Work", "Mail"): login,
        ("", "N"): note,
        ("", "C"): card,
    }
    assert bw.left_out == []
    csv = exporters.export(safe, "csv")
    assert csv.items == 1
    back = importers.parse(csv.text, importers.detect(csv.text))
    assert back.items[0].content == {
        "type": "login",
        "title": "Mail",
        "username": "a",
        "password": 'p,"q"',
        "urls": ["https://m"],
        "notes": "line1\nline2",
    }
    assert set(csv.left_out) == {
        "1 note items (CSV holds logins)",
        "1 card items (CSV holds logins)",
        "1 URLs beyond each login's first",
        "1 TOTP secrets",
        "1 custom fields",
        "1 folder placements (CSV has no folders)",
    }
