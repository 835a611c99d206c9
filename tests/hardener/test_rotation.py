"""Rotation: a new version, old ones still unlock until every record re-keys
lazily (a proven success on the new version), status counts, retirement
refused while needed, and the running server noticing operator changes."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardener import admin
from hardener.client import HardenerClient
from hardener.errors import KeyVersionRetired, KeyVersionUnknown, RetireRefused
from hardener.testing import TestHardener
from tests.hardener.conftest import element, raw, sign_success


def counts(h: TestHardener) -> dict[int, tuple[str, int, int]]:
    return {s.version: (s.state, s.users, s.records) for s in h.status()}


async def test_rotate_rekey_retire(hardener: TestHardener, network: HardenerClient) -> None:
    users = {f"token:{i:02x}": Ed25519PrivateKey.generate() for i in range(3)}
    for user, key in users.items():
        await network.enrol(user, raw(key))
        ev = await network.evaluate(user, element(user.encode()))
        assert (
            await network.report_success(
                user, ev.attempt_id, sign_success(key, "network", user, ev)
            )
            == 1
        )
    assert counts(hardener) == {1: ("active", 3, 0)}
    pk1 = (await network.get_keys()).public_key(1)

    assert hardener.rotate() == 2
    keys = await network.get_keys()
    assert keys.current_version == 2
    assert keys.public_key(1) == pk1  # the pinned old key is unchanged
    assert keys.public_key(2) != pk1
    assert counts(hardener) == {1: ("old", 3, 0), 2: ("active", 0, 0)}
    with pytest.raises(RetireRefused, match="3 user record"):
        hardener.retire(1)

    # Lazy re-key: the client evaluates under the old version (to open) and the
    # current one (to re-seal), then reports success on the current one.
    for user, key in users.items():
        old = await network.evaluate(user, element(user.encode()), key_version=1)
        assert old.key_version == 1
        new = await network.evaluate(user, element(user.encode()))
        assert new.key_version == 2
        assert (
            await network.report_success(
                user, new.attempt_id, sign_success(key, "network", user, new)
            )
            == 2
        )
        if user.endswith("00"):
            assert counts(hardener)[1] == ("old", 2, 0)
            with pytest.raises(RetireRefused):
                hardener.retire(1)
    assert counts(hardener) == {1: ("old", 0, 0), 2: ("active", 3, 0)}
    with pytest.raises(RetireRefused, match="current"):
        hardener.retire(2)
    hardener.retire(1)
    assert counts(hardener)[1][0] == "retired"
    with pytest.raises(RetireRefused, match="already"):
        hardener.retire(1)
    with pytest.raises(KeyVersionRetired):
        await network.evaluate("token:00", element(b"x"), key_version=1)
    with pytest.raises(KeyVersionUnknown):
        await network.evaluate("token:00", element(b"x"), key_version=9)
    keys = await network.get_keys()
    assert [(k.version, k.state, len(k.public_key)) for k in keys.keys] == [
        (1, "retired", 0),
        (2, "active", 32),
    ]
    # The retired version's secrets are erased from the store.
    rows = {r.version: r for r in hardener.server.store.key_rows()}
    assert rows[1].sealed_oprf is None
    assert rows[1].sealed_wrap is None
    hardener.restart()
    assert (await network.get_keys()).current_version == 2


async def test_the_running_server_notices_operator_changes(
    hardener: TestHardener, network: HardenerClient
) -> None:
    # What `hardener rotate` and `hardener caller revoke` do from another process:
    # no explicit reload; the server polls the store.
    admin.rotate(hardener.root)
    for _ in range(50):
        if (await network.get_keys()).current_version == 2:
            break
        await asyncio.sleep(0.1)
    assert (await network.get_keys()).current_version == 2
    assert (await network.evaluate("u", element(b"x"))).key_version == 2
