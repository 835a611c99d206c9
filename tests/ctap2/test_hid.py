"""CTAPHID framing: raw 64-byte packets on SoftCtapHidConnection, and
python-fido2's CtapHidDevice for keep-alive and cancel."""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Iterator

import pytest
from fido2 import cbor
from fido2.ctap import STATUS, CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.utils import sha256

from simulators.ctap2 import (
    Authenticator,
    SoftCtapHidConnection,
    SoftCtapHidDevice,
    TouchButton,
    approve,
)
from simulators.ctap2.hid import (
    BROADCAST_CID,
    CMD_CANCEL,
    CMD_CBOR,
    CMD_ERROR,
    CMD_INIT,
    CMD_KEEPALIVE,
    CMD_PING,
    CMD_WINK,
    ERR_CHANNEL_BUSY,
    ERR_INVALID_CHANNEL,
    ERR_INVALID_CMD,
    ERR_INVALID_LEN,
    ERR_INVALID_SEQ,
    ERR_MSG_TIMEOUT,
    MAX_MESSAGE_SIZE,
    frame,
)
from tests.ctap2.util import RP_ID

CDH = b"\x22" * 32


@pytest.fixture
def button() -> TouchButton:
    return TouchButton(timeout=10.0)


@pytest.fixture
def hid(button: TouchButton) -> Iterator[SoftCtapHidDevice]:
    device = SoftCtapHidDevice(Authenticator(None, presence=button), message_timeout=0.3)
    yield device
    device.close()


def connect(hid: SoftCtapHidDevice) -> SoftCtapHidConnection:
    return hid.connect(read_timeout=5.0)


def init_packet(cid: int, cmd: int, length: int, data: bytes = b"") -> bytes:
    return (struct.pack(">IBH", cid, 0x80 | cmd, length) + data).ljust(64, b"\0")


def cont_packet(cid: int, seq: int, data: bytes = b"") -> bytes:
    return (struct.pack(">IB", cid, seq) + data).ljust(64, b"\0")


def read_message(conn: SoftCtapHidConnection, cid: int) -> tuple[int, bytes]:
    """Reassemble one response (keep-alives are returned as messages too)."""
    packet = conn.read_packet()
    assert struct.unpack_from(">I", packet)[0] == cid
    cmd, length = packet[4] & 0x7F, struct.unpack_from(">H", packet, 5)[0]
    assert packet[4] & 0x80
    data = packet[7:]
    seq = 0
    while len(data) < length:
        packet = conn.read_packet()
        assert struct.unpack_from(">I", packet)[0] == cid
        assert packet[4] == seq
        seq += 1
        data += packet[5:]
    return cmd, data[:length]


def read_response(conn: SoftCtapHidConnection, cid: int) -> tuple[int, bytes]:
    """The next message that is not a keep-alive."""
    cmd, data = read_message(conn, cid)
    while cmd == CMD_KEEPALIVE:
        cmd, data = read_message(conn, cid)
    return cmd, data


def expect_upneeded(conn: SoftCtapHidConnection, cid: int) -> None:
    """Keep-alives: PROCESSING (if the machine is slow), then UPNEEDED."""
    message = read_message(conn, cid)
    while message == (CMD_KEEPALIVE, bytes([STATUS.PROCESSING])):
        message = read_message(conn, cid)
    assert message == (CMD_KEEPALIVE, bytes([STATUS.UPNEEDED]))


def send(conn: SoftCtapHidConnection, cid: int, cmd: int, data: bytes) -> None:
    for packet in frame(cid, cmd, data):
        conn.write_packet(packet)


def allocate(conn: SoftCtapHidConnection) -> int:
    nonce = os.urandom(8)
    conn.write_packet(init_packet(BROADCAST_CID, CMD_INIT, 8, nonce))
    cmd, data = read_message(conn, BROADCAST_CID)
    assert cmd == CMD_INIT
    assert data[:8] == nonce
    cid, version, _major, _minor, _build, caps = struct.unpack_from(">IBBBBB", data, 8)
    assert version == 2
    assert caps == 0x04 | 0x01 | 0x08
    return int(cid)


