async (gateway) => {
  const vc = await import("/js/vaultcrypto.js");
  vc.useHpke(await import(`${gateway}/v1/hpke.js`));
  window.vc = vc;
  window.hex = vc.toHex;
  window.unhex = (s) => (s === null ? null : vc.fromHex(s));
  window.errorOf = async (fn) => {
    try {
      await fn();
      return null;
    } catch (e) {
      return { name: e.name, code: e.code ?? null, message: e.message,
               isVault: e instanceof vc.VaultCryptoError };
    }
  };
  window.x25519Private = (rawHex) =>
    crypto.subtle.importKey("pkcs8", vc.concat(vc.fromHex("302e020100300506032b656e04220420"),
                            vc.fromHex(rawHex)), { name: "X25519" }, true, ["deriveBits"]);
  window.fileBytes = (size) => {
    const out = new Uint8Array(size);
    for (let i = 0; i < size; i++) out[i] = i % 251;
    return out;
  };
  // A file vector's chunk boxes, made with the vector's nonces (long boxes are
  // given only by their SHA-256, which the vector test checks).
  window.fileBoxes = async (v) => {
    const plaintext = fileBytes(v.size);
    const boxes = [];
    for (const c of v.chunks) {
      const at = c.index * vc.CHUNK_BYTES;
      boxes.push(await vc.encryptChunk(unhex(v.file_key), plaintext.subarray(at, at + c.plaintext_size),
        { fileId: unhex(v.file_id), index: c.index, last: c.last, nonce: unhex(c.nonce) }));
    }
    return boxes;
  };
  window.sha256 = async (b) => hex(new Uint8Array(await crypto.subtle.digest("SHA-256", b)));
  return true;
}
