// The vault's dialogs: small prompts, the password generator, the account
// (fingerprint, key slots, adding a token), members and sharing (with the
// fingerprint check), the audit log, import and export, safe settings.

import * as vc from "./vaultcrypto.js";
import { $, fill, h, makeDialog, num, openDialog, saveBlob, when } from "./dom.js";
import { path } from "./api.js";
import { entropyBits, generatePassword } from "./passwords.js";
import { FORMATS, readImport } from "./importers.js";
import { toBitwardenJson, toChromeCsv } from "./exporters.js";

/** Ask for one line of text; resolves with it (trimmed) or null. */
export async function promptDialog(title, label, value = "") {
  const input = h("input", { id: "prompt-input", required: true, value });
  let result = null;
  const form = h(
    "form",
    { method: "dialog" },
    h("label", { for: "prompt-input" }, label),
    input,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "OK"), h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")),
  );
  form.addEventListener("submit", () => {
    result = input.value.trim() || null;
  });
  const { dialog } = makeDialog("prompt-dialog", title, form);
  await openDialog(dialog, { focus: "#prompt-input" });
  return result;
}

export async function confirmDialog(title, text, yes = "OK") {
  let ok = false;
  const { dialog } = makeDialog(
    "confirm-dialog",
    title,
    h("p", {}, text),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger", onclick: () => { ok = true; dialog.close(); } }, yes),
      h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")),
  );
  await openDialog(dialog, { focus: ".actions button:last-child" });
  return ok;
}

/** The password generator; resolves with the chosen password or null. */
export async function generatorDialog() {
  const opts = { length: 20, lower: true, upper: true, digits: true, symbols: true };
  const out = h("output", { id: "gen-output", class: "secret", for: "gen-length" });
  const strength = h("p", { class: "help" });
  const problem = h("p", { class: "bad", role: "alert" });
  let password = "";
  const regen = () => {
    try {
      password = generatePassword(opts);
      out.textContent = password;
      strength.textContent = `About ${entropyBits(opts)} bits of entropy.`;
      problem.textContent = "";
    } catch (e) {
      password = "";
      out.textContent = "";
      problem.textContent = e.message;
    }
  };
  const length = h("input", { id: "gen-length", type: "number", min: 4, max: 256, value: 20, oninput: (e) => { opts.length = Number(e.target.value); regen(); } });
  const box = (key, label) =>
    h("label", { class: "inline" }, h("input", { type: "checkbox", id: `gen-${key}`, checked: true, onchange: (e) => { opts[key] = e.target.checked; regen(); } }), ` ${label}`);
  let chosen = null;
  const { dialog } = makeDialog(
    "generator-dialog",
    "Generate a password",
    h("label", { for: "gen-length" }, "Length"),
    length,
    h("fieldset", {}, h("legend", {}, "Characters"), box("lower", "a–z"), box("upper", "A–Z"), box("digits", "0–9"), box("symbols", "symbols")),
    h("p", {}, out),
    strength,
    problem,
    h("div", { class: "actions" },
      h("button", { type: "button", onclick: regen }, "Another"),
      h("button", { type: "button", class: "primary", onclick: () => { chosen = password || null; dialog.close(); } }, "Use this password"),
      h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")),
  );
  regen();
  await openDialog(dialog, { focus: "#gen-length" });
  return chosen;
}

// --- account ------------------------------------------------------------------------

/** `passphrase`: open at the vault passphrase (the server requires one, app.passphraseRequired). */
export async function accountDialog(app, { passphrase = false } = {}) {
  const { keyring, api, say } = app;
  const slotsBox = h("div", {});
  const addBox = h("div", {});
  const renderSlots = async () => {
    const me = await api.get("/api/me");
    fill(
      slotsBox,
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Token (key id)"), h("th", {}, "Added"), h("th", {}, "Last used"), h("th", {}, ""))),
        h("tbody", {}, me.slots.map((s) =>
          h("tr", {},
            h("td", {}, s.key_id.slice(0, 8), s.key_id === keyring.keyIdText ? " (this login)" : ""),
            h("td", {}, when(s.created_ms)),
            h("td", {}, when(s.last_used_ms)),
            h("td", {}, me.slots.length > 1 && s.key_id !== keyring.keyIdText
              ? h("button", { type: "button", class: "danger", onclick: async () => {
                  try {
                    await api.delete(path("me", "slots", s.key_id));
                    say.status("The token's key slot was deleted: it can no longer open this vault.");
                    await renderSlots();
                  } catch (e) {
                    say.alert(`Not deleted: ${e.message}`);
                  }
                } }, "Remove")
              : "")))),
      ),
    );
  };
  const addToken = () => {
    fill(addBox, h("p", {}, "Log in with the other token now (scan with its phone, or use the key):"), h("div", { id: "add-token-login" }));
    const { done } = app.widget($("#add-token-login"));
    done.then(async ({ ticket, kc }) => {
      try {
        const { added, proven } = keyring.tokenFactor
          ? await app.hardening.addToken(ticket, kc)
          : await keyring.addToken(api, ticket, kc);
        fill(addBox, h("p", { class: "good" }, added ? `Token ${proven.key_id.slice(0, 8)} can now open this vault.` : "That token already has a key slot."));
        say.status(added ? "The new token has its own key slot." : "That token already has a key slot.");
        await renderSlots();
      } catch (e) {
        fill(addBox, h("p", { class: "bad" }, `The token was not added: ${e.message}`));
      }
    }, () => {});
  };
  const { dialog } = makeDialog(
    "account-dialog",
    "Account and tokens",
    h("p", {}, "Handle: ", h("strong", {}, keyring.handle)),
    h("p", {}, "Your fingerprint (people sharing with you compare it):"),
    h("p", { class: "fingerprint", id: "my-fingerprint" }, await keyring.fingerprint()),
    h("h3", {}, "Tokens that open this vault"),
    slotsBox,
    h("button", { type: "button", onclick: addToken }, "Add a token"),
    addBox,
    ...(await factorsSection(app)),
  );
  const closed = openDialog(dialog, { focus: passphrase ? "#new-passphrase" : undefined });
  await renderSlots();
  await closed;
}