def expect_error(conn: SoftCtapHidConnection, cid: int, code: int) -> None:
    assert read_message(conn, cid) == (CMD_ERROR, bytes([code]))


def expect_nothing(conn: SoftCtapHidConnection) -> None:
    with pytest.raises(TimeoutError):
        conn.read_packet(timeout=0.05)


def make_credential_request() -> bytes:
    params = {
        1: CDH,
        2: {"id": RP_ID},
        3: {"id": b"user", "name": "user"},
        4: [{"type": "public-key", "alg": -7}],
    }
    return b"\x01" + cbor.encode(params)


def test_init_allocates_distinct_channels(hid: SoftCtapHidDevice) -> None:
    conn = connect(hid)
    first, second = allocate(conn), allocate(conn)
    assert first != second
    assert {first, second} <= hid.channels
    assert BROADCAST_CID not in hid.channels
    assert 0 not in hid.channels
    conn.write_packet(init_packet(BROADCAST_CID, CMD_INIT, 4, b"abcd"))
    expect_error(conn, BROADCAST_CID, ERR_INVALID_LEN)
    # INIT on an allocated channel resynchronises it and keeps the channel id.
    conn.write_packet(init_packet(first, CMD_INIT, 8, b"12345678"))
    cmd, data = read_message(conn, first)
    assert cmd == CMD_INIT
    assert data[:8] == b"12345678"
    assert struct.unpack_from(">I", data, 8)[0] == first


def test_fragmented_ping_and_cbor(hid: SoftCtapHidDevice) -> None:
    hid.authenticator.presence = approve
    conn = connect(hid)
    cid = allocate(conn)
    message = os.urandom(1000)  # 1 initialization + 16 continuation packets
    packets = frame(cid, CMD_PING, message)
    assert len(packets) == 17
    for packet in packets:
        conn.write_packet(packet)
    assert read_message(conn, cid) == (CMD_PING, message)
    longest = os.urandom(MAX_MESSAGE_SIZE)
    send(conn, cid, CMD_PING, longest)
    assert read_message(conn, cid) == (CMD_PING, longest)
    # A CBOR request and a response that both span several packets.
    request = make_credential_request()
    assert len(request) > 57
    send(conn, cid, CMD_CBOR, request)
    cmd, response = read_response(conn, cid)
    assert cmd == CMD_CBOR
    assert response[0] == 0
    assert len(response) > 200
    assert cbor.decode(response[1:])[1] == "packed"


def test_python_fido2_fragments_too(hid: SoftCtapHidDevice) -> None:
    device = hid.open(read_timeout=5.0)
    assert device.ping(b"x" * 700) == b"x" * 700
    device.wink()
    assert hid.winks == 1
    ctap = Ctap2(device)
    hid.authenticator.presence = approve
    response = ctap.make_credential(
        CDH,
        {"id": RP_ID, "name": "n" * 60},
        {"id": b"u" * 64, "name": "a" * 64, "displayName": "b" * 64},
        [{"type": "public-key", "alg": -7}],
        options={"rk": True},
    )
    assert response.auth_data.credential_data is not None


def test_wrong_sequence_number(hid: SoftCtapHidDevice) -> None:
    conn = connect(hid)
    cid = allocate(conn)
    message = os.urandom(200)
    packets = frame(cid, CMD_PING, message)
    conn.write_packet(packets[0])
    conn.write_packet(packets[2])  # seq 1 where 0 was expected
    expect_error(conn, cid, ERR_INVALID_SEQ)
    conn.write_packet(packets[3])  # the message was dropped: ignored
    expect_nothing(conn)
    send(conn, cid, CMD_PING, message)
    assert read_message(conn, cid) == (CMD_PING, message)
    # A new request in the middle of a message also breaks the sequence.
    conn.write_packet(packets[0])
    conn.write_packet(init_packet(cid, CMD_PING, 1, b"x"))
    expect_error(conn, cid, ERR_INVALID_SEQ)


