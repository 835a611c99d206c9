// One item: its fields with copy buttons, live TOTP codes, files, history;
// and the editor (every type), with the conflict panel when someone saved the
// item first (409: nothing is lost, the person chooses).

import { $, bytes, fill, h, makeDialog, num, openDialog, saveBlob, when } from "./dom.js";
import { copySecret, CLEAR_MS } from "./clipboard.js";
import { parseOtp, secondsLeft, totpCode } from "./totp.js";
import { ConflictError } from "./safes.js";
import { downloadFile, uploadFile } from "./files.js";
import { confirmDialog, generatorDialog, moveDialog } from "./panels.js";
import { sendOnceDialog } from "./sendonce.js";

const TYPES = { login: "Login", note: "Secure note", card: "Payment card", document: "Document" };
export const typeLabel = (t) => TYPES[t] || t;

const TYPE_FIELDS = {
  login: [
    ["username", "User name", "text", { autocomplete: "off" }],
    ["password", "Password", "secret"],
    ["urls", "Web addresses (one per line)", "lines"],
    ["totp", "TOTP secret (otpauth:// URI or base32)", "text", { autocomplete: "off" }],
  ],
  card: [
    ["cardholder", "Cardholder", "text"],
    ["number", "Card number", "secret", { inputmode: "numeric" }],
    ["brand", "Brand", "text"],
    ["expiry", "Expiry (MM/YYYY)", "text", { pattern: "(0[1-9]|1[0-2])/[0-9]{4}", placeholder: "MM/YYYY" }],
    ["code", "Security code", "secret", { inputmode: "numeric" }],
    ["pin", "PIN", "secret", { inputmode: "numeric" }],
  ],
  note: [],
  document: [],
};

