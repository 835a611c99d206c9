// Safes in the page: what the server returns, decrypted (docs/vault.md 6-8,
// 11). No DOM here: the views call these and show the results.
//
// A safe's keys are non-extractable AES-GCM CryptoKeys by generation, opened
// from the member's sealed key (current) and the key chain (older ones). The
// decrypted items live in memory while the safe is open, each with a search
// string made once, so searching never decrypts again. An item that does not
// open keeps its error (shown in the list) and the rest still open.

import * as vc from "./vaultcrypto.js";
import { ApiError, path } from "./api.js";
import { yieldToBrowser } from "./dom.js";

export const DECRYPT_BATCH = 200;
const collator = new Intl.Collator(undefined, { sensitivity: "base", numeric: true });

const id = (text, field) => vc.b64uDecode(text, { field, length: 16 });
const optId = (text, field) => (text === null || text === undefined ? null : id(text, field));
const enc = vc.b64uEncode;

/** Performance marks of opening a safe (docs/vault.md, "The page"). */
export const MARKS = Object.freeze({
  start: "vault:safe-open:start",
  fetched: "vault:safe-open:fetched",
  decrypted: "vault:safe-open:decrypted",
  rendered: "vault:safe-open:rendered",
  total: "vault:safe-open",
  fetch: "vault:safe-open:fetch",
  decrypt: "vault:safe-open:decrypt",
  render: "vault:safe-open:render",
});

/** An item stale on the server: someone saved another version first. */
export class ConflictError extends Error {
  constructor(entry, current, currentContent, currentError) {
    super(
      `this item was changed by someone else while you edited it (now version ${current.version}, ` +
        `yours was based on version ${entry.version})`,
    );
    this.name = "ConflictError";
    this.code = "version_conflict";
    this.current = current;
    this.currentContent = currentContent;
    this.currentError = currentError;
  }
}

/** The words a search matches: title, user name, URLs, tags, notes, brand, cardholder, field names. */
export function searchText(content) {
  if (!content) return "";
  const parts = [content.title, content.username, content.notes, content.cardholder, content.brand];
  if (Array.isArray(content.urls)) parts.push(...content.urls);
  if (Array.isArray(content.tags)) parts.push(...content.tags);
  if (Array.isArray(content.fields)) for (const f of content.fields) parts.push(f?.name);
  if (Array.isArray(content.files)) for (const f of content.files) parts.push(f?.name);
  return parts
    .filter((p) => typeof p === "string" && p)
    .join("\n")
    .toLowerCase();
}

export class Safe {
  constructor(json) {
    this.id = id(json.id, "safe id");
    this.idText = json.id;
    this.name = null;
    this.nameError = null;
    this.keys = new Map(); // generation -> CryptoKey
    this.folders = new Map(); // id text -> folder
    this.items = new Map(); // id text -> entry
    this.files = new Map(); // id text -> File JSON
    this.loaded = false;
    this.update(json);
  }

  update(json) {
    if (this.generation !== undefined && json.generation !== this.generation) this.keys.clear();
    this.generation = json.generation;
    this.nameVersion = json.name_version;
    this.nameCt = json.name_ct;
    this.role = json.role;
    this.sealedKey = json.sealed_key;
    this.rotationNeeded = json.rotation_needed;
  }

  get canEdit() {
    return this.role === "editor" || this.role === "admin";
  }

  get isAdmin() {
    return this.role === "admin";
  }

  get key() {
    return this.keys.get(this.generation);
  }

  /** Items sorted by title (then id), the list's order (sorted once per change). */
  sortedItems() {
    if (!this.sorted) {
      this.sorted = [...this.items.values()].sort(
        (a, b) => collator.compare(a.title, b.title) || (a.idText < b.idText ? -1 : 1),
      );
    }
    return this.sorted;
  }

  folderPath(folderText) {
    const names = [];
    for (let f = this.folders.get(folderText), n = 0; f && n < 64; f = this.folders.get(f.parentText), n++) {
      names.unshift(f.name ?? "(folder does not open)");
    }
    return names.join(" / ");
  }
}

