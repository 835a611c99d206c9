async (V) => {
  const out = {};
  out.transcript = V.transcript.map((t) => hex(vc.transcript(t.label, ...t.fields.map(unhex))));
  out.padding = V.padding.map((p) => hex(vc.pad(unhex(p.text))));
  out.labels = vc.LABELS;

  out.slot = [];
  for (const v of V.slot) {
    const ctx = { userId: unhex(v.user_id), keyId: unhex(v.key_id),
                  keypairVersion: v.keypair_version, publicKey: unhex(v.public_key) };
    const kc = unhex(v.kc);
    const kcKey = await crypto.subtle.importKey("raw", kc, "HKDF", false, ["deriveBits", "deriveKey"]);
    const kekBits = await crypto.subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: new TextEncoder().encode(vc.LABELS.slotKek) },
      kcKey, 256);
    const sk = await x25519Private(v.private_key);
    const made = await vc.makeSlot(kc, sk, { ...ctx, nonce: unhex(v.nonce) });
    const madeWithKcKey = await vc.makeSlot(kcKey, sk, { ...ctx, nonce: unhex(v.nonce) });
    const opened = await vc.openSlot(kc, unhex(v.slot), ctx);
    const openedWithKek = await vc.openSlot(await vc.importKek(unhex(v.kek)), unhex(v.slot), ctx);
    const openedExtractable = await vc.openSlot(kc, unhex(v.slot), { ...ctx, extractable: true });
    out.slot.push({
      kek: hex(new Uint8Array(kekBits)),
      aad: hex(vc.slotAad(ctx)),
      slot: hex(made),
      slotWithKcKey: hex(madeWithKcKey),
      publicKey: hex(await vc.publicKeyBytes(opened)),
      publicKeyWithKek: hex(await vc.publicKeyBytes(openedWithKek)),
      extractable: opened.extractable,
      usages: opened.usages,
      exportError: (await errorOf(() => crypto.subtle.exportKey("pkcs8", opened)))?.name,
      pkcs8: hex(new Uint8Array(await crypto.subtle.exportKey("pkcs8", openedExtractable))),
    });
  }

  out.safeKey = [];
  for (const v of V.safe_key) {
    const ctx = { safeId: unhex(v.safe_id), userId: unhex(v.user_id), generation: v.generation };
    const recipient = { privateKey: await x25519Private(v.recipient_private_key),
                        publicKey: unhex(v.recipient_public_key) };
    const sealed = await vc.sealSafeKey(unhex(v.safe_key), unhex(v.recipient_public_key),
                                        { ...ctx, ikmE: unhex(v.ikmE) });
    const key = await vc.openSafeKey(unhex(v.sealed), recipient, ctx);
    const raw = await vc.openSafeKey(unhex(v.sealed), recipient, { ...ctx, raw: true });
    // The CryptoKey is Ks: it opens a box made under the raw vector key.
    const probe = await vc.seal(unhex(v.safe_key), new Uint8Array([1, 2, 3]), new Uint8Array(0));
    const random = await vc.sealSafeKey(unhex(v.safe_key), unhex(v.recipient_public_key), ctx);
    out.safeKey.push({
      info: hex(vc.safeKeyInfo(ctx)),
      sealed: hex(sealed),
      raw: hex(raw),
      extractable: key.extractable,
      usages: key.usages,
      probe: hex(await vc.openBox(key, probe, new Uint8Array(0), "probe")),
      randomOpens: hex(await vc.openSafeKey(random, recipient, { ...ctx, raw: true })),
      randomDiffers: hex(random) !== hex(sealed),
    });
  }

  out.previousKey = [];
  for (const v of V.previous_key) {
    const ctx = { safeId: unhex(v.safe_id) };
    const box = await vc.wrapPreviousKey(unhex(v.new_key), unhex(v.old_key),
                                         { ...ctx, oldGeneration: v.old_generation, nonce: unhex(v.nonce) });
    const old = await vc.unwrapPreviousKey(unhex(v.new_key), unhex(v.box),
                                           { ...ctx, newGeneration: v.new_generation, extractable: true });
    const chain = await vc.keyChain(unhex(v.new_key), { ...ctx, currentGeneration: v.new_generation,
                                                        links: { [v.new_generation]: unhex(v.box) } });
    out.previousKey.push({
      aad: hex(vc.previousKeyAad({ ...ctx, oldGeneration: v.old_generation, newGeneration: v.new_generation })),
      box: hex(box),
      old: hex(new Uint8Array(await crypto.subtle.exportKey("raw", old))),
      chainGenerations: [...chain.keys()],
      chainOldExtractable: chain.get(v.old_generation).extractable,
    });
  }

  out.safeName = [];
  for (const v of V.safe_name) {
    const ctx = { safeId: unhex(v.safe_id), version: v.version, generation: v.generation };
    out.safeName.push({
      aad: hex(vc.safeNameAad(ctx)),
      plaintext: hex(vc.encodeJson({ name: v.name })),
      ciphertext: hex(await vc.encryptSafeName(unhex(v.key), v.name, { ...ctx, nonce: unhex(v.nonce) })),
      name: await vc.decryptSafeName(unhex(v.key), unhex(v.ciphertext), ctx),
    });
  }

  out.folder = [];
  for (const v of V.folder) {
    const ctx = { safeId: unhex(v.safe_id), folderId: unhex(v.folder_id), parentId: unhex(v.parent_id),
                  version: v.version, generation: v.generation };
    out.folder.push({
      aad: hex(vc.folderAad(ctx)),
      plaintext: hex(vc.encodeJson({ name: v.name })),
      ciphertext: hex(await vc.encryptFolderName(unhex(v.key), v.name, { ...ctx, nonce: unhex(v.nonce) })),
      name: await vc.decryptFolderName(unhex(v.key), unhex(v.ciphertext), ctx),
    });
  }

  out.item = [];
  for (const v of V.item) {
    const ctx = { safeId: unhex(v.safe_id), itemId: unhex(v.item_id), folderId: unhex(v.folder_id),
                  version: v.version, generation: v.generation, schema: v.schema };
    out.item.push({
      aad: hex(vc.itemAad(ctx)),
      plaintext: hex(vc.encodeJson(v.content)),
      ciphertext: hex(await vc.encryptItem(unhex(v.key), v.content, { ...ctx, nonce: unhex(v.nonce) })),
      content: await vc.decryptItem(unhex(v.key), unhex(v.ciphertext), ctx),
    });
  }

  out.fileKey = [];
  for (const v of V.file_key) {
    const ctx = { safeId: unhex(v.safe_id), fileId: unhex(v.file_id), generation: v.generation };
    const fk = await vc.unwrapFileKey(unhex(v.safe_key), unhex(v.wrapped), { ...ctx, extractable: true });
    const plain = await vc.unwrapFileKey(unhex(v.safe_key), unhex(v.wrapped), ctx);
    out.fileKey.push({
      aad: hex(vc.fileKeyAad(ctx)),
      wrapped: hex(await vc.wrapFileKey(unhex(v.safe_key), unhex(v.file_key), { ...ctx, nonce: unhex(v.nonce) })),
      wrappedFromKey: hex(await vc.wrapFileKey(unhex(v.safe_key), fk, { ...ctx, nonce: unhex(v.nonce) })),
      fileKey: hex(new Uint8Array(await crypto.subtle.exportKey("raw", fk))),
      extractable: plain.extractable,
    });
  }

  out.file = [];
  for (const v of V.file) {
    const fileId = unhex(v.file_id);
    const fk = unhex(v.file_key);
    const plaintext = fileBytes(v.size);
    const chunks = [];
    for (const c of v.chunks) {
      const piece = plaintext.subarray(c.index * vc.CHUNK_BYTES, c.index * vc.CHUNK_BYTES + c.plaintext_size);
      const box = await vc.encryptChunk(fk, piece, { fileId, index: c.index, last: c.last, nonce: unhex(c.nonce) });
      chunks.push({ aad: hex(vc.chunkAad({ fileId, index: c.index, last: c.last })), size: box.length,
                    sha256: await sha256(box), box: c.box ? hex(box) === c.box : null });
    }
    const body = vc.concat(...(await fileBoxes(v)));
    // Fed in awkward pieces: 1 byte, then 1000-byte pieces.
    const dec = new vc.FileDecryptor(fk, fileId);
    const parts = [await dec.feed(body.subarray(0, 1))];
    for (let at = 1; at < body.length; at += 1000) parts.push(await dec.feed(body.subarray(at, at + 1000)));
    parts.push(await dec.finish());
    const streamed = [];
    for await (const p of vc.decryptFile(fk, fileId, [body])) streamed.push(p);
    // encryptFile from odd pieces makes a body that opens to the same bytes.
    const pieces = [plaintext.subarray(0, 7), plaintext.subarray(7)];
    const boxes = [];
    for await (const b of vc.encryptFile(fk, fileId, pieces)) boxes.push(b);
    const again = [];
    for await (const p of vc.decryptFile(fk, fileId, boxes)) again.push(p);
    out.file.push({
      chunks,
      bodySize: body.length,
      ciphertextSize: vc.ciphertextSize(v.size),
      plaintextSize: vc.plaintextSize(v.body_size),
      chunkCount: vc.chunkCount(v.size),
      decrypted: await sha256(vc.concat(...parts)),
      streamed: await sha256(vc.concat(...streamed)),
      reencryptedSizes: boxes.map((b) => b.length),
      reencrypted: await sha256(vc.concat(...again)),
      decryptorChunks: dec.chunks,
    });
  }

  out.fileKeyMove = [];
  for (const v of V.file_key_move) {
    const ctx = { fileId: unhex(v.file_id), fromSafeId: unhex(v.from_safe_id), fromGeneration: v.from_generation,
                  toSafeId: unhex(v.to_safe_id), toGeneration: v.to_generation };
    const toCtx = { safeId: ctx.toSafeId, fileId: ctx.fileId, generation: v.to_generation };
    // With raw keys and with non-extractable CryptoKeys, as the page holds them.
    const fromKey = await vc.importSafeKey(unhex(v.from_safe_key));
    const toKey = await vc.importSafeKey(unhex(v.to_safe_key));
    const moved = await vc.rewrapFileKey(unhex(v.from_safe_key), unhex(v.to_safe_key), unhex(v.from_wrapped),
                                         { ...ctx, nonce: unhex(v.nonce) });
    const movedWithKeys = await vc.rewrapFileKey(fromKey, toKey, unhex(v.from_wrapped), { ...ctx, nonce: unhex(v.nonce) });
    const random = await vc.rewrapFileKey(fromKey, toKey, unhex(v.from_wrapped), ctx);
    const opened = await vc.unwrapFileKey(unhex(v.to_safe_key), random, { ...toCtx, extractable: true });
    out.fileKeyMove.push({
      aad: hex(vc.fileKeyAad(toCtx)),
      wrapped: hex(moved),
      wrappedWithKeys: hex(movedWithKeys),
      randomOpens: hex(new Uint8Array(await crypto.subtle.exportKey("raw", opened))),
      randomDiffers: hex(random) !== v.to_wrapped,
    });
  }

  out.itemMove = [];
  for (const v of V.item_move) {
    const item = { itemId: unhex(v.item_id), folderId: unhex(v.from_folder_id), version: v.version,
                   generation: v.from_generation, schema: v.schema, ct: unhex(v.from_ciphertext) };
    const ctx = { item, fromSafeId: unhex(v.from_safe_id), toSafeId: unhex(v.to_safe_id),
                  toFolderId: unhex(v.to_folder_id), toGeneration: v.to_generation };
    const moved = await vc.reencryptItem(unhex(v.from_safe_key), unhex(v.to_safe_key), { ...ctx, nonce: unhex(v.nonce) });
    out.itemMove.push({
      aad: hex(vc.itemAad({ safeId: ctx.toSafeId, itemId: item.itemId, folderId: ctx.toFolderId,
                            version: v.version, generation: v.to_generation, schema: v.schema })),
      ciphertext: hex(moved.ct),
      content: moved.content,
      listed: vc.listedFileIds({ files: [{ id: "AAAAAAAAAAAAAAAAAAAAAA" }, { id: "AAAAAAAAAAAAAAAAAAAAAA" },
                                         { id: "short" }, { id: 7 }, {}, null] }),
    });
  }

  out.fingerprint = [];
  for (const v of V.fingerprint) {
    out.fingerprint.push(await vc.fingerprint({ userId: unhex(v.user_id), publicKey: unhex(v.public_key) }));
  }
  return out;
}
