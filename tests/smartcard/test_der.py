"""The simulator's tiny DER writer (simulators/smartcard/der.py), against
encodings from X.690 and RFC 5652 and against OpenSSL's parser."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from simulators.smartcard import der


@pytest.mark.parametrize(
    ("dotted", "encoding"),
    [
        ("1.2.840.113549.1.7.2", "06092a864886f70d010702"),  # id-signedData (RFC 5652)
        ("2.16.840.1.101.3.4.2.1", "0609608648016503040201"),  # id-sha256
        ("2.23.136.1.1.1", "0606678108010101"),  # ICAO ldsSecurityObject
        ("2.999.3", "0603883703"),  # X.690 §8.19.5's example: 2*40+999 needs two bytes
        ("0.0", "060100"),
    ],
)
def test_object_identifiers(dotted: str, encoding: str) -> None:
    assert der.oid(dotted).hex() == encoding


@pytest.mark.parametrize("bad", ["1", "3.1", "1.40", "1.2.-3", "1..2", "a.b"])
def test_bad_object_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="object identifier"):
        der.oid(bad)


@pytest.mark.parametrize(
    ("n", "encoding"),
    [(0, "020100"), (1, "020101"), (127, "02017f"), (128, "02020080"), (255, "020200ff"),
     (256, "02020100"), (2**64, "0209010000000000000000")],
)  # fmt: skip
def test_integers_are_minimal_and_positive(n: int, encoding: str) -> None:
    assert der.integer(n).hex() == encoding


def test_negative_integers_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        der.integer(-1)


def test_lengths_and_constructed_types() -> None:
    assert der.octet_string(b"").hex() == "0400"
    assert der.octet_string(b"x" * 127)[:2].hex() == "047f"
    assert der.octet_string(b"x" * 128)[:3].hex() == "048180"
    assert der.octet_string(b"x" * 300)[:4].hex() == "0482012c"
    assert der.null().hex() == "0500"
    assert der.sequence(der.integer(2), der.integer(1)).hex() == "3006020102020101"
    # SET OF is sorted by encoding, whatever the order given
    assert der.set_of(der.integer(2), der.integer(1)).hex() == "3106020101020102"
    assert der.context(0, der.integer(5)).hex() == "a003020105"
    assert der.context(3, b"").hex() == "a300"
    with pytest.raises(ValueError, match=r"0\.\.30"):
        der.context(31, b"")


def test_openssl_parses_what_it_writes(tmp_path: Path) -> None:
    value = der.sequence(
        der.integer(0),
        der.sequence(der.oid("2.16.840.1.101.3.4.2.1")),
        der.context(0, der.octet_string(b"\x01" * 200)),
        der.set_of(der.null(), der.integer(2**70)),
    )
    (tmp_path / "v.der").write_bytes(value)
    done = subprocess.run(
        ["openssl", "asn1parse", "-inform", "DER", "-in", str(tmp_path / "v.der")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "sha256" in lines[3]
    assert "cont [ 0 ]" in lines[4]
    assert "OCTET STRING" in lines[5]
    assert "l= 200" in lines[5]
    assert ":400000000000000000" in done.stdout  # 2**70 in hex
    assert "NULL" in done.stdout
