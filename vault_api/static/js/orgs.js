// The organisation panel (docs/devices.md 6): create one, add members by
// handle, make or unmake admins, remove members or leave, the policy
// (device registration, bypass, passphrase, device expiry) and the
// organisation's audit log. Turning a permission off removes the dependent
// wraps at once on the server; the panel says how many.

import * as vc from "./vaultcrypto.js";
import { path } from "./api.js";
import { fill, h, makeDialog, num, openDialog, when } from "./dom.js";
import { confirmDialog } from "./panels.js";

const DAY = 86_400;
const TOGGLES = [
  ["allow_device_registration", "Members may register devices (off: every member's devices are revoked)"],
  ["allow_bypass", "Registered devices may skip the passphrase (off: every bypass is removed)"],
  ["require_passphrase", "Members must have a vault passphrase"],
];

function describe(e) {
  const d = e.detail || {};
  const who = d.handle ? ` ${d.handle}` : "";
  if (e.action === "policy.change") {
    const changed = Object.entries(d.new || {})
      .filter(([k, v]) => JSON.stringify(d.old?.[k]) !== JSON.stringify(v))
      .map(([k, v]) => `${k} ${JSON.stringify(d.old?.[k])} → ${JSON.stringify(v)}`);
    const r = d.removed;
    const removed = r ? ` (removed ${r.wraps ?? 0} bypass wraps, revoked ${r.devices ?? 0} devices)` : "";
    return `policy.change: ${changed.join(", ") || "no change"}${removed}`;
  }
  if (e.action === "member.role") return `member.role:${who} ${d.old} → ${d.new}`;
  if (e.action === "org.create") return `org.create: ${d.name ?? ""}`;
  return `${e.action}:${who}${d.role ? ` (${d.role})` : ""}`;
}

