"""The QR login payload (authnet.protocol.payload): exact round trips, and a
strict parser that treats its input as hostile."""

from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from authnet.errors import MalformedInput
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.payload import (
    MAX_LENGTH,
    PREFIX,
    Address,
    LoginPayload,
    parse_address,
    parse_payload,
)

# --- strategies ---------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits

tickets = st.binary(min_size=16, max_size=16).map(lambda b: "at1_" + b64u_encode(b))
browser_keys = st.binary(min_size=32, max_size=32)
ports = st.integers(min_value=1, max_value=65535)


@st.composite
def dns_labels(draw: st.DrawFn) -> str:
    size = draw(st.integers(min_value=1, max_value=63))
    if size == 1:
        return draw(st.sampled_from(_ALNUM))
    ends = st.sampled_from(_ALNUM)
    middle = draw(st.text(alphabet=_ALNUM + "-", min_size=size - 2, max_size=size - 2))
    return draw(ends) + middle + draw(ends)


# A name whose last label is all digits is an IPv4 literal or invalid (no TLD is
# numeric), so generated host names end in a label with a letter or '-'.
hostnames = (
    st.lists(dns_labels(), min_size=1, max_size=6)
    .map(".".join)
    .filter(lambda h: len(h) <= 253 and not h.rsplit(".", 1)[-1].isdigit())
)
hosts = st.one_of(
    hostnames,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str),
)
addresses = st.builds(lambda h, p: Address(host=h, port=p), hosts, ports)
payloads = st.builds(
    lambda t, k, n: LoginPayload(ticket=t, browser_key=k, network=n),
    tickets,
    browser_keys,
    addresses,
)

# A fixed, realistic ticket for the fuzzers: its body must never show up in an error.
TICKET = "at1_" + b64u_encode(hashlib.sha256(b"fuzz ticket").digest()[:16])
BODY = TICKET[4:]
KEY = b64u_encode(hashlib.sha256(b"browser key").digest())
VALID = f"{PREFIX}v=1&t={TICKET}&k={KEY}&n=passkey.example.net:8443"
FIELDS = ["v=1", f"t={TICKET}", f"k={KEY}", "n=passkey.example.net:8443"]


def assert_no_ticket_in(err: MalformedInput) -> None:
    for text in (str(err), repr(err), repr(err.detail)):
        for i in range(len(BODY) - 7):
            assert BODY[i : i + 8] not in text, text


def parse_or_malformed(text: str) -> LoginPayload | None:
    """parse_payload's only failure is MalformedInput, never naming the ticket;
    what it accepts is exactly what encode() writes, up to field order."""
    try:
        p = parse_payload(text)
    except MalformedInput as e:
        assert_no_ticket_in(e)
        return None
    assert text.startswith(PREFIX)
    fields = text[len(PREFIX) :].split("&")
    assert sorted(fields) == sorted(p.encode()[len(PREFIX) :].split("&")), text
    return p


# --- round trip ----------------------------------------------------------------


@given(payloads)
@settings(max_examples=200)
def test_round_trip(p: LoginPayload) -> None:
    text = p.encode()
    assert len(text) <= MAX_LENGTH
    assert text.startswith(PREFIX + "v=1&t=")
    back = parse_payload(text)
    assert back == p
    assert back.encode() == text


@given(payloads, st.permutations(range(4)))
@settings(max_examples=50)
def test_field_order_is_free(p: LoginPayload, order: list[int]) -> None:
    fields = p.encode()[len(PREFIX) :].split("&")
    assert parse_payload(PREFIX + "&".join(fields[i] for i in order)) == p


def test_known_payload() -> None:
    p = parse_payload(VALID)
    assert p.ticket == TICKET
    assert p.browser_key == hashlib.sha256(b"browser key").digest()
    assert p.network == Address(host="passkey.example.net", port=8443)
    assert p.encode() == VALID


def test_repr_hides_the_ticket() -> None:
    p = parse_payload(VALID)
    for text in (repr(p), str(p), f"{p}", repr([p])):
        assert BODY not in text
        assert "ticket=<hidden>" in text
        assert "passkey.example.net:8443" in text


# --- fuzz ------------------------------------------------------------------------

_NASTY = [*"&=:[]%#?/ \t\n\r\x00+.-_", "\u202e", "\uff1a", "\u0661", "\u00e9"]


