// Files in the page (docs/vault.md 8.3). Upload: announce the file (the
// server refuses one over its limit with 413 before any byte is sent), encrypt
// it chunk by chunk into a Blob (Chromium streams request bodies only over
// HTTP/2), PUT the Blob with progress. Download: read the response as a
// stream and decrypt each chunk as it arrives; the file is saved only when its
// last chunk has verified.

import * as vc from "./vaultcrypto.js";
import { path } from "./api.js";

const enc = vc.b64uEncode;

/**
 * Upload `file` (a File or Blob) into `safe`. progress(phase, done, total)
 * with phase "encrypting" or "uploading". Resolves with {meta, ref}: the
 * File JSON and the reference an item keeps ({id, name, size, type}).
 */
export async function uploadFile(vault, safe, file, { progress = () => {} } = {}) {
  const key = await vault.currentKey(safe);
  const fileId = vc.newId();
  const fk = await vc.newFileKey();
  const base = path("safes", safe.idText, "files");
  const meta = await vault.api.post(base, {
    id: enc(fileId),
    generation: safe.generation,
    key_wrap: enc(await vc.wrapFileKey(key, fk, { safeId: safe.id, fileId, generation: safe.generation })),
    size: file.size,
  });
  const boxes = [];
  let done = 0;
  progress("encrypting", 0, file.size);
  for await (const box of vc.encryptFile(fk, fileId, file.stream())) {
    boxes.push(box);
    done = Math.min(file.size, done + box.length - vc.OVERHEAD);
    progress("encrypting", done, file.size);
  }
  const body = new Blob(boxes, { type: "application/octet-stream" });
  boxes.length = 0;
  if (body.size !== meta.body_size) throw new Error("the encrypted body has an unexpected size");
  const stored = await vault.api.upload(`${base}/${encodeURIComponent(meta.id)}/body`, body, (sent, total) =>
    progress("uploading", sent, total),
  );
  safe.files.set(stored.id, stored);
  return {
    meta: stored,
    ref: { id: stored.id, name: file.name || "file", size: file.size, type: file.type || "application/octet-stream" },
  };
}

/**
 * Download and decrypt a file of `safe`: resolves with a Blob of its
 * plaintext once the last chunk verified. progress(done, total) in bytes.
 */
export async function downloadFile(vault, safe, ref, { progress = () => {} } = {}) {
  const base = path("safes", safe.idText, "files", ref.id);
  const meta = await vault.api.get(base);
  const fileId = vc.b64uDecode(meta.id, { field: "file id", length: 16 });
  const key = await vault.keyFor(safe, meta.generation);
  const fk = await vc.unwrapFileKey(key, vc.b64uDecode(meta.key_wrap, { field: "file key" }), {
    safeId: safe.id,
    fileId,
    generation: meta.generation,
  });
  const r = await vault.api.fetch("GET", `${base}/body`);
  const dec = new vc.FileDecryptor(fk, fileId);
  const parts = [];
  const reader = r.body.getReader();
  let received = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      received += value.length;
      const plain = await dec.feed(value);
      if (plain.length) parts.push(plain);
      progress(received, meta.body_size);
    }
    const last = await dec.finish();
    if (last.length) parts.push(last);
  } catch (e) {
    for (const p of parts) p.fill(0);
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
  const blob = new Blob(parts, { type: ref.type || "application/octet-stream" });
  for (const p of parts) p.fill(0);
  return blob;
}