/** The vault passphrase and the recovery slot (docs/vault.md 5.4-5.6). */
async function factorsSection(app) {
  const { keyring, api, say, hardening } = app;
  let hardener;
  try {
    hardener = await api.get("/api/hardener");
  } catch (e) {
    return [h("h3", {}, "Vault passphrase and recovery"), h("p", { class: "bad" }, `Unavailable: ${e.message}`)];
  }
  if (!hardener.enabled) {
    return [h("h3", {}, "Vault passphrase and recovery"), h("p", { class: "help" }, "This vault has no hardener configured: no passphrase or recovery.")];
  }
  const factors = await api.get("/api/me/factors");
  const ppBox = h("div", { id: "passphrase-result" });
  const recBox = h("div", { id: "recovery-result" });
  const has = keyring.wrapKek !== null;
  const newPp = h("input", { id: "new-passphrase", type: "password", autocomplete: "new-password", minlength: "8" });
  const againPp = h("input", { id: "new-passphrase-again", type: "password", autocomplete: "new-password" });
  const savePassphrase = async () => {
    if (newPp.value !== againPp.value) {
      fill(ppBox, h("p", { class: "bad" }, "The two passphrases differ."));
      return;
    }
    try {
      say.status(has ? "Changing your vault passphrase…" : "Setting your vault passphrase…");
      const out = has ? await hardening.change(newPp.value) : await hardening.set(newPp.value, { dropUnproven: true });
      newPp.value = againPp.value = "";
      const dropped = out.dropped_key_ids?.length || 0;
      const text = has
        ? "Vault passphrase changed. The previous one can still roll back for a while."
        : `Vault passphrase set: your vault now opens only with a token and the passphrase.${dropped ? ` ${dropped} other token(s) must be added again.` : ""}`;
      fill(ppBox, h("p", { class: "good" }, text));
      say.status(text);
      if (!has) await app.passphraseSet();
    } catch (e) {
      fill(ppBox, h("p", { class: "bad" }, `Not saved: ${e.message}`));
    }
  };
  const recSecret = h("input", { id: "recovery-passphrase", type: "password", autocomplete: "new-password" });
  const setupRecovery = async (withCode) => {
    try {
      say.status("Setting up recovery…");
      const text = await hardening.setupRecovery(withCode ? null : recSecret.value);
      recSecret.value = "";
      fill(
        recBox,
        withCode
          ? [h("p", {}, "Your recovery code. It is shown once: print it or write it down, and keep it away from your tokens."),
             h("p", { class: "recovery-code fingerprint", id: "recovery-code" }, text)]
          : h("p", { class: "good" }, "Recovery passphrase set."),
      );
      say.status("Recovery is set up.");
    } catch (e) {
      fill(recBox, h("p", { class: "bad" }, `Not set up: ${e.message}`));
    }
  };
  return [
    h("h3", {}, "Vault passphrase"),
    h("p", { class: "help" }, has
      ? "Your vault opens with a token and your passphrase."
      : "Add a passphrase: your vault then opens only with a token and the passphrase."),
    h("label", { for: "new-passphrase" }, has ? "New vault passphrase" : "Vault passphrase (at least 8 characters)"),
    newPp,
    h("label", { for: "new-passphrase-again" }, "The same again"),
    againPp,
    h("button", { type: "button", onclick: savePassphrase }, has ? "Change passphrase" : "Set passphrase"),
    ppBox,
    h("h3", {}, "Recovery"),
    h("p", { class: "help" }, factors.recovery
      ? `A recovery ${factors.recovery.kind} is set (${when(factors.recovery.created_ms)}). Making a new one replaces it.`
      : "With a recovery code or passphrase you can open your vault after losing every token."),
    h("button", { type: "button", onclick: () => setupRecovery(true) }, "Make a recovery code"),
    h("label", { for: "recovery-passphrase" }, "Or a recovery passphrase"),
    recSecret,
    h("button", { type: "button", onclick: () => setupRecovery(false) }, "Set recovery passphrase"),
    recBox,
  ];
}

