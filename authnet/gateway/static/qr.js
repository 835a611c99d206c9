// QR code rendering for the login widget: an SVG element, built with DOM calls
// (no markup strings), black modules on a white square with a 4-module quiet
// zone, error-correction level M. Encoding is done by the vendored
// qrcode-generator (MIT, see vendor/README.md).

import qrcode from "./vendor/qrcode-generator-2.0.4.mjs";

const SVG_NS = "http://www.w3.org/2000/svg";
export const QUIET_ZONE = 4; // modules, as ISO/IEC 18004 asks

/** The module matrix for `text` (ASCII), smallest version that fits, level M. */
export function qrMatrix(text) {
  if (!/^[\x20-\x7e]*$/.test(text)) throw new TypeError("QR text must be printable ASCII");
  const qr = qrcode(0, "M");
  qr.addData(text, "Byte");
  qr.make();
  const n = qr.getModuleCount();
  const rows = [];
  for (let r = 0; r < n; r++) {
    const row = [];
    for (let c = 0; c < n; c++) row.push(qr.isDark(r, c));
    rows.push(row);
  }
  return rows;
}

/**
 * An <svg> showing `text` as a QR code, `moduleSize` CSS pixels per module.
 * `label` is its accessible name (role="img" + aria-label + <title>).
 */
export function renderQrSvg(text, { moduleSize = 6, label = "QR code" } = {}) {
  const matrix = qrMatrix(text);
  const n = matrix.length;
  const side = n + 2 * QUIET_ZONE;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("xmlns", SVG_NS);
  svg.setAttribute("viewBox", `0 0 ${side} ${side}`);
  svg.setAttribute("width", String(side * moduleSize));
  svg.setAttribute("height", String(side * moduleSize));
  svg.setAttribute("shape-rendering", "crispEdges");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const title = document.createElementNS(SVG_NS, "title");
  title.textContent = label;
  svg.appendChild(title);
  const bg = document.createElementNS(SVG_NS, "rect");
  bg.setAttribute("width", String(side));
  bg.setAttribute("height", String(side));
  bg.setAttribute("fill", "#fff");
  svg.appendChild(bg);
  let d = "";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (matrix[r][c]) d += `M${c + QUIET_ZONE} ${r + QUIET_ZONE}h1v1h-1z`;
    }
  }
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.appendChild(path);
  return svg;
}
