"""docs/vault.md and docs/devices.md are normative: every label, endpoint,
error code and audit action the code uses appears in one of them."""

from __future__ import annotations

import re
from pathlib import Path

from vault_api.app import create_app
from vault_api.config import Settings
from vault_api.crypto import labels
from vault_api.store import factors as account_log
from vault_api.store import orgs as org_log
from vault_api.store.audit import ACTIONS

DOCS = Path(__file__).resolve().parents[2] / "docs"
VAULT_DOC = (DOCS / "vault.md").read_text()
DOC = VAULT_DOC + "\n" + (DOCS / "devices.md").read_text()
CODE = Path(__file__).resolve().parents[2] / "vault_api"


def test_every_label_is_in_the_table() -> None:
    for label in labels.ALL:
        assert f"| `{label.decode()}` |" in VAULT_DOC, label


def test_every_endpoint_is_documented() -> None:
    doc = create_app(Settings()).openapi()
    for path, ops in doc["paths"].items():
        for method in ops:
            assert f"`{method.upper()} {path}" in DOC, f"{method.upper()} {path}"


def test_every_error_code_is_documented() -> None:
    codes = set()
    for f in CODE.rglob("*.py"):
        codes |= set(re.findall(r'code="([a-z_]+)"', f.read_text()))
    codes |= set(re.findall(r'default_code = "([a-z_]+)"', (CODE / "errors.py").read_text()))
    codes -= {"error"}
    missing = sorted(c for c in codes if f"`{c}`" not in DOC)
    assert missing == []


def test_every_audit_action_is_documented() -> None:
    for action in ACTIONS | account_log.ACTIONS | org_log.ACTIONS:
        kind, verb = action.split(".")
        assert (
            action in DOC or f"{kind}.{verb}" in DOC or re.search(rf"`{kind}\.[a-z|]*{verb}", DOC)
        ), action