// --- members and sharing ------------------------------------------------------------

export async function membersDialog(app, safe) {
  const { vault, say } = app;
  const list = h("div", {});
  const shareBox = h("div", {});
  const render = async () => {
    const members = await vault.members(safe);
    fill(
      list,
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Member"), h("th", {}, "Role"), h("th", {}, "Added"), h("th", {}, ""))),
        h("tbody", {}, members.map((m) => {
          const self = m.user_id === vc.b64uEncode(app.keyring.userId);
          const role = safe.isAdmin && !self
            ? h("select", { "aria-label": `Role of ${m.handle}`, onchange: async (e) => {
                try {
                  await vault.setRole(safe, m.user_id, e.target.value);
                  say.status(`${m.handle} is now ${e.target.value}.`);
                } catch (err) {
                  say.alert(`Role not changed: ${err.message}`);
                  await render();
                }
              } }, ["viewer", "editor", "admin"].map((r) => h("option", { value: r, selected: r === m.role ? "" : null }, r)))
            : m.role;
          const action = safe.isAdmin && !self
            ? h("button", { type: "button", class: "danger", onclick: () => revoke(m) }, `Remove ${m.handle}`)
            : self
              ? h("button", { type: "button", onclick: () => leave(m) }, "Leave this safe")
              : "";
          return h("tr", {}, h("td", {}, m.handle ?? m.user_id.slice(0, 8), self ? " (you)" : ""), h("td", {}, role), h("td", {}, when(m.added_ms)), h("td", {}, action));
        })),
      ),
    );
  };
  const revoke = async (m) => {
    if (!(await confirmDialog("Remove member", `Remove ${m.handle} from this safe? Their access ends now, and the safe's key is rotated so they cannot read anything written from now on.`, "Remove"))) return;
    try {
      await vault.removeMember(safe, m.user_id);
      say.status(`${m.handle} was removed. Rotating the safe key…`);
      await render();
      await app.view.rotate(safe);
      await render();
    } catch (e) {
      say.alert(`Not removed: ${e.message}`);
    }
  };
  const leave = async (m) => {
    if (!(await confirmDialog("Leave safe", "Leave this safe? You lose access at once.", "Leave"))) return;
    try {
      await vault.removeMember(safe, m.user_id);
      dialog.close();
      app.view.reset();
      await app.view.start();
      say.status("You left the safe.");
    } catch (e) {
      say.alert(e.code === "last_admin" ? "You are its last admin: make someone else admin first." : `Not left: ${e.message}`);
    }
  };
  const shareForm = () => {
    const handle = h("input", { id: "share-handle", required: true, autocomplete: "off" });
    const result = h("div", { id: "share-result", "aria-live": "polite" });
    const find = async (e) => {
      e.preventDefault();
      let user;
      try {
        user = await vault.lookupUser(handle.value.trim());
      } catch (err) {
        fill(result, h("p", { class: "bad" }, err.code === "user_not_found" ? `There is no user ${handle.value.trim()}.` : `Lookup failed: ${err.message}`));
        return;
      }
      const check = h("input", { type: "checkbox", id: "share-match" });
      const role = h("select", { id: "share-role" }, ["viewer", "editor", "admin"].map((r) => h("option", { value: r }, r)));
      const go = h("button", { type: "button", class: "primary", id: "share-go", disabled: true }, `Share with ${user.handle}`);
      check.addEventListener("change", () => { go.disabled = !check.checked; });
      go.addEventListener("click", async () => {
        go.disabled = true;
        try {
          await vault.share(safe, user, role.value);
          say.status(`Shared with ${user.handle} as ${role.value}.`);
          fill(result, h("p", { class: "good" }, `${user.handle} can now open this safe (${role.value}).`));
          await render();
        } catch (err) {
          fill(result, h("p", { class: "bad" }, err.code === "already_member" ? `${user.handle} is already a member.` : `Not shared: ${err.message}`));
        }
      });
      fill(
        result,
        h("p", {}, `${user.handle}'s fingerprint, as this page computes it from the public key the server sent:`),
        h("p", { class: "fingerprint", id: "share-fingerprint" }, user.fingerprint),
        h("p", { class: "help" }, `Ask ${user.handle} to read the fingerprint their vault shows under “Account and tokens”, by phone or in person. If it differs, the server gave you another key: do not share.`),
        h("label", { class: "inline" }, check, " The fingerprints match"),
        h("label", { for: "share-role" }, "Role"),
        role,
        h("div", { class: "actions" }, go),
      );
      check.focus();
    };
    const form = h("form", {}, h("label", { for: "share-handle" }, "Share with (handle)"), h("div", { class: "row" }, handle, h("button", { type: "submit" }, "Look up")), result);
    form.addEventListener("submit", find);
    return form;
  };
  if (safe.isAdmin) fill(shareBox, h("h3", {}, "Share this safe"), shareForm());
  const { dialog } = makeDialog("members-dialog", `Members of ${safe.name}`, list, shareBox);
  const closed = openDialog(dialog);
  await render();
  await closed;
}