def test_invalid_channels_commands_and_lengths(hid: SoftCtapHidDevice) -> None:
    conn = connect(hid)
    cid = allocate(conn)
    conn.write_packet(init_packet(0, CMD_PING, 1, b"x"))
    expect_error(conn, 0, ERR_INVALID_CHANNEL)
    conn.write_packet(init_packet(0x12345678, CMD_PING, 1, b"x"))
    expect_error(conn, 0x12345678, ERR_INVALID_CHANNEL)
    conn.write_packet(init_packet(BROADCAST_CID, CMD_PING, 1, b"x"))
    expect_error(conn, BROADCAST_CID, ERR_INVALID_CHANNEL)
    conn.write_packet(init_packet(0x0BADCAFE, CMD_INIT, 8, b"12345678"))
    expect_error(conn, 0x0BADCAFE, ERR_INVALID_CHANNEL)
    for cmd in (0x03, 0x04, CMD_KEEPALIVE, CMD_ERROR, 0x40, 0x7E):  # MSG, LOCK, ...
        conn.write_packet(init_packet(cid, cmd, 0))
        expect_error(conn, cid, ERR_INVALID_CMD)
    conn.write_packet(init_packet(cid, CMD_CBOR, 0))
    expect_error(conn, cid, ERR_INVALID_LEN)
    conn.write_packet(init_packet(cid, CMD_WINK, 1, b"x"))
    expect_error(conn, cid, ERR_INVALID_LEN)
    conn.write_packet(init_packet(cid, CMD_PING, MAX_MESSAGE_SIZE + 1))
    expect_error(conn, cid, ERR_INVALID_LEN)
    conn.write_packet(cont_packet(cid, 0, b"spurious"))  # no message pending: ignored
    expect_nothing(conn)
    with pytest.raises(ValueError, match="64 bytes"):
        conn.write_packet(b"\x00" * 63)
    # A CTAP-level error still travels as a CBOR response.
    send(conn, cid, CMD_CBOR, b"\x42")
    assert read_response(conn, cid) == (CMD_CBOR, bytes([CtapError.ERR.INVALID_COMMAND]))


def test_message_timeout(hid: SoftCtapHidDevice) -> None:
    conn = connect(hid)
    cid = allocate(conn)
    conn.write_packet(frame(cid, CMD_PING, b"y" * 100)[0])  # continuation never comes
    expect_error(conn, cid, ERR_MSG_TIMEOUT)  # read_packet waits out the 0.3 s
    assert not hid.busy


def test_busy_while_receiving(hid: SoftCtapHidDevice) -> None:
    a, b = connect(hid), connect(hid)
    cid_a, cid_b = allocate(a), allocate(b)
    packets = frame(cid_a, CMD_PING, b"z" * 100)
    a.write_packet(packets[0])
    b.write_packet(init_packet(cid_b, CMD_PING, 1, b"x"))
    expect_error(b, cid_b, ERR_CHANNEL_BUSY)
    a.write_packet(packets[1])
    assert read_message(a, cid_a) == (CMD_PING, b"z" * 100)
    expect_nothing(b)  # nothing of a's reaches b
    b.write_packet(init_packet(cid_b, CMD_PING, 1, b"x"))
    assert read_message(b, cid_b) == (CMD_PING, b"x")


def test_keepalive_busy_and_cancel_while_waiting_for_touch(
    hid: SoftCtapHidDevice, button: TouchButton
) -> None:
    a, b = connect(hid), connect(hid)
    cid_a, cid_b = allocate(a), allocate(b)
    send(a, cid_a, CMD_CBOR, make_credential_request())
    expect_upneeded(a, cid_a)
    assert button.waiting.wait(2)
    # The device is busy: other channels, and the same one, are turned away.
    b.write_packet(init_packet(cid_b, CMD_PING, 1, b"x"))
    expect_error(b, cid_b, ERR_CHANNEL_BUSY)
    a.write_packet(init_packet(cid_a, CMD_PING, 1, b"x"))
    expect_error(a, cid_a, ERR_CHANNEL_BUSY)
    # Keep-alives continue every 100 ms while nobody touches.
    expect_upneeded(a, cid_a)
    button.press()
    cmd, response = read_response(a, cid_a)
    assert cmd == CMD_CBOR
    assert response[0] == 0

    send(a, cid_a, CMD_CBOR, make_credential_request())
    expect_upneeded(a, cid_a)
    b.write_packet(init_packet(cid_b, CMD_CANCEL, 0))  # another channel's cancel: no effect
    a.write_packet(init_packet(cid_a, CMD_CANCEL, 0))
    cmd, response = read_response(a, cid_a)
    assert (cmd, response) == (CMD_CBOR, bytes([CtapError.ERR.KEEPALIVE_CANCEL]))
    expect_nothing(b)
    send(b, cid_b, CMD_PING, b"free again")
    assert read_message(b, cid_b) == (CMD_PING, b"free again")