@st.composite
def mutations(draw: st.DrawFn) -> str:
    fields = list(FIELDS)
    kind = draw(
        st.sampled_from(
            [
                "drop",
                "duplicate",
                "reorder",
                "unknown",
                "version",
                "key",
                "ticket",
                "network",
                "delete",
                "insert",
                "substitute",
                "overlong",
                "prefix",
            ]
        )
    )
    if kind == "drop":
        del fields[draw(st.integers(0, 3))]
    elif kind == "duplicate":
        i = draw(st.integers(0, 3))
        fields.insert(draw(st.integers(0, 4)), fields[i])
    elif kind == "reorder":
        fields = draw(st.permutations(fields))
    elif kind == "unknown":
        name = draw(
            st.text(min_size=0, max_size=20).filter(lambda s: "=" not in s and "&" not in s)
        )
        assume(name not in ("v", "t", "k", "n"))
        fields.insert(draw(st.integers(0, 4)), f"{name}={draw(st.text(max_size=10))}")
    elif kind == "version":
        v = draw(st.text(max_size=10).filter(lambda s: "&" not in s))
        assume(v != "1")
        fields[0] = "v=" + v
    elif kind == "key":
        fields[2] = (
            "k="
            + draw(
                st.one_of(
                    st.binary(max_size=48).map(b64u_encode),  # wrong lengths (and 32)
                    st.just(KEY + "="),
                    st.just(KEY[:-1] + "B"),  # non-canonical last character
                    st.just(KEY.replace("_", "/").replace("-", "+")),
                    st.text(alphabet=_ALNUM + "+/=_-", max_size=50),
                )
            )
        )
    elif kind == "ticket":
        fields[1] = "t=" + draw(
            st.one_of(
                st.just(TICKET + "="),
                st.just(TICKET[:-1]),
                st.just(TICKET + "A"),
                st.just("at2_" + BODY),
                st.just(TICKET[:-1] + "B"),  # non-canonical
                st.just(TICKET + "\n"),
                st.just(TICKET.upper()),
            )
        )
    elif kind == "network":
        host = draw(
            st.sampled_from(["h", "passkey.example.net", "10.0.0.1", "[::1]", "[fe80::1%eth0]"])
        )
        port = draw(
            st.sampled_from(["0", "65536", "080", "00443", "-1", "+80", "", "443\n", " 443", "1e3"])
        )
        fields[3] = f"n={host}:{port}"
    elif kind == "overlong":
        fields[3] = "n=" + "a" * draw(st.integers(240, 600)) + ".example:1"
    elif kind == "prefix":
        text = "&".join(fields)
        pre = draw(
            st.sampled_from(
                ["", "authnet:login", "AUTHNET:login?", " authnet:login?", "authnet:login?&"]
            )
        )
        return pre + text
    text = PREFIX + "&".join(fields)
    body = len(PREFIX)
    if kind == "delete":
        i = draw(st.integers(body, len(text) - 1))
        text = text[:i] + text[i + 1 :]
    elif kind == "insert":
        i = draw(st.integers(body, len(text)))
        text = text[:i] + draw(st.sampled_from(_NASTY)) + text[i:]
    elif kind == "substitute":
        i = draw(st.integers(body, len(text) - 1))
        text = text[:i] + draw(st.sampled_from(_NASTY)) + text[i + 1 :]
    return text


@given(mutations())
@settings(max_examples=400, suppress_health_check=[HealthCheck.filter_too_much])
def test_near_valid_mutations(text: str) -> None:
    parse_or_malformed(text)


@given(st.text(max_size=600))
@settings(max_examples=150)
def test_arbitrary_text(text: str) -> None:
    parse_or_malformed(text)
    parse_or_malformed(PREFIX + text)


@given(st.lists(st.text(alphabet=_ALNUM + "=:[]._-%", max_size=40), max_size=6))
@settings(max_examples=150)
def test_arbitrary_fields(parts: list[str]) -> None:
    parse_or_malformed(PREFIX + "&".join(parts))


@pytest.mark.parametrize("value", [None, b"authnet:login?v=1", 42, ["authnet:login?"]])
def test_non_text_is_malformed(value: object) -> None:
    with pytest.raises(MalformedInput):
        parse_payload(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("x" * (MAX_LENGTH + 1), "longer than"),
        (VALID + "&" + "x" * MAX_LENGTH, "longer than"),
        ("authnet:logon?v=1", "not an authnet login code"),
        (PREFIX, "without '='"),
        (VALID + "&", "without '='"),
        (VALID + "&y=1", "unknown field 'y'"),
        (VALID + "&x=1", "X-Wing key hash"),
        (VALID + "&v=1", "repeats field 'v'"),
        (PREFIX + "v=1&t=" + TICKET, "lacks field(s) k, n"),
        (VALID.replace("v=1", "v=2"), "version '2'"),
        (VALID.replace("v=1", "v=01"), "version"),
        (VALID.replace(KEY, KEY[:-2]), "browser key"),
        (VALID.replace(KEY, KEY + "A"), "browser key must be 32 bytes, got 33"),
        (VALID.replace(TICKET, TICKET[:-1]), "ticket is malformed"),
        (VALID.replace("8443", "0"), "invalid port"),
        (VALID.replace("8443", "65536"), "invalid port"),
        (VALID.replace("8443", "08443"), "invalid port"),
        (VALID.replace(":8443", ""), "host:port"),
        (VALID + "%41", "invalid port"),
    ],
)
def test_errors_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(MalformedInput) as info:
        parse_payload(text)
    assert says in str(info.value)
    assert_no_ticket_in(info.value)


