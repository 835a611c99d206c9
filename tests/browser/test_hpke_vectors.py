"""hpke.js against RFC 9180 Appendix A.1.1 (the suite authnet seals Kc with), in Chromium."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page

from tests.vectorfiles import load

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Runs in the page: every intermediate value, every encryption opened in
# sequence, every export, and what happens to altered inputs.
RUN_VECTOR = """
async (v) => {
  const h = window.hpke;
  const b64u = window.authnet.b64uEncode;
  const skR = await crypto.subtle.importKey(
    "jwk",
    { kty: "OKP", crv: "X25519", d: b64u(unhex(v.skRm)), x: b64u(unhex(v.pkRm)) },
    { name: "X25519" },
    false,
    ["deriveBits"],
  );
  const pkR = await crypto.subtle.importKey("raw", unhex(v.pkRm), { name: "X25519" }, true, []);
  const recipient = { privateKey: skR, publicKey: pkR };
  const enc = unhex(v.enc);
  const info = unhex(v.info);

  const sharedSecret = await h.decap(enc, recipient);
  const ks = await h.keySchedule(sharedSecret, info);

  const ctx = await h.setupBaseR({ enc, recipient, info });
  const opened = [];
  for (const e of v.encryptions) {
    // Published vectors skip sequence numbers (3, 5..254): move past the gap.
    const skipped = ctx.seq !== e.sequence_number;
    if (skipped) ctx.seq = e.sequence_number;
    const pt = await ctx.open(unhex(e.aad), unhex(e.ct));
    opened.push({ seq: e.sequence_number, skipped, pt: hex(pt), seqAfter: ctx.seq });
  }
  const exports = [];
  for (const x of v.exports) exports.push(hex(await ctx.export(unhex(x.exporter_context), x.L)));

  // Altered inputs, each against a fresh context at sequence number 0.
  const first = v.encryptions[0];
  const outcome = async (mutate) => {
    const c = await h.setupBaseR({ enc, recipient, info });
    const ct = unhex(first.ct);
    const aad = unhex(first.aad);
    mutate({ ct, aad });
    const err = await errorOf(c.open(aad, ct));
    return { error: err && err.name, seqAfter: c.seq };
  };
  const flipFirst = await outcome(({ ct }) => { ct[0] ^= 0x01; });
  const flipTag = await outcome(({ ct }) => { ct[ct.length - 1] ^= 0x80; });
  const wrongAad = await outcome(({ aad }) => { aad[aad.length - 1] ^= 0x01; });
  // After a failure the context has not moved: the genuine message still opens.
  const c = await h.setupBaseR({ enc, recipient, info });
  const bad = unhex(first.ct);
  bad[5] ^= 0x10;
  const failedThenOpened = [
    (await errorOf(c.open(unhex(first.aad), bad)))?.name,
    hex(await c.open(unhex(first.aad), unhex(first.ct))),
  ];
  // Single-shot opens at sequence number 0 only.
  const oneShot = hex(
    await h.openBase({ enc, recipient, info, aad: unhex(first.aad), ct: unhex(first.ct) }),
  );
  const second = v.encryptions[1];
  const oneShotSeq1 = (await errorOf(
    h.openBase({ enc, recipient, info, aad: unhex(second.aad), ct: unhex(second.ct) }),
  ))?.name;
  // A different enc decapsulates to a different secret; a small-order one is refused.
  const otherEnc = enc.slice();
  otherEnc[0] ^= 0x01;
  const wrongEnc = (await errorOf(
    h.openBase({ enc: otherEnc, recipient, info, aad: unhex(first.aad), ct: unhex(first.ct) }),
  ))?.name;
  const zeroEnc = (await errorOf(h.decap(new Uint8Array(32), recipient)))?.name;
  const shortEnc = (await errorOf(h.decap(enc.slice(0, 31), recipient)))?.name;
  const wrongInfo = (await errorOf(
    h.openBase({ enc, recipient, info: unhex("00"), aad: unhex(first.aad), ct: unhex(first.ct) }),
  ))?.name;

  return {
    sharedSecret: hex(sharedSecret),
    keyScheduleContext: hex(ks.keyScheduleContext),
    secret: hex(ks.secret),
    key: hex(ks.key),
    baseNonce: hex(ks.baseNonce),
    exporterSecret: hex(ks.exporterSecret),
    opened,
    exports,
    flipFirst,
    flipTag,
    wrongAad,
    failedThenOpened,
    oneShot,
    oneShotSeq1,
    wrongEnc,
    zeroEnc,
    shortEnc,
    wrongInfo,
    skRExtractable: skR.extractable,
  };
}
"""


def _vectors() -> list[dict[str, Any]]:
    vectors = load("rfc9180-hpke.json")["vectors"]
    chosen = [
        v
        for v in vectors
        if (v["mode"], v["kem_id"], v["kdf_id"], v["aead_id"]) == (0, 0x20, 0x01, 0x01)
    ]
    assert chosen, "no A.1.1 vector in rfc9180-hpke.json"
    return chosen


async def test_rfc9180_a11_in_chromium(page: Page) -> None:
    for v in _vectors():
        got = await page.evaluate(RUN_VECTOR, v)

        assert got["sharedSecret"] == v["shared_secret"]
        assert got["keyScheduleContext"] == v["key_schedule_context"]
        assert got["secret"] == v["secret"]
        assert got["key"] == v["key"]
        assert got["baseNonce"] == v["base_nonce"]
        assert got["exporterSecret"] == v["exporter_secret"]

        seqs = [e["sequence_number"] for e in v["encryptions"]]
        assert seqs == [0, 1, 2, 4, 255, 256]
        assert got["opened"] == [
            {
                "seq": e["sequence_number"],
                "skipped": e["sequence_number"] in (4, 255),
                "pt": e["pt"],
                "seqAfter": e["sequence_number"] + 1,
            }
            for e in v["encryptions"]
        ]
        assert len(v["exports"]) == 3
        assert got["exports"] == [x["exported_value"] for x in v["exports"]]

        for case in ("flipFirst", "flipTag", "wrongAad"):
            assert got[case] == {"error": "OpenError", "seqAfter": 0}, case
        assert got["failedThenOpened"] == ["OpenError", v["encryptions"][0]["pt"]]
        assert got["oneShot"] == v["encryptions"][0]["pt"]
        assert got["oneShotSeq1"] == "OpenError"
        assert got["wrongEnc"] == "OpenError"
        assert got["zeroEnc"] == "DecapError"
        assert got["shortEnc"] == "DecapError"
        assert got["wrongInfo"] == "OpenError"
        assert got["skRExtractable"] is False


# The sender side: DeriveKeyPair, then SetupBaseS with the vector's ikmE must
# give the vector's enc, every ciphertext in sequence, and every export.
SEAL_VECTOR = """
async (v) => {
  const h = window.hpke;
  const derivedE = await h.deriveKeyPair(unhex(v.ikmE));
  const derivedR = await h.deriveKeyPair(unhex(v.ikmR));
  const info = unhex(v.info);
  const pkR = unhex(v.pkRm);

  const { enc, ctx } = await h.setupBaseS({ pkR, info, ikmE: unhex(v.ikmE) });
  const sealed = [];
  for (const e of v.encryptions) {
    if (ctx.seq !== e.sequence_number) ctx.seq = e.sequence_number;
    sealed.push(hex(await ctx.seal(unhex(e.aad), unhex(e.pt))));
  }
  const exports = [];
  for (const x of v.exports) exports.push(hex(await ctx.export(unhex(x.exporter_context), x.L)));
  const backwards = await errorOf((async () => { ctx.seq = 0; })());

  const first = v.encryptions[0];
  const oneShot = await h.sealBase({ pkR, info, aad: unhex(first.aad), pt: unhex(first.pt),
                                     ikmE: unhex(v.ikmE) });

  // A random ephemeral key: each seal differs, and the recipient opens both.
  const recipient = derivedR.keyPair;
  const pt = unhex(first.pt);
  const a = await h.sealBase({ pkR, info, aad: unhex(first.aad), pt });
  const b = await h.sealBase({ pkR: recipient.publicKey, info, aad: unhex(first.aad), pt });
  const openedA = hex(await h.openBase({ enc: a.enc, recipient, info, aad: unhex(first.aad),
                                        ct: a.ct }));
  const openedB = hex(await h.openBase({ enc: b.enc, recipient, info, aad: unhex(first.aad),
                                        ct: b.ct }));
  const otherInfo = (await errorOf(h.openBase({ enc: a.enc, recipient, info: unhex("00"),
                                                aad: unhex(first.aad), ct: a.ct })))?.name;
  // Two seals in flight on one context take distinct sequence numbers.
  const { enc: enc2, ctx: c2 } = await h.setupBaseS({ pkR, info });
  const [x, y] = await Promise.all([c2.seal(EMPTY(), pt), c2.seal(EMPTY(), pt)]);
  const r2 = await h.setupBaseR({ enc: enc2, recipient, info });
  const inOrder = [hex(await r2.open(EMPTY(), x)), hex(await r2.open(EMPTY(), y))];

  return {
    skEPublic: hex(derivedE.publicKey),
    pkRDerived: hex(derivedR.publicKey),
    skRPublic: hex(await h.publicKeyOf(recipient.privateKey)),
    derivedExtractable: derivedE.keyPair.privateKey.extractable,
    enc: hex(enc),
    sealed,
    exports,
    backwards: backwards && backwards.name,
    oneShot: { enc: hex(oneShot.enc), ct: hex(oneShot.ct) },
    randomEncsDiffer: hex(a.enc) !== hex(b.enc) && hex(a.enc) !== v.enc,
    openedA,
    openedB,
    otherInfo,
    inOrder,
    zeroPk: (await errorOf(h.sealBase({ pkR: new Uint8Array(32), info, pt })))?.name,
    shortPk: (await errorOf(h.sealBase({ pkR: pkR.slice(0, 31), info, pt })))?.name,
    shortIkm: (await errorOf(h.deriveKeyPair(new Uint8Array(16))))?.name,
  };
}
""".replace("EMPTY()", "new Uint8Array(0)")


async def test_rfc9180_a11_seal_in_chromium(page: Page) -> None:
    for v in _vectors():
        got = await page.evaluate(SEAL_VECTOR, v)

        assert got["skEPublic"] == v["pkEm"]
        assert got["pkRDerived"] == v["pkRm"]
        assert got["skRPublic"] == v["pkRm"]
        assert got["derivedExtractable"] is False
        assert got["enc"] == v["enc"]
        assert got["sealed"] == [e["ct"] for e in v["encryptions"]]
        assert got["exports"] == [x["exported_value"] for x in v["exports"]]
        assert got["backwards"] == "RangeError"
        first = v["encryptions"][0]
        assert got["oneShot"] == {"enc": v["enc"], "ct": first["ct"]}
        assert got["randomEncsDiffer"] is True
        assert got["openedA"] == first["pt"]
        assert got["openedB"] == first["pt"]
        assert got["otherInfo"] == "OpenError"
        assert got["inOrder"] == [first["pt"], first["pt"]]
        assert got["zeroPk"] == "EncapError"
        assert got["shortPk"] == "InvalidInputError"
        assert got["shortIkm"] == "DeriveKeyPairError"
