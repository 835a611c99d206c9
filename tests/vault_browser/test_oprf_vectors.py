"""RFC 9497 in the vault's page (headless Chromium): the vendored
@noble/curves against every ristretto255-SHA512 vector of
tests/vectors/rfc9497-oprf-ristretto255.json in all three modes, and
vault_api/static/js/crypto/oprf.js against hardener.oprf: the page blinds,
Python evaluates, the page finalizes to Python's output, and the reverse; the
page refuses a proof from another key, a tampered proof, another info and
malformed elements. The module is loaded in the real page (its CSP and its
import map), as the UI loads it."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Page

from hardener import labels, oprf
from tests.vault_browser import ui
from tests.vault_browser.conftest import Browsers, VaultSite
from tests.vectorfiles import load

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

V = load("rfc9497-oprf-ristretto255.json")
VENDOR = Path(__file__).resolve().parents[2] / "vault_api/static/js/vendor"

LOAD = """
async () => {
  window.noble = await import("/js/vendor/noble-curves-2.4.0/ed25519.js");
  window.hopr = await import("/js/crypto/oprf.js");
  window.hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  window.unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));
  // noble draws a scalar as (48 random bytes, little-endian) mod (L - 1) + 1:
  // an "rng" giving s - 1 makes it draw exactly s (how a vector's blind or r is used).
  window.fixed = (scalarHex) => (n) => {
    let v = 0n;
    const s = unhex(scalarHex);
    for (let i = s.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(s[i]);
    v -= 1n;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) { out[i] = Number(v & 0xffn); v >>= 8n; }
    return out;
  };
  window.errorOf = (fn) => {
    try { fn(); return null; } catch (e) {
      return { name: e.name, code: e.code ?? null, isOprf: e instanceof hopr.OprfError,
               message: e.message };
    }
  };
  return hopr.SUITE;
}
"""

# Runs one suite's vectors through noble's RFC 9497 code with the vectors' blinds and r.
RUN_SUITE = """
(suite) => {
  const o = noble.ristretto255_oprf;
  const split = (s) => s.split(",");
  const mode = [o.oprf, o.voprf, null][suite.mode];
  const keyInfo = unhex(suite.keyInfo);
  const out = [];
  for (const v of suite.vectors) {
    const m = suite.mode === 2 ? o.poprf(unhex(v.Info)) : mode;
    const keys = m.deriveKeyPair(unhex(suite.seed), keyInfo);
    const sk = keys.secretKey;
    const inputs = split(v.Input).map(unhex);
    const blinds = split(v.Blind);
    const blinded = inputs.map((x, i) => suite.mode === 2
      ? m.blind(x, unhex(suite.pkSm), fixed(blinds[i]))
      : m.blind(x, fixed(blinds[i])));
    const r = {
      sk: hex(sk), pk: hex(keys.publicKey),
      blind: blinded.map((b) => hex(b.blind)),
      blinded: blinded.map((b) => hex(b.blinded)),
    };
    const items = blinded.map((b, i) => ({ input: inputs[i], blind: b.blind, blinded: b.blinded }));
    if (suite.mode === 0) {
      const ev = blinded.map((b) => m.blindEvaluate(sk, b.blinded));
      r.evaluated = ev.map(hex);
      r.output = items.map((it, i) => hex(m.finalize(it.input, it.blind, ev[i])));
      r.evaluate = inputs.map((x) => hex(m.evaluate(sk, x)));
    } else {
      const rng = fixed(v.Proof.r);
      const bl = blinded.map((b) => b.blinded);
      const ev = suite.mode === 1
        ? m.blindEvaluateBatch(sk, keys.publicKey, bl, rng)
        : m.blindEvaluateBatch(sk, bl, rng);
      r.evaluated = ev.evaluated.map(hex);
      r.proof = hex(ev.proof);
      const withEv = items.map((it, i) => ({ ...it, evaluated: ev.evaluated[i] }));
      const outs = suite.mode === 1
        ? m.finalizeBatch(withEv, keys.publicKey, ev.proof)
        : m.finalizeBatch(withEv, ev.proof, blinded[0].tweakedKey);
      r.output = outs.map(hex);
      r.evaluate = inputs.map((x) => hex(m.evaluate(sk, x)));
      if (suite.mode === 2) r.tweaked = blinded.map((b) => hex(b.tweakedKey));
    }
    out.push(r);
  }
  return out;
}
"""


@pytest_asyncio.fixture(loop_scope="session")
async def page(browsers: Browsers, vault: VaultSite) -> AsyncIterator[Page]:
    p = await browsers.page()
    await ui.open_vault(p, vault)  # the real page: its CSP, its import map
    assert await p.evaluate(LOAD) == "ristretto255-SHA512"
    yield p


def _split(s: str) -> list[str]:
    return s.split(",")


@pytest.mark.parametrize("mode", [0, 1, 2], ids=["OPRF", "VOPRF", "POPRF"])
async def test_every_vector_in_the_page(page: Page, mode: int) -> None:
    suite = next(s for s in V["suites"] if s["mode"] == mode)
    got = await page.evaluate(RUN_SUITE, suite)
    assert len(got) == len(suite["vectors"])
    for r, v in zip(got, suite["vectors"], strict=True):
        assert r["sk"] == suite["skSm"]
        if "pkSm" in suite:
            assert r["pk"] == suite["pkSm"]
        assert r["blind"] == _split(v["Blind"])
        assert r["blinded"] == _split(v["BlindedElement"])
        assert r["evaluated"] == _split(v["EvaluationElement"])
        assert r["output"] == _split(v["Output"])
        assert r["evaluate"] == _split(v["Output"])
        if mode:
            assert r["proof"] == v["Proof"]["proof"]


async def test_the_wrapper_finalizes_the_vectors_and_frames_labels_as_python(page: Page) -> None:
    suite = next(s for s in V["suites"] if s["mode"] == 2)
    outs = await page.evaluate(
        """(suite) => suite.vectors.filter((v) => v.Batch === 1).map((v) => {
             const info = unhex(v.Info);
             const t = noble.ristretto255_oprf.poprf(info).blind(unhex(v.Input), unhex(suite.pkSm),
                                                                fixed(v.Blind)).tweakedKey;
             return hex(hopr.poprfFinalize(unhex(v.Input), unhex(v.Blind),
               unhex(v.EvaluationElement), unhex(v.BlindedElement), unhex(v.Proof.proof), info, t));
           })""",
        suite,
    )
    assert outs == [v["Output"] for v in suite["vectors"] if v["Batch"] == 1]
    cases = [("network", "token:00ff"), ("vault", "7f3a:passphrase"), ("vault", "é✓:recovery")]
    got = await page.evaluate(
        """(cases) => cases.map(([c, u]) => [hex(hopr.poprfInfo(c, u)),
             hex(hopr.successMessage(c, u, unhex("0102030405"), unhex("aabbcc")))])""",
        cases,
    )
    assert got == [
        [
            labels.poprf_info(c, u).hex(),
            labels.success_message(
                c, u, bytes.fromhex("0102030405"), bytes.fromhex("aabbcc")
            ).hex(),
        ]
        for c, u in cases
    ]


BLIND = """
([input, info, pk]) => {
  const b = hopr.poprfBlind(unhex(input), unhex(info), unhex(pk));
  return { blind: hex(b.blind), blinded: hex(b.blindedElement), tweaked: hex(b.tweakedKey) };
}
"""

FINALIZE = """
([input, b, ev, info]) => {
  let out = null;
  const err = errorOf(() => {
    out = hex(hopr.poprfFinalize(unhex(input), unhex(b.blind), unhex(ev.evaluated),
                                 unhex(b.blinded), unhex(ev.proof), unhex(info), unhex(b.tweaked)));
  });
  return { out, err };
}
"""


def _ev(e: oprf.Evaluation) -> dict[str, str]:
    return {"evaluated": e.evaluated_element.hex(), "proof": e.proof.hex()}


async def _finalize(
    page: Page, x: bytes, b: dict[str, str], ev: dict[str, str], info: bytes
) -> Any:
    return await page.evaluate(FINALIZE, [x.hex(), b, ev, info.hex()])


async def test_page_blinds_python_evaluates_page_finalizes(page: Page) -> None:
    key = oprf.generate_key_pair()
    info = labels.poprf_info("vault", "alice:passphrase")
    x = os.urandom(32)
    b = await page.evaluate(BLIND, [x.hex(), info.hex(), key.public.hex()])
    ev = oprf.poprf_blind_evaluate(key.secret, bytes.fromhex(b["blinded"]), info)
    got = await _finalize(page, x, b, _ev(ev), info)
    assert got == {"out": oprf.poprf_evaluate(key.secret, x, info).hex(), "err": None}
    # Python's client would have computed the same tweaked key from the pinned key.
    assert b["tweaked"] == oprf.poprf_blind(x, info, key.public).tweaked_key.hex()
    # And the same client finalize in Python, from the page's blind.
    py = oprf.poprf_finalize(
        x, bytes.fromhex(b["blind"]), ev.evaluated_element, bytes.fromhex(b["blinded"]),
        ev.proof, info, bytes.fromhex(b["tweaked"]),
    )  # fmt: skip
    assert py.hex() == got["out"]
    # Another blind each time: the hardener sees unlinkable elements.
    again = await page.evaluate(BLIND, [x.hex(), info.hex(), key.public.hex()])
    assert again["blinded"] != b["blinded"]


async def test_python_blinds_page_evaluates_python_finalizes(page: Page) -> None:
    key = oprf.generate_key_pair()
    info = labels.poprf_info("network", "token:0a0b")
    x = os.urandom(32)
    b = oprf.poprf_blind(x, info, key.public)
    js = await page.evaluate(
        """([sk, blinded, info, x]) => {
             const m = noble.ristretto255_oprf.poprf(unhex(info));
             const ev = m.blindEvaluate(unhex(sk), unhex(blinded));
             return { evaluated: hex(ev.evaluated), proof: hex(ev.proof),
                      direct: hex(m.evaluate(unhex(sk), unhex(x))) };
           }""",
        [key.secret.hex(), b.blinded_element.hex(), info.hex(), x.hex()],
    )
    out = oprf.poprf_finalize(
        x, b.blind, bytes.fromhex(js["evaluated"]), b.blinded_element,
        bytes.fromhex(js["proof"]), info, b.tweaked_key,
    )  # fmt: skip
    assert out == oprf.poprf_evaluate(key.secret, x, info)
    assert js["direct"] == out.hex()
    # A page-made proof for another info is refused by Python too.
    with pytest.raises(oprf.ProofInvalid):
        oprf.poprf_finalize(
            x, b.blind, bytes.fromhex(js["evaluated"]), b.blinded_element,
            bytes.fromhex(js["proof"]), labels.poprf_info("network", "token:ffff"),
            oprf.poprf_blind(x, labels.poprf_info("network", "token:ffff"), key.public).tweaked_key,
        )  # fmt: skip


L = 2**252 + 27742317777372353535851937790883648493


async def test_the_page_refuses_what_it_must(page: Page) -> None:
    pinned = oprf.generate_key_pair()
    impostor = oprf.generate_key_pair()
    info = labels.poprf_info("vault", "bob:recovery")
    x = b"recovery code"
    b = await page.evaluate(BLIND, [x.hex(), info.hex(), pinned.public.hex()])
    blinded = bytes.fromhex(b["blinded"])
    good = oprf.poprf_blind_evaluate(pinned.secret, blinded, info)

    async def code(ev: dict[str, str], inf: bytes = info) -> str | None:
        r = await _finalize(page, x, b, ev, inf)
        assert r["out"] is None, "refused, no output"
        assert r["err"]["isOprf"] is True
        return r["err"]["code"]  # type: ignore[no-any-return]

    # A hardener with another key: its honest proof is refused.
    assert await code(_ev(oprf.poprf_blind_evaluate(impostor.secret, blinded, info))) == (
        "oprf_proof_invalid"
    )
    # Evaluated for another user (another info): refused.
    other = oprf.poprf_blind_evaluate(pinned.secret, blinded, labels.poprf_info("vault", "eve"))
    assert await code(_ev(other)) == "oprf_proof_invalid"
    # Tampered proofs and elements.
    for i in (0, 31, 32, 63):
        p = bytearray(good.proof)
        p[i] ^= 0x01
        assert await code({**_ev(good), "proof": p.hex()}) in {
            "oprf_proof_invalid",
            "oprf_deserialize",  # a flip in the top byte can push a scalar past L
        }
    assert await code({**_ev(good), "proof": "00" * 64}) == "oprf_proof_invalid"
    assert await code({**_ev(good), "proof": good.proof.hex()[:-2]}) == "oprf_deserialize"
    past_l = L.to_bytes(32, "little").hex()
    assert await code({**_ev(good), "proof": past_l + good.proof.hex()[64:]}) == "oprf_deserialize"
    wrong_point = oprf.poprf_blind(b"other", info, pinned.public).blinded_element.hex()
    assert await code({**_ev(good), "evaluated": wrong_point}) == "oprf_proof_invalid"
    # Malformed points: the identity and RFC 9496's non-canonical encodings.
    for bad in (
        "00" * 32,
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26948d35ca62e643e26a83177332e6b6afeb9d08e4268b650f1f5bbd8d81d371",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ):
        assert await code({**_ev(good), "evaluated": bad}) == "oprf_deserialize"
        err = await page.evaluate(
            "([x, i, pk]) => errorOf(() => hopr.poprfBlind(unhex(x), unhex(i), unhex(pk)))",
            [x.hex(), info.hex(), bad],
        )
        assert err["code"] == "oprf_deserialize"
    # An input over 65535 bytes.
    err = await page.evaluate(
        "([i, pk]) => errorOf(() => hopr.poprfBlind(new Uint8Array(65536), unhex(i), unhex(pk)))",
        [info.hex(), pinned.public.hex()],
    )
    assert err["code"] == "oprf_invalid_input"
    # And the genuine evaluation still finalizes to the right output.
    ok = await _finalize(page, x, b, _ev(good), info)
    assert ok == {"out": oprf.poprf_evaluate(pinned.secret, x, info).hex(), "err": None}


async def test_vendored_files_are_those_of_the_readme(vault: VaultSite) -> None:
    readme = (VENDOR / "README.md").read_text()
    files = sorted(p for p in VENDOR.rglob("*") if p.is_file() and p.name != "README.md")
    assert files, "nothing vendored"
    listed = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    assert listed == {p.relative_to(VENDOR).as_posix() for p in files}
    async with aiohttp.ClientSession() as http:
        for p in files:
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            rel = p.relative_to(VENDOR).as_posix()
            row = rf"^\| `{re.escape(rel)}` \|.*`{digest}` \|$"
            assert re.search(row, readme, re.MULTILINE), rel
            if p.suffix == ".js":
                async with http.get(f"{vault.url}/js/vendor/{rel}") as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"].startswith("text/javascript")
                    assert await r.read() == p.read_bytes()
