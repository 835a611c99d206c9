async (p) => {
  const userId = unhex(p.user_id), keyId = unhex(p.key_id), safeId = unhex(p.safe_id);
  const { privateKey, publicKey } = await vc.generateKeyPair();
  const slot = await vc.makeSlot(unhex(p.kc), privateKey, { userId, keyId });
  const old = vc.newSafeKey();
  const ks = vc.newSafeKey();
  const sealed = await vc.sealSafeKey(ks, unhex(p.py_public_key), { safeId, userId: unhex(p.py_user_id), generation: 2 });
  const previous = await vc.wrapPreviousKey(ks, old, { safeId, oldGeneration: 1 });
  const folderId = vc.newId();
  const nameCt = await vc.encryptSafeName(ks, "Family ✓", { safeId, version: 3, generation: 2 });
  const folderCt = await vc.encryptFolderName(ks, "Banking", { safeId, folderId, parentId: null, version: 1, generation: 2 });
  const items = [];
  for (const content of p.items) {
    const itemId = vc.newId();
    items.push({ id: hex(itemId), ct: hex(await vc.encryptItem(ks, content, {
      safeId, itemId, folderId, version: 4, generation: 2 })) });
  }
  // One item under the old key, read through the chain.
  const oldItemId = vc.newId();
  const oldItem = hex(await vc.encryptItem(old, p.items[0], { safeId, itemId: oldItemId, folderId: null, version: 1, generation: 1 }));
  const fileId = vc.newId();
  const fk = await vc.newFileKey();
  const wrap = await vc.wrapFileKey(ks, fk, { safeId, fileId, generation: 2 });
  const data = new Uint8Array(p.file_size);
  for (let at = 0; at < data.length; at += 65536) crypto.getRandomValues(data.subarray(at, at + 65536));
  const boxes = [];
  const pieces = [data.subarray(0, 100), data.subarray(100, 70000), data.subarray(70000)];
  for await (const box of vc.encryptFile(fk, fileId, pieces)) boxes.push(box);
  return {
    slot: hex(slot), public_key: hex(publicKey), sealed: hex(sealed), previous: hex(previous),
    folder_id: hex(folderId), name_ct: hex(nameCt), folder_ct: hex(folderCt), items,
    old_item: { id: hex(oldItemId), ct: oldItem }, file_id: hex(fileId), file_wrap: hex(wrap),
    body: hex(vc.concat(...boxes)), file_sha256: await sha256(data),
    fingerprint: await vc.fingerprint({ userId, publicKey }),
  };
}
