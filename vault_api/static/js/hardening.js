// The vault passphrase and recovery in the page (docs/vault.md 5.4-5.6): the
// same flows as vault_api/client/factors.py. The slow hash, blinding,
// unblinding and the proof check against the pinned key happen here; the
// vault's server relays the blinded element and stores ciphertext.
//
// What the keyring holds while the vault is open with a passphrase:
//   keyring.tokenFactor  T (32 bytes), to give another token a slot
//   keyring.wrapKek      KEK_p (a non-extractable AES-GCM CryptoKey), to unwrap the
//                        private key extractable again when it must be re-wrapped
//   keyring.wrapRecord   the current wrap as the server sent it
// forget() in keyring.js drops them with everything else.

import * as vc from "./vaultcrypto.js";
import * as f from "./crypto/factors.js";
import * as dc from "./crypto/devices.js";
import { poprfBlind, poprfFinalize, poprfInfo, OprfError } from "./crypto/oprf.js";
import { path } from "./api.js";

const dec = (text, field = "value") => vc.b64uDecode(text, { field });
const enc = (bytes) => vc.b64uEncode(bytes);

/** A refusal the person can act on; `code` as the Python FactorError's. */
export class FactorError extends Error {
  constructor(message, code, { attemptsLeft } = {}) {
    super(message);
    this.name = "FactorError";
    this.code = code;
    this.attemptsLeft = attemptsLeft;
  }
}

function paramsOf(r) {
  return {
    recordId: dec(r.id),
    salt: dec(r.salt),
    iterations: r.iterations,
    keyVersion: r.key_version,
    hardenerPublicKey: dec(r.hardener_public_key),
  };
}

function recordJson(p) {
  return {
    id: enc(p.recordId),
    salt: enc(p.salt),
    iterations: p.iterations,
    key_version: p.keyVersion,
    hardener_public_key: enc(p.hardenerPublicKey),
  };
}

export class Hardening {
  /** Timings of the last hardening: {slowHashMs, roundTripMs}. */
  last = null;

  constructor(api, keyring, hpke) {
    this.api = api;
    this.keyring = keyring;
    this.hpke = hpke;
  }

  async info() {
    const h = await this.api.get("/api/hardener");
    if (!h.enabled) {
      throw new FactorError(
        "This vault has no hardener configured, so it offers no vault passphrase or recovery.",
        "hardener_not_configured",
      );
    }
    const keys = new Map(h.keys.filter((k) => k.public_key).map((k) => [k.version, dec(k.public_key)]));
    return { ...h, keys };
  }

  newParams(info) {
    const v = info.current_version;
    return f.newParams({ iterations: info.kdf.iterations, keyVersion: v, hardenerPublicKey: info.keys.get(v) });
  }

  /** x, blind, relay, unblind + verify against the pinned key: {y, attemptId, nonce, attemptsLeft}. */
  async harden(secret, { purpose, userId, params, caller, url = "/api/hardener/evaluate", extra }) {
    const t0 = performance.now();
    const x = await f.slowHash(secret, { purpose, userId, params });
    const t1 = performance.now();
    const info = poprfInfo(caller, f.hardenerUserId(userId, purpose));
    const b = poprfBlind(x, info, params.hardenerPublicKey);
    const ev = await this.api.post(url, {
      ...(extra || { purpose }),
      blinded_element: enc(b.blindedElement),
      key_version: params.keyVersion,
    });
    let y;
    try {
      y = poprfFinalize(x, b.blind, dec(ev.evaluated_element), b.blindedElement, dec(ev.proof), info, b.tweakedKey);
    } catch (e) {
      if (e instanceof OprfError) {
        throw new FactorError(
          "The hardener's answer does not verify against the key this record pins (a changed key, or " +
            "an answer from someone else): refused, nothing was changed.",
          "hardener_proof_invalid",
        );
      }
      throw e;
    } finally {
      x.fill(0);
    }
    const t2 = performance.now();
    this.last = { slowHashMs: t1 - t0, roundTripMs: t2 - t1 };
    performance.measure?.("vault:slow-hash", { start: t0, end: t1 });
    performance.measure?.("vault:hardener-round-trip", { start: t1, end: t2 });
    return { y, attemptId: dec(ev.attempt_id), nonce: dec(ev.nonce), attemptsLeft: ev.attempts_left };
  }