// --- audit log ----------------------------------------------------------------------

export async function auditDialog(app, safe) {
  const body = h("tbody", {});
  const more = h("button", { type: "button" }, "Load older events");
  let before = null;
  const load = async () => {
    try {
      const page = await app.vault.audit(safe, before);
      for (const e of page.events) {
        body.append(h("tr", {}, h("td", {}, when(e.at_ms)), h("td", {}, e.actor_handle ?? e.actor.slice(0, 8)), h("td", {}, e.action),
          h("td", {}, e.target ? e.target.slice(0, 8) : ""), h("td", {}, Object.entries(e.detail).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(", "))));
      }
      before = page.next_before;
      more.hidden = !before;
    } catch (e) {
      app.say.alert(`The audit log did not load: ${e.message}`);
    }
  };
  more.addEventListener("click", load);
  const { dialog } = makeDialog(
    "audit-dialog",
    `Audit log of ${safe.name}`,
    h("table", {}, h("caption", { class: "visually-hidden" }, "Events, newest first"),
      h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Who"), h("th", {}, "What"), h("th", {}, "Target"), h("th", {}, "Details"))), body),
    more,
  );
  const closed = openDialog(dialog);
  await load();
  await closed;
}

// --- import and export --------------------------------------------------------------

export async function importDialog(app, safe) {
  const file = h("input", { type: "file", id: "import-file", accept: ".json,.xml,.csv,application/json,text/xml,text/csv" });
  const format = h("select", { id: "import-format" }, h("option", { value: "" }, "Detect from the file"),
    Object.entries(FORMATS).map(([k, label]) => h("option", { value: k }, label)));
  const preview = h("div", { id: "import-preview", "aria-live": "polite" });
  let plan = null;
  const read = async () => {
    plan = null;
    const f = file.files[0];
    if (!f) return;
    try {
      plan = readImport(await f.text(), { format: format.value || undefined });
    } catch (e) {
      fill(preview, h("p", { class: "bad", role: "alert" }, `This file cannot be imported: ${e.message}`));
      return;
    }
    const go = h("button", { type: "button", class: "primary", id: "import-go", disabled: plan.items.length === 0 },
      `Import ${num(plan.items.length)} items into ${safe.name}`);
    go.addEventListener("click", () => run(go));
    const reasons = new Map();
    for (const s of plan.skipped) reasons.set(s.reason, (reasons.get(s.reason) || 0) + 1);
    fill(
      preview,
      h("p", { id: "import-summary" }, `${FORMATS[plan.format]}: ${num(plan.items.length)} to import, ${num(plan.skipped.length)} skipped, ${num(plan.folders.length)} folders.`),
      plan.skipped.length
        ? [h("h3", {}, "Skipped"), h("ul", { id: "import-skipped" }, plan.skipped.map((s) => h("li", {}, `${s.title}: ${s.reason}`)))]
        : null,
      plan.items.length
        ? [h("h3", {}, "First items"), h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Title"), h("th", {}, "Type"), h("th", {}, "User name"))),
            h("tbody", {}, plan.items.slice(0, 20).map(({ content }) => h("tr", {}, h("td", {}, content.title), h("td", {}, content.type), h("td", {}, content.username ?? "")))))]
        : null,
      h("p", { class: "help" }, "The items are encrypted in this page before they are sent; the server never sees them."),
      h("div", { class: "actions" }, go),
    );
  };
  const run = async (go) => {
    go.disabled = true;
    const bar = h("progress", { max: plan.items.length, value: 0, "aria-label": "Import progress" });
    preview.append(bar);
    try {
      const done = await app.vault.importPlan(safe, plan, {
        parentText: app.view.folderText,
        progress: (n, total) => {
          bar.value = n;
          app.say.progress(`Importing ${num(n)} of ${num(total)} items`, n === total);
        },
      });
      const text = `Imported ${num(done.items)} items and ${num(done.folders)} folders; skipped ${num(plan.skipped.length)}.`;
      preview.append(h("p", { class: "good", id: "import-result" }, text));
      app.say.status(text);
      app.view.renderFolders();
      app.view.applyFilter();
    } catch (e) {
      preview.append(h("p", { class: "bad", role: "alert" }, `The import stopped: ${e.message}`));
    }
  };
  file.addEventListener("change", read);
  format.addEventListener("change", read);
  const { dialog } = makeDialog(
    "import-dialog",
    `Import into ${safe.name}`,
    h("label", { for: "import-file" }, "Export file from Bitwarden, KeePass, Chrome or Firefox"),
    file,
    h("label", { for: "import-format" }, "Format"),
    format,
    preview,
  );
  await openDialog(dialog, { focus: "#import-file" });
}

