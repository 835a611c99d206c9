// Trusted devices in the page (docs/devices.md 2-5): this browser as a
// device of the account, the passphrase bypass, and the approval of a new
// browser from one that is unlocked, through the one-time key proxy.
//
// What is stored where:
//   IndexedDB "authnet-vault-devices", store "devices", keyed by user id: this
//     browser's device id and its two key pairs, whose private halves are
//     non-extractable CryptoKeys (X25519 for the sealed KEK, Ed25519 for the
//     proofs). Nothing else of the vault is written to the browser.
//     A "prf" device (docs/devices.md 1) keeps no key there at all: only
//     {user_id, device_id, kind: "prf", credential_id, name}. Its two keys are
//     derived at each use from the WebAuthn PRF output of a platform
//     authenticator's credential (the authenticator's user verification gates
//     every use), and live in memory only while they are used.
//   The server: the device row, its device wrap and sealed KEK.
//   Memory (Keyring.bypass): KEK_b and the wrap, while the session lasts, so a
//     bypass-unlocked session can still wrap skU again (another device, a new
//     passphrase).
//
// The bypass replaces exactly the passphrase step: the token login happens
// first, and T from this token's slot is mixed into KEK_b.

import * as vc from "./vaultcrypto.js";
import * as dc from "./crypto/devices.js";
import * as f from "./crypto/factors.js";
import { ApiError, path } from "./api.js";
import { utf8 } from "./crypto/encoding.js";
import { KeyProxy, ProxyError, approvalConditions } from "./keyproxy.js";
import { fill, h, makeDialog, openDialog, when } from "./dom.js";
import { confirmDialog, promptDialog } from "./panels.js";

const DB_NAME = "authnet-vault-devices";
const STORE = "devices";
const APPROVAL_TTL_S = 600;
const POLL_MS = 1000;
const enc = (b) => vc.b64uEncode(b);
const dec = (t, field = "value") => vc.b64uDecode(t, { field });

// --- the device store ------------------------------------------------------------------

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "user_id" });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req?.result ?? null);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

/** This browser's device of each account (by user id, base64url). */
export const deviceStore = {
  async get(userIdText) {
    const r = await tx("readonly", (s) => s.get(userIdText));
    if (!r) return null;
    if (r.kind === "prf") return { record: r, deviceId: dec(r.device_id, "device id"), device: null };
    return {
      deviceId: dec(r.device_id, "device id"),
      record: r,
      device: {
        deviceId: dec(r.device_id, "device id"),
        deviceKey: r.device_key,
        signingKey: r.signing_key,
        publicKey: dec(r.public_key, "device public key"),
        signingPublicKey: dec(r.signing_public_key, "device signing key"),
      },
    };
  },
  put(userIdText, device, name) {
    const record = {
      user_id: userIdText,
      device_id: enc(device.deviceId),
      name,
      device_key: device.deviceKey,
      signing_key: device.signingKey,
      public_key: enc(device.publicKey),
      signing_public_key: enc(device.signingPublicKey),
    };
    return tx("readwrite", (s) => s.put(record));
  },
  /** A PRF device: its ids and name only, no key. */
  putPrf(userIdText, deviceId, credentialId, name) {
    const record = { user_id: userIdText, device_id: enc(deviceId), kind: "prf", credential_id: enc(credentialId), name };
    return tx("readwrite", (s) => s.put(record));
  },
  delete(userIdText) {
    return tx("readwrite", (s) => s.delete(userIdText));
  },
};

/** "Chromium on Linux": the name the page proposes for this browser. */
export function proposedName() {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chromium"
    : /Safari\//.test(ua) ? "Safari" : "A browser";
  const platform = navigator.userAgentData?.platform || (/Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS"
    : /Android/.test(ua) ? "Android" : /Linux/.test(ua) ? "Linux" : "this computer");
  return `${browser} on ${platform}`.slice(0, 64);
}

