async ([V, cases]) => {
  const results = [];
  for (const c of cases) {
    const [kind, index] = c.vector.split("/");
    const v = { ...V[kind][Number(index)], ...c.change };
    const open = {
      item: () => vc.decryptItem(unhex(v.key), unhex(v.ciphertext), {
        safeId: unhex(v.safe_id), itemId: unhex(v.item_id), folderId: unhex(v.folder_id),
        version: v.version, generation: v.generation, schema: v.schema }),
      slot: () => vc.openSlot(unhex(v.kc), unhex(v.slot), {
        userId: unhex(v.user_id), keyId: unhex(v.key_id), keypairVersion: v.keypair_version,
        publicKey: unhex(v.public_key) }),
      safe_key: async () => vc.openSafeKey(unhex(v.sealed), {
        privateKey: await x25519Private(v.recipient_private_key), publicKey: unhex(v.recipient_public_key),
      }, { safeId: unhex(v.safe_id), userId: unhex(v.user_id), generation: v.generation }),
      previous_key: () => vc.unwrapPreviousKey(unhex(v.new_key), unhex(v.box), {
        safeId: unhex(v.safe_id), newGeneration: v.new_generation }),
      safe_name: () => vc.decryptSafeName(unhex(v.key), unhex(v.ciphertext), {
        safeId: unhex(v.safe_id), version: v.version, generation: v.generation }),
      folder: () => vc.decryptFolderName(unhex(v.key), unhex(v.ciphertext), {
        safeId: unhex(v.safe_id), folderId: unhex(v.folder_id), parentId: unhex(v.parent_id),
        version: v.version, generation: v.generation }),
      file_key: () => vc.unwrapFileKey(unhex(v.safe_key), unhex(v.wrapped), {
        safeId: unhex(v.safe_id), fileId: unhex(v.file_id), generation: v.generation }),
      file_key_move: () => vc.rewrapFileKey(unhex(v.from_safe_key), unhex(v.to_safe_key), unhex(v.from_wrapped), {
        fileId: unhex(v.file_id), fromSafeId: unhex(v.from_safe_id), fromGeneration: v.from_generation,
        toSafeId: unhex(v.to_safe_id), toGeneration: v.to_generation }),
      item_move: () => vc.reencryptItem(unhex(v.from_safe_key), unhex(v.to_safe_key), {
        item: { itemId: unhex(v.item_id), folderId: unhex(v.from_folder_id), version: v.version,
                generation: v.from_generation, schema: v.schema, ct: unhex(v.from_ciphertext) },
        fromSafeId: unhex(v.from_safe_id), toSafeId: unhex(v.to_safe_id), toFolderId: unhex(v.to_folder_id),
        toGeneration: v.to_generation }),
      file: async () => {
        let boxes = await fileBoxes(v);
        if (v.operation === "swap chunks 0 and 1") boxes = [boxes[1], boxes[0], ...boxes.slice(2)];
        else if (v.operation === "drop the last chunk") boxes = boxes.slice(0, -1);
        else if (v.operation === "append a copy of the last chunk") boxes = [...boxes, boxes.at(-1)];
        else throw new Error(`unknown operation ${v.operation}`);
        for await (const _ of vc.decryptFile(unhex(v.file_key), unhex(v.file_id), boxes)) { /* drain */ }
      },
    }[kind];
    results.push(await errorOf(open));
  }
  return results;
}
