"""Schemathesis against the OpenAPI document the server publishes: generated
requests, valid and invalid, to every operation, authenticated as a real
logged-in user (session cookie and CSRF token), with random ids and with the
ids of real objects. None may get a server error (5xx)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.vault.conftest import VaultServer
from tests.vault.driver import VaultClient, enc

EXAMPLES = 5
# Logging out would end the session the rest of the run uses.
SKIP = {("POST", "/api/logout")}


def shorten(node: Any, limit: int) -> Any:
    """The document with every maxLength capped: generating (and, in negative
    mode, overrunning) 256 KiB ciphertext fields is slow and finds nothing
    that the size tests do not cover."""
    if isinstance(node, dict):
        out = {k: shorten(v, limit) for k, v in node.items()}
        if isinstance(out.get("maxLength"), int):
            out["maxLength"] = min(out["maxLength"], limit)
        return out
    if isinstance(node, list):
        return [shorten(v, limit) for v in node]
    return node


def fuzz(
    url: str, doc: dict[str, Any], cookies: dict[str, str], csrf: str, real: dict[str, str]
) -> tuple[list[str], int]:
    schema = schemathesis.openapi.from_dict(shorten(doc, 400))
    session = requests.Session()
    headers = {"X-CSRF-Token": csrf}
    failures: list[str] = []
    calls = 0
    operations = [r.ok() for r in schema.get_all_operations()]
    # Destructive calls on real objects go last, so the others still find them.
    operations.sort(key=lambda op: op.method.upper() == "DELETE")
    for op in operations:
        if (op.method.upper(), op.path) in SKIP:
            continue
        names = [p.name for p in op.path_parameters]
        variants: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if names and all(n in real for n in names):
            variants.append((GenerationMode.POSITIVE, {n: real[n] for n in names}))
        for mode, path_parameters in variants:
            strategy = op.as_strategy(generation_mode=mode, path_parameters=path_parameters)

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def check(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                r = case.call(
                    base_url=url, session=session, headers=headers, cookies=cookies, timeout=30
                )
                if r.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path}: {r.status_code} {r.text[:300]}"
                    )

            try:
                check()
            except Unsatisfiable:
                # An operation without inputs has no invalid variant to make.
                assert mode is GenerationMode.NEGATIVE, op.label
    return failures, calls


# About 100 s for some 45 operations on a loaded 2-core machine: over the default timeout.
@pytest.mark.timeout(300)
async def test_no_server_errors(vault: VaultServer, alice: VaultClient, bob: VaultClient) -> None:
    sid = await alice.create_safe("Fuzzed")
    folder = await alice.add_folder(sid, "F")
    iid = await alice.add_item(sid, {"type": "note", "title": "n"}, folder_id=folder)
    fid = await alice.upload(sid, [b"x" * 1000], 1000)
    await alice.share(sid, "bob", "viewer")
    plan, _ = await alice.plan_rotation(sid)
    rotation = await alice.begin_rotation(sid, plan)
    real = {
        "safe_id": enc(sid),
        "item_id": enc(iid),
        "folder_id": enc(folder),
        "file_id": enc(fid),
        "user_id": enc(bob.user_id or b""),
        "key_id": enc(alice.key_id or b""),
        "rotation_id": rotation["id"],
        "handle": "bob",
    }
    doc = await alice.json("GET", "/api/openapi.json")
    assert {"vault_session", "X-CSRF-Token"} <= {
        s["name"] for s in doc["components"]["securitySchemes"].values()
    }
    cookies = {k: v for k, v in alice.http.cookies.items()}
    assert alice.csrf is not None
    failures, calls = await asyncio.to_thread(fuzz, vault.url, doc, cookies, alice.csrf, real)
    assert failures == []
    assert calls > 200  # it did run
    # And the session it used is still good.
    await alice.call("GET", "/api/me")