const userAgent = () => navigator.userAgent.slice(0, 256);

// --- a device kept in the computer's authenticator (WebAuthn PRF) ---------------------

const PRF_TIMEOUT_MS = 60_000;

/** Why a PRF device's keys could not be derived (the authenticator, not the vault). */
export class PrfError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PrfError";
    this.code = code;
  }
}

/** True when this browser has a user-verifying platform authenticator and the prf extension. */
export async function prfAvailable() {
  try {
    if (!window.PublicKeyCredential || !window.isSecureContext) return false;
    if (!(await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable())) return false;
    if (typeof PublicKeyCredential.getClientCapabilities !== "function") return false;
    const caps = await PublicKeyCredential.getClientCapabilities();
    return caps["extension:prf"] === true;
  } catch {
    return false;
  }
}

/** The 32-byte PRF output of credential `credentialId` for `salt` (user verification required). */
async function prfEvaluate(credentialId, salt) {
  let cred;
  try {
    cred = await navigator.credentials.get({
      publicKey: {
        challenge: vc.randomBytes(32), // nothing is verified by a server: only the PRF output is used
        rpId: location.hostname,
        allowCredentials: [{ type: "public-key", id: credentialId }],
        userVerification: "required",
        timeout: PRF_TIMEOUT_MS,
        extensions: { prf: { eval: { first: salt } } },
      },
    });
  } catch (e) {
    throw new PrfError(
      "prf_unavailable",
      `this computer's authenticator did not give this browser's device key (${e?.name || "no answer"}): ` +
        "its credential is gone, or the check was cancelled",
    );
  }
  const first = cred?.getClientExtensionResults?.().prf?.results?.first;
  if (!first) throw new PrfError("prf_unsupported", "this authenticator has no PRF");
  const out = new Uint8Array(first.slice(0));
  new Uint8Array(first).fill(0);
  if (out.length !== dc.PRF_BYTES) throw new PrfError("prf_unsupported", "this authenticator has no PRF (its output is not 32 bytes)");
  return out;
}

/** The two keys of a PRF device, derived now (docs/devices.md 1). */
async function prfDevice(userId, deviceId, credentialId) {
  const out = await prfEvaluate(credentialId, await dc.prfSalt({ userId, deviceId }));
  try {
    return await dc.deviceFromPrf(deviceId, out);
  } finally {
    out.fill(0);
  }
}

/** This browser's device keys: stored ones, or a PRF device's derived through the authenticator. */
async function localKeys(userId, local) {
  if (local.device) return local.device;
  return prfDevice(userId, local.deviceId, dec(local.record.credential_id, "credential id"));
}

/** A new credential of the platform authenticator, then the device's keys from its PRF. */
async function newPrfDevice(keyring) {
  const deviceId = vc.randomBytes(16);
  let cred;
  try {
    cred = await navigator.credentials.create({
      publicKey: {
        challenge: vc.randomBytes(32),
        rp: { id: location.hostname, name: "authnet vault" },
        user: { id: keyring.userId, name: keyring.handle || "vault", displayName: keyring.handle || "vault" },
        pubKeyCredParams: [{ type: "public-key", alg: -7 }, { type: "public-key", alg: -8 }],
        authenticatorSelection: { authenticatorAttachment: "platform", userVerification: "required", residentKey: "discouraged" },
        timeout: PRF_TIMEOUT_MS,
        extensions: { prf: {} },
      },
    });
  } catch (e) {
    throw new PrfError("prf_unavailable", `the computer's authenticator made no credential (${e?.name || "no answer"})`);
  }
  if (cred?.getClientExtensionResults?.().prf?.enabled === false) {
    throw new PrfError("prf_unsupported", "this authenticator has no PRF");
  }
  const credentialId = new Uint8Array(cred.rawId);
  return { device: await prfDevice(keyring.userId, deviceId, credentialId), credentialId };
}