function safeHref(url) {
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

export class ItemView {
  constructor(app, view) {
    this.app = app;
    this.view = view;
    this.timer = null;
    this.entry = null;
  }

  get safe() {
    return this.view.safe;
  }

  get say() {
    return this.app.say;
  }

  clear() {
    clearInterval(this.timer);
    this.timer = null;
    this.entry = null;
    fill($("#item-body"), h("p", { class: "help" }, "Choose an item to see it."));
  }

  async copy(label, text) {
    try {
      await copySecret(text);
      this.say.status(`Copied the ${label}; the clipboard clears in ${CLEAR_MS / 1000} s.`);
    } catch (e) {
      this.say.alert(`Could not copy: ${e.message}`);
    }
  }

  copyButton(label, text) {
    return h("button", { type: "button", "aria-label": `Copy the ${label}`, onclick: () => this.copy(label, text) }, "Copy");
  }

  secretValue(label, text) {
    const value = h("span", { class: "secret", "aria-label": `${label} hidden` }, "••••••••");
    const toggle = h("button", { type: "button", "aria-pressed": "false", "aria-label": `Show the ${label}` }, "Show");
    toggle.addEventListener("click", () => {
      const shown = toggle.getAttribute("aria-pressed") === "true";
      toggle.setAttribute("aria-pressed", shown ? "false" : "true");
      value.textContent = shown ? "••••••••" : text;
      value.setAttribute("aria-label", shown ? `${label} hidden` : label);
      toggle.textContent = shown ? "Show" : "Hide";
    });
    return [value, toggle, this.copyButton(label, text)];
  }

  /** Show an item read-only. */
  show(entry, { focus = false } = {}) {
    clearInterval(this.timer);
    this.entry = entry;
    const body = $("#item-body");
    const safe = this.safe;
    if (!entry) return this.clear();
    if (entry.error) {
      fill(
        body,
        h("h3", { id: "item-heading", tabindex: "-1", class: "bad" }, entry.title),
        h("p", { class: "bad", role: "note" }, `This item does not open (${entry.error.code}): ${entry.error.message}.`),
        h("p", { class: "help" }, "Its ciphertext was modified or moved by someone with access to the server. Ask an editor to restore it from its history, or delete it."),
        safe.canEdit
          ? h("div", { class: "actions" }, h("button", { type: "button", onclick: () => this.history(entry) }, "History"),
              h("button", { type: "button", class: "danger", onclick: () => this.remove(entry) }, "Delete"))
          : null,
      );
      if (focus) $("#item-heading").focus();
      return;
    }
    const c = entry.content;
    const rows = [];
    const add = (label, ...value) => rows.push(h("dt", {}, label), h("dd", {}, ...value));
    if (entry.folderText) add("Folder", safe.folderPath(entry.folderText));
    for (const [key, label, kind] of TYPE_FIELDS[c.type] || []) {
      const v = c[key];
      if (v === undefined || v === "" || (Array.isArray(v) && !v.length)) continue;
      if (key === "urls") {
        add(label.replace(" (one per line)", ""), ...v.flatMap((u) => {
          const href = safeHref(u);
          return [href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, u) : h("span", {}, u), " "];
        }));
      } else if (key === "totp") {
        add("One-time code", ...this.totp(v));
      } else if (kind === "secret") {
        add(label, ...this.secretValue(label.toLowerCase(), String(v)));
      } else {
        add(label, h("span", {}, String(v)), key === "username" ? this.copyButton("user name", String(v)) : null);
      }
    }
    for (const f of Array.isArray(c.fields) ? c.fields : []) {
      const name = String(f?.name ?? "");
      if (f?.hidden) add(name, ...this.secretValue(name, String(f?.value ?? "")));
      else add(name, h("span", {}, String(f?.value ?? "")), this.copyButton(name, String(f?.value ?? "")));
    }
    if (Array.isArray(c.tags) && c.tags.length) add("Tags", c.tags.join(", "));
    const files = Array.isArray(c.files) ? c.files : [];
    fill(
      body,
      h("h3", { id: "item-heading", tabindex: "-1" }, c.title || "(untitled)"),
      h("p", { class: "help" }, `${typeLabel(c.type)} · version ${entry.version} · changed ${when(entry.updatedMs)}`),
      rows.length ? h("dl", { class: "fields" }, rows) : null,
      c.notes ? [h("h4", {}, "Notes"), h("div", { class: "notes" }, c.notes)] : null,
      files.length
        ? [
            h("h4", {}, "Files"),
            h("ul", { class: "files" }, files.map((f) =>
              h("li", {}, `${f.name} (${bytes(f.size ?? 0)}) `,
                h("button", { type: "button", "aria-label": `Download ${f.name}`, onclick: () => this.download(f) }, "Download")))),
          ]
        : null,
      h(
        "div",
        { class: "actions" },
        safe.canEdit ? h("button", { type: "button", class: "primary", onclick: () => this.edit(entry) }, "Edit") : null,
        h("button", { type: "button", onclick: () => this.history(entry) }, "History"),
        safe.canEdit ? this.attachButton(entry) : null,
        safe.canEdit ? h("button", { type: "button", id: "move-button", onclick: () => this.move(entry) }, "Move to safe…") : null,
        h("button", { type: "button", id: "send-once-button", onclick: () => sendOnceDialog(this.app, entry) }, "Send once…"),
        safe.canEdit ? h("button", { type: "button", class: "danger", onclick: () => this.remove(entry) }, "Delete") : null,
      ),
    );
    if (focus) $("#item-heading").focus();
  }

  totp(value) {
    let otp;
    try {
      otp = parseOtp(value);
    } catch (e) {
      return [h("span", { class: "bad" }, `The TOTP secret is not usable: ${e.message}`)];
    }
    const code = h("span", { class: "totp-code", "aria-live": "off" }, "······");
    const left = h("span", { class: "help" }, "");
    let current = "";
    const tick = async () => {
      const now = Date.now();
      current = await totpCode(otp, now);
      code.textContent = current;
      left.textContent = `(${secondsLeft(otp, now)} s left)`;
    };
    tick();
    this.timer = setInterval(tick, 1000);
    return [code, left, h("button", { type: "button", "aria-label": "Copy the one-time code", onclick: () => this.copy("one-time code", current) }, "Copy")];
  }

  attachButton(entry) {
    const input = h("input", { type: "file", class: "visually-hidden", id: "attach-input", "aria-label": "Choose a file to attach" });
    input.addEventListener("change", async () => {
      const file = input.files[0];
      if (file) await this.attach(entry, file);
    });
    const button = h("button", { type: "button", onclick: () => input.click() }, "Attach file");
    return [button, input];
  }

  async attach(entry, file) {
    const safe = this.safe;
    let last = "";
    try {
      const { ref } = await uploadFile(this.app.vault, safe, file, {
        progress: (phase, done, total) => {
          const pct = total ? Math.floor((100 * done) / total) : 100;
          const text = `${phase === "encrypting" ? "Encrypting" : "Uploading"} ${pct}%`;
          if (text !== last) {
            last = text;
            this.say.progress(text, pct === 100);
          }
        },
      });
      const content = { ...entry.content, files: [...(entry.content.files || []), ref] };
      const saved = await this.app.vault.saveItem(safe, entry, content, entry.folderText);
      this.say.status(`Uploaded ${file.name} (${bytes(file.size)}).`);
      this.view.itemChanged(saved);
      this.show(saved);
    } catch (e) {
      if (e.code === "file_too_large" || e.status === 413) {
        const limit = e.body?.limit ?? this.app.config.max_file_bytes;
        this.say.alert(`${file.name} is too large (${bytes(file.size)}): this vault takes files up to ${bytes(limit)}. Nothing was uploaded.`);
      } else if (e instanceof ConflictError) {
        this.say.alert("The file was uploaded, but the item changed meanwhile: reload the item and attach it again.");
      } else {
        this.say.alert(`The upload failed: ${e.message}`);
      }
    }
  }

  async download(ref) {
    try {
      let lastPct = -1;
      const blob = await downloadFile(this.app.vault, this.safe, ref, {
        progress: (done, total) => {
          const pct = total ? Math.floor((100 * done) / total) : 100;
          if (pct !== lastPct) {
            lastPct = pct;
            this.say.progress(`Downloading ${pct}%`, pct === 100);
          }
        },
      });
      saveBlob(blob, ref.name || "file");
      this.say.status(`Downloaded ${ref.name}; every chunk verified.`);
    } catch (e) {
      this.say.alert(`${ref.name} did not download: ${e.message}. Nothing was saved.`);
    }
  }

  async remove(entry) {
    if (!(await confirmDialog("Delete item", `Delete ${entry.title} and its history? This cannot be undone.`, "Delete"))) return;
    try {
      await this.app.vault.deleteItem(this.safe, entry);
      this.clear();
      this.view.itemChanged(null);
      this.say.status(`Deleted ${entry.title}.`);
    } catch (e) {
      this.say.alert(e.code === "version_conflict" ? "The item changed meanwhile; reload it before deleting." : `Not deleted: ${e.message}`);
    }
  }

  // --- moving to another safe ------------------------------------------------------

  /** "Move to safe…": choose the safe and folder, then re-encrypt and move, with progress. */
  async move(entry) {
    const source = this.safe;
    const choice = await moveDialog(this.app, source, entry);
    if (!choice || this.entry !== entry) return;
    const { target, folderText } = choice;
    const button = $("#move-button");
    if (button) button.disabled = true;
    const title = entry.title || "(untitled)";
    try {
      const r = await this.app.vault.moveItem(source, entry, target, folderText, {
        progress: (step, done, total) =>
          this.say.progress(`Moving ${title}: ${step}${total ? ` (${num(done)} of ${num(total)})` : ""}`, !total),
      });
      const where = `${target.name ?? "the other safe"}${folderText ? ` / ${target.folderPath(folderText)}` : ""}`;
      const what = [];
      if (r.files) what.push(r.files === 1 ? "its file" : `its ${num(r.files)} files`);
      if (r.history) what.push(r.history === 1 ? "its earlier version" : `its ${num(r.history)} earlier versions`);
      const text = `Moved ${title} to ${where}${what.length ? ` with ${what.join(" and ")}` : ""}.`;
      if (this.safe === source) {
        clearInterval(this.timer);
        this.entry = null;
        this.view.itemChanged(null);
        fill(
          $("#item-body"),
          h("h3", { id: "item-heading", tabindex: "-1" }, `Moved ${title}`),
          h("p", {}, text),
          r.missing
            ? h("p", { class: "bad" }, `${num(r.missing)} file${r.missing === 1 ? "" : "s"} the item lists ${r.missing === 1 ? "was" : "were"} not in this safe, so nothing was moved for ${r.missing === 1 ? "it" : "them"}; the item still lists ${r.missing === 1 ? "it" : "them"}.`)
            : null,
          h("div", { class: "actions" }, h("button", { type: "button", onclick: () => this.view.openSafe(target) }, `Open ${target.name ?? "that safe"}`)),
        );
        $("#item-heading").focus();
      }
      this.say.status(text);
    } catch (e) {
      if (button?.isConnected) button.disabled = false;
      const why = e.code === "version_conflict" ? "it was changed meanwhile; open it again, then move it" : e.message;
      this.say.alert(`${title} was not moved: ${why}. Nothing was changed.`);
    }
  }

  // --- history -------------------------------------------------------------------

  async history(entry) {
    let versions;
    try {
      versions = await this.app.vault.history(this.safe, entry);
    } catch (e) {
      this.say.alert(`The history did not load: ${e.message}`);
      return;
    }
    const rows = versions.map((v) =>
      h(
        "li",
        {},
        h("strong", {}, `Version ${v.version}`),
        ` · ${when(v.updatedMs)} · `,
        v.error ? h("span", { class: "bad" }, `does not open (${v.error.code})`) : `“${v.content.title}”`,
        v.content
          ? h("details", {}, h("summary", {}, "Show this version"), h("pre", { class: "notes" }, describe(v.content)))
          : null,
        v.content && this.safe.canEdit && !entry.error
          ? h("button", { type: "button", onclick: () => this.restore(entry, v, dialog) }, "Restore this version")
          : null,
      ),
    );
    const { dialog } = makeDialog(
      "history-dialog",
      `History of ${entry.title}`,
      versions.length ? h("ol", { class: "history" }, rows) : h("p", {}, "No earlier versions are kept."),
    );
    openDialog(dialog);
  }

  async restore(entry, version, dialog) {
    try {
      const saved = await this.app.vault.saveItem(this.safe, entry, version.content, entry.folderText);
      dialog.close();
      this.view.itemChanged(saved);
      this.show(saved, { focus: true });
      this.say.status(`Restored version ${version.version} as version ${saved.version}.`);
    } catch (e) {
      this.say.alert(e instanceof ConflictError ? `${e.message}; open the item again first.` : `Not restored: ${e.message}`);
    }
  }

  // --- the editor ----------------------------------------------------------------

  /** Edit `entry`, or make a new item (entry null). */
  edit(entry, { draft = null, conflict = null } = {}) {
    clearInterval(this.timer);
    const safe = this.safe;
    const base = draft ?? entry?.content ?? { type: "login", title: "" };
    const form = h("form", { class: "editor", novalidate: false });
    const typeSelect = h(
      "select",
      { id: "edit-type", disabled: entry ? true : null },
      Object.entries(TYPES).map(([k, label]) => h("option", { value: k, selected: k === base.type ? "" : null }, label)),
    );
    const folderSelect = h(
      "select",
      { id: "edit-folder" },
      h("option", { value: "" }, "(no folder)"),
      [...safe.folders.values()]
        .filter((f) => !f.error)
        .map((f) => ({ f, path: safe.folderPath(f.idText) }))
        .sort((a, b) => a.path.localeCompare(b.path))
        .map(({ f, path }) => h("option", { value: f.idText }, path)),
    );
    folderSelect.value = (draft ? draft.__folder : entry ? entry.folderText : this.view.folderText) ?? "";
    const typed = h("div", {});
    const fieldsBox = h("div", {});
    const customFields = (Array.isArray(base.fields) ? base.fields : []).map((f) => ({ ...f }));

    const renderTyped = () => {
      const type = typeSelect.value;
      const parts = [];
      for (const [key, label, kind, attrs = {}] of TYPE_FIELDS[type]) {
        const id = `edit-${key}`;
        let value = base[key] ?? "";
        if (kind === "lines") value = Array.isArray(value) ? value.join("\n") : value;
        if (kind === "lines") {
          parts.push(h("label", { for: id }, label), h("textarea", { id, name: key, rows: 2 }, String(value)));
        } else if (kind === "secret") {
          const input = h("input", { id, name: key, type: "password", autocomplete: "new-password", value: String(value), ...attrs });
          const toggle = h("button", { type: "button", "aria-pressed": "false", "aria-label": `Show the ${label.toLowerCase()}` }, "Show");
          toggle.addEventListener("click", () => {
            const show = input.type === "password";
            input.type = show ? "text" : "password";
            toggle.setAttribute("aria-pressed", show ? "true" : "false");
            toggle.textContent = show ? "Hide" : "Show";
          });
          const extra =
            key === "password"
              ? h("button", {
                  type: "button",
                  onclick: async () => {
                    const pw = await generatorDialog();
                    if (pw) {
                      input.value = pw;
                      this.say.status("A new password was generated and put in the form.");
                    }
                  },
                }, "Generate")
              : null;
          parts.push(h("label", { for: id }, label), h("div", { class: "row" }, input, toggle, extra));
        } else {
          parts.push(h("label", { for: id }, label), h("input", { id, name: key, type: "text", value: String(value), ...attrs }));
        }
      }
      fill(typed, parts);
    };
    const renderFields = () => {
      fill(
        fieldsBox,
        h("h4", {}, "Custom fields"),
        customFields.map((f, n) =>
          h(
            "div",
            { class: "row" },
            h("input", { "aria-label": `Field ${n + 1} name`, value: f.name ?? "", oninput: (e) => { f.name = e.target.value; } }),
            h("input", { "aria-label": `Field ${n + 1} value`, type: f.hidden ? "password" : "text", value: f.value ?? "", oninput: (e) => { f.value = e.target.value; } }),
            h("label", { class: "inline" }, h("input", { type: "checkbox", checked: !!f.hidden, onchange: (e) => { f.hidden = e.target.checked; renderFields(); } }), " hidden"),
            h("button", { type: "button", "aria-label": `Remove field ${n + 1}`, onclick: () => { customFields.splice(n, 1); renderFields(); } }, "Remove"),
          ),
        ),
        h("button", { type: "button", onclick: () => { customFields.push({ name: "", value: "", hidden: false }); renderFields(); } }, "Add a field"),
      );
    };
    typeSelect.addEventListener("change", renderTyped);
    renderTyped();
    renderFields();

    const collect = () => {
      const type = typeSelect.value;
      const content = { ...(entry?.content ?? {}), ...(draft ?? {}), type, title: $("#edit-title").value };
      delete content.__folder;
      for (const [key, , kind] of Object.values(TYPE_FIELDS).flat()) {
        if (!TYPE_FIELDS[type].some(([k]) => k === key)) continue;
        const el = form.querySelector(`[name="${key}"]`);
        let v = el.value;
        if (kind === "lines") v = v.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
        if (v === "" || (Array.isArray(v) && !v.length)) delete content[key];
        else content[key] = v;
      }
      const notes = $("#edit-notes").value;
      if (notes) content.notes = notes;
      else delete content.notes;
      const tags = $("#edit-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
      if (tags.length) content.tags = tags;
      else delete content.tags;
      const fields = customFields.filter((f) => f.name || f.value).map((f) => ({ name: f.name ?? "", value: f.value ?? "", hidden: !!f.hidden }));
      if (fields.length) content.fields = fields;
      else delete content.fields;
      return content;
    };

    const conflictBox = h("div", {});
    if (conflict) this.renderConflict(conflictBox, conflict, entry, collect, folderSelect);
    fill(
      form,
      h("h3", { id: "item-heading", tabindex: "-1" }, entry ? `Edit ${entry.title || "(untitled)"}` : "New item"),
      conflictBox,
      h("label", { for: "edit-type" }, "Type"),
      typeSelect,
      h("label", { for: "edit-title" }, "Title"),
      h("input", { id: "edit-title", name: "title", required: true, value: base.title ?? "" }),
      typed,
      h("label", { for: "edit-notes" }, "Notes"),
      h("textarea", { id: "edit-notes", name: "notes", rows: 4 }, base.notes ?? ""),
      h("label", { for: "edit-tags" }, "Tags (comma-separated)"),
      h("input", { id: "edit-tags", name: "tags", value: Array.isArray(base.tags) ? base.tags.join(", ") : "" }),
      h("label", { for: "edit-folder" }, "Folder"),
      folderSelect,
      fieldsBox,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "submit", class: "primary" }, "Save"),
        h("button", { type: "button", onclick: () => (entry ? this.show(entry, { focus: true }) : this.clear()) }, "Cancel"),
      ),
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      await this.save(entry, collect(), folderSelect.value || null, form, conflictBox, collect, folderSelect);
    });
    fill($("#item-body"), form);
    (conflict ? conflictBox.querySelector("button") : $("#edit-title"))?.focus();
  }

  async save(entry, content, folderText, form, conflictBox, collect, folderSelect) {
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const saved = await this.app.vault.saveItem(this.safe, entry, content, folderText);
      this.view.itemChanged(saved);
      this.show(saved, { focus: true });
      this.say.status(`Saved ${saved.title} (version ${saved.version}).`);
    } catch (e) {
      if (e instanceof ConflictError) {
        this.renderConflict(conflictBox, e, entry, collect, folderSelect);
        conflictBox.querySelector("button")?.focus();
      } else {
        this.say.alert(`Not saved: ${e.message}. Your changes are still in the form.`);
      }
    } finally {
      button.disabled = false;
    }
  }

  /** The 409 panel: the other version is shown; the form keeps the person's edits. */
  renderConflict(box, conflict, entry, collect, folderSelect) {
    const theirs = conflict.currentContent;
    fill(
      box,
      h(
        "div",
        { class: "conflict", role: "alert" },
        h("p", {}, h("strong", {}, "Someone else saved this item while you were editing. "),
          `It is now at version ${conflict.current.version}${theirs ? `, titled “${theirs.title}”` : ""}. Your changes are still in this form; nothing was overwritten.`),
        theirs ? h("details", {}, h("summary", {}, "Their version"), h("pre", { class: "notes" }, describe(theirs))) : null,
        h("div", { class: "actions" },
          h("button", {
            type: "button",
            class: "primary",
            onclick: async () => {
              const fresh = await this.app.vault.reloadItem(this.safe, entry);
              const mine = collect();
              mine.__folder = folderSelect.value || null;
              this.view.itemChanged(fresh);
              this.edit(fresh, { draft: mine });
              this.say.status(`Your changes now apply to version ${fresh.version}: save to keep them.`);
            },
          }, "Keep my changes (save over theirs)"),
          h("button", {
            type: "button",
            onclick: async () => {
              const fresh = await this.app.vault.reloadItem(this.safe, entry);
              this.view.itemChanged(fresh);
              this.show(fresh, { focus: true });
              this.say.status("Showing their version; your changes were discarded.");
            },
          }, "Discard mine and reload theirs")),
      ),
    );
  }
}

/** A plain-text description of an item (history and conflict views). Secrets stay masked. */
function describe(c) {
  const lines = [`${typeLabel(c.type)}: ${c.title}`];
  for (const [key, label, kind] of TYPE_FIELDS[c.type] || []) {
    const v = c[key];
    if (v === undefined || v === "") continue;
    lines.push(`${label}: ${kind === "secret" ? "•••••••• (changed values are not shown here)" : Array.isArray(v) ? v.join(", ") : v}`);
  }
  if (c.notes) lines.push(`Notes: ${c.notes}`);
  return lines.join("\n");
}
