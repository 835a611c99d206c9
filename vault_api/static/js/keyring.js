// The keys this page holds while the vault is open, and how it gets them
// (docs/vault.md 5 and 12). Everything here lives in memory only:
//
//   kcs         Kc of each token proved in this session: authnet ClientKeys
//               (non-extractable HKDF CryptoKeys), by key id
//   privateKey  the user's X25519 private key: a non-extractable CryptoKey
//               unwrapped straight from a key slot (never bytes in the page)
//   publicKey   the user's public key (public: 32 bytes)
//
// forget() drops every reference (log out, idle timeout). Nothing is written
// to localStorage, sessionStorage, IndexedDB, cookies or URLs.

import * as vc from "./vaultcrypto.js";
import { path } from "./api.js";

export class Keyring {
  kcs = new Map();
  privateKey = null;
  userId = null;
  handle = null;
  publicKey = null;
  keypairVersion = 1;
  keyId = null; // the token this session logged in with
  registered = false;
  // With a vault passphrase (hardening.js): the token factor T, the wrap's KEK, the wrap.
  tokenFactor = null;
  wrapKek = null;
  wrapRecord = null;
  // Unlocked by a device bypass (js/devices.js): {deviceId, kek: KEK_b (non-extractable), wrap}.
  bypass = null;
  // How this session opened the private key: "slot", "passphrase", "bypass" or "recovery".
  unlockedBy = null;

  get unlocked() {
    return this.privateKey !== null;
  }

  get recipient() {
    return { privateKey: this.privateKey, publicKey: this.publicKey };
  }

  get keyIdText() {
    return vc.b64uEncode(this.keyId);
  }

  /** Take in POST /api/login's Session and the Kc the login widget delivered. */
  begin(session, kc) {
    this.forget();
    const u = session.user;
    this.userId = vc.b64uDecode(u.user_id, { field: "user id", length: 16 });
    this.handle = u.handle;
    this.registered = u.registered;
    this.publicKey = u.public_key ? vc.b64uDecode(u.public_key, { field: "public key", length: 32 }) : null;
    this.keypairVersion = u.keypair_version;
    this.keyId = vc.b64uDecode(session.key_id, { field: "key id", length: 16 });
    this.kcs.set(session.key_id, kc);
  }

  forget() {
    this.kcs.clear();
    this.privateKey = null;
    this.userId = null;
    this.handle = null;
    this.publicKey = null;
    this.keyId = null;
    this.registered = false;
    this.tokenFactor?.fill(0);
    this.tokenFactor = null;
    this.wrapKek = null;
    this.wrapRecord = null;
    this.bypass = null;
    this.unlockedBy = null;
  }

  #slotCtx(keyIdText, slot) {
    return {
      userId: this.userId,
      keyId: vc.b64uDecode(keyIdText, { field: "key id", length: 16 }),
      keypairVersion: slot.keypair_version,
      publicKey: this.publicKey,
    };
  }

  /** Open the private key from a Slot with its token's Kc (non-extractable unless asked). */
  async open(slot, { extractable = false } = {}) {
    const kc = this.kcs.get(slot.key_id);
    if (!kc) throw new Error("no client key for this slot's token in this session");
    const key = await vc.openSlot(kc, vc.b64uDecode(slot.slot, { field: "slot" }), {
      ...this.#slotCtx(slot.key_id, slot),
      extractable,
    });
    if (!extractable) this.privateKey = key;
    return key;
  }

  /** A new account: make the key pair in the page, wrap it into this token's first slot. */
  async register(api, handle) {
    const { privateKey, publicKey } = await vc.generateKeyPair();
    const kc = this.kcs.get(this.keyIdText);
    const slot = await vc.makeSlot(kc, privateKey, { userId: this.userId, keyId: this.keyId, keypairVersion: 1 });
    const me = await api.post("/api/me", {
      handle,
      public_key: vc.b64uEncode(publicKey),
      slot: vc.b64uEncode(slot),
    });
    this.publicKey = publicKey;
    this.handle = me.user.handle;
    this.registered = true;
    this.keypairVersion = me.user.keypair_version;
    // The extractable key is dropped; the page keeps the one unwrapped from the slot.
    const mine = me.slots.find((s) => s.key_id === this.keyIdText);
    await this.open(mine);
    return me;
  }

  /**
   * Prove another token of this account in this session (POST
   * /api/session/tokens with a second login's ticket) and keep its Kc.
   * Returns {key_id, has_slot}.
   */
  async prove(api, ticket, kc) {
    const proven = await api.post("/api/session/tokens", { ticket });
    this.kcs.set(proven.key_id, kc);
    return proven;
  }

  /** Wrap the private key (opened extractable from `fromSlot`) into a slot for `keyIdText`. */
  async #copySlot(api, fromSlot, keyIdText) {
    const sk = await this.open(fromSlot, { extractable: true });
    const slot = await vc.makeSlot(this.kcs.get(keyIdText), sk, {
      userId: this.userId,
      keyId: vc.b64uDecode(keyIdText, { field: "key id", length: 16 }),
      keypairVersion: this.keypairVersion,
    });
    return api.put(path("me", "slots", keyIdText), {
      keypair_version: this.keypairVersion,
      slot: vc.b64uEncode(slot),
    });
  }

  /**
   * This session's token has no slot: a second login with a token that has
   * one (`ticket`, `kc`) opens the private key, which is then wrapped for
   * this session's token too.
   */
  async adoptFrom(api, ticket, kc) {
    const proven = await this.prove(api, ticket, kc);
    if (!proven.has_slot) {
      throw new Error("that token has no key slot either; log in with one that opened this vault before");
    }
    const theirs = await api.get(path("me", "slots", proven.key_id));
    const mine = await this.#copySlot(api, theirs, this.keyIdText);
    await this.open(mine);
    return mine;
  }

  /** Give another token (proved by a second login in this unlocked session) a slot. */
  async addToken(api, ticket, kc) {
    const proven = await this.prove(api, ticket, kc);
    if (proven.has_slot) return { proven, added: false };
    const mine = await api.get(path("me", "slots", this.keyIdText));
    const slot = await this.#copySlot(api, mine, proven.key_id);
    return { proven, added: true, slot };
  }

  async fingerprint() {
    return vc.fingerprint({ userId: this.userId, publicKey: this.publicKey });
  }
}