def test_an_unknown_field_error_does_not_echo_a_ticket_used_as_key() -> None:
    # A damaged code whose ticket lost its "t=" and gained an "=" elsewhere.
    with pytest.raises(MalformedInput) as info:
        parse_payload(f"{PREFIX}v=1&{BODY}=x&k={KEY}&n=h:1")
    assert BODY not in str(info.value)


def test_percent_encoding_is_not_decoded() -> None:
    with pytest.raises(MalformedInput):
        parse_payload(VALID.replace("v=1", "v=%31"))
    with pytest.raises(MalformedInput):
        parse_payload(VALID.replace("n=", "%6E="))


# --- parse_address ----------------------------------------------------------------


@given(addresses)
@settings(max_examples=100)
def test_address_round_trip(a: Address) -> None:
    assert parse_address(str(a)) == a


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("a:1", "a", 1),
        ("localhost:65535", "localhost", 65535),
        ("Passkey.Example.NET:443", "Passkey.Example.NET", 443),
        ("xn--bcher-kva.example:443", "xn--bcher-kva.example", 443),
        ("10.0.0.1:8443", "10.0.0.1", 8443),
        ("[::1]:443", "::1", 443),
        ("[2001:db8::8a2e:370:7334]:1", "2001:db8::8a2e:370:7334", 1),
        ("[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80),
        ("a" * 63 + ".b:9", "a" * 63 + ".b", 9),
        (".".join(["a" * 63] * 3) + "." + "b" * 61 + ":65535", None, 65535),
    ],
)
def test_address_accepts(text: str, host: str | None, port: int) -> None:
    a = parse_address(text)
    assert a.port == port
    assert a.host == (host if host is not None else text.rpartition(":")[0])
    assert str(a) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a:",
        ":80",
        "a",
        "a:0",
        "a:65536",
        "a:99999",
        "a:080",
        "a:00",
        "a:+80",
        "a:-80",
        "a: 80",
        "a:80 ",
        "a:8_0",
        "a:\u0668\u0660",  # Arabic-Indic digits
        "a:80\n",  # trailing newline after the port
        "a\n:80",  # trailing newline in the host
        "a.example.com\n:443",
        "-a:80",
        "a-:80",
        "a..b:80",
        ".a:80",
        "a.:80",
        "a_b:80",
        "a b:80",
        "é.example:80",
        "a" * 64 + ":80",
        ".".join(["a" * 63] * 4) + ":80",  # 255 characters of host
        "::1:80",
        "[::1]",
        "[::1]:",
        "[::1]80",
        "[::1",
        "[::1]]:80",
        "[::1]:80:80",
        "[]:80",
        "[1.2.3.4]:80",
        "[example.com]:80",
        "[::g]:80",
        "[fe80::1%eth0]:80",  # zone ids are local to the scanning device
        "[fe80::1%\u202eevil]:443",
        "user@host:80",
        "host:80/path",
        "x" * 300 + ":1",
    ],
)
def test_address_rejects(text: str) -> None:
    with pytest.raises(MalformedInput):
        parse_address(text)


@pytest.mark.parametrize("value", [None, 80, b"a:80"])
def test_address_rejects_non_text(value: object) -> None:
    with pytest.raises(MalformedInput):
        parse_address(value)  # type: ignore[arg-type]


@given(st.text(max_size=80))
@settings(max_examples=200)
def test_address_fuzz(text: str) -> None:
    try:
        a = parse_address(text)
    except MalformedInput:
        return
    # Whatever is accepted is printable ASCII and prints back exactly as given.
    assert str(a) == text
    assert text.isascii()
    assert text.isprintable()
    assert 1 <= a.port <= 65535


def test_ipv6_address_prints_with_brackets() -> None:
    assert str(Address(host="::1", port=443)) == "[::1]:443"
    assert str(Address(host="example.org", port=443)) == "example.org:443"


@pytest.mark.parametrize("text", ["0:1", "999.999.999.999:80", "10.0.0.256:443", "1.2.3:80"])
def test_numeric_names_must_be_real_ipv4_literals(text: str) -> None:
    with pytest.raises(MalformedInput, match="invalid IPv4 literal"):
        parse_address(text)


def test_ipv4_literals_and_names_with_numeric_inner_labels_parse() -> None:
    assert parse_address("10.0.0.1:443").host == "10.0.0.1"
    assert parse_address("node1.10.example:7444").port == 7444