function entryFrom(json) {
  return {
    id: id(json.id, "item id"),
    idText: json.id,
    folderId: optId(json.folder_id, "folder id"),
    folderText: json.folder_id,
    version: json.version,
    generation: json.generation,
    schema: json.schema,
    updatedMs: json.updated_ms,
    updatedBy: json.updated_by,
    content: null,
    error: null,
    title: "",
    search: "",
  };
}

export class Vault {
  constructor(api, keyring) {
    this.api = api;
    this.keyring = keyring;
    this.safes = new Map();
  }

  forget() {
    this.safes.clear();
  }

  // --- keys --------------------------------------------------------------------------

  /** The safe's current key (opened from the member's sealed key once per generation). */
  async currentKey(safe) {
    if (!safe.key) {
      const key = await vc.openSafeKey(vc.b64uDecode(safe.sealedKey, { field: "sealed key" }), this.keyring.recipient, {
        safeId: safe.id,
        userId: this.keyring.userId,
        generation: safe.generation,
      });
      safe.keys.set(safe.generation, key);
    }
    return safe.key;
  }

  /** Ks as raw bytes, for sealing to members; the caller zeroes them. */
  async rawKey(safe) {
    return vc.openSafeKey(vc.b64uDecode(safe.sealedKey, { field: "sealed key" }), this.keyring.recipient, {
      safeId: safe.id,
      userId: this.keyring.userId,
      generation: safe.generation,
      raw: true,
    });
  }

  /** The key of `generation`: current, or through the key chain. */
  async keyFor(safe, generation) {
    const current = await this.currentKey(safe);
    if (safe.keys.has(generation)) return safe.keys.get(generation);
    if (generation > safe.generation) {
      throw new vc.SafeKeyInvalid(`key generation ${generation} is newer than the safe's ${safe.generation}`);
    }
    const { keys } = await this.api.get(path("safes", safe.idText, "keys"));
    const links = new Map(keys.filter((k) => k.previous_key).map((k) => [k.generation, vc.b64uDecode(k.previous_key)]));
    const chain = await vc.keyChain(current, { safeId: safe.id, currentGeneration: safe.generation, links });
    for (const [g, k] of chain) safe.keys.set(g, k);
    if (!safe.keys.has(generation)) {
      throw new vc.PreviousKeyInvalid(`the key chain of this safe does not reach generation ${generation}`);
    }
    return safe.keys.get(generation);
  }

  // --- safes -------------------------------------------------------------------------

