// The open vault: safes, folders, the item list (virtualized) and the item
// pane. Search filters the decrypted items in memory by the search string each
// item got when it was opened; nothing is decrypted again.

import { $, afterPaint, fill, h, num } from "./dom.js";
import { VirtualList } from "./listview.js";
import { ItemView, typeLabel } from "./itemview.js";
import { rotateSafe } from "./rotation.js";
import {
  auditDialog,
  confirmDialog,
  exportDialog,
  importDialog,
  membersDialog,
  promptDialog,
  safeSettingsDialog,
} from "./panels.js";

export class VaultView {
  constructor(app) {
    this.app = app;
    this.safe = null;
    this.folderText = null;
    this.query = "";
    this.entries = [];
    this.list = new VirtualList({
      label: "Items",
      renderRow: (entry, row) => this.renderRow(entry, row),
      onActivate: (entry) => this.items.show(entry, { focus: true }),
      onSelect: (entry) => this.items.show(entry),
    });
    this.items = new ItemView(app, this);
    this.wired = false;
  }

  get vault() {
    return this.app.vault;
  }

  get say() {
    return this.app.say;
  }

  wire() {
    if (this.wired) return;
    this.wired = true;
    fill($("#item-list"), this.list.element);
    let debounce = null;
    $("#search").addEventListener("input", (e) => {
      clearTimeout(debounce);
      debounce = setTimeout(() => {
        this.query = e.target.value.trim().toLowerCase();
        this.applyFilter();
      }, 60);
    });
    $("#search").addEventListener("keydown", (e) => {
      if (e.key === "ArrowDown") {
        e.preventDefault();
        this.list.focus();
      }
    });
    $("#new-safe").addEventListener("click", () => this.newSafe());
    $("#refresh-safes").addEventListener("click", () => this.reload());
    $("#new-folder").addEventListener("click", () => this.newFolder());
    $("#rename-folder").addEventListener("click", () => this.renameFolder());
    $("#delete-folder").addEventListener("click", () => this.deleteFolder());
    $("#new-item").addEventListener("click", () => this.items.edit(null));
    $("#import-button").addEventListener("click", () => importDialog(this.app, this.safe));
    $("#export-button").addEventListener("click", () => exportDialog(this.app, this.safe));
    $("#members-button").addEventListener("click", () => membersDialog(this.app, this.safe));
    $("#audit-button").addEventListener("click", () => auditDialog(this.app, this.safe));
    $("#safe-settings-button").addEventListener("click", () => safeSettingsDialog(this.app, this.safe));
  }

  async start() {
    this.wire();
    await this.refreshSafes();
    const safes = [...this.vault.safes.values()];
    if (safes.length === 1) await this.openSafe(safes[0]);
    else if (safes.length === 0) this.say.status("You have no safes yet: make one with New safe.");
  }

  /** Forget everything shown: the page is locking. */
  reset() {
    this.safe = null;
    this.folderText = null;
    this.query = "";
    this.entries = [];
    if (this.wired) {
      $("#search").value = "";
      this.list.setEntries([]);
    }
    this.items.clear();
    fill($("#safe-list"));
    fill($("#folder-tree"));
    $("#folders").hidden = true;
    $("#safe-title").textContent = "Choose a safe";
    $("#safe-tools").hidden = true;
    $("#safe-banner").hidden = true;
    $("#safe-note").hidden = true;
    $("#list-count").textContent = "";
  }

  /** Reload the list of safes (shared with me since?) and the open safe. */
  async reload() {
    try {
      const safes = await this.refreshSafes();
      const open = this.safe;
      if (open && !safes.includes(open)) {
        this.reset();
        this.renderSafes(safes);
        this.say.alert("The safe you had open is no longer yours to read: it was deleted or you were removed from it.");
        return;
      }
      if (open) await this.openSafe(open);
      else this.say.status(`${num(safes.length)} safe${safes.length === 1 ? "" : "s"}.`);
    } catch (e) {
      this.say.alert(`Could not reload: ${e.message}`);
    }
  }

  async refreshSafes() {
    const safes = await this.vault.listSafes();
    this.renderSafes(safes);
    return safes;
  }

