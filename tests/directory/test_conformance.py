"""One suite for every Directory method, run on each database the directory
supports (ids "sqlite" and "postgres"): what the servers rely on must hold
on both, including under concurrent calls."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from authnet.directory import ServiceProvider, SpCertificate, TokenRecord
from authnet.directory.sql import TOUCH_GRANULARITY_MS, SqlDirectory
from authnet.errors import LastToken, MalformedInput, VersionConflict

T0 = 1_800_000_000_000  # a wall-clock time in ms


def an_sp(name: str = "shop", created_ms: int = T0, **kw: object) -> ServiceProvider:
    return ServiceProvider(
        spid=secrets.token_bytes(16),
        name=name,
        display_name=f"{name.title()} Inc.",
        origins=(f"https://{name}.example", f"https://www.{name}.example"),
        created_ms=created_ms,
        **kw,  # type: ignore[arg-type]
    )


def a_cert(sp: ServiceProvider, serial: int = 7) -> SpCertificate:
    return SpCertificate(
        fingerprint=secrets.token_bytes(32),
        spid=sp.spid,
        serial=serial,
        not_after_ms=T0 + 86_400_000,
    )


def a_token(user_id: bytes, created_ms: int = T0, **kw: object) -> TokenRecord:
    fields: dict[str, object] = {
        "token_id": secrets.token_bytes(16),
        "user_id": user_id,
        "kind": 1,
        "algorithm": 1,
        "public_key": secrets.token_bytes(65),
        "label": "phone",
        "created_ms": created_ms,
    }
    fields.update(kw)
    return TokenRecord(**fields)  # type: ignore[arg-type]


async def an_account(d: SqlDirectory, tokens: int = 1) -> tuple[bytes, list[TokenRecord]]:
    user = secrets.token_bytes(16)
    made = [a_token(user, created_ms=T0 + i) for i in range(tokens)]
    await d.create_account(user, made[0], T0)
    for t in made[1:]:
        await d.add_token(t)
    return user, made


# --- service providers ----------------------------------------------------------


async def test_an_sp_reads_back_by_id_and_by_name(directory: SqlDirectory) -> None:
    sp = an_sp()
    await directory.add_sp(sp)
    assert await directory.get_sp(sp.spid) == sp
    assert await directory.find_sp("shop") == sp
    assert await directory.get_sp(secrets.token_bytes(16)) is None
    assert await directory.find_sp("nobody") is None


async def test_sps_are_listed_in_order_of_creation(directory: SqlDirectory) -> None:
    later, earlier = an_sp("later", created_ms=T0 + 5), an_sp("earlier", created_ms=T0)
    await directory.add_sp(later)
    await directory.add_sp(earlier)
    assert await directory.list_sps() == [earlier, later]


async def test_an_sp_is_disabled_and_enabled_again(directory: SqlDirectory) -> None:
    sp = an_sp()
    await directory.add_sp(sp)
    await directory.set_sp_disabled(sp.spid, T0 + 1)
    got = await directory.get_sp(sp.spid)
    assert got is not None
    assert got.disabled_ms == T0 + 1
    await directory.set_sp_disabled(sp.spid, None)
    got = await directory.get_sp(sp.spid)
    assert got is not None
    assert got.disabled_ms is None


# --- SP certificates ------------------------------------------------------------


async def test_a_certificate_is_found_with_its_sp(directory: SqlDirectory) -> None:
    sp, other = an_sp("shop"), an_sp("other")
    await directory.add_sp(sp)
    await directory.add_sp(other)
    cert = a_cert(sp, serial=2**150 + 3)  # X.509 serials reach 20 bytes
    await directory.add_sp_certificate(cert)
    await directory.add_sp_certificate(a_cert(other))
    assert await directory.sp_for_certificate(cert.fingerprint) == (sp, cert)
    assert await directory.sp_for_certificate(secrets.token_bytes(32)) is None


async def test_certificates_are_listed_per_sp(directory: SqlDirectory) -> None:
    sp, other = an_sp("shop"), an_sp("other")
    await directory.add_sp(sp)
    await directory.add_sp(other)
    mine = [a_cert(sp, serial=1), a_cert(sp, serial=2)]
    for c in [*mine, a_cert(other)]:
        await directory.add_sp_certificate(c)
    listed = await directory.list_sp_certificates(sp.spid)
    assert sorted(listed, key=lambda c: c.serial) == mine
    assert await directory.list_sp_certificates(secrets.token_bytes(16)) == []


async def test_a_certificate_is_revoked_once(directory: SqlDirectory) -> None:
    sp = an_sp()
    await directory.add_sp(sp)
    cert = a_cert(sp)
    await directory.add_sp_certificate(cert)
    assert await directory.revoke_sp_certificate(cert.fingerprint, T0 + 10) is True
    assert await directory.revoke_sp_certificate(cert.fingerprint, T0 + 20) is False
    found = await directory.sp_for_certificate(cert.fingerprint)
    assert found is not None
    assert found[1].revoked_ms == T0 + 10
    assert await directory.revoke_sp_certificate(secrets.token_bytes(32), T0) is False


# --- accounts and tokens --------------------------------------------------------


async def test_a_token_reads_back_with_every_field(directory: SqlDirectory) -> None:
    user = secrets.token_bytes(16)
    token = a_token(
        user, kind=3, algorithm=2, label="security key", sign_count=41,
        credential_id=secrets.token_bytes(64),
    )  # fmt: skip
    await directory.create_account(user, token, T0)
    got = await directory.get_token(token.token_id)
    assert got == token
    assert got.sign_count == 41
    assert got.credential_id == token.credential_id
    assert await directory.get_token(secrets.token_bytes(16)) is None


async def test_tokens_are_listed_per_account_in_order_of_enrolment(
    directory: SqlDirectory,
) -> None:
    user, made = await an_account(directory, tokens=3)
    await an_account(directory, tokens=1)  # someone else's
    assert await directory.list_tokens(user) == made
    assert await directory.list_tokens(secrets.token_bytes(16)) == []


async def test_a_public_key_is_enrolled_once(directory: SqlDirectory) -> None:
    user, [first] = await an_account(directory)
    with pytest.raises(MalformedInput, match="already enrolled"):
        await directory.add_token(a_token(user, public_key=first.public_key))
    # Also as another account's first token; that account is not created.
    stranger = secrets.token_bytes(16)
    with pytest.raises(MalformedInput, match="already enrolled"):
        await directory.create_account(stranger, a_token(stranger, public_key=first.public_key), T0)
    assert await directory.list_tokens(stranger) == []
    again = a_token(stranger)
    await directory.create_account(stranger, again, T0)  # the account id is still free
    assert await directory.list_tokens(stranger) == [again]
    assert await directory.list_tokens(user) == [first]


async def test_a_token_is_found_by_its_credential_id(directory: SqlDirectory) -> None:
    user = secrets.token_bytes(16)
    key = a_token(user, algorithm=2, credential_id=secrets.token_bytes(32))
    await directory.create_account(user, a_token(user), T0)
    await directory.add_token(key)
    assert await directory.token_for_credential(key.credential_id or b"") == key
    assert await directory.token_for_credential(secrets.token_bytes(32)) is None


async def test_the_last_active_token_cannot_be_revoked(directory: SqlDirectory) -> None:
    _user, [a, b] = await an_account(directory, tokens=2)
    await directory.revoke_token(a.token_id, T0 + 5)
    revoked = await directory.get_token(a.token_id)
    assert revoked is not None
    assert revoked.revoked_ms == T0 + 5
    with pytest.raises(LastToken):
        await directory.revoke_token(b.token_id, T0 + 6)
    left = await directory.get_token(b.token_id)
    assert left is not None
    assert left.revoked_ms is None
    # Revoking a revoked or unknown token changes nothing.
    await directory.revoke_token(a.token_id, T0 + 7)
    again = await directory.get_token(a.token_id)
    assert again is not None
    assert again.revoked_ms == T0 + 5
    await directory.revoke_token(secrets.token_bytes(16), T0)


async def test_two_racing_revocations_leave_one_token_active(directory: SqlDirectory) -> None:
    for _ in range(5):
        user, [a, b] = await an_account(directory, tokens=2)
        results = await asyncio.gather(
            directory.revoke_token(a.token_id, T0 + 1),
            directory.revoke_token(b.token_id, T0 + 1),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["LastToken", "NoneType"]
        active = [t for t in await directory.list_tokens(user) if t.revoked_ms is None]
        assert len(active) == 1


async def test_touch_writes_the_last_used_time_at_most_once_a_minute(
    directory: SqlDirectory, directory_url: str
) -> None:
    _, [t] = await an_account(directory)

    async def last_used() -> int | None:
        got = await directory.get_token(t.token_id)
        assert got is not None
        return got.last_used_ms

    await directory.touch_token(t.token_id, T0)
    assert await last_used() == T0
    await directory.touch_token(t.token_id, T0 + TOUCH_GRANULARITY_MS - 1)
    assert await last_used() == T0
    # Another node (its own directory, its own memory of what it wrote) does
    # not write within the minute either: the database checks it too.
    other = SqlDirectory.open(directory_url)
    try:
        await other.touch_token(t.token_id, T0 + TOUCH_GRANULARITY_MS // 2)
        assert await last_used() == T0
        await other.touch_token(t.token_id, T0 + 2 * TOUCH_GRANULARITY_MS)
        assert await last_used() == T0 + 2 * TOUCH_GRANULARITY_MS
    finally:
        await other.close()
    # This node last wrote at T0, but the row says T0 + 2 minutes.
    await directory.touch_token(t.token_id, T0 + 5 * TOUCH_GRANULARITY_MS // 2)
    assert await last_used() == T0 + 2 * TOUCH_GRANULARITY_MS
    await directory.touch_token(t.token_id, T0 + 4 * TOUCH_GRANULARITY_MS)
    assert await last_used() == T0 + 4 * TOUCH_GRANULARITY_MS
    await directory.touch_token(secrets.token_bytes(16), T0)  # unknown: no error


async def test_the_sign_count_only_moves_forward(directory: SqlDirectory) -> None:
    _user, [t] = await an_account(directory)

    async def count() -> int:
        got = await directory.get_token(t.token_id)
        assert got is not None
        return got.sign_count

    assert await directory.advance_sign_count(t.token_id, 0) is True  # 0/0: keeps no counter
    assert await count() == 0
    assert await directory.advance_sign_count(t.token_id, 5) is True
    assert await count() == 5
    assert await directory.advance_sign_count(t.token_id, 5) is False  # did not advance
    assert await directory.advance_sign_count(t.token_id, 3) is False  # went back: a clone?
    assert await directory.advance_sign_count(t.token_id, 0) is False  # 0 after counting
    assert await count() == 5
    assert await directory.advance_sign_count(t.token_id, 6) is True
    assert await count() == 6
    assert await directory.advance_sign_count(secrets.token_bytes(16), 9) is False


# --- data containers ------------------------------------------------------------


async def a_container_owner(d: SqlDirectory) -> tuple[bytes, bytes]:
    sp = an_sp()
    await d.add_sp(sp)
    user, _ = await an_account(d)
    return sp.spid, user


async def test_a_missing_container_reads_as_version_0(directory: SqlDirectory) -> None:
    spid, user = await a_container_owner(directory)
    got = await directory.read_data(spid, user, "settings")
    assert (got.data, got.version) == (b"", 0)


async def test_a_container_is_written_by_compare_and_set(directory: SqlDirectory) -> None:
    spid, user = await a_container_owner(directory)
    assert await directory.write_data(spid, user, "c", b"one", 0, T0) == 1
    assert await directory.write_data(spid, user, "c", b"two", 1, T0) == 2
    got = await directory.read_data(spid, user, "c")
    assert (got.data, got.version) == (b"two", 2)
    for stale in (1, 0, 5):
        with pytest.raises(VersionConflict) as e:
            await directory.write_data(spid, user, "c", b"lost", stale, T0)
        assert e.value.detail == {"current_version": 2}
        assert "read it again" in e.value.message
    got = await directory.read_data(spid, user, "c")
    assert (got.data, got.version) == (b"two", 2)
    # Containers are per name (and per SP and user).
    other = await directory.read_data(spid, user, "d")
    assert other.version == 0


async def test_of_ten_racing_first_writes_exactly_one_wins(directory: SqlDirectory) -> None:
    spid, user = await a_container_owner(directory)
    results = await asyncio.gather(
        *(directory.write_data(spid, user, "c", bytes([i]) * 8, 0, T0) for i in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if r == 1]
    losers = [r for r in results if isinstance(r, VersionConflict)]
    assert len(winners) == 1, results
    assert len(losers) == 9, results
    assert all(e.detail == {"current_version": 1} for e in losers)
    got = await directory.read_data(spid, user, "c")
    assert got.version == 1
    assert got.data == bytes([results.index(1)]) * 8  # the winner's data, whole


async def test_ping_says_the_database_answers(directory: SqlDirectory) -> None:
    assert await directory.ping() is True
