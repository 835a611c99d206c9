async (p) => {
  const uid = vc.newId(), kid = vc.newId(), kc = vc.randomBytes(32);
  const { privateKey, publicKey } = await vc.generateKeyPair();
  const slot = await vc.makeSlot(kc, privateKey, { userId: uid, keyId: kid });
  const ctx = { userId: uid, keyId: kid, keypairVersion: 1, publicKey };
  const other = await vc.generateKeyPair();
  const sk = await vc.openSlot(kc, slot, ctx);
  // Boxes under the right KEK and AAD: one holding another private key, one
  // holding 48 bytes that are not PKCS#8.
  const kek = await vc.slotKek(kc);
  const box = async (key) => {
    const iv = vc.randomBytes(12);
    const ct = await crypto.subtle.wrapKey(key.type === "secret" ? "raw" : "pkcs8", key, kek,
                                           { name: "AES-GCM", iv, additionalData: vc.slotAad(ctx) });
    return vc.concat(iv, new Uint8Array(ct));
  };
  const otherKeySlot = await box(other.privateKey);
  const junk = await crypto.subtle.importKey("raw", new Uint8Array(48), { name: "HMAC", hash: "SHA-256" },
                                             true, ["sign"]);
  const junkSlot = await box(junk);
  return {
    mismatch: (await errorOf(() => vc.openSlot(kc, otherKeySlot, ctx)))?.code,
    notPkcs8: (await errorOf(() => vc.openSlot(kc, junkSlot, ctx)))?.code,
    otherPublicKey: (await errorOf(() => vc.openSlot(kc, slot, { ...ctx, publicKey: other.publicKey })))?.code,
    shortSlot: (await errorOf(() => vc.openSlot(kc, slot.subarray(1), ctx)))?.code,
    wrongKc: (await errorOf(() => vc.openSlot(vc.randomBytes(32), slot, ctx)))?.code,
    nonExtractableSlot: (await errorOf(() => vc.makeSlot(kc, sk, { userId: uid, keyId: kid })))?.name,
    badB64: (await errorOf(() => vc.b64uDecode("ab=c")))?.code,
    strayBits: (await errorOf(() => vc.b64uDecode("AB")))?.code,
    goodB64: hex(vc.b64uDecode("AA")),
    roundTrip: vc.b64uEncode(vc.b64uDecode("_-8")) === "_-8",
    wrongLength: (await errorOf(() => vc.b64uDecode("AAAA", { length: 4 })))?.code,
    badType: (await errorOf(() => vc.encryptItem(vc.newSafeKey(), { type: "x", title: "t" },
      { safeId: uid, itemId: kid, folderId: null, version: 1, generation: 1 })))?.code,
    lowOrder: (await errorOf(() => vc.sealSafeKey(vc.newSafeKey(), new Uint8Array(32),
      { safeId: uid, userId: kid, generation: 1 })))?.code,
    nonces: new Set(await Promise.all(Array.from({ length: 50 }, async () =>
      hex((await vc.seal(vc.newSafeKey(), new Uint8Array(1), new Uint8Array(0))).subarray(0, 12))))).size,
    kekExtractable: kek.extractable,
    notJson: (await errorOf(async () => {
      const ks = vc.newSafeKey();
      const aad = vc.itemAad({ safeId: uid, itemId: kid, folderId: null, version: 1, generation: 1 });
      const box = await vc.seal(ks, vc.pad(new TextEncoder().encode("[1,2]")), aad);
      await vc.decryptItem(ks, box, { safeId: uid, itemId: kid, folderId: null, version: 1, generation: 1 });
    }))?.code,
  };
}