  renderSafes(safes = [...this.vault.safes.values()]) {
    fill(
      $("#safe-list"),
      safes.map((s) =>
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              "aria-current": this.safe === s ? "true" : "false",
              class: s.nameError ? "bad" : "",
              onclick: () => this.openSafe(s),
            },
            s.name ?? "(name does not open)",
            s.role !== "admin" ? ` (${s.role})` : "",
          ),
        ),
      ),
    );
  }

  async newSafe() {
    const name = await promptDialog("New safe", "Name of the new safe");
    if (!name) return;
    try {
      const safe = await this.vault.createSafe(name);
      this.renderSafes(await this.vault.listSafes());
      await this.openSafe(safe);
      this.say.status(`Safe ${name} created.`);
    } catch (e) {
      this.say.alert(`The safe was not created: ${e.message}`);
    }
  }

  async newFolder() {
    const parent = this.folderText ? this.safe.folders.get(this.folderText) : null;
    const name = await promptDialog("New folder", parent ? `Name of the folder inside ${parent.name}` : "Name of the folder");
    if (!name) return;
    try {
      const folder = await this.vault.createFolder(this.safe, name, this.folderText);
      this.renderFolders();
      this.say.status(`Folder ${folder.name} created.`);
    } catch (e) {
      this.say.alert(`The folder was not created: ${e.message}`);
    }
  }

  async renameFolder() {
    const folder = this.safe?.folders.get(this.folderText);
    if (!folder) return;
    const name = await promptDialog("Rename folder", "New name of the folder", folder.name ?? "");
    if (!name) return;
    try {
      await this.vault.renameFolder(this.safe, folder, name);
      this.renderFolders();
      this.say.status(`Folder renamed to ${name}.`);
    } catch (e) {
      this.say.alert(
        e.code === "version_conflict" ? "The folder changed meanwhile: reload the safe and try again." : `Not renamed: ${e.message}`,
      );
    }
  }

  async deleteFolder() {
    const folder = this.safe?.folders.get(this.folderText);
    if (!folder) return;
    if (!(await confirmDialog("Delete folder", `Delete the folder ${folder.name ?? ""}?`, "Delete"))) return;
    try {
      await this.vault.deleteFolder(this.safe, folder);
      this.folderText = folder.parentText;
      this.renderFolders();
      this.applyFilter();
      this.say.status(`Folder ${folder.name ?? ""} deleted.`);
    } catch (e) {
      this.say.alert(
        e.code === "folder_not_empty"
          ? "The folder is not empty: move or delete its items and folders first. Nothing was deleted."
          : `Not deleted: ${e.message}`,
      );
    }
  }

  /** Open a safe: fetch, decrypt in batches (the page stays responsive), render. */
  async openSafe(safe) {
    this.safe = safe;
    this.folderText = null;
    this.items.clear();
    this.renderSafes();
    $("#safe-title").textContent = safe.name ?? "(name does not open)";
    this.say.clearAlert();
    let shown = false;
    let listed = 0;
    try {
      const { items, ms } = await this.vault.openSafe(safe, {
        // The tools and the list show at once and fill in as batches open.
        progress: (done, total) => {
          if (this.safe !== safe) return;
          if (!shown) {
            shown = true;
            this.showSafe();
          } else if (performance.now() - listed > 500) {
            listed = performance.now();
            this.applyFilter();
          }
          this.say.progress(`Decrypting ${num(done)} of ${num(total)} items`, done === total);
        },
        render: async () => {
          if (this.safe !== safe) return;
          this.showSafe();
          await afterPaint();
        },
      });
      const bad = [...safe.items.values()].filter((e) => e.error).length;
      this.say.status(
        `Opened ${safe.name ?? "the safe"}: ${num(items)} items in ${(ms / 1000).toFixed(1)} s` +
          (bad ? `; ${num(bad)} could not be opened` : ""),
      );
      if (bad) {
        this.say.alert(
          `${num(bad)} item${bad === 1 ? "" : "s"} of this safe did not open: the ciphertext was modified, ` +
            "or moved from another item, safe, folder or version. They are marked in the list; the rest opened.",
        );
      }
    } catch (e) {
      this.say.alert(`The safe did not open: ${e.message}`);
      return;
    }
    if (safe.rotationNeeded) await this.rotationNeeded(safe);
  }

  /** Show the open safe's name, tools, folders and items. */
  showSafe() {
    const safe = this.safe;
    $("#safe-title").textContent = safe.name ?? "(name does not open)";
    $("#safe-tools").hidden = false;
    for (const id of ["#new-item", "#import-button", "#new-folder"]) $(id).hidden = !safe.canEdit;
    for (const id of ["#audit-button", "#safe-settings-button"]) $(id).hidden = !safe.isAdmin;
    const note = $("#safe-note");
    note.hidden = safe.canEdit;
    note.textContent = safe.canEdit ? "" : "You can read this safe, but not change it (viewer).";
    $("#folders").hidden = false;
    this.renderSafes();
    this.renderFolders();
    this.applyFilter();
  }

  async rotationNeeded(safe) {
    const banner = $("#safe-banner");
    banner.hidden = false;
    if (!safe.isAdmin) {
      banner.textContent = "A member left or was removed: an admin must rotate this safe's key.";
      return;
    }
    banner.textContent = "A member was removed: rotating this safe's key…";
    await this.rotate(safe);
  }

  /** Rotate the safe's key with progress; resumable by starting again. */
  async rotate(safe) {
    const banner = $("#safe-banner");
    banner.hidden = false;
    try {
      const generation = await rotateSafe(this.vault, safe, {
        progress: (step, done, total) => {
          const text = total ? `Rotating the safe key: ${step} ${num(done)} of ${num(total)}` : `Rotating the safe key: ${step}`;
          banner.textContent = text;
          this.say.progress(text, done === total);
        },
      });
      banner.hidden = true;
      if (this.safe === safe) await this.openSafe(safe);
      this.say.status(`The safe key was rotated (key generation ${generation}). Removed members cannot read what changes from now on.`);
    } catch (e) {
      fill(
        banner,
        `The key rotation stopped: ${e.message}. The safe is unchanged and still needs it. `,
        h("button", { type: "button", onclick: () => this.rotate(safe) }, "Rotate again"),
      );
      this.say.alert(`The key rotation stopped: ${e.message}`);
    }
  }

  renderFolders() {
    const safe = this.safe;
    const children = new Map();
    for (const f of safe.folders.values()) {
      const k = f.parentText ?? "";
      if (!children.has(k)) children.set(k, []);
      children.get(k).push(f);
    }
    const button = (text, folderText, bad = false) =>
      h(
        "button",
        {
          type: "button",
          class: bad ? "bad" : "",
          "aria-current": this.folderText === folderText ? "true" : "false",
          onclick: () => {
            this.folderText = folderText;
            this.renderFolders();
            this.applyFilter();
          },
        },
        text,
      );
    const branch = (parentKey, depth) => {
      const list = (children.get(parentKey) || []).sort((a, b) => (a.name ?? "").localeCompare(b.name ?? ""));
      if (!list.length || depth > 32) return null;
      return h(
        "ul",
        {},
        list.map((f) => h("li", {}, button(f.name ?? "(folder does not open)", f.idText, !!f.error), branch(f.idText, depth + 1))),
      );
    };
    fill($("#folder-tree"), h("li", {}, button("All items", null)), h("li", {}, branch("", 0)));
    const chosen = this.folderText && safe.canEdit;
    $("#rename-folder").hidden = !chosen;
    $("#delete-folder").hidden = !chosen;
  }

  /** Folder ids under (and including) the selected folder. */
  #selectedFolders() {
    if (!this.folderText) return null;
    const out = new Set([this.folderText]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const f of this.safe.folders.values()) {
        if (f.parentText && out.has(f.parentText) && !out.has(f.idText)) {
          out.add(f.idText);
          grew = true;
        }
      }
    }
    return out;
  }

  applyFilter() {
    const safe = this.safe;
    if (!safe) return;
    const folders = this.#selectedFolders();
    const q = this.query;
    const all = safe.sortedItems();
    this.entries = all.filter(
      (e) => (!folders || (e.folderText && folders.has(e.folderText))) && (!q || e.search.includes(q)),
    );
    this.list.setEntries(this.entries);
    $("#list-count").textContent =
      this.entries.length === all.length
        ? `${num(all.length)} item${all.length === 1 ? "" : "s"}`
        : `${num(this.entries.length)} of ${num(all.length)} items match`;
  }

  renderRow(entry, row) {
    if (entry.error) row.classList.add("row-bad");
    const c = entry.content;
    let sub = "";
    if (entry.error) sub = `Does not open: ${entry.error.code}`;
    else if (c.type === "login") sub = c.username || (c.urls || [])[0] || typeLabel(c.type);
    else if (c.type === "card") sub = `${c.brand || "Card"}${c.number ? ` •••• ${String(c.number).slice(-4)}` : ""}`;
    else sub = typeLabel(c.type);
    row.append(h("div", { class: "row-title" }, entry.title || "(untitled)"), h("div", { class: "row-sub" }, sub));
  }

  /** After an item changed: refresh the list, keep it selected. */
  itemChanged(entry) {
    this.applyFilter();
    if (entry) this.list.select(entry);
  }
}