export async function orgDialog(app) {
  const { api, keyring, say } = app;
  const body = h("div", { id: "org-body" });
  const result = h("div", { id: "org-result", role: "status", "aria-live": "polite" });
  const tell = (text, good = true) => {
    fill(result, h("p", { class: good ? "good" : "bad" }, text));
    if (good) say.status(text);
  };
  const me = vc.b64uEncode(keyring.userId);

  const render = async () => {
    const policy = await api.get("/api/me/policy");
    if (!policy.organisation) {
      const name = h("input", { id: "org-name", required: true, maxlength: 64 });
      fill(
        body,
        h("p", {}, "You are not in an organisation. Its admins set what devices may do for every member."),
        h("p", { class: "help" }, `This vault's defaults: device registration ${policy.allow_device_registration ? "on" : "off"}, bypass ${policy.allow_bypass ? "on" : "off"}, passphrase ${policy.require_passphrase ? "required" : "optional"}.`),
        h("form", { id: "org-create", onsubmit: async (e) => {
          e.preventDefault();
          try {
            await api.post("/api/orgs", { name: name.value.trim() });
            tell(`Organisation ${name.value.trim()} created: you are its admin.`);
          } catch (err) {
            tell(`Not created: ${err.message}`, false);
          }
          await render();
        } },
          h("label", { for: "org-name" }, "Name of a new organisation"),
          name,
          h("button", { type: "submit" }, "Create organisation")),
      );
      return;
    }
    const org = await api.get(path("orgs", policy.organisation.org_id));
    const admin = org.role === "admin";
    const orgPath = (...p) => path("orgs", org.org_id, ...p);
    const run = async (what, fn, { keepOnError = false } = {}) => {
      try {
        await fn();
      } catch (err) {
        tell(`${what}: ${err.code === "last_admin" ? "the organisation needs at least one admin" : err.message}`, false);
        if (keepOnError) return; // what was typed stays, to correct it
      }
      await render();
    };
    const toggles = TOGGLES.map(([key, label]) =>
      h("label", { class: "inline" },
        h("input", { type: "checkbox", id: `policy-${key}`, checked: org.policy[key], disabled: !admin, onchange: (e) => run("Policy not changed", async () => {
          const out = await api.patch(orgPath("policy"), { [key]: e.target.checked });
          const r = out.removed;
          tell(`Policy changed.${r ? ` Removed ${num(r.wraps)} bypass wraps and revoked ${num(r.devices)} devices.` : ""}`);
        }) }),
        ` ${label}`));
    const expiry = h("input", { id: "policy-expiry", type: "number", min: 0, max: 3650, value: Math.round(org.policy.device_expiry_seconds / DAY), disabled: !admin });
    const members = h("table", {},
      h("caption", { class: "visually-hidden" }, "Members of the organisation"),
      h("thead", {}, h("tr", {}, ["Member", "Role", "Added", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, org.members.map((m) => {
        const self = m.user_id === me;
        const handle = m.handle ?? m.user_id.slice(0, 8);
        const role = admin
          ? h("select", { "aria-label": `Role of ${handle}`, onchange: (e) => run("Role not changed", async () => {
              await api.patch(orgPath("members", m.user_id), { role: e.target.value });
              tell(`${handle} is now ${e.target.value}.`);
            }) }, ["member", "admin"].map((r) => h("option", { value: r, selected: r === m.role ? "" : null }, r)))
          : m.role;
        const action = self
          ? h("button", { type: "button", onclick: async () => {
              if (!(await confirmDialog("Leave organisation", `Leave ${org.name}? Your account returns to this vault's defaults.`, "Leave"))) return;
              await run("Not left", async () => {
                await api.delete(orgPath("members", m.user_id));
                tell(`You left ${org.name}.`);
              });
            } }, "Leave the organisation")
          : admin
            ? h("button", { type: "button", class: "danger", onclick: () => run("Not removed", async () => {
                await api.delete(orgPath("members", m.user_id));
                tell(`${handle} was removed from ${org.name}.`);
              }) }, `Remove ${handle}`)
            : "";
        return h("tr", {}, h("th", { scope: "row" }, handle, self ? " (you)" : ""), h("td", {}, role), h("td", {}, when(m.added_ms)), h("td", {}, action));
      })));
    const addHandle = h("input", { id: "org-add-handle", required: true, autocomplete: "off" });
    const addRole = h("select", { id: "org-add-role" }, h("option", { value: "member" }, "member"), h("option", { value: "admin" }, "admin"));
    const audit = h("div", { id: "org-audit" });
    fill(
      body,
      h("p", {}, "Organisation ", h("strong", { id: "org-title" }, org.name), ` (you are ${org.role === "admin" ? "an admin" : "a member"}).`),
      h("h3", {}, "Policy"),
      h("fieldset", { id: "org-policy" }, h("legend", {}, "What members' devices may do"), toggles,
        h("label", { for: "policy-expiry" }, "A device unused this many days expires (0: never)"),
        h("div", { class: "row" }, expiry, admin
          ? h("button", { type: "button", onclick: () => run("Expiry not changed", async () => {
              await api.patch(orgPath("policy"), { device_expiry_seconds: Number(expiry.value) * DAY });
              tell(`Devices now expire after ${expiry.value} unused days.`);
            }) }, "Set expiry")
          : null)),
      admin ? null : h("p", { class: "help" }, "Only admins change the policy."),
      h("h3", {}, "Members"),
      members,
      admin
        ? h("form", { id: "org-add", onsubmit: (e) => {
            e.preventDefault();
            const handle = addHandle.value.trim();
            run("Not added", async () => {
              try {
                await api.post(orgPath("members"), { handle, role: addRole.value });
              } catch (err) {
                if (err.code === "user_not_found") throw new Error(`there is no user ${handle}`);
                throw err;
              }
              tell(`${handle} was added as ${addRole.value}; they are told at their next login.`);
            }, { keepOnError: true });
          } },
            h("label", { for: "org-add-handle" }, "Add a member by handle"),
            addHandle,
            h("label", { for: "org-add-role" }, "Role"),
            addRole,
            h("button", { type: "submit" }, "Add member"))
        : null,
      admin ? [h("h3", {}, "Audit log"), audit] : null,
    );
    if (admin) {
      const { events } = await api.get(orgPath("audit"));
      fill(
        audit,
        events.length
          ? h("ol", { id: "org-audit-list", reversed: true }, [...events].sort((a, b) => b.seq - a.seq).map((e) =>
              h("li", {}, `${when(e.at_ms)}: ${e.actor_handle ?? "someone"}: ${describe(e)}`)))
          : h("p", { class: "help" }, "Nothing yet."),
      );
    }
  };
  const { dialog } = makeDialog("org-dialog", "Organisation", body, result);
  const closed = openDialog(dialog);
  try {
    await render();
  } catch (e) {
    tell(`The organisation did not load: ${e.message}`, false);
  }
  await closed;
}
