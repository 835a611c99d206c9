"""docs/hardener.md is normative: every RPC, error code and label of the code
appears in it, so the two cannot drift apart silently."""

from __future__ import annotations

from pathlib import Path

from hardener import attempts, errors, labels, transcripts
from hardener.v1 import hardener_pb2

DOC = (Path(__file__).resolve().parents[2] / "docs" / "hardener.md").read_text()


def test_every_rpc_is_documented() -> None:
    methods = [m.name for m in hardener_pb2.DESCRIPTOR.services_by_name["Hardener"].methods]
    assert len(methods) == 10
    missing = [m for m in methods if f"`{m}`" not in DOC]
    assert not missing, f"RPCs missing from docs/hardener.md: {missing}"


def test_every_error_code_is_documented() -> None:
    codes = {cls.code for cls in errors.ALL}
    missing = sorted(c for c in codes if f"`{c}`" not in DOC)
    assert not missing, f"error codes missing from docs/hardener.md: {missing}"


def test_every_label_is_documented() -> None:
    found = [
        labels.poprf_info("c", "u"),
        labels.success_message("c", "u", b"a", b"n"),
        transcripts.hash_transcript("c", "u", b"d"),
        transcripts.wrap_aad("c", "r", 1),
        transcripts.enrol_message("c", "u", b"a", b"n", b"k"),
        transcripts.key_at_rest_aad(1, "oprf"),
        attempts.ATTEMPT_LABEL,
    ]
    prefixes = [v.split(b"\x00")[0].decode() for v in found]
    assert all(p.startswith("hardener/v1 ") for p in prefixes)
    missing = [p for p in prefixes if f'`"{p}"`' not in DOC]
    assert not missing, f"labels missing from docs/hardener.md: {missing}"


def test_framing_is_what_the_doc_says() -> None:
    assert labels.poprf_info("network", "token:ab") == (
        b"hardener/v1 user" + b"\x00\x07network" + b"\x00\x08token:ab"
    )
    assert transcripts.wrap_aad("vault", "r1", 2) == (
        b"hardener/v1 wrap" + b"\x00\x05vault" + b"\x00\x02r1" + b"\x00\x04\x00\x00\x00\x02"
    )
