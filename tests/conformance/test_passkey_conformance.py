"""One suite, every token kind: what authnet requires of a PassKey backend.

Each test runs against each backend in backends.BACKENDS, with its simulator,
over a real network (gRPC over TLS, the websocket gateway, SQLite).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from authnet import errors
from authnet.protocol.kc import kc_fingerprint
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from tests.conformance.backends import BACKENDS, Backend, Made
from tests.helpers import encodings, haystacks, login_with
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.passkey import prove


@pytest.fixture(params=BACKENDS, ids=lambda b: b.name)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param  # type: ignore[no-any-return]


@pytest_asyncio.fixture
async def api(net: TestNetwork) -> AsyncIterator[PassKeyApi]:
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as a:
        yield a


@pytest.fixture
def made(backend: Backend, tmp_path: Path) -> AsyncIterator[Made]:
    m = backend.make(tmp_path)
    yield m
    for undo in m.cleanup:
        undo()


async def test_enrol_then_log_in_with_a_kc_only_the_token_knows(
    net: TestNetwork, sp: AsyncSPClient, api: PassKeyApi, made: Made
) -> None:
    token_id, new_account, _ = await flow.enrol(api, made.token, label="conformance")
    assert new_account
    run = await login_with(sp, api, made.token, token_id)
    assert run.kc is not None
    assert run.kc == made.token.derive_kc(sp.spid)
    assert kc_fingerprint(run.kc) == run.report.kc_fingerprint
    who = await sp.get_puid(run.ticket.ticket, finalize=True)
    assert who.puid
    # The network holds none of it, in any common encoding.
    for name, stack in haystacks(net).items():
        for form in encodings(run.kc):
            assert form not in stack, f"Kc found in {name}"


async def test_a_page_offering_xwing_gets_the_same_kc_sealed_with_xwing(
    sp: AsyncSPClient, api: PassKeyApi, made: Made
) -> None:
    """Every token kind seals with the best suite the page offers (docs/protocol.md §7.1):
    X-Wing, or the session would refuse the seal (suite_downgraded)."""
    token_id, _, _ = await flow.enrol(api, made.token, label="conformance")
    pq = await login_with(sp, api, made.token, token_id, post_quantum=True)
    assert pq.session.payload().pq_key_hash is not None
    assert pq.kc is not None
    assert pq.kc == made.token.derive_kc(sp.spid)
    assert kc_fingerprint(pq.kc) == pq.report.kc_fingerprint


async def test_kc_is_stable_per_sp_and_differs_across_sps(
    net: TestNetwork, sp: AsyncSPClient, api: PassKeyApi, made: Made
) -> None:
    token_id, _, _ = await flow.enrol(api, made.token, label="conformance")
    first = await login_with(sp, api, made.token, token_id)
    second = await login_with(sp, api, made.token, token_id)
    assert first.kc == second.kc
    other_creds = await net.add_sp("other", "Other SP")
    async with net.sp_client(other_creds) as other:
        there = await login_with(other, api, made.token, token_id)
    assert there.kc is not None
    assert there.kc != first.kc


async def test_wrong_pin_is_clear_and_counts_down(backend: Backend, made: Made) -> None:
    token = made.reopen()
    made.cleanup.append(token.close)
    assert token.locked
    with pytest.raises(errors.PinInvalid) as wrong:
        token.verify_pin(made.pin + "9")
    assert "PIN" in wrong.value.message
    if backend.reports_retries:
        left = wrong.value.detail["retries_left"]
        assert isinstance(left, int)
        with pytest.raises(errors.PinInvalid) as again:
            token.verify_pin(made.pin + "9")
        assert again.value.detail["retries_left"] == left - 1
    else:
        # The kind cannot know (PKCS#11 exposes flags, not counts): it says so.
        assert wrong.value.detail["retries_left"] is None
        assert "does not say how many tries are left" in wrong.value.message
    token.verify_pin(made.pin)
    assert not token.locked


async def test_locked_token_refuses_clearly(sp: AsyncSPClient, api: PassKeyApi, made: Made) -> None:
    token_id, _, _ = await flow.enrol(api, made.token, label="conformance")
    locked = made.reopen()
    made.cleanup.append(locked.close)
    assert locked.locked
    with pytest.raises(errors.PinRequired):
        prove(locked, b"anything")
    with pytest.raises(errors.PinRequired):
        locked.derive_kc(sp.spid)
    # The login flow asks for the PIN; with nobody to ask, it stops clearly
    # before anything reaches the network.
    with pytest.raises(errors.PinRequired):
        await login_with(sp, api, locked, token_id, ask_pin=None)


@pytest.mark.parametrize(
    "removable",
    [b for b in BACKENDS if b.name in {"fido2", "piv", "otp", "pkcs11"}],
    ids=lambda b: b.name,
)
async def test_removed_token_refuses_clearly(
    removable: Backend, sp: AsyncSPClient, api: PassKeyApi, tmp_path: Path
) -> None:
    m = removable.make(tmp_path)
    try:
        token_id, _, _ = await flow.enrol(api, m.token, label="removable")
        assert m.remove is not None
        m.remove()
        with pytest.raises(errors.TokenUnavailable):
            m.token.derive_kc(sp.spid)
        # A login attempt fails the same way (after BeginAuth; the ticket stays open).
        with pytest.raises(errors.TokenUnavailable):
            await login_with(sp, api, m.token, token_id)
    finally:
        for undo in m.cleanup:
            undo()


async def test_two_tokens_of_one_account_share_the_puid_not_the_key_id(
    backend: Backend, sp: AsyncSPClient, api: PassKeyApi, made: Made, tmp_path: Path
) -> None:
    first_id, _, _ = await flow.enrol(api, made.token, label="first")
    second = backend.make(tmp_path / "second")
    try:
        second_id, new_account, _ = await flow.enrol(
            api, second.token, label="second", existing=(made.token, first_id)
        )
        assert not new_account
        a = await sp.get_puid((await login_with(sp, api, made.token, first_id)).ticket.ticket)
        b = await sp.get_puid((await login_with(sp, api, second.token, second_id)).ticket.ticket)
    finally:
        for undo in second.cleanup:
            undo()
    assert a.puid == b.puid
    assert a.key_id != b.key_id