async function registrationFields(device, userId, name) {
  return {
    device_id: enc(device.deviceId),
    name,
    user_agent: userAgent(),
    public_key: enc(device.publicKey),
    signing_key: enc(device.signingPublicKey),
    proof: enc(await dc.registrationProof(device, { userId })),
  };
}

// --- why a bypass did not happen -------------------------------------------------------

const REASONS = {
  device_not_found: "the vault does not know this browser as a device any more",
  device_revoked: "this browser was revoked as a device",
  device_expired: "this browser's device expired (it was not used for too long)",
  policy_forbids: "your organisation does not allow the passphrase bypass",
  bypass_off: "the bypass is off for this browser",
  device_proof_invalid: "the vault did not accept this browser's device proof",
  device_wrap_invalid: "this browser's device wrap did not open (it was modified, or made for another token factor)",
  device_kek_invalid: "the key sealed to this browser did not open with its device key",
  key_mismatch: "the device wrap holds a key that is not your account's",
  malformed_ciphertext: "the vault sent a device wrap of the wrong shape",
};
/** Refusals after which this browser's device is gone for good: its local keys are deleted. */
const GONE = new Set(["device_not_found", "device_revoked", "device_expired"]);

export function reasonText(e) {
  if (e?.code === "policy_forbids" && e.body?.policy === "allow_device_registration") {
    return "your organisation does not allow registering devices";
  }
  return REASONS[e?.code] || e?.message || String(e);
}

/**
 * After the token login (slot of kind kc+passphrase): open the vault with
 * this browser's device instead of the passphrase. Resolves with
 * {opened: true} or {opened: false, reason} (reason null: no device here).
 */
export async function bypassLogin(app, session, slot) {
  const k = app.keyring;
  const userIdText = enc(k.userId);
  let local;
  try {
    local = await deviceStore.get(userIdText);
  } catch {
    return { opened: false, reason: "this browser's device store cannot be read" };
  }
  if (!local) return { opened: false, reason: null };
  try {
    const device = await localKeys(k.userId, local);
    const t = await f.openTokenSlot(k.kcs.get(slot.key_id), dec(slot.slot, "slot"), {
      userId: k.userId,
      keyId: dec(slot.key_id, "key id"),
      keypairVersion: k.keypairVersion,
      publicKey: k.publicKey,
    });
    if (!session.device_nonce) throw new ApiError(409, { error: "no_nonce", message: "the vault's session carries no device nonce" });
    const proof = await dc.loginProof(device, { userId: k.userId, nonce: dec(session.device_nonce, "device nonce") });
    const out = await app.api.post(path("me", "devices", enc(device.deviceId), "open"), { proof: enc(proof) });
    const dkek = await dc.openDkek(app.hpke, dec(out.sealed_kek, "sealed KEK"), device, { userId: k.userId });
    const kek = await dc.bypassKek(t, dkek);
    dkek.fill(0);
    const wrap = dec(out.device_wrap, "device wrap");
    const sk = await dc.openDeviceWrap(kek, wrap, {
      userId: k.userId,
      deviceId: device.deviceId,
      keypairVersion: out.keypair_version,
      publicKey: k.publicKey,
    });
    k.privateKey = sk;
    k.tokenFactor = t;
    k.bypass = { deviceId: device.deviceId, kek, wrap };
    k.unlockedBy = "bypass";
    return { opened: true };
  } catch (e) {
    if (!(e instanceof ApiError || e instanceof vc.VaultCryptoError || e instanceof PrfError)) throw e;
    if (e.code === "slot_invalid") throw e; // the token's own slot: the passphrase path says it in words
    if (GONE.has(e.code)) await deviceStore.delete(userIdText).catch(() => {});
    return { opened: false, reason: reasonText(e), code: e.code };
  }
}

// --- enabling the bypass, and wraps for another device ------------------------------------

