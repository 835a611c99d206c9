"""docs/keyproxy.md is normative: every refusal code, RPC and the grant's
label of the code appear in it."""

from __future__ import annotations

from pathlib import Path

from keyproxy import errors, grants
from keyproxy.v1 import keyproxy_pb2

DOC = (Path(__file__).resolve().parents[2] / "docs" / "keyproxy.md").read_text()


def test_every_refusal_code_is_documented() -> None:
    codes = {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type)
        and issubclass(cls, errors.ProxyError)
        and cls is not errors.ProxyError
    }
    assert len(codes) >= 11
    missing = sorted(c for c in codes if f"`{c}`" not in DOC)
    assert not missing, f"codes missing from docs/keyproxy.md: {missing}"


def test_every_rpc_and_the_grant_label_are_documented() -> None:
    service = keyproxy_pb2.DESCRIPTOR.services_by_name["KeyProxy"]
    missing = [m.name for m in service.methods if f"`{m.name}`" not in DOC]
    assert not missing, f"RPCs missing from docs/keyproxy.md: {missing}"
    assert grants.LABEL.decode() in DOC