export async function exportDialog(app, safe) {
  const entries = safe.sortedItems().filter((e) => e.content);
  const unreadable = safe.items.size - entries.length;
  const choice = h("select", { id: "export-format" }, h("option", { value: "bitwarden" }, "Bitwarden JSON (all items, folders)"),
    h("option", { value: "csv" }, "CSV, Chrome layout (logins only)"));
  const go = h("button", { type: "button", class: "primary", id: "export-go" }, "Save the export file");
  const note = h("p", { id: "export-result", "aria-live": "polite" });
  go.addEventListener("click", () => {
    const items = entries.map((e) => ({ id: e.idText, content: e.content, folderId: e.folderText }));
    const base = (safe.name || "safe").replace(/[^\w.-]+/g, "_");
    if (choice.value === "bitwarden") {
      const folders = new Map([...safe.folders.values()].filter((f) => !f.error).map((f) => [f.idText, { name: f.name, parentId: f.parentText }]));
      saveBlob(new Blob([toBitwardenJson(items, folders)], { type: "application/json" }), `${base}-bitwarden.json`);
      note.textContent = `Exported ${num(items.length)} items.`;
    } else {
      const { text, exported, leftOut } = toChromeCsv(items);
      saveBlob(new Blob([text], { type: "text/csv" }), `${base}.csv`);
      note.textContent = `Exported ${num(exported)} logins; ${num(leftOut)} other items are not in CSV.`;
    }
    app.say.status(note.textContent);
  });
  const { dialog } = makeDialog(
    "export-dialog",
    `Export ${safe.name}`,
    h("p", { class: "bad" }, "The export file is NOT encrypted: anyone who gets it reads every password in it. Keep it safe and delete it when done."),
    unreadable ? h("p", {}, `${num(unreadable)} items that do not open are left out.`) : null,
    h("label", { for: "export-format" }, "Format"),
    choice,
    h("div", { class: "actions" }, go),
    note,
  );
  await openDialog(dialog, { focus: "#export-format" });
}

// --- safe settings ------------------------------------------------------------------

