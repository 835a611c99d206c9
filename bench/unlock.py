"""The unlock a person waits for, hardened by the hardener, beside its slow hash alone.

`bench/hardener.py --unlock` prints these under "unlock" (issue 9's speed
section); each figure is the median, p90 and minimum in ms of `n` runs, and
every run measures the slow hash alone right before the unlock, so both see
the same machine.

  * phone_pin (docs/protocol.md 17): an in-process TestNetwork with its real
    hardener (hardener.testing.TestHardener, mTLS) and a phone key store made
    with a PIN and enrolled, so its PIN is hardened. `argon2id_ms`: Argon2id of
    the PIN with the store's own parameters and salt. `unlock_ms`: a new app
    instance on the file unlocked with the PIN: the file read, the connection
    to the network, Argon2id, blind, HardenPin through the network's PIN relay
    to the hardener, unblind and proof check, HKDF, AES-GCM open of the store,
    and the success confirmation (ConfirmPin), which the unlock awaits.
    `unlock_connected_ms`: the same over a connection already open.
  * cli_passphrase (docs/vault.md 5.4): `vault login --phone ... --passphrase`
    against `vault-api serve` with a hardener (bench/device_login.py's stack).
    `unlock_ms`: the passphrase unlock as the CLI itself times and reports it
    ("vault passphrase accepted (... ms in all)"): the token slot opened, the
    hardener's keys and the account's factors fetched, PBKDF2 at the server's
    count, blind, the hardener round trip through the vault, unblind and proof
    check, HKDF, the wrap opened, the success reported (whole ms).
    `unlock_pbkdf2_ms` and `unlock_round_trip_ms` are the CLI's own split of
    it; `login_ms` is the whole command (the authnet token login included).
    `pbkdf2_ms`: the vault's PBKDF2 (`vault_api.crypto.factors.slow_hash`)
    alone, in this process, at the same count.
  * browser_passphrase: the vault page in headless Chromium
    (bench/page_login.py's stack). `unlock_ms`: the page's measure
    `vault:passphrase-unlock` (the same steps as the CLI's, PBKDF2 in
    WebCrypto, blind and unblind in the page); `unlock_pbkdf2_ms` and
    `unlock_round_trip_ms` its `vault:slow-hash` and
    `vault:hardener-round-trip`; `login_ms` its `vault:login` (token login ->
    vault open, less the typing). `pbkdf2_ms`: WebCrypto PBKDF2-SHA256 alone
    (key import + deriveBits, 256 bits) in the same page at the same count.

    .venv/bin/python bench/hardener.py --only unlock [--unlock-n 10] [--unlock-browser-n 5]
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from authnet.protocol.encoding import b64u_decode
from authnet.testing import TestNetwork
from bench.device_login import PASSPHRASE, PASSPHRASE_ARGS, passphrase_stack, summary
from hardener import oprf
from simulators.phone.app import PhoneApp
from tokens.phone_secrets import kek

PIN = "482915"
# The CLI's own report of the unlock (vault_api/client/session.py, open_keys).
CLI_REPORT = re.compile(
    r"vault passphrase accepted \((\d+) ms PBKDF2, (\d+) ms hardener round trip, "
    r"(\d+) ms in all\)"
)
# WebCrypto PBKDF2 as the page's slowHash runs it (vault_api/static/js/crypto/factors.js).
PAGE_PBKDF2 = """async ([secret, iterations]) => {
  const t0 = performance.now();
  const key = await crypto.subtle.importKey(
    "raw", new TextEncoder().encode(secret), "PBKDF2", false, ["deriveBits"]);
  const salt = crypto.getRandomValues(new Uint8Array(32));
  await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations }, key, 256);
  return performance.now() - t0;
}"""
PAGE_MEASURES = """() => Object.fromEntries(
  ["vault:passphrase-unlock", "vault:slow-hash", "vault:hardener-round-trip", "vault:login"]
    .map((n) => [n, performance.getEntriesByName(n, "measure").map((e) => e.duration)]))"""


def log(text: str) -> None:
    print(f"[bench/unlock] {text}", file=sys.stderr, flush=True)


# --- the phone PIN ------------------------------------------------------------------


async def _phone(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-unlock-phone-") as tmp:
        root = Path(tmp)
        async with TestNetwork(root / "net", hardener=True) as net:
            path = root / "phone.json"
            phone = PhoneApp.create(path, label="bench phone", pin=PIN)
            await phone.enrol(net.addresses.passkey, net.ca_pem)
            if not phone.store.hardened:
                raise RuntimeError(f"the phone's PIN was not hardened: {phone.pin_note}")
            sealed = phone.store.doc["sealed"]
            params = {k: int(sealed[k]) for k in ("t", "m", "p")}
            salt = b64u_decode(sealed["salt"], field="salt")
            token_id = phone.store.enrolments()[0].token_id
            argon, whole, connected = [], [], []
            log(f"{n} phone PIN unlocks (Argon2id alone, a new app, an open connection)")
            async with phone.api(phone.store.enrolment_for(net.addresses.passkey)) as api:
                for _ in range(n):
                    t0 = time.perf_counter()
                    kek(PIN, salt, params)
                    argon.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    app = PhoneApp.open(path, pin=PIN)
                    token = await app.unlocked()
                    whole.append(time.perf_counter() - t0)
                    if token.locked or not token.user_verified:
                        raise RuntimeError("the phone did not unlock")
                    t0 = time.perf_counter()
                    await app.store.open_hardened(PIN, api, token_id=token_id)
                    connected.append(time.perf_counter() - t0)
    return {
        "argon2id": params,
        "argon2id_ms": summary(argon),
        "unlock_ms": summary(whole),
        "unlock_connected_ms": summary(connected),
        "unlock_includes": (
            "new app on the key store file, connect to the network (TLS), Argon2id, "
            "POPRF blind, HardenPin via the network's PIN relay to the hardener, unblind + "
            "proof check, HKDF, AES-GCM open, ConfirmPin (the success); "
            "unlock_connected_ms: the same over an open connection"
        ),
    }


def phone_pin(n: int = 10) -> dict[str, Any]:
    return asyncio.run(_phone(n))


# --- the vault passphrase in the CLI ------------------------------------------------


async def _cli(n: int, iterations: int) -> dict[str, Any]:
    from vault_api.crypto.factors import FactorParams, slow_hash
    from vault_api.crypto.ids import ID_BYTES

    params = FactorParams.new(
        iterations=iterations, key_version=1, hardener_public_key=oprf.generate_key_pair().public
    )
    user_id = os.urandom(ID_BYTES)
    pbkdf2, unlock, in_pbkdf2, in_trip, login = [], [], [], [], []
    async with passphrase_stack(iterations) as stack:
        log(f"{n} CLI passphrase unlocks (PBKDF2 alone, `vault login --passphrase`)")
        for _ in range(n):
            t0 = time.perf_counter()
            slow_hash(PASSPHRASE, purpose="passphrase", user_id=user_id, params=params)
            pbkdf2.append(time.perf_counter() - t0)
            took, err = await stack.cli.ok(*stack.login(), *PASSPHRASE_ARGS)
            m = CLI_REPORT.search(err)
            if m is None:
                raise RuntimeError(f"`vault login` did not report the passphrase unlock: {err!r}")
            in_pbkdf2.append(int(m[1]) / 1000)
            in_trip.append(int(m[2]) / 1000)
            unlock.append(int(m[3]) / 1000)
            login.append(took)
    return {
        "pbkdf2_iterations": iterations,
        "pbkdf2_ms": summary(pbkdf2),
        "unlock_ms": summary(unlock),
        "unlock_pbkdf2_ms": summary(in_pbkdf2),
        "unlock_round_trip_ms": summary(in_trip),
        "login_ms": summary(login),
        "unlock_includes": (
            "the CLI's own 'ms in all' of the passphrase unlock: token slot open, GET "
            "/api/hardener and /api/me/factors, PBKDF2, POPRF blind, the hardener round trip "
            "through the vault, unblind + proof check, HKDF, wrap open, success report; "
            "login_ms: the whole `vault login` command (authnet token login included)"
        ),
    }


def cli_passphrase(n: int = 10, iterations: int = 600_000) -> dict[str, Any]:
    return asyncio.run(_cli(n, iterations))


# --- the vault passphrase in the page -----------------------------------------------


async def _browser(n: int, iterations: int) -> dict[str, Any]:
    from bench.page_login import PASSPHRASE as PAGE_PASSPHRASE
    from bench.page_login import login_once, passphrase_page

    pbkdf2, unlock, in_pbkdf2, in_trip, login = [], [], [], [], []
    async with passphrase_page(iterations) as v:
        log(f"{n} page passphrase unlocks (WebCrypto PBKDF2 alone, a login with the passphrase)")
        for _ in range(n):
            pbkdf2.append(
                float(await v.page.evaluate(PAGE_PBKDF2, [PAGE_PASSPHRASE, iterations])) / 1000
            )
            before = await v.page.evaluate(PAGE_MEASURES)
            await login_once(v, passphrase=True)
            after = await v.page.evaluate(PAGE_MEASURES)
            grew = len(after["vault:passphrase-unlock"]) - len(before["vault:passphrase-unlock"])
            if grew != 1:
                raise RuntimeError(f"the page measured {grew} passphrase unlocks in one login")
            unlock.append(after["vault:passphrase-unlock"][-1] / 1000)
            in_pbkdf2.append(after["vault:slow-hash"][-1] / 1000)
            in_trip.append(after["vault:hardener-round-trip"][-1] / 1000)
            login.append(after["vault:login"][-1] / 1000)
        browser = v.browser
    return {
        "measured": True,
        "browser": browser,
        "pbkdf2_iterations": iterations,
        "pbkdf2_ms": summary(pbkdf2),
        "unlock_ms": summary(unlock),
        "unlock_pbkdf2_ms": summary(in_pbkdf2),
        "unlock_round_trip_ms": summary(in_trip),
        "login_ms": summary(login),
        "unlock_includes": (
            "the page's vault:passphrase-unlock: token slot open, GET /api/hardener and "
            "/api/me/factors, PBKDF2 (WebCrypto), POPRF blind in the page, the hardener "
            "round trip through the vault, unblind + proof check, HKDF, wrap open, success "
            "report; login_ms: the page's vault:login (token login -> vault open, less typing)"
        ),
    }


def browser_passphrase(n: int = 5, iterations: int = 600_000) -> dict[str, Any]:
    from bench.page_login import CHROMIUM

    if not Path(CHROMIUM).exists():
        return {"measured": False, "reason": f"{CHROMIUM} is not installed"}
    return asyncio.run(_browser(n, iterations))


def unlock_figures(n: int = 10, browser_n: int = 5, iterations: int = 600_000) -> dict[str, Any]:
    """The three unlocks (phone PIN, CLI and page passphrase), each beside its slow hash."""
    return {
        "phone_pin": phone_pin(n),
        "cli_passphrase": cli_passphrase(n, iterations),
        "browser_passphrase": browser_passphrase(browser_n, iterations),
    }
