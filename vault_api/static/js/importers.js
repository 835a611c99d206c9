// Import in the browser (nothing in plaintext leaves the page): Bitwarden's
// unencrypted JSON export, KeePass 2 XML, and the CSV password exports of
// Chrome and Firefox, read into vault items (docs/vault.md 7.3).
//
//     const plan = readImport(text, { fileName });      // or { format: "keepass" }
//     plan = {format, folders: [{key, name, parentKey}], items: [{content, folderKey}],
//             skipped: [{title, reason}]}
//
// Folders come parents first. Nothing here encrypts or sends anything; the
// page shows the plan as a preview, then encrypts and uploads the items.

import { parseCsv } from "./csv.js";

export const FORMATS = Object.freeze({
  bitwarden: "Bitwarden (unencrypted JSON)",
  keepass: "KeePass 2 XML",
  chrome: "Chrome passwords (CSV)",
  firefox: "Firefox logins (CSV)",
});

export class ImportError extends Error {
  constructor(message) {
    super(message);
    this.name = "ImportError";
    this.code = "import_invalid";
  }
}

const str = (v) => (typeof v === "string" ? v : v === undefined || v === null ? "" : String(v));

function plan(format) {
  return { format, folders: [], items: [], skipped: [] };
}

/** Drop empty optional fields so items stay small and clean. */
function tidy(content) {
  for (const [k, v] of Object.entries(content)) {
    if (k === "type" || k === "title") continue;
    if (v === "" || v === null || v === undefined || (Array.isArray(v) && v.length === 0)) delete content[k];
  }
  return content;
}

// --- detection -----------------------------------------------------------------------

