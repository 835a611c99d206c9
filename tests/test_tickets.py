"""The ticket state machine (authnet.tickets): every transition from every
state. The state stores that keep tickets have their own suite, tests/state/."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authnet import tickets as tk
from authnet.errors import (
    AuthnetError,
    BrowserKeyMismatch,
    BrowserNotWaiting,
    ChallengeInvalid,
    FactorNotProven,
    MalformedInput,
    TicketConsumed,
    TicketExpired,
    TicketNotAuthenticated,
    TicketRejected,
    TicketStateInvalid,
)
from authnet.protocol.factors import Factor
from authnet.tickets import BrowserHints, Ticket, TicketState

T0 = 1_700_000_000_000
TTL_S = 120
EXPIRES = T0 + TTL_S * 1000
NOW = T0 + 1_000

TH = hashlib.sha256(b"ticket").digest()
NEW_TH = hashlib.sha256(b"renewed ticket").digest()
SPID = bytes(range(16))
BKH = hashlib.sha256(b"browser key").digest()
OTHER_BKH = hashlib.sha256(b"other browser key").digest()
WSH = hashlib.sha256(b"wait secret").digest()
OTHER_WSH = hashlib.sha256(b"other wait secret").digest()
HINTS = BrowserHints(ip="192.0.2.1", user_agent="UA", origin="https://sp.example")
TOKEN = b"T" * 16
OTHER_TOKEN = b"O" * 16
NONCE = b"N" * 32
NONCE2 = b"M" * 32
USER = b"U" * 16
PC = frozenset({Factor.PIN, Factor.CLIENT_KEY})
C = frozenset({Factor.CLIENT_KEY})
P = frozenset({Factor.PIN})


# --- building tickets in each state -------------------------------------------


def issued(requested: frozenset[Factor] = C) -> Ticket:
    return tk.issue(th=TH, spid=SPID, requested=requested, now_ms=T0, ttl_s=TTL_S)


def waiting(requested: frozenset[Factor] = C) -> Ticket:
    t = tk.attach_browser(
        issued(requested), browser_key_hash=BKH, wait_secret_hash=WSH, hints=HINTS, now_ms=NOW
    )
    assert t is not None
    return t


def scanned(requested: frozenset[Factor] = C) -> Ticket:
    return tk.scan(
        waiting(requested), token_id=TOKEN, browser_key_hash=BKH, nonce=NONCE, now_ms=NOW
    )


def authenticated(requested: frozenset[Factor] = C, proven: frozenset[Factor] = PC) -> Ticket:
    return tk.authenticate(
        scanned(requested), token_id=TOKEN, nonce=NONCE, user_id=USER, proven=proven, now_ms=NOW
    )


def consumed() -> Ticket:
    return tk.consume(authenticated(), NOW)


def rejected() -> Ticket:
    return tk.decline(scanned(), token_id=TOKEN, nonce=NONCE, now_ms=NOW)


# name -> (ticket, the time at which the operation runs)
STATES: dict[str, Callable[[], tuple[Ticket, int]]] = {
    "issued": lambda: (issued(), NOW),
    "waiting": lambda: (waiting(), NOW),
    "scanned": lambda: (scanned(), NOW),
    "authenticated": lambda: (authenticated(), NOW),
    "consumed": lambda: (consumed(), NOW),
    "rejected": lambda: (rejected(), NOW),
    "expired-issued": lambda: (issued(), EXPIRES),
    "expired-waiting": lambda: (waiting(), EXPIRES),
    "expired-scanned": lambda: (scanned(), EXPIRES + 1),
    "expired-authenticated": lambda: (authenticated(), EXPIRES + 60_000),
    # Final states stay what they are long after the TTL.
    "consumed-late": lambda: (consumed(), EXPIRES + 60_000),
    "rejected-late": lambda: (rejected(), EXPIRES + 60_000),
}

# --- the operations -----------------------------------------------------------

Result = Ticket | tuple[Ticket, Ticket] | None


def op_attach_same(t: Ticket, now: int) -> Result:
    return tk.attach_browser(t, browser_key_hash=BKH, wait_secret_hash=WSH, hints=HINTS, now_ms=now)


def op_attach_other(t: Ticket, now: int) -> Result:
    return tk.attach_browser(
        t, browser_key_hash=OTHER_BKH, wait_secret_hash=OTHER_WSH, hints=HINTS, now_ms=now
    )


def op_scan_same(t: Ticket, now: int) -> Result:
    return tk.scan(t, token_id=TOKEN, browser_key_hash=BKH, nonce=NONCE2, now_ms=now)


def op_scan_other(t: Ticket, now: int) -> Result:
    return tk.scan(t, token_id=OTHER_TOKEN, browser_key_hash=BKH, nonce=NONCE2, now_ms=now)


def op_authenticate(t: Ticket, now: int) -> Result:
    return tk.authenticate(t, token_id=TOKEN, nonce=NONCE, user_id=USER, proven=PC, now_ms=now)


def op_decline(t: Ticket, now: int) -> Result:
    return tk.decline(t, token_id=TOKEN, nonce=NONCE, now_ms=now)


def op_consume(t: Ticket, now: int) -> Result:
    return tk.consume(t, now)


def op_renew(t: Ticket, now: int) -> Result:
    return tk.renew(t, new_th=NEW_TH, requested=C, ttl_s=60, now_ms=now)


OPS: dict[str, Callable[[Ticket, int], Result]] = {
    "attach_same": op_attach_same,
    "attach_other": op_attach_other,
    "scan_same": op_scan_same,
    "scan_other": op_scan_other,
    "authenticate": op_authenticate,
    "decline": op_decline,
    "consume": op_consume,
    "renew": op_renew,
}

# Expected outcome: a TicketState (success, new record in that state), None
# (success, nothing changes), "renewed" (consumed + new authenticated) or an
# error class.
Expected = TicketState | None | str | type[AuthnetError]

EXPECTED: dict[tuple[str, str], Expected] = {}
# attach_browser: a first hello binds; afterwards only the same browser may
# reconnect, while the ticket is live. A finished ticket reports how it
# finished to anyone, whichever browser asks.
EXPECTED["issued", "attach_same"] = TicketState.ISSUED
EXPECTED["issued", "attach_other"] = TicketState.ISSUED
for s in ("waiting", "scanned", "authenticated"):
    EXPECTED[s, "attach_same"] = None
    EXPECTED[s, "attach_other"] = BrowserKeyMismatch

_FINAL: dict[str, type[AuthnetError]] = {
    "consumed": TicketConsumed,
    "rejected": TicketRejected,
    "consumed-late": TicketConsumed,
    "rejected-late": TicketRejected,
    "expired-issued": TicketExpired,
    "expired-waiting": TicketExpired,
    "expired-scanned": TicketExpired,
    "expired-authenticated": TicketExpired,
}
for s, err in _FINAL.items():
    for o in OPS:
        EXPECTED[s, o] = err

EXPECTED.update(
    {
        ("issued", "scan_same"): BrowserNotWaiting,
        ("issued", "scan_other"): BrowserNotWaiting,
        ("waiting", "scan_same"): TicketState.SCANNED,
        ("waiting", "scan_other"): TicketState.SCANNED,
        ("scanned", "scan_same"): TicketState.SCANNED,
        ("scanned", "scan_other"): TicketStateInvalid,
        ("authenticated", "scan_same"): TicketStateInvalid,
        ("authenticated", "scan_other"): TicketStateInvalid,
        ("issued", "authenticate"): TicketStateInvalid,
        ("waiting", "authenticate"): TicketStateInvalid,
        ("scanned", "authenticate"): TicketState.AUTHENTICATED,
        ("authenticated", "authenticate"): TicketStateInvalid,
        ("issued", "decline"): TicketStateInvalid,
        ("waiting", "decline"): TicketStateInvalid,
        ("scanned", "decline"): TicketState.REJECTED,
        ("authenticated", "decline"): TicketStateInvalid,
        ("issued", "consume"): TicketNotAuthenticated,
        ("waiting", "consume"): TicketNotAuthenticated,
        ("scanned", "consume"): TicketNotAuthenticated,
        ("authenticated", "consume"): TicketState.CONSUMED,
        ("issued", "renew"): TicketNotAuthenticated,
        ("waiting", "renew"): TicketNotAuthenticated,
        ("scanned", "renew"): TicketNotAuthenticated,
        ("authenticated", "renew"): "renewed",
    }
)


def test_the_table_covers_every_state_and_operation() -> None:
    assert set(EXPECTED) == {(s, o) for s in STATES for o in OPS}
    # Every state the enum names is reached by some fixture.
    reached = {tk.state_at(*STATES[s]()) for s in STATES}
    assert reached == set(TicketState)


@pytest.mark.parametrize(("state", "op"), sorted(EXPECTED))
def test_transition(state: str, op: str) -> None:
    t, now = STATES[state]()
    expected = EXPECTED[state, op]
    if isinstance(expected, type) and issubclass(expected, AuthnetError):
        with pytest.raises(AuthnetError) as info:
            OPS[op](t, now)
        # Exactly the documented class, not a sibling or a parent.
        assert type(info.value) is expected
        return
    out = OPS[op](t, now)
    if expected is None:
        assert out is None
    elif expected == "renewed":
        assert isinstance(out, tuple)
        old, new = out
        assert old.state is TicketState.CONSUMED
        assert old.version == t.version + 1
        assert new.state is TicketState.AUTHENTICATED
    else:
        assert isinstance(out, Ticket)
        assert out.state is expected
        assert out.version == t.version + 1
        assert out.th == t.th
        assert out.spid == t.spid
        assert out.requested == t.requested
        assert out.created_ms == t.created_ms
        assert out.expires_ms == t.expires_ms


# --- issue, check_ttl, state_at ------------------------------------------------


def test_issue_sets_documented_fields() -> None:
    t = tk.issue(th=TH, spid=SPID, requested=PC, now_ms=T0, ttl_s=30)
    assert t.state is TicketState.ISSUED
    assert t.version == 0
    assert (t.th, t.spid, t.requested) == (TH, SPID, PC)
    assert t.created_ms == T0
    assert t.expires_ms == T0 + 30_000
    assert t.browser_key_hash is None
    assert t.nonce is None
    assert t.token_id is None
    assert t.user_id is None
    assert t.proven == frozenset()


def test_issue_ttl_zero_means_default() -> None:
    t = tk.issue(th=TH, spid=SPID, requested=C, now_ms=T0, ttl_s=0)
    assert t.expires_ms - t.created_ms == tk.DEFAULT_TTL_S * 1000


@pytest.mark.parametrize(
    ("ttl", "out"),
    [
        (0, tk.DEFAULT_TTL_S),
        (tk.MIN_TTL_S, tk.MIN_TTL_S),
        (tk.MIN_TTL_S + 1, tk.MIN_TTL_S + 1),
        (tk.MAX_TTL_S - 1, tk.MAX_TTL_S - 1),
        (tk.MAX_TTL_S, tk.MAX_TTL_S),
    ],
)
def test_check_ttl_accepts(ttl: int, out: int) -> None:
    assert tk.check_ttl(ttl) == out


@pytest.mark.parametrize("ttl", [-1, -tk.MAX_TTL_S, 1, tk.MIN_TTL_S - 1, tk.MAX_TTL_S + 1, 10**9])
def test_check_ttl_rejects(ttl: int) -> None:
    with pytest.raises(MalformedInput, match="ttl_seconds"):
        tk.check_ttl(ttl)
    with pytest.raises(MalformedInput):
        tk.issue(th=TH, spid=SPID, requested=C, now_ms=T0, ttl_s=ttl)


@pytest.mark.parametrize("build", [issued, waiting, scanned, authenticated])
def test_live_state_expires_exactly_at_expires_ms(build: Callable[[], Ticket]) -> None:
    t = build()
    assert t.state in tk.LIVE
    assert tk.state_at(t, t.expires_ms - 1) is t.state
    assert tk.state_at(t, t.expires_ms) is TicketState.EXPIRED
    assert tk.state_at(t, t.expires_ms + 10**9) is TicketState.EXPIRED
    # Expiry is derived, never stored.
    assert t.state is not TicketState.EXPIRED


@pytest.mark.parametrize("build", [consumed, rejected])
def test_final_states_never_turn_into_expired(build: Callable[[], Ticket]) -> None:
    t = build()
    assert tk.state_at(t, t.expires_ms + 10**9) is t.state


@given(now=st.integers(min_value=T0 - 10**6, max_value=EXPIRES + 10**6))
@settings(max_examples=50)
def test_state_at_is_a_function_of_time(now: int) -> None:
    t = scanned()
    assert tk.state_at(t, now) is (TicketState.EXPIRED if now >= EXPIRES else TicketState.SCANNED)


# --- attach_browser -----------------------------------------------------------


def test_first_hello_binds_key_secret_and_hints() -> None:
    t = issued()
    out = tk.attach_browser(t, browser_key_hash=BKH, wait_secret_hash=WSH, hints=HINTS, now_ms=NOW)
    assert out is not None
    assert out.version == t.version + 1
    assert out.state is TicketState.ISSUED
    assert (out.browser_key_hash, out.wait_secret_hash, out.hints) == (BKH, WSH, HINTS)


def test_reconnect_with_same_key_and_secret_changes_nothing() -> None:
    t = waiting()
    other_hints = BrowserHints(ip="198.51.100.7", user_agent="other", origin="https://x")
    assert (
        tk.attach_browser(
            t, browser_key_hash=BKH, wait_secret_hash=WSH, hints=other_hints, now_ms=NOW
        )
        is None
    )


@pytest.mark.parametrize(
    ("bkh", "wsh"), [(OTHER_BKH, WSH), (BKH, OTHER_WSH), (OTHER_BKH, OTHER_WSH)]
)
def test_reconnect_with_different_key_or_secret_is_refused(bkh: bytes, wsh: bytes) -> None:
    with pytest.raises(BrowserKeyMismatch):
        tk.attach_browser(
            waiting(), browser_key_hash=bkh, wait_secret_hash=wsh, hints=HINTS, now_ms=NOW
        )


@pytest.mark.parametrize(
    ("build", "at", "error"),
    [
        (consumed, NOW, TicketConsumed),
        (rejected, NOW, TicketRejected),
        (waiting, EXPIRES, TicketExpired),
        (authenticated, EXPIRES, TicketExpired),
    ],
)
def test_reconnect_to_a_finished_ticket_reports_the_outcome(
    build: Callable[[], Ticket], at: int, error: type[AuthnetError]
) -> None:
    # The waiting browser itself, and any other, hear how the ticket ended.
    for attach in (op_attach_same, op_attach_other):
        with pytest.raises(error):
            attach(build(), at)


def test_browser_cannot_attach_to_a_renewed_ticket() -> None:
    # A renewed ticket is AUTHENTICATED without any browser bound.
    _, new = tk.renew(authenticated(), new_th=NEW_TH, requested=C, ttl_s=60, now_ms=NOW)
    assert new.browser_key_hash is None
    with pytest.raises(TicketStateInvalid):
        op_attach_same(new, NOW)


# --- scan ---------------------------------------------------------------------


def test_scan_records_token_and_nonce() -> None:
    t = waiting()
    out = tk.scan(t, token_id=TOKEN, browser_key_hash=BKH, nonce=NONCE, now_ms=NOW)
    assert out.state is TicketState.SCANNED
    assert out.version == t.version + 1
    assert (out.token_id, out.nonce) == (TOKEN, NONCE)
    assert out.browser_key_hash == BKH
    assert out.hints == HINTS


def test_scan_with_another_browser_key_is_refused() -> None:
    with pytest.raises(BrowserKeyMismatch):
        tk.scan(waiting(), token_id=TOKEN, browser_key_hash=OTHER_BKH, nonce=NONCE, now_ms=NOW)
    with pytest.raises(BrowserKeyMismatch):
        tk.scan(scanned(), token_id=TOKEN, browser_key_hash=OTHER_BKH, nonce=NONCE2, now_ms=NOW)


def test_scan_by_a_second_token_is_refused() -> None:
    with pytest.raises(TicketStateInvalid):
        tk.scan(scanned(), token_id=OTHER_TOKEN, browser_key_hash=BKH, nonce=NONCE2, now_ms=NOW)


def test_rescan_by_the_same_token_replaces_the_nonce() -> None:
    first = scanned()
    again = tk.scan(first, token_id=TOKEN, browser_key_hash=BKH, nonce=NONCE2, now_ms=NOW)
    assert again.nonce == NONCE2
    assert again.version == first.version + 1
    # The old nonce is dead, the new one works.
    with pytest.raises(ChallengeInvalid):
        tk.authenticate(again, token_id=TOKEN, nonce=NONCE, user_id=USER, proven=PC, now_ms=NOW)
    done = tk.authenticate(again, token_id=TOKEN, nonce=NONCE2, user_id=USER, proven=PC, now_ms=NOW)
    assert done.state is TicketState.AUTHENTICATED


# --- authenticate / decline ---------------------------------------------------


def test_authenticate_sets_user_and_proven_and_clears_nonce() -> None:
    t = scanned(requested=P)
    out = tk.authenticate(t, token_id=TOKEN, nonce=NONCE, user_id=USER, proven=PC, now_ms=NOW)
    assert out.state is TicketState.AUTHENTICATED
    assert out.version == t.version + 1
    assert out.user_id == USER
    assert out.proven == PC
    assert out.nonce is None
    assert out.token_id == TOKEN
    assert out.requested == P


@pytest.mark.parametrize(
    ("token", "nonce"), [(TOKEN, NONCE2), (OTHER_TOKEN, NONCE), (OTHER_TOKEN, NONCE2)]
)
def test_authenticate_and_decline_need_this_scans_token_and_nonce(
    token: bytes, nonce: bytes
) -> None:
    with pytest.raises(ChallengeInvalid):
        tk.authenticate(scanned(), token_id=token, nonce=nonce, user_id=USER, proven=PC, now_ms=NOW)
    with pytest.raises(ChallengeInvalid):
        tk.decline(scanned(), token_id=token, nonce=nonce, now_ms=NOW)
    with pytest.raises(ChallengeInvalid):
        tk.check_scanned_by(scanned(), token_id=token, nonce=nonce, now_ms=NOW)


def test_check_scanned_by_accepts_the_scanning_token() -> None:
    tk.check_scanned_by(scanned(), token_id=TOKEN, nonce=NONCE, now_ms=NOW)
    with pytest.raises(TicketExpired):
        tk.check_scanned_by(scanned(), token_id=TOKEN, nonce=NONCE, now_ms=EXPIRES)


@pytest.mark.parametrize(
    ("requested", "proven"),
    [(PC, C), (PC, P), (PC, frozenset()), (C, P), (P, C), (C, frozenset())],
)
def test_authenticate_refuses_unproven_requested_factors(
    requested: frozenset[Factor], proven: frozenset[Factor]
) -> None:
    with pytest.raises(FactorNotProven):
        tk.authenticate(
            scanned(requested),
            token_id=TOKEN,
            nonce=NONCE,
            user_id=USER,
            proven=proven,
            now_ms=NOW,
        )


@pytest.mark.parametrize("requested", [frozenset(), P, C, PC])
def test_authenticate_accepts_proving_more_than_requested(requested: frozenset[Factor]) -> None:
    out = tk.authenticate(
        scanned(requested), token_id=TOKEN, nonce=NONCE, user_id=USER, proven=PC, now_ms=NOW
    )
    assert out.proven == PC


def test_decline_rejects_and_clears_nonce() -> None:
    t = scanned()
    out = tk.decline(t, token_id=TOKEN, nonce=NONCE, now_ms=NOW)
    assert out.state is TicketState.REJECTED
    assert out.version == t.version + 1
    assert out.nonce is None
    assert out.user_id is None


# --- consume / renew / require_authenticated ----------------------------------


def test_require_authenticated() -> None:
    tk.require_authenticated(authenticated(), NOW)
    with pytest.raises(TicketNotAuthenticated):
        tk.require_authenticated(scanned(), NOW)
    with pytest.raises(TicketExpired):
        tk.require_authenticated(authenticated(), EXPIRES)
    with pytest.raises(TicketConsumed):
        tk.require_authenticated(consumed(), NOW)
    with pytest.raises(TicketRejected):
        tk.require_authenticated(rejected(), NOW)


def test_consume_once() -> None:
    t = authenticated()
    out = tk.consume(t, NOW)
    assert out.state is TicketState.CONSUMED
    assert out.version == t.version + 1
    assert out.user_id == USER
    with pytest.raises(TicketConsumed):
        tk.consume(out, NOW)


def test_renew_consumes_old_and_issues_fresh_authenticated_ticket() -> None:
    t = authenticated(requested=PC, proven=PC)
    later = NOW + 100_000  # close to the old expiry
    old, new = tk.renew(t, new_th=NEW_TH, requested=C, ttl_s=600, now_ms=later)
    assert old.state is TicketState.CONSUMED
    assert old.version == t.version + 1
    assert old.th == TH
    assert new.th == NEW_TH
    assert new.spid == SPID
    assert new.state is TicketState.AUTHENTICATED
    assert new.version == 0
    assert new.requested == C
    assert new.created_ms == later
    assert new.expires_ms == later + 600_000
    assert new.token_id == TOKEN
    assert new.user_id == USER
    assert new.proven == PC
    assert new.browser_key_hash is None
    assert new.nonce is None
    # The new ticket outlives the old one and works where the old is expired.
    tk.require_authenticated(new, EXPIRES + 1)
    with pytest.raises(TicketExpired):
        tk.require_authenticated(t, EXPIRES + 1)


def test_renew_with_ttl_zero_uses_default() -> None:
    _, new = tk.renew(authenticated(), new_th=NEW_TH, requested=C, ttl_s=0, now_ms=NOW)
    assert new.expires_ms == NOW + tk.DEFAULT_TTL_S * 1000


def test_renew_rejects_bad_ttl() -> None:
    with pytest.raises(MalformedInput):
        tk.renew(authenticated(), new_th=NEW_TH, requested=C, ttl_s=5, now_ms=NOW)


@pytest.mark.parametrize(("proven", "requested"), [(C, PC), (C, P), (P, C), (frozenset(), C)])
def test_renew_cannot_ask_for_unproven_factors(
    proven: frozenset[Factor], requested: frozenset[Factor]
) -> None:
    t = authenticated(requested=frozenset(), proven=proven)
    with pytest.raises(FactorNotProven):
        tk.renew(t, new_th=NEW_TH, requested=requested, ttl_s=60, now_ms=NOW)


def test_renewed_ticket_can_itself_be_renewed_and_consumed() -> None:
    _, new = tk.renew(authenticated(), new_th=NEW_TH, requested=C, ttl_s=60, now_ms=NOW)
    old2, newer = tk.renew(new, new_th=TH, requested=frozenset(), ttl_s=60, now_ms=NOW + 1)
    assert old2.state is TicketState.CONSUMED
    assert old2.version == 1
    assert tk.consume(newer, NOW + 2).state is TicketState.CONSUMED


def test_needs_client_key() -> None:
    assert tk.needs_client_key(issued(C))
    assert tk.needs_client_key(issued(PC))
    assert not tk.needs_client_key(issued(P))
    assert not tk.needs_client_key(issued(frozenset()))


def test_ticket_repr_shows_only_a_tag() -> None:
    t = authenticated()
    r = repr(t)
    assert TH[:4].hex() in r
    assert TH.hex() not in r
    assert NONCE.hex() not in r
    assert repr(USER) not in r


# --- property: random walks through the machine -------------------------------

_WALK_OPS = list(OPS.values())


@given(
    steps=st.lists(
        st.tuples(st.integers(0, len(_WALK_OPS) - 1), st.integers(0, 40_000)), max_size=12
    )
)
@settings(max_examples=150)
def test_random_walks_keep_the_invariants(steps: list[tuple[int, int]]) -> None:
    t = issued()
    now = T0
    for index, dt in steps:
        now += dt
        before = tk.state_at(t, now)
        try:
            out = _WALK_OPS[index](t, now)
        except (
            BrowserKeyMismatch,
            BrowserNotWaiting,
            ChallengeInvalid,
            FactorNotProven,
            TicketConsumed,
            TicketExpired,
            TicketNotAuthenticated,
            TicketRejected,
            TicketStateInvalid,
        ):
            continue
        # Nothing succeeds from a final state, or after expiry.
        assert before in tk.LIVE
        if out is None:
            continue
        if isinstance(out, tuple):
            out, new = out
            assert new.expires_ms > now
            assert new.state is TicketState.AUTHENTICATED
        assert out.version == t.version + 1
        assert out.expires_ms == t.expires_ms
        assert out.th == t.th
        t = out
    assert tk.state_at(t, EXPIRES) in {
        TicketState.EXPIRED,
        TicketState.CONSUMED,
        TicketState.REJECTED,
    }
