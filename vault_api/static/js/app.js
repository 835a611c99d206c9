// The vault's page: login through authnet, the keys, the session's life.
//
// 1. GET /api/config, then authnet.js and hpke.js (the vault's own copy)
//    (as every SP page loads them).
// 2. The login widget (QR code for the phone, plus the local agent's and the
//    in-browser security key's buttons) delivers Kc as a ClientKey; POST
//    /api/login starts the session and returns this token's key slot.
// 3. New account: make the key pair and the first slot. Known account: open
//    the slot (a slot that does not open is reported, never replaced). No
//    slot for this token: a second login with a token that has one.
// 4. The vault opens (vaultview.js). Idle for idle_timeout_seconds, or the
//    server ends the session: every key and plaintext is dropped.

import * as vc from "./vaultcrypto.js";
import { Api, ApiError } from "./api.js";
import { Keyring } from "./keyring.js";
import { Vault } from "./safes.js";
import { Announcer, $, openDialog, makeDialog, h } from "./dom.js";
import { VaultView } from "./vaultview.js";
import { clearNow } from "./clipboard.js";
import { accountDialog } from "./panels.js";
import { FactorError, Hardening } from "./hardening.js";
import { bypassLogin, devicesDialog, requestApproval } from "./devices.js";
import { orgDialog } from "./orgs.js";

const VIEWS = ["loading", "login", "register", "passphrase", "approval", "recover", "noslot", "problem", "vault"];
const NOTICE_POLL_MS = 15_000;
const WARN_BEFORE_MS = 60_000;

class App {
  constructor() {
    this.say = new Announcer($("#status"), $("#alert"));
    this.api = new Api({
      onEnded: (e) => this.end(`Your session ended (${e.message}). Log in again.`, { callLogout: false }),
      onPassphraseRequired: (e) => this.passphraseRequired(e),
      onRequest: () => {
        this.lastRequest = Date.now();
      },
    });
    this.keyring = new Keyring();
    this.vault = new Vault(this.api, this.keyring);
    this.view = new VaultView(this);
    this.lastActivity = Date.now();
    this.lastRequest = Date.now();
    this.idleTimer = null;
    this.warning = null;
  }

  show(name) {
    for (const v of VIEWS) $(`#${v}-view`).hidden = v !== name;
    document.documentElement.dataset.state = name;
    $("#account-bar").hidden = name !== "vault";
  }