/** DKEK, the device wrap for `deviceId` and DKEK sealed to `publicKey` (docs/devices.md 3). */
async function makeWraps(app, { deviceId, publicKey }) {
  const k = app.keyring;
  if (!k.tokenFactor) {
    throw new ApiError(409, {
      error: "passphrase_unset",
      message: "the bypass replaces the vault passphrase, and this vault has none: set one first",
    });
  }
  const dkek = dc.newDkek();
  try {
    const kek = await dc.bypassKek(k.tokenFactor, dkek);
    const sk = await app.hardening.extractable();
    const wrap = await dc.makeDeviceWrap(kek, sk, { userId: k.userId, deviceId, keypairVersion: k.keypairVersion });
    const sealed = await dc.sealDkek(app.hpke, dkek, { userId: k.userId, deviceId, publicKey });
    return { wrap, sealed, kek };
  } finally {
    dkek.fill(0);
  }
}

async function registerThisBrowser(app, name, { prf = false } = {}) {
  const k = app.keyring;
  if (prf) {
    // Nothing is registered unless the authenticator gave a PRF output.
    const { device, credentialId } = await newPrfDevice(k);
    const out = await app.api.post("/api/me/devices", await registrationFields(device, k.userId, name));
    await deviceStore.putPrf(enc(k.userId), device.deviceId, credentialId, name);
    return out;
  }
  const device = await dc.newDevice();
  const out = await app.api.post("/api/me/devices", await registrationFields(device, k.userId, name));
  await deviceStore.put(enc(k.userId), device, name);
  return out;
}

async function enableBypass(app, device) {
  const k = app.keyring;
  const { wrap, sealed } = await makeWraps(app, { deviceId: device.deviceId, publicKey: device.publicKey });
  return app.api.put(path("me", "devices", enc(device.deviceId), "bypass"), {
    keypair_version: k.keypairVersion,
    device_wrap: enc(wrap),
    sealed_kek: enc(sealed),
  });
}

// --- the devices dialog ----------------------------------------------------------------

