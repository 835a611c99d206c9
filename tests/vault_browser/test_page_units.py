"""The page's small pure modules in Chromium: TOTP (RFC 6238 Appendix B
vectors, otpauth URIs), the password generator (lengths, classes, no bias a
test can see), and the CSV reader/writer."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from tests.vault_browser.conftest import Browsers, VaultSite, script
from tests.vectorfiles import load

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def module_page(browsers: Browsers, vault: VaultSite) -> Page:
    page = await browsers.page()
    await page.goto(f"{vault.url}/api/health")
    return page


TOTP = script("totp")


async def test_totp_against_rfc6238(browsers: Browsers, vault: VaultSite) -> None:
    page = await module_page(browsers, vault)
    v = load("rfc6238-totp.json")
    assert len(v["vectors"]) == 18
    got = await page.evaluate(TOTP, v)
    assert got["codes"] == [x["totp"] for x in v["vectors"]]
    assert got["uri"] == {
        "issuer": "ACME Co",
        "account": "john.doe@email.com",
        "algorithm": "SHA256",
        "digits": 8,
        "period": 60,
        "secretLength": 20,
    }
    assert bytes(got["bare"]) == b"Hello!\xde\xad\xbe\xef"
    assert got["left"] == 1
    assert got["errors"] == ["otp_invalid"] * 5


GENERATOR = script("generator")


async def test_password_generator_is_uniform_and_honours_the_options(
    browsers: Browsers, vault: VaultSite
) -> None:
    page = await module_page(browsers, vault)
    got = await page.evaluate(GENERATOR)
    assert got["lengths"] == [24]
    assert got["everyClass"] is True
    assert got["digitsOnly"].isdigit()
    assert len(got["digitsOnly"]) == 12
    assert got["errors"] == ["RangeError"] * 3
    assert got["alphabet"] == 90
    assert got["bits"] == 129  # floor(20 * log2(90))
    # 48,000 characters over 90 symbols: about 533 each. A biased choice (say
    # `random % n` over bytes) would push some well past these generous bounds.
    expected = got["total"] / got["alphabet"]
    assert all(0.75 * expected < n < 1.25 * expected for n in got["counts"].values()), got["counts"]
    assert all(9000 < n < 11000 for n in got["thirds"]), got["thirds"]


CSV = script("csv")


async def test_csv_reads_what_it_writes(browsers: Browsers, vault: VaultSite) -> None:
    page = await module_page(browsers, vault)
    got = await page.evaluate(CSV)
    assert got["text"] == 'a,"b,c","d""e"\r\n"line\nbreak"," padded ",\r\n'
    assert got["back"] == [["a", "b,c", 'd"e'], ["line\nbreak", " padded ", ""]]
    assert got["crlf"] == [["x", "y"], ["1", "2\r\n3"]]
    assert got["unterminated"] == "SyntaxError"