  async boot() {
    try {
      this.config = await this.api.get("/api/config");
      // The vault's own copy of authnet's browser client (same origin, CSP 'self').
      const [authnet, hpke] = await Promise.all([
        import("/authnet/v1/authnet.js"),
        import("/authnet/v1/hpke.js"),
      ]);
      this.authnet = authnet;
      vc.useHpke(hpke);
      this.hpke = hpke;
      this.hardening = new Hardening(this.api, this.keyring, hpke);
    } catch (e) {
      this.show("problem");
      $("#problem-heading").textContent = "The vault cannot start";
      $("#problem-text").textContent = `The page could not load what it needs (${e.message}). Reload to try again.`;
      return;
    }
    $("#register-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.register();
    });
    $("#passphrase-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.unlockPassphrase({ rollback: false });
    });
    $("#rollback-button").addEventListener("click", () => this.unlockPassphrase({ rollback: true }));
    $("#register-recover").addEventListener("click", () => this.showRecover());
    $("#passphrase-recover").addEventListener("click", () => this.showRecover());
    $("#recover-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.recover();
    });
    for (const id of ["#problem-logout", "#noslot-logout", "#logout-button"]) {
      $(id).addEventListener("click", () => this.end("You logged out.", { callLogout: true }));
    }
    $("#account-button").addEventListener("click", () => accountDialog(this));
    $("#devices-button").addEventListener("click", () => devicesDialog(this));
    $("#org-button").addEventListener("click", () => orgDialog(this));
    $("#approval-button").addEventListener("click", () => this.askApproval());
    $("#approval-cancel").addEventListener("click", () => {
      this.approval?.abort();
      this.askPassphrase(this.pendingSlot, "");
    });
    for (const type of ["pointerdown", "keydown", "wheel", "touchstart"]) {
      document.addEventListener(type, () => this.activity(), { capture: true, passive: true });
    }
    this.login();
  }

  /** A login widget in `container`; resolves with {ticket, kc} (ClientKey). */
  widget(container) {
    const login = new this.authnet.AuthnetLogin({
      container,
      getTicket: () => this.api.post("/api/login/ticket"),
    });
    login.addEventListener("scanned", () => this.say.status("Scanned: confirm on your phone."));
    login.addEventListener("agent", () => this.say.status("A security key or smartcard on this computer can log you in."));
    return { login, done: login.start() };
  }

  async login(message = "") {
    this.api.csrf = null;
    this.show("login");
    if (message) this.say.status(message);
    const { login, done } = this.widget($("#login"));
    this.currentLogin = login;
    let result;
    try {
      result = await done;
    } catch {
      return; // cancelled: another login replaced this one
    }
    this.say.status("Logged in. Opening your keys…");
    // "token login -> vault open" (bench/page_login.py): from here to the vault shown,
    // less the time the page waits for the person to type the passphrase.
    this.loginTiming = { start: performance.now(), waited: 0, method: null };
    let session;
    try {
      session = await this.api.post("/api/login", { ticket: result.ticket });
    } catch (e) {
      this.say.alert(`The login did not complete: ${e.message}`);
      return this.login();
    }
    if (!result.kc) {
      this.problem("The network delivered no client key for this login, so the vault cannot open. Log in again.");
      return;
    }
    this.keyring.begin(session, result.kc);
    this.api.csrf = session.csrf_token;
    this.idleTimeoutMs = (session.idle_timeout_seconds || this.config.idle_timeout_seconds) * 1000;
    this.startIdleWatch();
    if (!session.user.registered) {
      this.show("register");
      this.say.status("Choose a handle to create your keys.");
      $("#handle").focus();
      return;
    }
    if (!session.slot) return this.noSlot();
    if (session.slot.kind === "kc+passphrase") {
      let bypass;
      try {
        bypass = await bypassLogin(this, session, session.slot);
      } catch (e) {
        bypass = { opened: false, reason: e.message };
      }
      if (bypass.opened) {
        await this.enterVault();
        this.loginDone("bypass");
        this.say.status("Vault opened with this browser's device (no passphrase needed here).");
        return;
      }
      return this.askPassphrase(session.slot, bypass.reason);
    }
    try {
      await this.keyring.open(session.slot);
      this.keyring.unlockedBy = "slot";
    } catch (e) {
      if (e instanceof vc.VaultCryptoError) {
        this.problem(
          `${e.message}. Nothing was changed, and no new keys were made: a key slot that does not open ` +
            "means another token's key, a modified slot, or a client key substituted on the way. " +
            "Log out and log in again with your own token; if this persists, tell the vault's operator.",
        );
        return;
      }
      throw e;
    }
    await this.enterVault();
    this.loginDone("slot");
  }

  /** The login's measure "vault:login" (token login -> vault open, without the wait for typing). */
  loginDone(method) {
    const t = this.loginTiming;
    if (!t || t.method) return;
    t.method = method;
    const end = performance.now();
    t.ms = end - t.start - t.waited;
    performance.measure?.("vault:login", { start: t.start, duration: Math.max(0, t.ms), detail: { method } });
  }

  /**
   * The token's slot holds the token factor: the vault needs the passphrase
   * too (or another device's approval). `reason`: why this browser's device
   * bypass did not open it, if it has one.
   */
  askPassphrase(slot, reason = null) {
    this.pendingSlot = slot;
    this.show("passphrase");
    if (this.loginTiming && !this.loginTiming.method) this.loginTiming.askedAt = performance.now();
    const why = $("#passphrase-reason");
    why.textContent = reason ? `The passphrase is needed: ${reason}.` : "";
    why.hidden = !reason;
    $("#approval-button").hidden = !this.config.keyproxy_url;
    this.say.status(reason ? `Enter your vault passphrase: ${reason}.` : "Enter your vault passphrase to open your vault.");
    $("#vault-passphrase").focus();
  }

  /** Open this browser by an approval from another, unlocked device (docs/devices.md 5). */
  async askApproval() {
    this.approval?.abort();
    const ctl = new AbortController();
    this.approval = ctl;
    this.show("approval");
    $("#approval-code").textContent = "…";
    $("#approval-fingerprint").textContent = "…";
    const state = $("#approval-state");
    state.textContent = "Asking the vault for a code…";
    state.dataset.state = "asking";
    const ui = {
      show: (code, fp, expiresMs) => {
        $("#approval-code").textContent = code;
        $("#approval-fingerprint").textContent = fp;
        state.textContent = `Waiting for the approval (until ${new Date(expiresMs).toLocaleTimeString()}).`;
        state.dataset.state = "pending";
        this.say.status(`On your other device, open Devices and enter the code ${code}.`);
      },
      state: (text, name) => {
        state.textContent = text;
        state.dataset.state = name;
        this.say.status(text);
      },
    };
    try {
      const opened = await requestApproval(this, this.pendingSlot, ui, ctl.signal);
      if (!opened || ctl.signal.aborted) return;
      await this.enterVault();
      this.say.status("This browser was approved and is now a device of your vault (bypass on).");
    } catch (e) {
      if (ctl.signal.aborted) return;
      ui.state(`The approval did not complete: ${e.message}`, "failed");
      this.say.alert(`The approval did not complete: ${e.message}`);
    }
  }

  async unlockPassphrase({ rollback }) {
    const input = $("#vault-passphrase");
    const buttons = [...document.querySelectorAll("#passphrase-form button")];
    for (const b of buttons) b.disabled = true;
    try {
      this.say.status(rollback ? "Rolling back to your previous passphrase…" : "Checking your passphrase…");
      const t0 = performance.now();
      const lt = this.loginTiming;
      if (lt && !lt.method && lt.askedAt !== undefined) lt.waited += t0 - lt.askedAt;
      if (rollback) await this.hardening.rollback(this.pendingSlot, input.value);
      else await this.hardening.unlock(this.pendingSlot, input.value);
      const l = this.hardening.last;
      performance.measure?.("vault:passphrase-unlock", { start: t0, end: performance.now() });
      this.lastUnlock = { ...l, totalMs: performance.now() - t0 };
      input.value = "";
      this.keyring.unlockedBy = "passphrase";
      this.say.clearAlert();
      await this.enterVault();
      this.loginDone("passphrase");
      this.say.status(rollback ? "Rolled back: your previous passphrase is the current one again." : "Vault opened.");
    } catch (e) {
      if (this.loginTiming && !this.loginTiming.method) this.loginTiming.askedAt = performance.now();
      input.select();
      this.say.alert(e instanceof FactorError || e instanceof ApiError ? e.message : `The vault did not open: ${e.message}`);
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  showRecover() {
    this.show("recover");
    this.say.status("Recover your vault with your recovery code or recovery passphrase.");
    $("#recover-handle").focus();
  }

  async recover() {
    const handle = $("#recover-handle").value.trim();
    const secret = $("#recover-secret");
    const button = $("#recover-form button");
    button.disabled = true;
    try {
      this.say.status("Opening your recovery slot…");
      await this.hardening.recover(handle, secret.value);
      secret.value = "";
      this.say.clearAlert();
      await this.enterVault();
      this.say.status(`Vault recovered: this token is now the only one that opens it, ${handle}.`);
    } catch (e) {
      secret.select();
      this.say.alert(e instanceof FactorError || e instanceof ApiError ? e.message : `Not recovered: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  /** What other sessions did to this account (a recovery): told as soon as the page hears. */
  async checkNotices() {
    let s;
    try {
      s = await this.api.get("/api/session");
    } catch {
      return;
    }
    this.seenNotices = this.seenNotices || new Set();
    for (const n of s.notices || []) {
      if (this.seenNotices.has(n.seq)) continue;
      this.seenNotices.add(n.seq);
      const when = new Date(n.at_ms).toLocaleString();
      const told = {
        "account.recover": `Your vault was recovered from another session at ${when}: every other token's slot was removed. If that was not you, tell the vault's operator now.`,
        "org.join": `You were added to an organisation at ${when}: its policy now applies to your devices (see Organisation).`,
        "device.revoke": `A device of yours was revoked at ${when} (see Devices).`,
      };
      this.say.alert(told[n.action] || `Another session changed your account at ${when} (${n.action}).`);
    }
  }

  problem(text) {
    this.show("problem");
    $("#problem-text").textContent = text;
    this.say.alert(text);
    $("#problem-heading").focus?.();
  }

  async register() {
    const handle = $("#handle").value.trim();
    const button = $("#register-form button");
    button.disabled = true;
    try {
      this.say.status("Making your key pair…");
      await this.keyring.register(this.api, handle);
      this.say.clearAlert();
      await this.enterVault();
      this.say.status(`Your vault is ready, ${handle}.`);
    } catch (e) {
      const taken = e instanceof ApiError && e.code === "handle_taken";
      this.say.alert(taken ? `The handle ${handle} is taken: choose another.` : `Could not create your keys: ${e.message}`);
      $("#handle").focus();
    } finally {
      button.disabled = false;
    }
  }

  async noSlot() {
    this.show("noslot");
    this.say.status("This token has no key slot: log in with one that has.");
    const { done } = this.widget($("#noslot-login"));
    let result;
    try {
      result = await done;
    } catch {
      return;
    }
    try {
      await this.keyring.adoptFrom(this.api, result.ticket, result.kc);
    } catch (e) {
      this.say.alert(`That did not work: ${e.message}`);
      return this.noSlot();
    }
    this.say.status("This token now has its own key slot.");
    await this.enterVault();
  }

  async enterVault() {
    this.show("vault");
    clearInterval(this.noticeTimer);
    this.noticeTimer = setInterval(() => this.checkNotices(), NOTICE_POLL_MS);
    this.checkNotices();
    $("#who").textContent = this.keyring.handle ? `Logged in as ${this.keyring.handle}` : "";
    try {
      await this.view.start();
    } catch (e) {
      // The safes stay closed until a passphrase is set: passphraseRequired() asks.
      if (!(e instanceof ApiError && e.code === "passphrase_required")) throw e;
    }
  }

  /**
   * 403 `passphrase_required` (docs/vault.md 5.4): the server's setting, or the
   * organisation's policy, requires a vault passphrase this account has not
   * set. Say who, and open Account and tokens at the passphrase (once at a time).
   */
  passphraseRequired(e) {
    const org = e.body.organisation;
    const server = e.body.required_by === "server";
    const who = server && org ? `This vault and your organisation ${org} require` : org ? `Your organisation ${org} requires` : "This vault requires";
    this.say.alert(`${who} a vault passphrase: set one now in Account and tokens. Until then your safes stay closed.`);
    if (this.askingPassphrase || $("#account-dialog")?.open) return;
    this.askingPassphrase = true;
    accountDialog(this, { passphrase: true })
      .catch(() => {})
      .finally(() => {
        this.askingPassphrase = false;
      });
  }

  /** A first passphrase was set in Account and tokens: the safes open now. */
  async passphraseSet() {
    this.say.clearAlert();
    try {
      await this.view.start();
    } catch (e) {
      this.say.alert(`Could not load your safes: ${e.message}`);
    }
  }

  // --- the session's end -----------------------------------------------------------

  activity() {
    this.lastActivity = Date.now();
    if (this.warning) {
      this.warning.close();
      this.warning = null;
    }
  }

  startIdleWatch() {
    clearInterval(this.idleTimer);
    this.lastActivity = Date.now();
    this.idleTimer = setInterval(() => this.checkIdle(), 1000);
  }

  checkIdle() {
    const now = Date.now();
    const idle = now - this.lastActivity;
    if (idle >= this.idleTimeoutMs) {
      const s = Math.round(this.idleTimeoutMs / 1000);
      const span = s < 120 ? `${s} seconds` : `${Math.round(s / 60)} minutes`;
      this.end(`You were logged out after ${span} without activity; your keys were dropped from this page.`, {
        callLogout: true,
      });
      return;
    }
    const warnAt = Math.max(this.idleTimeoutMs - WARN_BEFORE_MS, this.idleTimeoutMs / 2);
    if (idle >= warnAt && !this.warning) {
      this.warnIdle();
    } else if (this.warning) {
      this.warning.querySelector("#idle-left").textContent = String(Math.ceil((this.idleTimeoutMs - idle) / 1000));
    }
    // The person is active but makes no requests (reading, typing): keep the
    // server's session alive too.
    if (this.lastActivity > this.lastRequest && now - this.lastRequest > this.idleTimeoutMs / 3) {
      this.api.get("/api/session").catch(() => {});
    }
  }

  warnIdle() {
    const left = Math.ceil((this.idleTimeoutMs - (Date.now() - this.lastActivity)) / 1000);
    const { dialog } = makeDialog(
      "idle-dialog",
      "Still there?",
      h("p", {}, "You will be logged out in ", h("span", { id: "idle-left" }, String(left)), " seconds without activity."),
      h("button", { type: "button", class: "primary", onclick: () => dialog.close() }, "Stay logged in"),
    );
    this.warning = dialog;
    openDialog(dialog).then(() => {
      this.warning = null;
    });
  }

  /** Drop every key and plaintext, end the session, and show the login again. */
  async end(message, { callLogout }) {
    if (this.ending) return;
    this.ending = true;
    try {
      clearInterval(this.idleTimer);
      clearInterval(this.noticeTimer);
      this.approval?.abort();
      for (const d of document.querySelectorAll("dialog")) d.close();
      this.view.reset();
      await clearNow();
      if (callLogout && this.api.hasSession) await this.api.post("/api/logout").catch(() => {});
      this.api.csrf = null;
      this.keyring.forget();
      this.vault.forget();
      $("#handle").value = "";
      this.say.clearAlert();
      this.currentLogin?.cancel();
    } finally {
      this.ending = false;
    }
    this.login(message);
  }
}

const app = new App();
app.boot();