export async function devicesDialog(app) {
  const { api, keyring, say } = app;
  const userIdText = enc(keyring.userId);
  const list = h("div", { id: "device-list" });
  const result = h("div", { id: "device-result", role: "status", "aria-live": "polite" });
  const approveBox = h("div", { id: "approve-box" });
  const tell = (text, good = true) => {
    fill(result, h("p", { class: good ? "good" : "bad" }, text));
    if (good) say.status(text);
  };
  const attempt = async (what, fn) => {
    try {
      await fn();
    } catch (e) {
      tell(`${what}: ${reasonText(e)}`, false);
    }
    await render();
  };
  const prfOffer = prfAvailable();
  const render = async () => {
    const [{ devices }, local, prfOk] = await Promise.all([
      api.get("/api/me/devices"),
      deviceStore.get(userIdText).catch(() => null),
      prfOffer,
    ]);
    const mine = local ? enc(local.deviceId) : null;
    const here = devices.find((d) => d.device_id === mine && d.state === "active");
    const rows = devices.map((d) => {
      const self = d.device_id === mine;
      const label = `${d.name}${self ? " (this browser)" : ""}`;
      const actions = [];
      if (d.state === "active" && self) {
        actions.push(
          d.bypass
            ? h("button", { type: "button", onclick: () => attempt("The bypass stays on", async () => {
                await api.delete(path("me", "devices", d.device_id, "bypass"));
                tell("The bypass is off for this browser: the next login asks for the passphrase.");
              }) }, "Turn the bypass off")
            : h("button", { type: "button", onclick: () => attempt("The bypass is not on", async () => {
                await enableBypass(app, await localKeys(keyring.userId, local));
                tell("The bypass is on: this browser opens your vault after the token login, without the passphrase.");
              }) }, "Turn the bypass on"),
        );
      } else if (d.state === "active" && d.bypass) {
        actions.push(h("button", { type: "button", "aria-label": `Turn the bypass off for ${d.name}`, onclick: () => attempt("The bypass stays on", async () => {
          await api.delete(path("me", "devices", d.device_id, "bypass"));
          tell(`The bypass is off for ${d.name}.`);
        }) }, "Bypass off"));
      }
      if (d.state === "active") {
        actions.push(h("button", { type: "button", "aria-label": `Rename ${d.name}`, onclick: async () => {
          const name = await promptDialog("Rename the device", "Name of the device", d.name);
          if (name) await attempt("Not renamed", async () => {
            await api.patch(path("me", "devices", d.device_id), { name });
            tell(`Renamed to ${name}.`);
          });
        } }, "Rename"));
        actions.push(h("button", { type: "button", class: "danger", "aria-label": `Revoke ${label}`, onclick: async () => {
          if (!(await confirmDialog("Revoke device", `Revoke ${d.name}? Its bypass wraps are deleted and its sessions end now.`, "Revoke"))) return;
          await attempt("Not revoked", async () => {
            await api.delete(path("me", "devices", d.device_id));
            if (self) await deviceStore.delete(userIdText);
            tell(`${d.name} was revoked.`);
          });
        } }, "Revoke"));
      }
      return h("tr", { dataset: { deviceId: d.device_id } },
        h("th", { scope: "row" }, label),
        h("td", { class: "fingerprint" }, d.fingerprint),
        h("td", {}, d.state),
        h("td", {}, d.state === "active" ? (d.bypass ? "on" : "off") : ""),
        h("td", {}, when(d.last_used_ms)),
        h("td", {}, d.expires_ms ? when(d.expires_ms) : d.state === "active" ? "never" : ""),
        h("td", {}, h("div", { class: "row" }, actions)));
    });
    const nameInput = h("input", { id: "device-name", value: proposedName(), maxlength: 64, required: true });
    const prfBox = prfOk ? h("input", { type: "checkbox", id: "device-prf" }) : null;
    fill(
      list,
      devices.length
        ? h("table", {},
            h("caption", { class: "visually-hidden" }, "Your devices"),
            h("thead", {}, h("tr", {}, ["Device", "Fingerprint", "State", "Bypass", "Last used", "Expires", ""].map((t) => h("th", { scope: "col" }, t)))),
            h("tbody", {}, rows))
        : h("p", { class: "help" }, "No devices are registered."),
      here
        ? null
        : [
            h("h3", {}, "This browser"),
            h("p", { class: "help" }, "Register this browser as a device to open your vault here without typing the passphrase (after the token login). Its keys stay in this browser, not readable by script."),
            h("label", { for: "device-name" }, "Name of this device"),
            nameInput,
            prfBox
              ? h("label", { class: "inline" }, prfBox, " Keep this device's key in the computer's authenticator (WebAuthn PRF)")
              : null,
            h("button", { type: "button", id: "register-device", onclick: () => attempt("Not registered", async () => {
              await registerThisBrowser(app, nameInput.value.trim() || proposedName(), { prf: Boolean(prfBox?.checked) });
              tell("This browser is registered as a device. Turn the bypass on to skip the passphrase here.");
            }) }, "Register this browser"),
          ],
    );
  };
  const approveForm = () => {
    const code = h("input", { id: "approve-code", autocomplete: "off", required: true, "aria-describedby": "approve-code-help" });
    const found = h("div", { id: "approve-found", "aria-live": "polite" });
    const look = async (e) => {
      e.preventDefault();
      const text = code.value.replace(/\s+/g, "").toUpperCase();
      let r;
      try {
        r = await api.get(path("devices", "requests", text));
        await dc.verifyProof(dec(r.signing_key), dec(r.proof), dc.registrationMessage({
          userId: keyring.userId, deviceId: dec(r.device_id), publicKey: dec(r.public_key), signingKey: dec(r.signing_key),
        }), { deviceId: dec(r.device_id) });
      } catch (err) {
        const msg = err.code === "request_not_found" ? "There is no pending request with that code."
          : err.code === "too_many_attempts" ? "Too many wrong codes: requests are locked for a while." : err.message;
        fill(found, h("p", { class: "bad" }, `Not found: ${msg}`));
        return;
      }
      if (r.state !== "pending") {
        fill(found, h("p", { class: "bad" }, `That request is already ${r.state}.`));
        return;
      }
      const fp = await dc.deviceFingerprint({
        userId: keyring.userId, deviceId: dec(r.device_id), publicKey: dec(r.public_key), signingKey: dec(r.signing_key),
      });
      const check = h("input", { type: "checkbox", id: "approve-match" });
      const go = h("button", { type: "button", class: "primary", id: "approve-go", disabled: true }, `Approve ${r.name}`);
      const no = h("button", { type: "button", class: "danger", id: "approve-refuse" }, "Refuse");
      check.addEventListener("change", () => { go.disabled = !check.checked; });
      go.addEventListener("click", async () => {
        go.disabled = no.disabled = true;
        try {
          await approve(app, r);
          tell(`Approved ${r.name}: it finishes on its own screen.`);
          fill(found);
        } catch (err) {
          tell(`Not approved: ${err.message}`, false);
          go.disabled = no.disabled = false;
        }
        await render();
      });
      no.addEventListener("click", async () => {
        go.disabled = no.disabled = true;
        try {
          await api.delete(path("devices", "requests", r.code));
          tell(`Refused the request of ${r.name}.`);
          fill(found);
        } catch (err) {
          tell(`Not refused: ${err.message}`, false);
        }
      });
      fill(
        found,
        h("p", {}, `${r.name} (${r.user_agent || "no browser named"}) asks to open your vault. Its fingerprint, as this page computes it from the keys the server sent:`),
        h("p", { class: "fingerprint", id: "approve-fingerprint" }, fp),
        h("p", { class: "help" }, "Compare it with the fingerprint the new browser shows. If it differs, someone else's keys were put in: refuse."),
        h("label", { class: "inline" }, check, " The fingerprints match"),
        h("div", { class: "actions" }, go, no),
      );
    };
    fill(
      approveBox,
      h("h3", {}, "Approve a new device"),
      h("form", { id: "approve-form", onsubmit: look },
        h("label", { for: "approve-code" }, "Code shown by the new browser"),
        code,
        h("p", { id: "approve-code-help", class: "help" }, "Ten letters and digits, e.g. ABCDE-FGHJK."),
        h("button", { type: "submit" }, "Look up the request")),
      found,
    );
  };
  const { dialog } = makeDialog(
    "devices-dialog",
    "Devices",
    h("p", { class: "help" }, "Browsers and CLI installations of your account. A device with the bypass on opens your vault after the token login without the passphrase; revoke one you lost."),
    list,
    result,
    approveBox,
  );
  const closed = openDialog(dialog);
  approveForm();
  try {
    await render();
  } catch (e) {
    tell(`The devices did not load: ${e.message}`, false);
  }
  await closed;
}

