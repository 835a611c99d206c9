"""Per-user budgets: every evaluation counts, only a proven success resets,
the 11th evaluation after 10 failures is refused, and it stays refused
across a restart. Rate limits per caller answer RESOURCE_EXHAUSTED with a
retry-after."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hardener.client import HardenerClient
from hardener.datadir import Policy
from hardener.errors import (
    AttemptUnknown,
    AttemptUsed,
    InvalidArgument,
    NotEnrolled,
    RateLimited,
    SignatureInvalid,
    UserBackoff,
    UserLocked,
)
from hardener.testing import TestHardener
from tests.hardener.conftest import element, raw, sign_success

USER = "token:00112233"


async def test_eleventh_evaluation_is_refused_and_stays_refused_after_restart(
    hardener: TestHardener, network: HardenerClient
) -> None:
    lefts = [(await network.evaluate(USER, element(b"%d" % i))).attempts_left for i in range(10)]
    assert lefts == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    with pytest.raises(UserLocked) as locked:
        await network.evaluate(USER, element(b"eleventh"))
    assert "hardener unlock" in locked.value.hint
    # The keyed hash shares the budget.
    with pytest.raises(UserLocked):
        await network.hash(USER, b"\x01" * 32)
    hardener.restart()
    with pytest.raises(UserLocked):
        await network.evaluate(USER, element(b"after restart"))
    # Other users, and the same user id of another caller, have their own budgets.
    assert (await network.evaluate("token:other", element(b"x"))).attempts_left == 9
    async with hardener.client("vault") as vault:
        assert (await vault.evaluate(USER, element(b"x"))).attempts_left == 9
    outcomes = [
        e["outcome"]
        for e in hardener.audit_entries()
        if e.get("user_id") == USER and e["caller"] == "network"
    ]
    assert outcomes.count("ok") == 10
    assert outcomes.count("user_locked") == 3


async def test_replayed_evaluate_counts_as_an_attempt(network: HardenerClient) -> None:
    blinded = element(b"same")
    first = await network.evaluate(USER, blinded)
    again = await network.evaluate(USER, blinded)
    assert (first.attempts_left, again.attempts_left) == (9, 8)
    assert first.attempt_id != again.attempt_id


async def test_only_a_proven_success_resets(network: HardenerClient) -> None:
    key = Ed25519PrivateKey.generate()
    assert await network.enrol(USER, raw(key)) is False
    for i in range(6):
        ev = await network.evaluate(USER, element(b"%d" % i))
    assert ev.attempts_left == 4
    # A claimed success: a signature by another key, then garbage. Nothing changes.
    with pytest.raises(SignatureInvalid):
        await network.report_success(
            USER, ev.attempt_id, sign_success(Ed25519PrivateKey.generate(), "network", USER, ev)
        )
    with pytest.raises(SignatureInvalid):
        await network.report_success(USER, ev.attempt_id, b"\x00" * 64)
    # A signature over another user's message does not count either.
    with pytest.raises(SignatureInvalid):
        await network.report_success(USER, ev.attempt_id, sign_success(key, "network", "x", ev))
    nxt = await network.evaluate(USER, element(b"next"))
    assert nxt.attempts_left == 3  # the failed claims changed nothing
    # The proven success resets the count; the same report again is a replay.
    good = sign_success(key, "network", USER, nxt)
    assert await network.report_success(USER, nxt.attempt_id, good) == nxt.key_version
    assert (await network.evaluate(USER, element(b"fresh"))).attempts_left == 9
    with pytest.raises(AttemptUsed):
        await network.report_success(USER, nxt.attempt_id, good)
    # An earlier, unused attempt still proves a success (once), within its lifetime.
    await network.report_success(USER, ev.attempt_id, sign_success(key, "network", USER, ev))


async def test_report_success_refusals(hardener: TestHardener, network: HardenerClient) -> None:
    ev = await network.evaluate(USER, element(b"a"))
    key = Ed25519PrivateKey.generate()
    with pytest.raises(NotEnrolled):
        await network.report_success(USER, ev.attempt_id, sign_success(key, "network", USER, ev))
    await network.enrol(USER, raw(key))
    with pytest.raises(AttemptUnknown):
        await network.report_success(USER, bytes(36), sign_success(key, "network", USER, ev))
    forged = ev.attempt_id[:-1] + bytes([ev.attempt_id[-1] ^ 1])
    with pytest.raises(AttemptUnknown):
        await network.report_success(USER, forged, sign_success(key, "network", USER, ev))
    with pytest.raises(InvalidArgument, match="attempt_id"):
        await network.report_success(USER, b"\x00" * 16, sign_success(key, "network", USER, ev))
    # The attempt of another user of this caller is not this user's.
    other = await network.evaluate("token:other", element(b"b"))
    with pytest.raises(AttemptUnknown):
        await network.report_success(USER, other.attempt_id, sign_success(key, "network", USER, ev))
    # Another caller cannot report this caller's attempt.
    async with hardener.client("vault") as vault:
        await vault.enrol(USER, raw(key))
        with pytest.raises(AttemptUnknown):
            await vault.report_success(USER, ev.attempt_id, sign_success(key, "vault", USER, ev))


async def test_replacing_a_success_key_needs_the_old_one(network: HardenerClient) -> None:
    from hardener.errors import AlreadyEnrolled
    from hardener.transcripts import enrol_message

    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    await network.enrol(USER, raw(old))
    assert await network.enrol(USER, raw(old)) is False  # the same key again: idempotent
    with pytest.raises(AlreadyEnrolled):
        await network.enrol(USER, raw(new))
    ev = await network.evaluate(USER, element(b"a"))
    forged = new.sign(enrol_message("network", USER, ev.attempt_id, ev.nonce, raw(new)))
    with pytest.raises(SignatureInvalid):
        await network.enrol(USER, raw(new), attempt_id=ev.attempt_id, signature=forged)
    sig = old.sign(enrol_message("network", USER, ev.attempt_id, ev.nonce, raw(new)))
    assert await network.enrol(USER, raw(new), attempt_id=ev.attempt_id, signature=sig) is True
    with pytest.raises(AttemptUsed):
        await network.enrol(USER, raw(old), attempt_id=ev.attempt_id, signature=sig)
    ev2 = await network.evaluate(USER, element(b"b"))
    assert ev2.attempts_left == 9  # the replacement was a proven success
    await network.report_success(USER, ev2.attempt_id, sign_success(new, "network", USER, ev2))


async def test_operator_unlock_is_the_recovery_step(
    hardener: TestHardener, network: HardenerClient
) -> None:
    for i in range(10):
        await network.evaluate(USER, element(b"%d" % i))
    with pytest.raises(UserLocked):
        await network.evaluate(USER, element(b"x"))
    hardener.unlock("network", USER)
    assert (await network.evaluate(USER, element(b"x"))).attempts_left == 9
    assert any(
        e["operation"] == "unlock" and e.get("actor") == "operator" and e.get("user_id") == USER
        for e in hardener.audit_entries()
    )


async def test_backoff_between_failures(tmp_path: Path) -> None:
    policy = Policy(backoff_after=2, backoff_base_ms=60_000)
    with TestHardener(tmp_path, policy=policy) as h:
        async with h.client("network") as c:
            await c.evaluate(USER, element(b"1"))
            await c.evaluate(USER, element(b"2"))
            with pytest.raises(UserBackoff) as wait:
                await c.evaluate(USER, element(b"3"))
            assert 59_000 < wait.value.retry_after_ms <= 60_000
            assert wait.value.attempts_left == 8
            # The refused call was not an evaluation: unlock resets the clock too.
            h.unlock("network", USER)
            assert (await c.evaluate(USER, element(b"3"))).attempts_left == 9


async def test_caller_rate_limit(tmp_path: Path) -> None:
    policy = Policy(backoff_base_ms=0, caller_rate=1.0, caller_burst=3.0)
    with TestHardener(tmp_path, policy=policy) as h:
        async with h.client("network") as c, h.client("vault") as v:
            for i in range(3):
                await c.evaluate(f"u{i}", element(b"x"))
            with pytest.raises(RateLimited) as limited:
                await c.evaluate("u9", element(b"x"))
            assert 0 < limited.value.retry_after_ms <= 1000
            # Another caller has its own bucket.
            await v.evaluate("u9", element(b"x"))
            # The refused call did not count against the user.
            assert (await v.evaluate("u9", element(b"y"))).attempts_left == 8


async def test_global_rate_limit(tmp_path: Path) -> None:
    policy = Policy(backoff_base_ms=0, global_rate=1.0, global_burst=2.0)
    with TestHardener(tmp_path, policy=policy) as h:
        async with h.client("network") as c, h.client("vault") as v:
            await c.evaluate("u", element(b"x"))
            await v.evaluate("u", element(b"x"))
            with pytest.raises(RateLimited, match="global"):
                await v.hash("u", b"\x00" * 32)


async def test_an_old_attempt_has_expired(tmp_path: Path) -> None:
    import asyncio

    from hardener.errors import AttemptExpired

    with TestHardener(tmp_path, policy=Policy(backoff_base_ms=0, attempt_ttl_s=1)) as h:
        async with h.client("network") as c:
            key = Ed25519PrivateKey.generate()
            await c.enrol(USER, raw(key))
            ev = await c.evaluate(USER, element(b"a"))
            await asyncio.sleep(1.2)
            with pytest.raises(AttemptExpired):
                await c.report_success(USER, ev.attempt_id, sign_success(key, "network", USER, ev))
            assert (await c.evaluate(USER, element(b"b"))).attempts_left == 8


async def test_concurrent_evaluations_cannot_overrun_the_budget(network: HardenerClient) -> None:
    import asyncio

    async def one(i: int) -> str:
        try:
            await network.evaluate(USER, element(b"%d" % i))
        except UserLocked:
            return "locked"
        return "ok"

    outcomes = await asyncio.gather(*(one(i) for i in range(32)))
    assert outcomes.count("ok") == 10
    assert outcomes.count("locked") == 22


async def test_a_batch_cannot_overrun_the_budget(network: HardenerClient) -> None:
    items = [(USER, element(b"%d" % i), 0) for i in range(15)]
    results = await network.evaluate_batch(items)
    assert [r.attempts_left for r in results[:10] if not isinstance(r, Exception)] == list(
        range(9, -1, -1)
    )
    assert all(isinstance(r, UserLocked) for r in results[10:])
    with pytest.raises(UserLocked):
        await network.hash(USER, b"\x00" * 32)


@pytest.mark.parametrize(
    "key",
    [
        bytes([1]) + bytes(31),  # the identity: (R = identity, s = 0) verifies any message
        bytes(32),  # a point of order 4
        bytes.fromhex(
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"
        ),  # order 8
        b"\xff" * 32,  # not canonical
    ],
    ids=["identity", "order4", "order8", "noncanonical"],
)
async def test_weak_success_keys_are_refused(network: HardenerClient, key: bytes) -> None:
    with pytest.raises(InvalidArgument, match="main subgroup"):
        await network.enrol(USER, key)
    await network.enrol(USER, raw(Ed25519PrivateKey.generate()))  # nothing was enrolled


async def test_a_refusal_leaves_the_database_free_for_the_operator(
    hardener: TestHardener, network: HardenerClient
) -> None:
    import sqlite3

    from hardener import admin

    for i in range(10):
        await network.evaluate(USER, element(b"%d" % i))

    def database_is_free() -> bool:
        # Another process's write (what `hardener unlock` does) must not wait
        # for the server: a refusal that left its transaction open holds the lock.
        conn = sqlite3.connect(hardener.data.db, timeout=0.3)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()

    with pytest.raises(UserLocked):
        await network.evaluate(USER, element(b"x"))
    assert database_is_free()
    with pytest.raises(UserLocked):
        await network.hash(USER, b"\x00" * 32)
    assert database_is_free()
    (refused,) = await network.evaluate_batch([(USER, element(b"y"), 0)])
    assert isinstance(refused, UserLocked)
    assert database_is_free()
    admin.unlock(hardener.root, "network", USER)