def test_python_fido2_keepalive_and_cancel(hid: SoftCtapHidDevice, button: TouchButton) -> None:
    ctap = Ctap2(hid.open(read_timeout=5.0))
    statuses: list[int] = []

    def touch_when_asked(status: int) -> None:
        statuses.append(status)
        if status == STATUS.UPNEEDED:
            button.press()

    args = (CDH, {"id": RP_ID}, {"id": b"user"}, [{"type": "public-key", "alg": -7}])
    response = ctap.make_credential(*args, on_keepalive=touch_when_asked)
    assert response.fmt == "packed"
    assert STATUS.UPNEEDED in statuses

    event = threading.Event()

    def give_up(status: int) -> None:
        event.set()  # python-fido2 then sends CTAPHID_CANCEL

    with pytest.raises(CtapError) as e:
        ctap.make_credential(*args, event=event, on_keepalive=give_up)
    assert e.value.code == CtapError.ERR.KEEPALIVE_CANCEL
    assert button.requests[-1].cancel.is_set()
    assert ctap.get_info().versions  # the device is usable again


def test_processing_keepalive_for_slow_requests() -> None:
    """While the device works (here: a key with a display waiting for its owner
    to confirm a PIN token), it sends KEEPALIVE with STATUS.PROCESSING."""
    release = threading.Event()
    auth = Authenticator(None, verification=lambda request: release.wait(5))
    hid = SoftCtapHidDevice(auth, keepalive_interval=0.02)
    try:
        ctap = Ctap2(hid.open(read_timeout=5.0))
        ClientPin(ctap).set_pin("1234")
        seen: list[int] = []

        def on_keepalive(status: int) -> None:
            seen.append(status)
            release.set()

        protocol = PinProtocolV2()
        key_agreement, shared = protocol.encapsulate(ctap.client_pin(2, 2)[1])
        response = ctap.client_pin(
            2,
            ClientPin.CMD.GET_TOKEN_USING_PIN,
            key_agreement=key_agreement,
            pin_hash_enc=protocol.encrypt(shared, sha256(b"1234")[:16]),
            permissions=ClientPin.PERMISSION.MAKE_CREDENTIAL,
            on_keepalive=on_keepalive,
        )
        assert len(protocol.decrypt(shared, response[2])) == 32
        assert seen == [STATUS.PROCESSING]
    finally:
        hid.close()


def test_resync_abandons_the_pending_request(hid: SoftCtapHidDevice, button: TouchButton) -> None:
    conn = connect(hid)
    cid = allocate(conn)
    send(conn, cid, CMD_CBOR, make_credential_request())
    assert read_message(conn, cid)[0] == CMD_KEEPALIVE
    conn.write_packet(init_packet(cid, CMD_INIT, 8, b"resync!!"))
    cmd, data = read_message(conn, cid)
    assert cmd == CMD_INIT
    assert data[:8] == b"resync!!"
    send(conn, cid, CMD_PING, b"after")
    assert read_message(conn, cid) == (CMD_PING, b"after")
    expect_nothing(conn)  # the abandoned request's answer never arrives


def test_closed_connection(hid: SoftCtapHidDevice) -> None:
    conn = connect(hid)
    allocate(conn)
    conn.close()
    with pytest.raises(OSError, match="closed"):
        conn.write_packet(b"\0" * 64)
    with pytest.raises(OSError, match="closed"):
        conn.read_packet()
