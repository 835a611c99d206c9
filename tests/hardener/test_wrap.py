"""Double encryption ("Spino's brother"): Wrap / Unwrap bound to the caller
and record id, Rewrap to the current key inside the hardener."""

from __future__ import annotations

import pytest

from hardener.client import HardenerClient
from hardener.errors import InvalidArgument, KeyVersionRetired, UnwrapFailed
from hardener.testing import TestHardener

BLOB = b"browser-encrypted master key \x00\x01\x02"


async def test_round_trip(network: HardenerClient) -> None:
    w = await network.wrap("user-7:master", BLOB)
    assert w.key_version == 1
    assert BLOB not in w.wrapped
    assert await network.unwrap("user-7:master", w.wrapped) == BLOB
    assert (await network.wrap("user-7:master", BLOB)).wrapped != w.wrapped  # fresh nonce
    assert await network.unwrap("e", (await network.wrap("e", b"")).wrapped) == b""


async def test_wrong_record_tampered_or_other_caller(
    network: HardenerClient, vault: HardenerClient
) -> None:
    w = (await network.wrap("rec-1", BLOB)).wrapped
    with pytest.raises(UnwrapFailed, match="record id"):
        await network.unwrap("rec-2", w)
    for i in (0, 8, 20, len(w) - 1):
        bad = bytearray(w)
        bad[i] ^= 0x01
        with pytest.raises((UnwrapFailed, InvalidArgument)):
            await network.unwrap("rec-1", bytes(bad))
    with pytest.raises(UnwrapFailed):
        await vault.unwrap("rec-1", w)
    with pytest.raises(InvalidArgument, match="too short"):
        await network.unwrap("rec-1", w[:20])
    with pytest.raises(InvalidArgument, match="record_id"):
        await network.wrap("", BLOB)
    with pytest.raises(InvalidArgument, match="larger"):
        await network.wrap("big", b"\x00" * (64 * 1024 + 1))
    assert await network.unwrap("rec-1", w) == BLOB  # nothing was damaged


async def test_rewrap_moves_a_record_to_the_current_version(
    hardener: TestHardener, network: HardenerClient
) -> None:
    w1 = (await network.wrap("rec", BLOB)).wrapped
    await network.wrap("other", BLOB)
    assert [(s.version, s.records) for s in hardener.status()] == [(1, 2)]
    assert hardener.rotate() == 2
    assert await network.unwrap("rec", w1) == BLOB  # the old version still opens
    w2 = await network.rewrap("rec", w1)
    assert w2.key_version == 2
    assert await network.unwrap("rec", w2.wrapped) == BLOB
    assert [(s.version, s.records) for s in hardener.status()] == [(1, 1), (2, 1)]
    hardener.retire(1, force=True)
    with pytest.raises(KeyVersionRetired):
        await network.unwrap("rec", w1)
    assert await network.unwrap("rec", w2.wrapped) == BLOB