  /** The account's success key for `purpose` (opened with the private key), or a new one to send. */
  async successKey(factors, purpose, recipient, userId) {
    const known = factors.success_keys.find((k) => k.purpose === purpose);
    if (known) {
      return { seed: await f.openSuccessKey(this.hpke, dec(known.sealed), recipient, { userId, purpose }), send: null };
    }
    const { seed, publicKey } = f.newSuccessKey();
    const sealed = await f.sealSuccessKey(this.hpke, seed, recipient.publicKey, { userId, purpose });
    return { seed, send: { public_key: enc(publicKey), sealed: enc(sealed) } };
  }

  async report(seed, h, { caller, userId, purpose }) {
    const signature = f.signSuccess(seed, {
      caller,
      userId: f.hardenerUserId(userId, purpose),
      attemptId: h.attemptId,
      nonce: h.nonce,
    });
    await this.api.post("/api/hardener/success", {
      purpose,
      attempt_id: enc(h.attemptId),
      signature: enc(signature),
    });
  }

  #ctx() {
    const k = this.keyring;
    return { userId: k.userId, publicKey: k.publicKey, keypairVersion: k.keypairVersion };
  }

  /** The private key, unwrapped extractable for a moment (to wrap it again: a device wrap too). */
  extractable() {
    return this.#extractable();
  }

  /** The private key, unwrapped extractable for a moment (to wrap it again). */
  async #extractable() {
    const k = this.keyring;
    if (k.bypass) {
      // Unlocked by a device bypass (js/devices.js): KEK_b opens the device wrap again.
      return dc.openDeviceWrap(k.bypass.kek, k.bypass.wrap, { ...this.#ctx(), deviceId: k.bypass.deviceId, extractable: true });
    }
    if (k.wrapKek) {
      return f.openPassphraseWrap(k.wrapKek, dec(k.wrapRecord.wrap), {
        ...this.#ctx(),
        params: paramsOf(k.wrapRecord),
        extractable: true,
      });
    }
    const slot = await this.api.get(path("me", "slots", k.keyIdText));
    return k.open(slot, { extractable: true });
  }

  async #openWrap(info, record, t, passphrase) {
    const { userId } = this.keyring;
    const params = paramsOf(record);
    const h = await this.harden(passphrase, { purpose: "passphrase", userId, params, caller: info.caller });
    const fk = await f.hardenedKey(h.y, { purpose: "passphrase", userId, params });
    const kek = await f.passphraseKek(t, fk);
    fk.fill(0);
    try {
      const sk = await f.openPassphraseWrap(kek, dec(record.wrap), { ...this.#ctx(), params });
      return { sk, kek, h };
    } catch (e) {
      if (e instanceof vc.PassphraseInvalid) {
        throw new FactorError(
          `Wrong vault passphrase: ${h.attemptsLeft} attempts left before the hardener locks it.`,
          "passphrase_invalid",
          { attemptsLeft: h.attemptsLeft },
        );
      }
      throw e;
    }
  }

  /** Unlock with both factors: T from this token's slot, F from the passphrase. */
  async unlock(slot, passphrase) {
    const k = this.keyring;
    const kc = k.kcs.get(slot.key_id);
    const t = await f.openTokenSlot(kc, dec(slot.slot), { ...this.#ctx(), keyId: dec(slot.key_id) });
    const info = await this.info();
    const factors = await this.api.get("/api/me/factors");
    if (!factors.passphrase) throw new FactorError("This account has no vault passphrase.", "passphrase_unset");
    const { sk, kek, h } = await this.#openWrap(info, factors.passphrase, t, passphrase);
    this.#keep(t, kek, factors.passphrase, sk);
    const { seed } = await this.successKey(factors, "passphrase", k.recipient, k.userId);
    await this.report(seed, h, { caller: info.caller, userId: k.userId, purpose: "passphrase" });
    if (factors.passphrase.key_version !== info.current_version) {
      await this.change(passphrase, { info }); // lazy re-key under the hardener's current key
    }
  }

  #keep(t, kek, record, sk) {
    const k = this.keyring;
    k.tokenFactor = t;
    k.wrapKek = kek;
    k.wrapRecord = record;
    k.privateKey = sk;
  }

  /** Forgot the new passphrase: the previous one opens a kept wrap, which becomes current. */
  async rollback(slot, oldPassphrase) {
    const k = this.keyring;
    const t = await f.openTokenSlot(k.kcs.get(slot.key_id), dec(slot.slot), { ...this.#ctx(), keyId: dec(slot.key_id) });
    const info = await this.info();
    const factors = await this.api.get("/api/me/factors");
    if (!factors.history.length) {
      throw new FactorError("There is no earlier passphrase to roll back to (none kept, or it expired).", "no_history");
    }
    for (const record of factors.history) {
      let opened;
      try {
        opened = await this.#openWrap(info, record, t, oldPassphrase);
      } catch (e) {
        if (e instanceof FactorError && e.code === "passphrase_invalid") continue;
        throw e;
      }
      const out = await this.api.post("/api/me/passphrase/rollback", { wrap_id: record.id });
      this.#keep(t, opened.kek, out.passphrase, opened.sk);
      const { seed } = await this.successKey(factors, "passphrase", k.recipient, k.userId);
      await this.report(seed, opened.h, { caller: info.caller, userId: k.userId, purpose: "passphrase" });
      return;
    }
    throw new FactorError("That passphrase opens none of the kept earlier ones.", "passphrase_invalid");
  }

  /** Set the first passphrase, for every token this session holds a Kc of. */
  async set(passphrase, { dropUnproven = false } = {}) {
    f.checkNewSecret(passphrase);
    const k = this.keyring;
    const info = await this.info();
    const factors = await this.api.get("/api/me/factors");
    const { seed, send } = await this.successKey(factors, "passphrase", k.recipient, k.userId);
    const params = this.newParams(info);
    const h = await this.harden(passphrase, { purpose: "passphrase", userId: k.userId, params, caller: info.caller });
    const fk = await f.hardenedKey(h.y, { purpose: "passphrase", userId: k.userId, params });
    const t = f.newTokenFactor();
    const kek = await f.passphraseKek(t, fk);
    const sk = await this.#extractable();
    const wrap = await f.makePassphraseWrap(kek, sk, { userId: k.userId, keypairVersion: k.keypairVersion, params });
    const tokenSlots = [];
    for (const [keyIdText, kc] of k.kcs) {
      const slot = await f.makeTokenSlot(kc, t, { ...this.#ctx(), keyId: dec(keyIdText) });
      tokenSlots.push({ key_id: keyIdText, slot: enc(slot) });
    }
    const out = await this.api.put("/api/me/passphrase", {
      wrap: { ...recordJson(params), wrap: enc(wrap) },
      token_slots: tokenSlots,
      success_key: send,
      drop_unproven: dropUnproven,
    });
    this.#keep(t, kek, out.passphrase, k.privateKey);
    await this.report(seed, h, { caller: info.caller, userId: k.userId, purpose: "passphrase" });
    return out;
  }

  /** A new passphrase: a new wrap under the same T; the old one is kept as history. */
  async change(newPassphrase, { info } = {}) {
    f.checkNewSecret(newPassphrase);
    const k = this.keyring;
    info = info || (await this.info());
    const factors = await this.api.get("/api/me/factors");
    const { seed } = await this.successKey(factors, "passphrase", k.recipient, k.userId);
    const params = this.newParams(info);
    const h = await this.harden(newPassphrase, { purpose: "passphrase", userId: k.userId, params, caller: info.caller });
    const fk = await f.hardenedKey(h.y, { purpose: "passphrase", userId: k.userId, params });
    const kek = await f.passphraseKek(k.tokenFactor, fk);
    const sk = await this.#extractable();
    const wrap = await f.makePassphraseWrap(kek, sk, { userId: k.userId, keypairVersion: k.keypairVersion, params });
    const out = await this.api.post("/api/me/passphrase/change", {
      expected_wrap_id: factors.passphrase.id,
      wrap: { ...recordJson(params), wrap: enc(wrap) },
    });
    k.wrapKek = kek;
    k.wrapRecord = out.passphrase;
    await this.report(seed, h, { caller: info.caller, userId: k.userId, purpose: "passphrase" });
    return out;
  }

  /** Give another token (proved by a second login now) a slot holding T. */
  async addToken(ticket, kc) {
    const k = this.keyring;
    const proven = await k.prove(this.api, ticket, kc);
    if (proven.has_slot) return { proven, added: false };
    const slot = await f.makeTokenSlot(kc, k.tokenFactor, { ...this.#ctx(), keyId: dec(proven.key_id) });
    await this.api.put(path("me", "slots", proven.key_id), {
      keypair_version: k.keypairVersion,
      kind: "kc+passphrase",
      slot: enc(slot),
    });
    return { proven, added: true };
  }

  /** The recovery slot, under a recovery passphrase or (secret null) a new code, returned once. */
  async setupRecovery(secret = null) {
    const kind = secret === null ? "code" : "passphrase";
    if (secret !== null) f.checkNewSecret(secret);
    const text = secret === null ? f.newRecoveryCode() : secret;
    const typed = kind === "code" ? f.normalizeCode(text) : text;
    const k = this.keyring;
    const info = await this.info();
    const factors = await this.api.get("/api/me/factors");
    const { seed, send } = await this.successKey(factors, "recovery", k.recipient, k.userId);
    const params = this.newParams(info);
    const h = await this.harden(typed, { purpose: "recovery", userId: k.userId, params, caller: info.caller });
    const fk = await f.hardenedKey(h.y, { purpose: "recovery", userId: k.userId, params });
    const sk = await this.#extractable();
    const slot = await f.makeRecoverySlot(await f.recoveryKek(fk), sk, {
      userId: k.userId,
      keypairVersion: k.keypairVersion,
      kind,
      params,
    });
    fk.fill(0);
    await this.api.put("/api/me/recovery", { ...recordJson(params), kind, slot: enc(slot), success_key: send });
    await this.report(seed, h, { caller: info.caller, userId: k.userId, purpose: "recovery" });
    return text;
  }

  /**
   * Lost every token: this session logged in with a new one. Open `handle`'s
   * recovery slot with the secret, prove it, and make the new token the
   * account's only one. Returns the new Session (the keyring then holds the
   * recovered account, its private key open).
   */
  async recover(handle, secret) {
    const info = await this.info();
    const target = await this.api.post("/api/recovery/lookup", { handle });
    const rec = target.recovery;
    const userId = dec(target.user_id);
    const publicKey = dec(target.public_key);
    const keypairVersion = target.keypair_version;
    const kind = rec.kind === "code" ? "code" : "passphrase";
    let typed = secret;
    if (kind === "code") {
      try {
        typed = f.normalizeCode(secret);
      } catch (e) {
        throw new FactorError(e.message, "recovery_code_invalid");
      }
    }
    const params = paramsOf(rec);
    const h = await this.harden(typed, {
      purpose: "recovery",
      userId,
      params,
      caller: info.caller,
      url: "/api/recovery/evaluate",
      extra: { handle },
    });
    const fk = await f.hardenedKey(h.y, { purpose: "recovery", userId, params });
    let sk;
    try {
      sk = await f.openRecoverySlot(await f.recoveryKek(fk), dec(rec.slot), {
        userId,
        keypairVersion,
        publicKey,
        kind,
        params,
        extractable: true,
      });
    } catch (e) {
      if (e instanceof vc.RecoveryInvalid) {
        throw new FactorError(
          `Wrong recovery ${kind === "code" ? "code" : "passphrase"}: ${h.attemptsLeft} attempts left before the hardener locks it.`,
          "recovery_invalid",
          { attemptsLeft: h.attemptsLeft },
        );
      }
      throw e;
    } finally {
      fk.fill(0);
    }
    const recipient = { privateKey: sk, publicKey };
    const seed = await f.openSuccessKey(this.hpke, dec(target.success_key.sealed), recipient, {
      userId,
      purpose: "recovery",
    });
    const signature = f.signSuccess(seed, {
      caller: info.caller,
      userId: f.hardenerUserId(userId, "recovery"),
      attemptId: h.attemptId,
      nonce: h.nonce,
    });
    const k = this.keyring;
    const kc = k.kcs.get(k.keyIdText);
    const slot = await vc.makeSlot(kc, sk, { userId, keyId: k.keyId, keypairVersion });
    const session = await this.api.post("/api/recovery/complete", {
      handle,
      attempt_id: enc(h.attemptId),
      nonce: enc(h.nonce),
      signature: enc(signature),
      keypair_version: keypairVersion,
      slot: enc(slot),
    });
    k.userId = userId;
    k.publicKey = publicKey;
    k.handle = session.user.handle;
    k.registered = true;
    k.keypairVersion = keypairVersion;
    await k.open(session.slot); // the page keeps the non-extractable key from the new slot
    return session;
  }
}