/** A's side (docs/devices.md 5, step 3): wraps for the requesting device, the KEK through the proxy. */
async function approve(app, r) {
  const { api, keyring } = app;
  const proxy = new KeyProxy(app.config.keyproxy_url);
  if (!r.claim_hash) throw new Error("the vault's answer names no claim hash for the request; cannot deposit");
  const deviceId = dec(r.device_id, "device id");
  const { wrap, sealed } = await makeWraps(app, { deviceId, publicKey: dec(r.public_key, "device public key") });
  const dep = await proxy.deposit(sealed, APPROVAL_TTL_S, approvalConditions(r.claim_hash, enc(keyring.userId)));
  return api.post(path("devices", "requests", r.code, "approve"), {
    keypair_version: keyring.keypairVersion,
    device_wrap: enc(wrap),
    proxy_token: dep.token,
  });
}

// --- B's side: ask to be approved -----------------------------------------------------

/**
 * The new browser (docs/devices.md 5, steps 1 and 4): make the device keys and
 * a claim secret, show the code and the fingerprint, wait for the approval,
 * claim the KEK at the proxy, store the bypass and open the vault.
 * `ui` = {show(code, fingerprint, expiresMs), state(text)}; `signal` cancels.
 * Resolves true once the vault is open, false when refused or expired.
 */