  async #openName(safe) {
    try {
      const key = await this.currentKey(safe);
      safe.name = await vc.decryptSafeName(key, vc.b64uDecode(safe.nameCt, { field: "name" }), {
        safeId: safe.id,
        version: safe.nameVersion,
        generation: safe.generation,
      });
      safe.nameError = null;
    } catch (e) {
      if (!(e instanceof vc.VaultCryptoError)) throw e;
      safe.name = null;
      safe.nameError = e;
    }
  }

  /** GET /api/safes with every name decrypted. */
  async listSafes() {
    const { safes } = await this.api.get("/api/safes");
    const seen = new Set();
    for (const json of safes) {
      seen.add(json.id);
      const safe = this.safes.get(json.id);
      if (safe) safe.update(json);
      else this.safes.set(json.id, new Safe(json));
    }
    for (const k of [...this.safes.keys()]) if (!seen.has(k)) this.safes.delete(k);
    await Promise.all([...this.safes.values()].map((s) => this.#openName(s)));
    return [...this.safes.values()].sort((a, b) => collator.compare(a.name ?? "", b.name ?? ""));
  }

  async createSafe(name) {
    const safeId = vc.newId();
    const raw = vc.newSafeKey();
    try {
      const body = {
        id: enc(safeId),
        name_ct: enc(await vc.encryptSafeName(raw, name, { safeId, version: 1, generation: 1 })),
        sealed_key: enc(
          await vc.sealSafeKey(raw, this.keyring.publicKey, { safeId, userId: this.keyring.userId, generation: 1 }),
        ),
      };
      const json = await this.api.post("/api/safes", body);
      const safe = new Safe(json);
      safe.keys.set(1, await vc.importSafeKey(raw));
      safe.name = name;
      safe.loaded = true;
      this.safes.set(safe.idText, safe);
      return safe;
    } finally {
      raw.fill(0);
    }
  }

  async renameSafe(safe, name) {
    const key = await this.currentKey(safe);
    const version = safe.nameVersion + 1;
    const json = await this.api.patch(path("safes", safe.idText), {
      expected_name_version: safe.nameVersion,
      generation: safe.generation,
      name_ct: enc(await vc.encryptSafeName(key, name, { safeId: safe.id, version, generation: safe.generation })),
    });
    safe.update(json);
    safe.name = name;
  }

  async deleteSafe(safe) {
    await this.api.delete(path("safes", safe.idText));
    this.safes.delete(safe.idText);
  }

  /**
   * Fetch, decrypt and (via `render`) show a safe, with performance marks:
   * vault:safe-open (total), :fetch, :decrypt and :render. `progress(done,
   * total)` is called between batches; the page stays responsive.
   */
  async openSafe(safe, { progress = () => {}, render = async () => {} } = {}) {
    performance.clearMarks(MARKS.start);
    performance.mark(MARKS.start);
    const contents = await this.api.get(path("safes", safe.idText, "contents"));
    performance.mark(MARKS.fetched);
    safe.update(contents.safe);
    await this.#openName(safe);
    const key = await this.currentKey(safe);
    safe.folders.clear();
    await Promise.all(contents.folders.map((f) => this.#addFolder(safe, f, key)));
    safe.files = new Map(contents.files.map((f) => [f.id, f]));
    safe.items.clear();
    safe.sorted = null;
    const total = contents.items.length;
    progress(0, total);
    for (let i = 0; i < total; i += DECRYPT_BATCH) {
      const batch = contents.items.slice(i, i + DECRYPT_BATCH);
      await Promise.all(batch.map((json) => this.#addItem(safe, json)));
      progress(Math.min(i + DECRYPT_BATCH, total), total);
      await yieldToBrowser();
    }
    contents.items.length = 0;
    safe.loaded = true;
    performance.mark(MARKS.decrypted);
    await render();
    performance.mark(MARKS.rendered);
    performance.measure(MARKS.fetch, MARKS.start, MARKS.fetched);
    performance.measure(MARKS.decrypt, MARKS.fetched, MARKS.decrypted);
    performance.measure(MARKS.render, MARKS.decrypted, MARKS.rendered);
    const m = performance.measure(MARKS.total, MARKS.start, MARKS.rendered);
    return { items: total, ms: m.duration };
  }

  async #addFolder(safe, json, key) {
    const folder = {
      id: id(json.id, "folder id"),
      idText: json.id,
      parentId: optId(json.parent_id, "parent id"),
      parentText: json.parent_id,
      version: json.version,
      generation: json.generation,
      name: null,
      error: null,
    };
    try {
      const k = json.generation === safe.generation ? key : await this.keyFor(safe, json.generation);
      folder.name = await vc.decryptFolderName(k, vc.b64uDecode(json.name_ct, { field: "folder name" }), {
        safeId: safe.id,
        folderId: folder.id,
        parentId: folder.parentId,
        version: folder.version,
        generation: folder.generation,
      });
    } catch (e) {
      if (!(e instanceof vc.VaultCryptoError)) throw e;
      folder.error = e;
    }
    safe.folders.set(folder.idText, folder);
    return folder;
  }

  async #openItem(safe, entry, ct) {
    const key = entry.generation === safe.generation ? await this.currentKey(safe) : await this.keyFor(safe, entry.generation);
    return vc.decryptItem(key, ct, {
      safeId: safe.id,
      itemId: entry.id,
      folderId: entry.folderId,
      version: entry.version,
      generation: entry.generation,
      schema: entry.schema,
    });
  }

  async #addItem(safe, json) {
    const entry = entryFrom(json);
    try {
      entry.content = await this.#openItem(safe, entry, vc.b64uDecode(json.ct, { field: "item" }));
      entry.title = entry.content.title;
      entry.search = searchText(entry.content);
    } catch (e) {
      if (!(e instanceof vc.VaultCryptoError)) throw e;
      entry.error = e;
      entry.title = `(item ${json.id.slice(0, 8)} does not open)`;
      entry.search = entry.title.toLowerCase();
    }
    safe.items.set(entry.idText, entry);
    safe.sorted = null;
    return entry;
  }

  // --- folders -----------------------------------------------------------------------

  async createFolder(safe, name, parentText = null) {
    const key = await this.currentKey(safe);
    const folderId = vc.newId();
    const parentId = optId(parentText, "parent id");
    const json = await this.api.post(path("safes", safe.idText, "folders"), {
      id: enc(folderId),
      parent_id: parentText,
      generation: safe.generation,
      name_ct: enc(
        await vc.encryptFolderName(key, name, { safeId: safe.id, folderId, parentId, version: 1, generation: safe.generation }),
      ),
    });
    return this.#addFolder(safe, json, key);
  }

  async renameFolder(safe, folder, name, parentText = folder.parentText) {
    const key = await this.currentKey(safe);
    const version = folder.version + 1;
    const json = await this.api.put(path("safes", safe.idText, "folders", folder.idText), {
      expected_version: folder.version,
      parent_id: parentText,
      generation: safe.generation,
      name_ct: enc(
        await vc.encryptFolderName(key, name, {
          safeId: safe.id,
          folderId: folder.id,
          parentId: optId(parentText, "parent id"),
          version,
          generation: safe.generation,
        }),
      ),
    });
    return this.#addFolder(safe, json, key);
  }

  async deleteFolder(safe, folder) {
    await this.api.json("DELETE", `${path("safes", safe.idText, "folders", folder.idText)}?expected_version=${folder.version}`);
    safe.folders.delete(folder.idText);
  }

  // --- items -------------------------------------------------------------------------

  async #itemBody(safe, itemId, content, folderText, version) {
    const key = await this.currentKey(safe);
    return {
      folder_id: folderText,
      generation: safe.generation,
      schema: vc.SCHEMA_VERSION,
      ct: enc(
        await vc.encryptItem(key, content, {
          safeId: safe.id,
          itemId,
          folderId: optId(folderText, "folder id"),
          version,
          generation: safe.generation,
        }),
      ),
    };
  }

  /** Refetch the safe (after 409 generation_stale): its generation and key. */
  async refreshSafe(safe) {
    safe.update(await this.api.get(path("safes", safe.idText)));
    await this.currentKey(safe);
  }

  /**
   * Create (entry null) or update an item. A stale version throws
   * ConflictError carrying the current version (decrypted) and changes
   * nothing; a stale key generation refetches the safe's key and retries once.
   */
  async saveItem(safe, entry, content, folderText = null, { retried = false } = {}) {
    try {
      let json;
      if (entry === null) {
        const itemId = vc.newId();
        json = await this.api.post(path("safes", safe.idText, "items"), {
          id: enc(itemId),
          ...(await this.#itemBody(safe, itemId, content, folderText, 1)),
        });
      } else {
        json = await this.api.put(path("safes", safe.idText, "items", entry.idText), {
          expected_version: entry.version,
          ...(await this.#itemBody(safe, entry.id, content, folderText, entry.version + 1)),
        });
      }
      return this.#addItem(safe, { ...json, ct: json.ct });
    } catch (e) {
      if (e instanceof ApiError && e.code === "generation_stale" && !retried) {
        await this.refreshSafe(safe);
        return this.saveItem(safe, entry, content, folderText, { retried: true });
      }
      if (e instanceof ApiError && e.code === "version_conflict" && entry) {
        const current = await this.api.get(path("safes", safe.idText, "items", entry.idText));
        const fresh = entryFrom(current);
        let currentContent = null;
        let currentError = null;
        try {
          currentContent = await this.#openItem(safe, fresh, vc.b64uDecode(current.ct, { field: "item" }));
        } catch (err) {
          if (!(err instanceof vc.VaultCryptoError)) throw err;
          currentError = err;
        }
        throw new ConflictError(entry, current, currentContent, currentError);
      }
      throw e;
    }
  }

  /** Reload one item from the server (after a conflict the person chose theirs). */
  async reloadItem(safe, entry) {
    return this.#addItem(safe, await this.api.get(path("safes", safe.idText, "items", entry.idText)));
  }

  async deleteItem(safe, entry) {
    await this.api.json("DELETE", `${path("safes", safe.idText, "items", entry.idText)}?expected_version=${entry.version}`);
    safe.items.delete(entry.idText);
    safe.sorted = null;
  }

  /** Every kept version of an item, newest first, each decrypted (or with its error). */
  async history(safe, entry) {
    const { versions } = await this.api.get(path("safes", safe.idText, "items", entry.idText, "history"));
    const out = [];
    for (const v of versions) {
      const e = entryFrom({ ...v, id: entry.idText });
      try {
        e.content = await this.#openItem(safe, e, vc.b64uDecode(v.ct, { field: "item" }));
      } catch (err) {
        if (!(err instanceof vc.VaultCryptoError)) throw err;
        e.error = err;
      }
      out.push(e);
    }
    return out;
  }

  // --- moving an item to another safe (docs/vault.md 8.4) ---------------------------

  /**
   * The folders of `safe` (decrypted) without opening its items: for choosing
   * where a moved item goes. A safe already open has them.
   */
  async foldersOf(safe) {
    if (!safe.loaded) {
      const contents = await this.api.get(path("safes", safe.idText, "contents"));
      safe.update(contents.safe);
      const key = await this.currentKey(safe);
      safe.folders.clear();
      await Promise.all(contents.folders.map((f) => this.#addFolder(safe, f, key)));
    }
    return [...safe.folders.values()]
      .filter((f) => !f.error)
      .map((f) => ({ idText: f.idText, path: safe.folderPath(f.idText) }))
      .sort((a, b) => collator.compare(a.path, b.path));
  }

  /**
   * Move `entry` of `source`, with its kept versions and its files, into
   * `target` (folder `folderText`, or the top): every ciphertext re-encrypted
   * here for the target (same version), every file key re-wrapped; the server
   * swaps them in at once and never touches a file body. progress(step, done,
   * total): records re-encrypted so far, then (total 0) the request. Resolves
   * with {entry (in the target, or null if it is not open), files, history,
   * missing (files the item lists that the safe does not hold)}. A stale
   * target key generation refetches it and retries once.
   */
  async moveItem(source, entry, target, folderText = null, { progress = () => {}, retried = false } = {}) {
    if (entry.error) {
      throw new Error("this item does not open, so it cannot be re-encrypted for another safe");
    }
    await this.refreshSafe(target);
    const toKey = await this.currentKey(target);
    const ctx = {
      fromSafeId: source.id,
      toSafeId: target.id,
      toFolderId: optId(folderText, "folder id"),
      toGeneration: target.generation,
    };
    const base = path("safes", source.idText, "items", entry.idText);
    const [current, { versions }] = await Promise.all([this.api.get(base), this.api.get(`${base}/history`)]);
    if (current.version !== entry.version) {
      throw new ApiError(409, {
        error: "version_conflict",
        message: `the item was changed meanwhile (it is now at version ${current.version}); open it again, then move it`,
        current_version: current.version,
      });
    }
    const keyFor = (g) => (g === source.generation ? this.currentKey(source) : this.keyFor(source, g));
    const record = (json) => ({
      itemId: entry.id,
      folderId: optId(json.folder_id, "folder id"),
      version: json.version,
      generation: json.generation,
      schema: json.schema,
      ct: vc.b64uDecode(json.ct, { field: "item" }),
    });
    const reencrypt = async (json) => (await vc.reencryptItem(await keyFor(json.generation), toKey, { ...ctx, item: record(json) })).ct;
    const listed = vc.listedFileIds(entry.content);
    for (const fileText of listed) {
      if (source.files.has(fileText)) continue;
      // Attached by someone else since the safe was opened: ask for it.
      try {
        source.files.set(fileText, await this.api.get(path("safes", source.idText, "files", fileText)));
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 404) throw e;
      }
    }
    const held = listed.filter((f) => source.files.has(f));
    const total = 1 + versions.length + held.length;
    let done = 0;
    progress("re-encrypting the item", done, total);
    const ct = await reencrypt(current);
    progress("re-encrypting the item", ++done, total);
    const history = [];
    for (const v of versions) {
      history.push({ version: v.version, ct: enc(await reencrypt(v)) });
      progress("re-encrypting its earlier versions", ++done, total);
    }
    const files = [];
    for (const fileText of held) {
      const meta = source.files.get(fileText);
      const keyWrap = await vc.rewrapFileKey(await keyFor(meta.generation), toKey, vc.b64uDecode(meta.key_wrap, { field: "file key" }), {
        fileId: id(fileText, "file id"),
        fromSafeId: source.id,
        fromGeneration: meta.generation,
        toSafeId: target.id,
        toGeneration: target.generation,
      });
      files.push({ id: fileText, key_wrap: enc(keyWrap) });
      progress("re-wrapping its file keys", ++done, total);
    }
    progress(`saving it in ${target.name ?? "the other safe"}…`, 0, 0);
    let moved;
    try {
      moved = await this.api.post(`${base}/move`, {
        to_safe_id: target.idText,
        expected_version: entry.version,
        generation: target.generation,
        folder_id: folderText,
        ct: enc(ct),
        history,
        files,
      });
    } catch (e) {
      if (e instanceof ApiError && e.code === "generation_stale" && !retried) {
        return this.moveItem(source, entry, target, folderText, { progress, retried: true });
      }
      throw e;
    }
    source.items.delete(entry.idText);
    source.sorted = null;
    for (const f of moved.files) {
      source.files.delete(f.id);
      target.files.set(f.id, f);
    }
    const arrived = target.loaded ? await this.#addItem(target, moved.item) : null;
    return { entry: arrived, files: moved.files.length, history: moved.history, missing: listed.length - held.length };
  }

  // --- members -----------------------------------------------------------------------

  async members(safe) {
    const { members } = await this.api.get(path("safes", safe.idText, "members"));
    return members;
  }

  /** A user by handle, with the fingerprint of the public key the server returned. */
  async lookupUser(handle) {
    const u = await this.api.get(path("users", handle));
    const userId = id(u.user_id, "user id");
    const publicKey = vc.b64uDecode(u.public_key, { field: "public key", length: 32 });
    return { ...u, userId, publicKey, fingerprint: await vc.fingerprint({ userId, publicKey }) };
  }

  /** Seal Ks to the user (raw Ks exists only for this and is zeroed) and add them. */
  async share(safe, user, role) {
    const raw = await this.rawKey(safe);
    try {
      const sealed = await vc.sealSafeKey(raw, user.publicKey, {
        safeId: safe.id,
        userId: user.userId,
        generation: safe.generation,
      });
      return await this.api.post(path("safes", safe.idText, "members"), {
        user_id: user.user_id,
        role,
        generation: safe.generation,
        sealed_key: enc(sealed),
      });
    } finally {
      raw.fill(0);
    }
  }

  async setRole(safe, userIdText, role) {
    return this.api.patch(path("safes", safe.idText, "members", userIdText), { role });
  }

  /** Remove a member; the safe is then marked rotation_needed (the caller rotates). */
  async removeMember(safe, userIdText) {
    await this.api.delete(path("safes", safe.idText, "members", userIdText));
    safe.rotationNeeded = true;
  }

  async audit(safe, before = null) {
    const q = before ? `?limit=50&before=${before}` : "?limit=50";
    return this.api.get(`${path("safes", safe.idText, "audit")}${q}`);
  }

  // --- import ------------------------------------------------------------------------

  /**
   * Encrypt and upload an import plan (importers.js) into `safe`: its folders
   * under `parentText`, then its items in batches of up to 1000.
   * progress(done, total) after each batch.
   */
  async importPlan(safe, plan, { parentText = null, progress = () => {} } = {}) {
    const folderIds = new Map();
    for (const f of plan.folders) {
      const parent = f.parentKey ? folderIds.get(f.parentKey) : parentText;
      const folder = await this.createFolder(safe, f.name, parent);
      folderIds.set(f.key, folder.idText);
    }
    const total = plan.items.length;
    let done = 0;
    for (let i = 0; i < total; i += 500) {
      const batch = [];
      for (const { content, folderKey } of plan.items.slice(i, i + 500)) {
        const itemId = vc.newId();
        const folderText = folderKey ? folderIds.get(folderKey) : parentText;
        batch.push({ id: enc(itemId), ...(await this.#itemBody(safe, itemId, content, folderText, 1)) });
      }
      const { items } = await this.api.post(path("safes", safe.idText, "items", "batch"), { items: batch });
      await Promise.all(items.map((json) => this.#addItem(safe, json)));
      done += batch.length;
      progress(done, total);
      await yieldToBrowser();
    }
    return { folders: plan.folders.length, items: done };
  }
}