export async function safeSettingsDialog(app, safe) {
  const name = h("input", { id: "rename-input", value: safe.name ?? "", required: true });
  const { dialog } = makeDialog(
    "safe-settings-dialog",
    `Settings of ${safe.name}`,
    h("label", { for: "rename-input" }, "Name"),
    h("div", { class: "row" }, name, h("button", { type: "button", onclick: async () => {
      try {
        await app.vault.renameSafe(safe, name.value.trim());
        app.view.renderSafes();
        $("#safe-title").textContent = safe.name;
        app.say.status(`Renamed to ${safe.name}.`);
      } catch (e) {
        app.say.alert(`Not renamed: ${e.message}`);
      }
    } }, "Rename")),
    h("h3", {}, "Key"),
    h("p", {}, `Key generation ${safe.generation}. Rotating makes a new key and re-encrypts everything under it.`),
    h("button", { type: "button", onclick: () => { dialog.close(); app.view.rotate(safe); } }, "Rotate the key now"),
    h("h3", {}, "Delete"),
    h("button", { type: "button", class: "danger", onclick: async () => {
      if (!(await confirmDialog("Delete safe", `Delete ${safe.name} with every item and file in it, for every member? This cannot be undone.`, "Delete the safe"))) return;
      try {
        await app.vault.deleteSafe(safe);
        dialog.close();
        app.view.reset();
        await app.view.start();
        app.say.status("The safe was deleted.");
      } catch (e) {
        app.say.alert(`Not deleted: ${e.message}`);
      }
    } }, "Delete this safe"),
  );
  await openDialog(dialog, { focus: "#rename-input" });
}


// --- moving an item to another safe -------------------------------------------------

/**
 * Choose where `entry` of `safe` moves: another safe the person can edit (the
 * ones they only view are listed, disabled, with why), and a folder in it.
 * Resolves with {target, folderText} or null.
 */
export async function moveDialog(app, safe, entry) {
  const { vault, say } = app;
  let safes;
  try {
    const all = await vault.listSafes();
    app.view.renderSafes(all);
    safes = all.filter((s) => s !== safe);
  } catch (e) {
    say.alert(`The list of safes did not load: ${e.message}`);
    return null;
  }
  const usable = safes.filter((s) => s.canEdit && !s.nameError);
  const safeSelect = h(
    "select",
    { id: "move-safe", required: true },
    h("option", { value: "" }, usable.length ? "Choose a safe" : "(no other safe you can change)"),
    safes.map((s) =>
      h(
        "option",
        { value: s.idText, disabled: !s.canEdit || s.nameError ? "" : null },
        s.name ?? "(name does not open)",
        s.canEdit ? "" : ` (${s.role}: cannot move into it)`,
      ),
    ),
  );
  const top = () => h("option", { value: "" }, "(top of the safe)");
  const folderSelect = h("select", { id: "move-folder", disabled: true }, top());
  const note = h("p", { class: "help", id: "move-note", "aria-live": "polite" }, "");
  const go = h("button", { type: "submit", class: "primary", disabled: true }, "Move");
  let chosen = null;
  let loading = 0;
  safeSelect.addEventListener("change", async () => {
    const target = vault.safes.get(safeSelect.value) ?? null;
    const ticket = ++loading;
    go.disabled = !target;
    fill(folderSelect, top());
    folderSelect.disabled = true;
    note.textContent = "";
    if (!target) return;
    note.textContent = `Loading the folders of ${target.name}…`;
    try {
      const folders = await vault.foldersOf(target);
      if (ticket !== loading) return;
      folderSelect.append(...folders.map((f) => h("option", { value: f.idText }, f.path)));
      folderSelect.disabled = false;
      note.textContent = folders.length ? "" : `${target.name} has no folders: the item goes to its top.`;
    } catch (e) {
      if (ticket === loading) note.textContent = `Its folders did not load (${e.message}); the item can still go to its top.`;
    }
  });
  const files = vc.listedFileIds(entry.content).length;
  const form = h(
    "form",
    { method: "dialog" },
    h(
      "p",
      {},
      `The item${files ? `, its ${files === 1 ? "file" : `${num(files)} files`}` : ""} and its earlier versions are ` +
        "re-encrypted here for the other safe and leave this one; file contents are not uploaded again. " +
        "Members of this safe who are not members of the other one no longer see it.",
    ),
    h("label", { for: "move-safe" }, "To safe"),
    safeSelect,
    h("label", { for: "move-folder" }, "Folder in that safe"),
    folderSelect,
    note,
    h("div", { class: "actions" }, go, h("button", { type: "button", onclick: () => dialog.close() }, "Cancel")),
  );
  form.addEventListener("submit", () => {
    const target = vault.safes.get(safeSelect.value);
    if (target && target.canEdit) chosen = { target, folderText: folderSelect.value || null };
  });
  const { dialog } = makeDialog("move-dialog", `Move ${entry.title || "(untitled)"} to another safe`, form);
  await openDialog(dialog, { focus: "#move-safe" });
  return chosen;
}