export async function requestApproval(app, slot, ui, signal) {
  const { api, keyring } = app;
  const proxy = new KeyProxy(app.config.keyproxy_url);
  const t = await f.openTokenSlot(keyring.kcs.get(slot.key_id), dec(slot.slot, "slot"), {
    userId: keyring.userId,
    keyId: dec(slot.key_id, "key id"),
    keypairVersion: keyring.keypairVersion,
    publicKey: keyring.publicKey,
  });
  const device = await dc.newDevice();
  const secret = vc.randomBytes(32);
  const name = proposedName();
  const fields = await registrationFields(device, keyring.userId, name);
  const req = await api.post("/api/devices/requests", { ...fields, claim_hash: enc(await dc.sha256(secret)) });
  const fp = await dc.deviceFingerprint({
    userId: keyring.userId, deviceId: device.deviceId, publicKey: device.publicKey, signingKey: device.signingPublicKey,
  });
  ui.show(req.code, fp, req.expires_ms);
  let r;
  for (;;) {
    if (signal.aborted) return false;
    await new Promise((res) => setTimeout(res, POLL_MS));
    if (signal.aborted) return false;
    try {
      r = await api.get(path("devices", "requests", req.code));
    } catch (e) {
      if (e.code === "request_not_found" || e.status === 404 || e.status === 410) {
        ui.state("The request expired before it was approved. Ask again, or type the passphrase.", "expired");
        return false;
      }
      throw e;
    }
    if (r.state === "refused") {
      ui.state("Refused: the other device refused this browser (the fingerprints did not match, or it was not you).", "refused");
      return false;
    }
    if (r.state === "approved" && r.proxy_token) break;
    if (Date.now() > req.expires_ms) {
      ui.state("The request expired before it was approved. Ask again, or type the passphrase.", "expired");
      return false;
    }
  }
  ui.state("Approved. Fetching the key for this browser…", "approved");
  const tokenHash = enc(await dc.sha256(utf8(r.proxy_token)));
  const { grant } = await api.post("/api/keyproxy/grant", { token_hash: tokenHash });
  let sealed;
  try {
    sealed = await proxy.claim(r.proxy_token, { secret, grant });
  } finally {
    secret.fill(0);
  }
  // It opens with this browser's key before anything is stored.
  const dkek = await dc.openDkek(app.hpke, sealed, device, { userId: keyring.userId });
  dkek.fill(0);
  await api.put(path("me", "devices", enc(device.deviceId), "bypass"), {
    keypair_version: keyring.keypairVersion,
    sealed_kek: enc(sealed),
  });
  await deviceStore.put(enc(keyring.userId), device, name);
  const session = await api.get("/api/session");
  const proof = await dc.loginProof(device, { userId: keyring.userId, nonce: dec(session.device_nonce, "device nonce") });
  const out = await api.post(path("me", "devices", enc(device.deviceId), "open"), { proof: enc(proof) });
  const d2 = await dc.openDkek(app.hpke, dec(out.sealed_kek), device, { userId: keyring.userId });
  const kek = await dc.bypassKek(t, d2);
  d2.fill(0);
  const wrap = dec(out.device_wrap, "device wrap");
  keyring.privateKey = await dc.openDeviceWrap(kek, wrap, {
    userId: keyring.userId, deviceId: device.deviceId, keypairVersion: out.keypair_version, publicKey: keyring.publicKey,
  });
  keyring.tokenFactor = t;
  keyring.bypass = { deviceId: device.deviceId, kek, wrap };
  keyring.unlockedBy = "bypass";
  return true;
}

export { ProxyError };
