"""docs/protocol.md is normative: every label, error code and RPC of the code
must appear in it, so the two cannot drift apart silently."""

from __future__ import annotations

from pathlib import Path

from authnet import errors
from authnet.protocol import labels
from authnet.v1 import passkey_pb2, sp_pb2

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_every_label_is_documented() -> None:
    assert labels.ALL, "no labels found"
    missing = [v.decode() for v in labels.ALL.values() if f"`{v.decode()}`" not in DOC]
    assert not missing, f"labels missing from docs/protocol.md: {missing}"


def test_every_error_code_is_documented() -> None:
    codes = {cls.code for cls in errors.ALL_ERRORS if cls is not errors.AuthnetError}
    missing = sorted(c for c in codes if f"`{c}`" not in DOC)
    assert not missing, f"error codes missing from docs/protocol.md: {missing}"


def test_every_rpc_is_documented() -> None:
    methods = [
        m.name
        for module in (sp_pb2, passkey_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for m in service.methods
    ]
    assert len(methods) == 18
    missing = [m for m in methods if m not in DOC]
    assert not missing, f"RPCs missing from docs/protocol.md: {missing}"
