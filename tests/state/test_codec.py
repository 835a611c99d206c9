"""The state records (authnet.state.codec): every field of a ticket survives,
any ticket survives (hypothesis), and what is not a record of this schema is
refused with StateRecordUnreadable, never misread."""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authnet.errors import StateRecordUnreadable, StateUnavailable
from authnet.protocol.factors import Factor
from authnet.state import EventKind, TicketEvent
from authnet.state.codec import EVENTS, FORMAT, INT_MAX, INT_MIN, TICKETS, RecordCodec
from authnet.tickets import BrowserHints, Ticket, TicketState
from tests.state.samples import assert_no_default_left, every_field_set


def test_a_ticket_with_every_field_set_round_trips() -> None:
    t = every_field_set(Ticket)
    assert_no_default_left(t)
    assert isinstance(t.hints, BrowserHints)
    data = TICKETS.encode(t)
    assert data[0] == FORMAT
    assert TICKETS.decode(data) == t


def test_a_fresh_ticket_is_small() -> None:
    t = Ticket(
        th=b"\x01" * 32,
        spid=b"\x02" * 16,
        state=TicketState.ISSUED,
        requested=frozenset({Factor.CLIENT_KEY}),
        created_ms=1_700_000_000_000,
        expires_ms=1_700_000_120_000,
    )
    data = TICKETS.encode(t)
    assert TICKETS.decode(data) == t
    # Hashes and ids dominate: 48 bytes of them, the rest is a few dozen.
    assert len(data) < 48 + 50


def _field_strategy(hint: object) -> st.SearchStrategy[object]:
    # Record integers are 64-bit (the codec refuses others, see below).
    if hint is int:
        return st.integers(INT_MIN, INT_MAX)
    return st.from_type(hint)  # type: ignore[arg-type]


# Every field from its type, so fields added later are varied too.
tickets = st.builds(
    Ticket, **{name: _field_strategy(hint) for name, hint in typing.get_type_hints(Ticket).items()}
)


@given(tickets)
def test_any_ticket_round_trips(t: Ticket) -> None:
    encoded = TICKETS.encode(t)
    assert TICKETS.decode(encoded) == t
    # Equal tickets encode equally (frozensets are sorted).
    assert TICKETS.encode(TICKETS.decode(encoded)) == encoded


@pytest.mark.parametrize("kind", list(EventKind))
def test_events_round_trip(kind: EventKind) -> None:
    e = TicketEvent(kind=kind, at_ms=1_700_000_000_123)
    data = EVENTS.encode(e)
    assert EVENTS.decode(data) == e
    assert len(data) < 32


def test_an_unknown_format_is_refused_clearly() -> None:
    data = bytearray(TICKETS.encode(every_field_set(Ticket)))
    data[0] = FORMAT + 1
    with pytest.raises(
        StateRecordUnreadable, match=rf"has format {FORMAT + 1}, .* format {FORMAT}"
    ):
        TICKETS.decode(bytes(data))
    with pytest.raises(StateRecordUnreadable, match="format nothing"):
        TICKETS.decode(b"")


def test_unreadable_records_are_retryable_state_errors() -> None:
    # A node of another version may read what this one cannot.
    assert issubclass(StateRecordUnreadable, StateUnavailable)
    assert StateRecordUnreadable.code == "state_record_unreadable"


def test_a_field_added_later_is_carried_and_old_records_are_refused() -> None:
    # The same class name, one field more: the schema a newer node would have.
    old_cls = dataclasses.make_dataclass("Rec", [("name", str), ("count", int)])
    new_cls = dataclasses.make_dataclass(
        "Rec", [("name", str), ("count", int), ("added", bytes | None)]
    )
    old, new = RecordCodec(old_cls), RecordCodec(new_cls)
    value = new_cls(name="n", count=3, added=b"x")
    assert new.decode(new.encode(value)) == value  # carried without being named anywhere
    with pytest.raises(StateRecordUnreadable, match="another Rec schema"):
        new.decode(old.encode(old_cls(name="n", count=3)))
    with pytest.raises(StateRecordUnreadable, match="another Rec schema"):
        old.decode(new.encode(value))


def test_damaged_records_are_refused_without_their_bytes_in_the_message() -> None:
    t = every_field_set(Ticket)
    data = TICKETS.encode(t)
    for cut in (len(TICKETS.header), len(data) // 2, len(data) - 1):
        with pytest.raises(StateRecordUnreadable) as info:
            TICKETS.decode(data[:cut])
        assert t.th.hex() not in info.value.message
    with pytest.raises(StateRecordUnreadable, match="stray bytes"):
        TICKETS.decode(data + b"\x00")
    # An enum value this node does not know (a state added by a newer node).
    bad = bytearray(data)
    at = bad.find(t.state.value.encode())
    bad[at] = ord("!")
    with pytest.raises(StateRecordUnreadable, match="damaged"):
        TICKETS.decode(bytes(bad))


@dataclass
class _Odd:
    items: list[int]


class _Mixed(enum.Enum):
    A = 1
    B = "b"


@dataclass
class _WithMixed:
    m: _Mixed


def test_a_type_the_codec_cannot_encode_fails_when_the_codec_is_built() -> None:
    with pytest.raises(TypeError, match=r"_Odd\.items"):
        RecordCodec(_Odd)
    with pytest.raises(TypeError, match="all str or all int"):
        RecordCodec(_WithMixed)


@pytest.mark.parametrize("n", [INT_MIN - 1, INT_MAX + 1, 2**200])
def test_integers_beyond_64_bits_are_refused_when_written(n: int) -> None:
    t = every_field_set(Ticket)
    with pytest.raises(ValueError, match="64-bit"):
        TICKETS.encode(dataclasses.replace(t, version=n))


@pytest.mark.parametrize("n", [INT_MIN, -1, 0, 1, 127, 128, INT_MAX])
def test_integers_at_the_edges_round_trip(n: int) -> None:
    t = dataclasses.replace(every_field_set(Ticket), created_ms=n)
    assert TICKETS.decode(TICKETS.encode(t)).created_ms == n