/** The format of `text`: "bitwarden", "keepass", "chrome" or "firefox" (ImportError if none). */
export function detectFormat(text) {
  const head = String(text).replace(/^\uFEFF/, "").trimStart();
  if (head.startsWith("{")) return "bitwarden";
  if (head.startsWith("<")) return "keepass";
  const first = head.split(/\r?\n/, 1)[0].toLowerCase().replace(/"/g, "");
  const cols = first.split(",").map((c) => c.trim());
  if (cols.includes("url") && cols.includes("username") && cols.includes("password")) {
    return cols.includes("guid") || cols.includes("httprealm") ? "firefox" : "chrome";
  }
  throw new ImportError(
    "this file is not one of the formats the vault reads (Bitwarden JSON, KeePass 2 XML, " +
      "Chrome or Firefox CSV)",
  );
}

/** Read an export into an import plan. `format` defaults to detectFormat(text). */
export function readImport(text, { format } = {}) {
  const f = format || detectFormat(text);
  switch (f) {
    case "bitwarden":
      return readBitwarden(text);
    case "keepass":
      return readKeepass(text);
    case "chrome":
    case "firefox":
      return readCsvExport(text, f);
    default:
      throw new ImportError(`unknown import format ${f}`);
  }
}

// --- Bitwarden -----------------------------------------------------------------------

function bitwardenFields(fields, skippedFields) {
  const out = [];
  for (const f of fields || []) {
    // Types: 0 text, 1 hidden, 2 boolean, 3 linked (a pointer to another field: no value).
    if (f?.type === 3) {
      skippedFields.push(str(f.name));
      continue;
    }
    out.push({ name: str(f?.name), value: str(f?.value), hidden: f?.type === 1 });
  }
  return out;
}

export function readBitwarden(text) {
  let data;
  try {
    data = JSON.parse(String(text).replace(/^\uFEFF/, ""));
  } catch {
    throw new ImportError("the Bitwarden file is not JSON");
  }
  if (data?.encrypted === true) {
    throw new ImportError(
      "this Bitwarden export is encrypted; export again as \"JSON\" (not \"JSON (Encrypted)\")",
    );
  }
  if (!Array.isArray(data?.items)) throw new ImportError("the Bitwarden file has no \"items\" list");
  const out = plan("bitwarden");
  // Bitwarden nests folders by name: "Work/Servers" is Servers inside Work.
  const byPath = new Map();
  const folderKey = (path) => {
    if (!path) return null;
    if (byPath.has(path)) return byPath.get(path);
    const cut = path.lastIndexOf("/");
    const parentKey = cut > 0 ? folderKey(path.slice(0, cut)) : null;
    const key = `bw:${path}`;
    byPath.set(path, key);
    out.folders.push({ key, name: cut > 0 ? path.slice(cut + 1) : path, parentKey });
    return key;
  };
  const folderPath = new Map((data.folders || []).map((f) => [f.id, str(f.name).replace(/^\/+|\/+$/g, "")]));
  for (const it of data.items) {
    const title = str(it?.name) || "(untitled)";
    const skippedFields = [];
    const common = {
      title,
      notes: str(it?.notes),
      fields: bitwardenFields(it?.fields, skippedFields),
    };
    let content;
    switch (it?.type) {
      case 1: {
        const login = it.login || {};
        content = {
          type: "login",
          ...common,
          username: str(login.username),
          password: str(login.password),
          urls: (login.uris || []).map((u) => str(u?.uri)).filter(Boolean),
          totp: str(login.totp),
        };
        break;
      }
      case 2:
        content = { type: "note", ...common };
        break;
      case 3: {
        const card = it.card || {};
        const month = str(card.expMonth).padStart(2, "0");
        const year = str(card.expYear);
        content = {
          type: "card",
          ...common,
          cardholder: str(card.cardholderName),
          number: str(card.number),
          brand: str(card.brand),
          expiry: card.expMonth && year ? `${month}/${year}` : "",
          code: str(card.code),
        };
        break;
      }
      case 4:
        out.skipped.push({ title, reason: "identity items are not supported" });
        continue;
      case 5:
        out.skipped.push({ title, reason: "SSH keys are not supported" });
        continue;
      default:
        out.skipped.push({ title, reason: `unknown Bitwarden item type ${JSON.stringify(it?.type)}` });
        continue;
    }
    if (skippedFields.length) {
      content.notes = [content.notes, `(linked fields not imported: ${skippedFields.join(", ")})`]
        .filter(Boolean)
        .join("\n");
    }
    out.items.push({ content: tidy(content), folderKey: folderKey(folderPath.get(it.folderId)) });
  }
  return out;
}

// --- KeePass 2 XML -------------------------------------------------------------------

const KEEPASS_STANDARD = new Set(["Title", "UserName", "Password", "URL", "Notes"]);

function childrenNamed(el, name) {
  return Array.from(el.children).filter((c) => c.tagName === name);
}

function childText(el, name) {
  const c = childrenNamed(el, name)[0];
  return c ? c.textContent : "";
}

export function readKeepass(text) {
  const doc = new DOMParser().parseFromString(String(text).replace(/^\uFEFF/, ""), "application/xml");
  if (doc.getElementsByTagName("parsererror").length || doc.documentElement.tagName !== "KeePassFile") {
    throw new ImportError("the file is not KeePass 2 XML (File > Export > KeePass XML (2.x))");
  }
  const out = plan("keepass");
  const root = childrenNamed(doc.documentElement, "Root")[0];
  const meta = childrenNamed(doc.documentElement, "Meta")[0];
  const recycleBin = meta ? childText(meta, "RecycleBinUUID") : "";
  const top = root ? childrenNamed(root, "Group")[0] : null;
  if (!top) throw new ImportError("the KeePass file has no groups");
  let n = 0;

  const walk = (group, parentKey, inBin) => {
    for (const entry of childrenNamed(group, "Entry")) readEntry(entry, parentKey, inBin);
    for (const sub of childrenNamed(group, "Group")) {
      const bin = inBin || (recycleBin && childText(sub, "UUID") === recycleBin);
      let key = null;
      if (!bin) {
        key = `kp:${n++}`;
        out.folders.push({ key, name: childText(sub, "Name") || "(unnamed group)", parentKey });
      }
      walk(sub, key, bin);
    }
  };

  const readEntry = (entry, folderKey, inBin) => {
    const strings = new Map();
    const hiddenNames = new Set();
    let encrypted = false;
    for (const s of childrenNamed(entry, "String")) {
      const key = childText(s, "Key");
      const valueEl = childrenNamed(s, "Value")[0];
      if (!valueEl) continue;
      if (valueEl.getAttribute("Protected") === "True") encrypted = true;
      if (valueEl.getAttribute("ProtectInMemory") === "True") hiddenNames.add(key);
      strings.set(key, valueEl.textContent);
    }
    const title = strings.get("Title") || "(untitled)";
    if (inBin) {
      out.skipped.push({ title, reason: "in the KeePass recycle bin" });
      return;
    }
    if (encrypted) {
      out.skipped.push({
        title,
        reason: "its protected values are encrypted (use File > Export > KeePass XML (2.x))",
      });
      return;
    }
    if (![...strings.values()].some((v) => v !== "")) {
      out.skipped.push({ title, reason: "the entry is empty" });
      return;
    }
    const otpUri = strings.get("otp") || "";
    const otpSecret = strings.get("TimeOtp-Secret-Base32") || "";
    const fields = [];
    for (const [name, value] of strings) {
      if (KEEPASS_STANDARD.has(name) || name === "otp" || name.startsWith("TimeOtp-")) continue;
      fields.push({ name, value, hidden: hiddenNames.has(name) });
    }
    const tags = childText(entry, "Tags")
      .split(/[;,]/)
      .map((t) => t.trim())
      .filter(Boolean);
    const content = {
      type: "login",
      title,
      username: strings.get("UserName") || "",
      password: strings.get("Password") || "",
      urls: strings.get("URL") ? [strings.get("URL")] : [],
      notes: strings.get("Notes") || "",
      totp: otpUri || otpSecret,
      tags,
      fields,
    };
    if (!content.username && !content.password && !content.urls.length && !content.totp) {
      content.type = "note";
      delete content.username;
      delete content.password;
      delete content.urls;
      delete content.totp;
    }
    out.items.push({ content: tidy(content), folderKey });
  };

  walk(top, null, false);
  return out;
}

// --- CSV (Chrome, Firefox) -----------------------------------------------------------

function hostOf(url) {
  try {
    return new URL(url).hostname || url;
  } catch {
    return url;
  }
}

export function readCsvExport(text, format) {
  let rows;
  try {
    rows = parseCsv(text);
  } catch (e) {
    throw new ImportError(`the CSV file does not parse: ${e.message}`);
  }
  if (rows.length === 0) throw new ImportError("the CSV file is empty");
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const col = (name) => header.indexOf(name);
  const [iName, iUrl, iUser, iPass] = [col("name"), col("url"), col("username"), col("password")];
  const iNote = header.includes("note") ? col("note") : col("notes");
  if (iUrl < 0 || iUser < 0 || iPass < 0) {
    throw new ImportError("the CSV header must have url, username and password columns");
  }
  const out = plan(format);
  rows.slice(1).forEach((row, n) => {
    const get = (i) => (i >= 0 && i < row.length ? row[i] : "");
    const url = get(iUrl);
    const title = get(iName) || hostOf(url) || `row ${n + 2}`;
    if (row.length < header.length) {
      out.skipped.push({ title, reason: `row ${n + 2} has ${row.length} of ${header.length} columns` });
      return;
    }
    if (format === "firefox" && /^chrome:\/\//i.test(url)) {
      out.skipped.push({ title, reason: "a Firefox-internal login (chrome://), not a web site" });
      return;
    }
    if (!get(iUser) && !get(iPass)) {
      out.skipped.push({ title, reason: "no username or password" });
      return;
    }
    const content = {
      type: "login",
      title,
      username: get(iUser),
      password: get(iPass),
      urls: url ? [url] : [],
      notes: get(iNote),
    };
    out.items.push({ content: tidy(content), folderKey: null });
  });
  return out;
}
