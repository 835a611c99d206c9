"""The gateway's vendored browser code: every file byte for byte what the
vendor README records, every import of it resolvable among the vendored files
(what the page's import map maps), and all of it served by the gateway."""

from __future__ import annotations

import hashlib
import posixpath
import re
from pathlib import Path

import aiohttp

from authnet.gateway import browser_client_files
from authnet.testing import TestNetwork

STATIC = Path(__file__).resolve().parent.parent / "authnet" / "gateway" / "static"
VENDOR = STATIC / "vendor"
README = (VENDOR / "README.md").read_text()
# What the X-Wing page's import map maps (authnet/gateway/static/xwing.js).
IMPORT_MAP = {
    "@noble/curves/": "vendor/noble-curves-2.4.0/",
    "@noble/hashes/": "vendor/noble-hashes-2.4.0/",
}
_IMPORT = re.compile(
    r"""(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]"""
    r"""|(?:^|\n)\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)"""
)


def _vendored() -> list[Path]:
    return sorted(p for p in VENDOR.rglob("*") if p.is_file() and p.name != "README.md")


def test_every_vendored_file_is_listed_with_its_sha256() -> None:
    files = _vendored()
    assert len(files) > 20
    for path in files:
        name = path.relative_to(VENDOR).as_posix()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert re.search(rf"\| `{re.escape(name)}` \|[^\n]*`{digest}`", README) or (
            name.endswith(".mjs") and f"`{digest}`" in README
        ), f"{name}: not in vendor/README.md with sha256 {digest}"
    for pkg in ("noble-post-quantum-0.7.1", "noble-curves-2.4.0", "noble-hashes-2.4.0"):
        assert (VENDOR / pkg / "LICENSE").read_text().startswith("The MIT License")


def _imports(text: str) -> list[str]:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return [next(g for g in m.groups() if g) for m in _IMPORT.finditer(text)]


def test_xwing_js_import_graph_is_closed() -> None:
    """Everything xwing.js loads, followed through noble's imports, is here."""
    todo, seen = ["xwing.js"], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert (STATIC / name).is_file(), f"imported but not vendored: {name}"
        for spec in _imports((STATIC / name).read_text()):
            if spec.startswith("."):
                todo.append(posixpath.normpath(posixpath.join(posixpath.dirname(name), spec)))
            else:
                prefix = next((p for p in IMPORT_MAP if spec.startswith(p)), None)
                assert prefix is not None, f"{name} imports {spec}, which the map does not map"
                todo.append(IMPORT_MAP[prefix] + spec[len(prefix) :])
    assert "vendor/noble-post-quantum-0.7.1/hybrid.js" in seen
    assert "vendor/noble-hashes-2.4.0/sha3.js" in seen
    # Nothing vendored that nobody imports (besides the QR generator).
    unused = {p.relative_to(STATIC).as_posix() for p in _vendored() if p.suffix == ".js"} - seen
    assert unused == set()


async def test_the_gateway_serves_xwing_and_its_vendored_code(net: TestNetwork) -> None:
    files = browser_client_files()
    names = [n for n in files if n == "xwing.js" or n.startswith("vendor/noble-")]
    assert "xwing.js" in names
    assert len(names) > 20
    base = net.addresses.gateway_url
    async with aiohttp.ClientSession() as http:
        for name in names:
            async with http.get(f"{base}/v1/{name}") as r:
                assert r.status == 200, name
                assert r.headers["Content-Type"].startswith("text/javascript"), name
                assert await r.read() == (STATIC / name).read_bytes(), name
        async with http.get(f"{base}/v1/vendor/noble-curves-2.4.0/LICENSE") as r:
            assert r.status == 404
