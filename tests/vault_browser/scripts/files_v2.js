// File body format 2 in the page against tests/vectors/vault-files-v2.json:
// every chunk box from the vector's nonce, the body opened in awkward pieces,
// fresh bodies from encryptFile and from sealChunkParts (several in flight),
// format choice, and tampering refused by name. Returns facts for Python.
async (V) => {
  const out = { label: vc.V2.label, chunkBytes: vc.V2.chunkBytes, formats: [], file: [] };
  for (const c of V.formats) {
    const fmt = vc.formatFor(c.size, c.asked_chunk_bytes);
    out.formats.push({ version: fmt.version, bodySize: vc.ciphertextSize(c.size, fmt) });
  }
  const fmt = vc.V2;
  for (const v of V.file) {
    const fileId = unhex(v.file_id);
    const fk = unhex(v.file_key);
    const plaintext = fileBytes(v.size);
    const boxes = [];
    const chunks = [];
    for (const c of v.chunks) {
      const at = c.index * fmt.chunkBytes;
      const piece = plaintext.subarray(at, at + c.plaintext_size);
      const ctx = { fileId, index: c.index, last: c.last, nonce: unhex(c.nonce), fmt };
      const box = await vc.encryptChunk(fk, piece, ctx);
      boxes.push(box);
      chunks.push({ aad: hex(vc.chunkAad(ctx)), size: box.length, sha256: await sha256(box) });
    }
    const body = vc.concat(...boxes);
    const dec = new vc.FileDecryptor(fk, fileId, fmt);
    const parts = [await dec.feed(body.subarray(0, 1))];
    for (let at = 1; at < body.length; at += 65536) parts.push(await dec.feed(body.subarray(at, at + 65536)));
    parts.push(await dec.finish());
    const again = [];
    for await (const b of vc.encryptFile(fk, fileId, [plaintext.subarray(0, 7), plaintext.subarray(7)], fmt)) {
      again.push(b);
    }
    const reopened = [];
    for await (const p of vc.decryptFile(fk, fileId, again, fmt)) reopened.push(p);
    const key = await crypto.subtle.importKey("raw", fk, "AES-GCM", false, ["encrypt", "decrypt"]);
    const n = vc.chunkCount(v.size, fmt);
    const sealed = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        vc.sealChunkParts(key, plaintext.subarray(i * fmt.chunkBytes, Math.min(v.size, (i + 1) * fmt.chunkBytes)), {
          fileId, index: i, size: v.size, fmt,
        }),
      ),
    );
    const byParts = [];
    for await (const p of vc.decryptFile(fk, fileId, [vc.concat(...sealed.flat())], fmt)) byParts.push(p);
    out.file.push({
      chunks,
      bodySize: body.length,
      ciphertextSize: vc.ciphertextSize(v.size, fmt),
      plaintextSize: vc.plaintextSize(v.body_size, fmt),
      decrypted: await sha256(vc.concat(...parts)),
      reopened: await sha256(vc.concat(...reopened)),
      byParts: await sha256(vc.concat(...byParts)),
    });
  }
  // Tampering with a three-chunk format-2 body.
  const fk = crypto.getRandomValues(new Uint8Array(32));
  const fileId = crypto.getRandomValues(new Uint8Array(16));
  const data = fileBytes(2 * fmt.chunkBytes + 10);
  const b = [];
  for await (const x of vc.encryptFile(fk, fileId, [data], fmt)) b.push(x);
  const open = async (boxes, id = fileId) => {
    const got = [];
    for await (const p of vc.decryptFile(fk, id, boxes, fmt)) got.push(p);
    return got;
  };
  const flipped = b[1].slice();
  flipped[100] ^= 1;
  out.tamper = {
    reordered: await errorOf(() => open([b[1], b[0], b[2]])),
    truncated: await errorOf(() => open(b.slice(0, 2))),
    modified: await errorOf(() => open([b[0], flipped, b[2]])),
    otherFile: await errorOf(() => open(b, crypto.getRandomValues(new Uint8Array(16)))),
    asFormat1: await errorOf(async () => {
      for await (const _ of vc.decryptFile(fk, fileId, b, vc.V1)) { /* refused */ }
    }),
  };
  // push()/end(): every chunk's decryption started as its box arrives, all in
  // flight at once, awaited in order (what downloadFile does).
  const pushAll = async (bytes, pieceSize) => {
    const dec = new vc.FileDecryptor(fk, fileId, fmt);
    const opening = [];
    for (let at = 0; at < bytes.length; at += pieceSize) {
      opening.push(...dec.push(bytes.subarray(at, at + pieceSize)));
    }
    opening.push(dec.end());
    return vc.concat(...(await vc.inOrder(opening)));
  };
  const whole = vc.concat(...b);
  const two = []; // a body whose last chunk is a full one
  for await (const x of vc.encryptFile(fk, fileId, [fileBytes(2 * fmt.chunkBytes)], fmt)) two.push(x);
  const flipped2 = b[2].slice();
  flipped2[5] ^= 1;
  out.pushed = {
    plain: await sha256(data),
    in64k: await sha256(await pushAll(whole, 65536)),
    inOddPieces: await sha256(await pushAll(whole, fmt.boxBytes - 3)),
    inOnePiece: await sha256(await pushAll(whole, whole.length)),
    twoBad: await errorOf(() => pushAll(vc.concat(b[0], flipped, flipped2), 65536)),
    truncated: await errorOf(() => pushAll(vc.concat(b[0], b[1]), whole.length)),
    extended: await errorOf(() => pushAll(vc.concat(...two, b[2]), 65536)),
  };
  return out;
};
