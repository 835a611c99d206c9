// The gateway's enrolment page (/v1/enrol): a security key becomes a new
// account's first token. See enrolSecurityKey in authnet.js.

import { enrolSecurityKey } from "./authnet.js";

const form = document.getElementById("enrol");
const result = document.getElementById("result");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = form.querySelector("button");
  button.disabled = true;
  result.className = "";
  result.textContent = "Touch your security key and enter its PIN when the browser asks…";
  try {
    const label = document.getElementById("label").value.trim() || "security key";
    const { tokenId, networkName } = await enrolSecurityKey({ label });
    result.textContent = `Enrolled with ${networkName}. Token id: `;
    const code = document.createElement("code");
    code.id = "token-id";
    code.textContent = tokenId;
    result.append(code);
  } catch (e) {
    result.className = "error";
    result.textContent = `Not enrolled: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});
document.body.dataset.ready = "true";
