async (p) => {
  const userId = unhex(p.user_id), keyId = unhex(p.key_id), safeId = unhex(p.safe_id);
  const publicKey = unhex(p.public_key);
  const sk = await vc.openSlot(unhex(p.kc), unhex(p.slot),
                               { userId, keyId, keypairVersion: 1, publicKey });
  const recipient = { privateKey: sk, publicKey };
  const ks = await vc.openSafeKey(unhex(p.sealed), recipient, { safeId, userId, generation: 2 });
  const keys = await vc.keyChain(ks, { safeId, currentGeneration: 2, links: { 2: unhex(p.previous) } });
  const name = await vc.decryptSafeName(ks, unhex(p.name_ct), { safeId, version: 1, generation: 2 });
  const folder = await vc.decryptFolderName(ks, unhex(p.folder_ct), {
    safeId, folderId: unhex(p.folder_id), parentId: null, version: 1, generation: 2 });
  const items = [];
  for (const it of p.items) {
    items.push(await vc.decryptItem(keys.get(it.generation), unhex(it.ct), {
      safeId, itemId: unhex(it.id), folderId: unhex(it.folder_id), version: it.version,
      generation: it.generation }));
  }
  const fk = await vc.unwrapFileKey(ks, unhex(p.file_wrap), { safeId, fileId: unhex(p.file_id), generation: 2 });
  const parts = [];
  for await (const piece of vc.decryptFile(fk, unhex(p.file_id), [unhex(p.body)])) parts.push(piece);
  return { name, folder, items, file: await sha256(vc.concat(...parts)), skExtractable: sk.extractable };
}
