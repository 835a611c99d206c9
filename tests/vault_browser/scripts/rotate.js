async (p) => {
  const safeId = unhex(p.safe_id);
  const state = {
    safeId, generation: 1, nameVersion: 2, nameCt: unhex(p.name_ct),
    items: p.items.map((i) => ({ itemId: unhex(i.id), folderId: null, version: i.version,
                                 generation: 1, schema: 1, ct: unhex(i.ct) })),
    folders: [{ folderId: unhex(p.folder_id), parentId: null, version: 1, generation: 1,
                nameCt: unhex(p.folder_ct) }],
    files: [{ fileId: unhex(p.file_id), generation: 1, keyWrap: unhex(p.file_wrap) }],
  };
  const members = [{ userId: unhex(p.member_id), publicKey: unhex(p.member_public_key) }];
  const plan = await vc.planRotation(state, unhex(p.old_key), members);
  // A record that does not open is never laundered into the new generation.
  const bad = { ...state, items: [{ ...state.items[0], version: 9 }] };
  const refused = await errorOf(() => vc.planRotation(bad, unhex(p.old_key), members));
  return {
    from: plan.fromGeneration, to: plan.toGeneration, previous: hex(plan.previousKey),
    name_ct: hex(plan.nameCt), name_base: plan.nameBaseVersion,
    members: plan.members.map((m) => ({ user_id: hex(m.userId), sealed: hex(m.sealedKey) })),
    items: plan.items.map((i) => ({ id: hex(i.itemId), base: i.baseVersion, ct: hex(i.ct) })),
    folders: plan.folders.map((f) => ({ id: hex(f.folderId), base: f.baseVersion, ct: hex(f.nameCt) })),
    files: plan.files.map((f) => ({ id: hex(f.fileId), wrap: hex(f.keyWrap) })),
    newKeyExtractable: plan.newCryptoKey.extractable,
    refused: refused && refused.code,
  };
}
