"""The authenticator behind real CTAPHID framing (CTAP 2.1 §11.2), for
python-fido2's `CtapHidDevice`:

    hid = SoftCtapHidDevice(Authenticator(path))
    device = hid.open()            # fido2.hid.CtapHidDevice over a connection
    ctap = fido2.ctap2.Ctap2(device)

`SoftCtapHidDevice` is the USB device: it allocates channels (CTAPHID_INIT on
the broadcast channel), reassembles 64-byte initialization and continuation
packets, answers PING, WINK, CBOR and CANCEL, sends KEEPALIVE (PROCESSING or
UPNEEDED) every `keepalive_interval` seconds while a CBOR request is pending,
and answers CTAPHID_ERROR for an invalid channel, command, length or sequence,
a busy device, or a message whose continuation packets stop arriving.

Each `connect()` returns a `CtapHidConnection` (python-fido2's abstract
transport): what a process gets when it opens the hidraw node. Unlike raw
hidraw, where every open handle sees every input report, a response goes only
to the connection that sent the request, so several clients can share one
simulated key without reading each other's packets.

CBOR requests run on a worker thread, so a client can keep reading (keep-alive
packets) and writing (CTAPHID_CANCEL) while the authenticator waits for a touch.
"""

from __future__ import annotations

import itertools
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

from simulators.ctap2.authenticator import KEEPALIVE_PROCESSING, KEEPALIVE_UPNEEDED, Authenticator

REPORT_SIZE = 64
INIT_DATA_SIZE = REPORT_SIZE - 7
CONT_DATA_SIZE = REPORT_SIZE - 5
MAX_MESSAGE_SIZE = INIT_DATA_SIZE + 128 * CONT_DATA_SIZE  # 7609
BROADCAST_CID = 0xFFFFFFFF
TYPE_INIT = 0x80
CTAPHID_PROTOCOL_VERSION = 2

# CTAPHID commands.
CMD_PING = 0x01
CMD_MSG = 0x03
CMD_LOCK = 0x04
CMD_INIT = 0x06
CMD_WINK = 0x08
CMD_CBOR = 0x10
CMD_CANCEL = 0x11
CMD_KEEPALIVE = 0x3B
CMD_ERROR = 0x3F

# CTAPHID_ERROR codes.
ERR_INVALID_CMD = 0x01
ERR_INVALID_PAR = 0x02
ERR_INVALID_LEN = 0x03
ERR_INVALID_SEQ = 0x04
ERR_MSG_TIMEOUT = 0x05
ERR_CHANNEL_BUSY = 0x06
ERR_LOCK_REQUIRED = 0x0A
ERR_INVALID_CHANNEL = 0x0B
ERR_OTHER = 0x7F

# Capability flags in the CTAPHID_INIT response.
CAPABILITY_WINK = 0x01
CAPABILITY_CBOR = 0x04
CAPABILITY_NMSG = 0x08


def frame(cid: int, cmd: int, data: bytes) -> list[bytes]:
    """Split a message into 64-byte packets (initialization + continuation)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise ValueError("message too long for CTAPHID")
    packets = [struct.pack(">IBH", cid, TYPE_INIT | cmd, len(data)) + data[:INIT_DATA_SIZE]]
    rest = data[INIT_DATA_SIZE:]
    for seq in itertools.count():
        if not rest:
            break
        packets.append(struct.pack(">IB", cid, seq) + rest[:CONT_DATA_SIZE])
        rest = rest[CONT_DATA_SIZE:]
    return [p.ljust(REPORT_SIZE, b"\x00") for p in packets]


@dataclass
class _Assembly:
    conn: SoftCtapHidConnection
    cid: int
    cmd: int
    length: int
    data: bytearray
    last_packet: float
    next_seq: int = 0


@dataclass
class _Transaction:
    conn: SoftCtapHidConnection
    cid: int
    next_keepalive: float
    cancel: threading.Event = field(default_factory=threading.Event)
    status: int = KEEPALIVE_PROCESSING
    abandoned: bool = False
    thread: threading.Thread | None = None


class SoftCtapHidDevice:
    """A USB FIDO HID device around an Authenticator.

    :param keepalive_interval: seconds between KEEPALIVE packets while a CBOR
        request is pending (the spec's 100 ms); the first UPNEEDED is sent at once.
    :param message_timeout: seconds the device waits for the next continuation
        packet before answering ERR_MSG_TIMEOUT and dropping the message.
    """

    def __init__(
        self,
        authenticator: Authenticator,
        *,
        vid: int = 0x1209,
        pid: int = 0xF1D0,
        product_name: str = "authnet soft CTAP2",
        serial_number: str | None = None,
        device_version: tuple[int, int, int] = (1, 0, 0),
        keepalive_interval: float = 0.1,
        message_timeout: float = 0.5,
    ) -> None:
        self.authenticator = authenticator
        self.device_version = device_version
        self.keepalive_interval = keepalive_interval
        self.message_timeout = message_timeout
        self.descriptor = HidDescriptor(
            path=f"soft-ctap2:{id(self):x}",
            vid=vid,
            pid=pid,
            report_size_in=REPORT_SIZE,
            report_size_out=REPORT_SIZE,
            product_name=product_name,
            serial_number=serial_number,
        )
        self.winks = 0
        self._cond = threading.Condition()
        self._channels: set[int] = set()
        self._next_cid = 1
        self._assembly: _Assembly | None = None
        self._transaction: _Transaction | None = None
        self._threads: set[threading.Thread] = set()

    # ---------------------------------------------------------------- public

    def connect(self, *, read_timeout: float = 10.0) -> SoftCtapHidConnection:
        """A new host-side handle (python-fido2 `CtapHidConnection`)."""
        return SoftCtapHidConnection(self, read_timeout=read_timeout)

    def open(self, *, read_timeout: float = 10.0) -> CtapHidDevice:
        """python-fido2's own `CtapHidDevice` over a new connection (runs CTAPHID_INIT)."""
        return CtapHidDevice(self.descriptor, self.connect(read_timeout=read_timeout))

    @property
    def channels(self) -> frozenset[int]:
        with self._cond:
            return frozenset(self._channels)

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._transaction is not None or self._assembly is not None

    def close(self, timeout: float = 5.0) -> None:
        """Cancel a pending request and wait for its worker thread."""
        with self._cond:
            txn = self._transaction
            if txn is not None:
                txn.abandoned = True
                txn.cancel.set()
            self._transaction = None
            self._assembly = None
            threads = list(self._threads)
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -------------------------------------------------------------- receive

    def _receive(self, conn: SoftCtapHidConnection, packet: bytes) -> None:
        if len(packet) != REPORT_SIZE:
            raise ValueError(f"HID output reports are {REPORT_SIZE} bytes, got {len(packet)}")
        with self._cond:
            now = time.monotonic()
            self._expire(now)
            cid = struct.unpack_from(">I", packet)[0]
            if packet[4] & TYPE_INIT:
                self._init_packet(conn, cid, packet[4] & 0x7F, packet, now)
            else:
                self._cont_packet(conn, cid, packet[4], packet[5:], now)
            self._cond.notify_all()

    def _init_packet(
        self, conn: SoftCtapHidConnection, cid: int, cmd: int, packet: bytes, now: float
    ) -> None:
        length = struct.unpack_from(">H", packet, 5)[0]
        data = packet[7 : 7 + min(length, INIT_DATA_SIZE)]
        if cid == 0:
            self._error(conn, cid, ERR_INVALID_CHANNEL)
            return
        if cmd == CMD_CANCEL:
            txn = self._transaction
            if txn is not None and txn.cid == cid:
                txn.cancel.set()  # CTAPHID_CANCEL has no response of its own
            return
        if cmd == CMD_INIT:
            self._init(conn, cid, length, data)
            return
        if cid == BROADCAST_CID or cid not in self._channels:
            self._error(conn, cid, ERR_INVALID_CHANNEL)
            return
        if self._transaction is not None:
            self._error(conn, cid, ERR_CHANNEL_BUSY)
            return
        if self._assembly is not None:
            if self._assembly.cid != cid:
                self._error(conn, cid, ERR_CHANNEL_BUSY)
            else:
                # A new request in the middle of a message: the message is lost.
                self._assembly = None
                self._error(conn, cid, ERR_INVALID_SEQ)
            return
        if length > MAX_MESSAGE_SIZE:
            self._error(conn, cid, ERR_INVALID_LEN)
            return
        assembly = _Assembly(conn, cid, cmd, length, bytearray(data), now)
        if len(assembly.data) >= length:
            self._dispatch(assembly)
        else:
            self._assembly = assembly

    def _cont_packet(
        self, conn: SoftCtapHidConnection, cid: int, seq: int, data: bytes, now: float
    ) -> None:
        assembly = self._assembly
        if assembly is None or assembly.cid != cid:
            return  # spurious continuation packets are ignored
        if seq != assembly.next_seq:
            self._assembly = None
            self._error(conn, cid, ERR_INVALID_SEQ)
            return
        assembly.data += data[: assembly.length - len(assembly.data)]
        assembly.next_seq += 1
        assembly.last_packet = now
        if len(assembly.data) >= assembly.length:
            self._assembly = None
            self._dispatch(assembly)

    def _init(self, conn: SoftCtapHidConnection, cid: int, length: int, nonce: bytes) -> None:
        if length != 8:
            self._error(conn, cid, ERR_INVALID_LEN)
            return
        if cid == BROADCAST_CID:
            new_cid = self._allocate()
        elif cid in self._channels:
            # Resynchronise: abandon whatever the channel was doing.
            new_cid = cid
            if self._assembly is not None and self._assembly.cid == cid:
                self._assembly = None
            txn = self._transaction
            if txn is not None and txn.cid == cid:
                txn.abandoned = True
                txn.cancel.set()
                self._transaction = None
        else:
            self._error(conn, cid, ERR_INVALID_CHANNEL)
            return
        major, minor, build = self.device_version
        capabilities = CAPABILITY_CBOR | CAPABILITY_WINK | CAPABILITY_NMSG
        response = nonce + struct.pack(
            ">IBBBBB", new_cid, CTAPHID_PROTOCOL_VERSION, major, minor, build, capabilities
        )
        self._send(conn, cid, CMD_INIT, response)

    def _allocate(self) -> int:
        while self._next_cid in self._channels or self._next_cid in (0, BROADCAST_CID):
            self._next_cid = (self._next_cid + 1) & 0xFFFFFFFF
        cid = self._next_cid
        self._next_cid = (cid + 1) & 0xFFFFFFFF
        self._channels.add(cid)
        return cid

    def _dispatch(self, assembly: _Assembly) -> None:
        conn, cid, cmd, data = assembly.conn, assembly.cid, assembly.cmd, bytes(assembly.data)
        if cmd == CMD_PING:
            self._send(conn, cid, CMD_PING, data)
        elif cmd == CMD_WINK:
            if data:
                self._error(conn, cid, ERR_INVALID_LEN)
            else:
                self.winks += 1
                self._send(conn, cid, CMD_WINK, b"")
        elif cmd == CMD_CBOR:
            if not data:
                self._error(conn, cid, ERR_INVALID_LEN)
            else:
                self._start(conn, cid, data)
        else:
            # CTAPHID_MSG (no U2F: NMSG), LOCK, KEEPALIVE/ERROR (device-to-host
            # only), vendor and unknown commands.
            self._error(conn, cid, ERR_INVALID_CMD)

    def _start(self, conn: SoftCtapHidConnection, cid: int, request: bytes) -> None:
        txn = _Transaction(conn, cid, time.monotonic() + self.keepalive_interval)
        self._transaction = txn
        txn.thread = threading.Thread(
            target=self._run, args=(txn, request), name=f"soft-ctap2 cid {cid:08x}", daemon=True
        )
        self._threads.add(txn.thread)
        txn.thread.start()

    def _run(self, txn: _Transaction, request: bytes) -> None:
        def keepalive(status: int) -> None:
            with self._cond:
                if status != txn.status and status == KEEPALIVE_UPNEEDED:
                    txn.next_keepalive = time.monotonic()  # tell the host at once
                txn.status = status
                self._cond.notify_all()

        try:
            response = self.authenticator.process(
                request[0], request[1:], cancel=txn.cancel, keepalive=keepalive
            )
        except Exception:  # pragma: no cover - process() answers every failure itself
            response = bytes([ERR_OTHER])
        with self._cond:
            if not txn.abandoned:
                self._send(txn.conn, txn.cid, CMD_CBOR, response)
            if self._transaction is txn:
                self._transaction = None
            self._threads.discard(threading.current_thread())
            self._cond.notify_all()

    # ----------------------------------------------------------------- send

    def _send(self, conn: SoftCtapHidConnection, cid: int, cmd: int, data: bytes) -> None:
        if not conn.closed:
            conn.outbox.extend(frame(cid, cmd, data))

    def _error(self, conn: SoftCtapHidConnection, cid: int, code: int) -> None:
        self._send(conn, cid, CMD_ERROR, bytes([code]))

    def _expire(self, now: float) -> None:
        assembly = self._assembly
        if assembly is not None and now - assembly.last_packet > self.message_timeout:
            self._assembly = None
            self._error(assembly.conn, assembly.cid, ERR_MSG_TIMEOUT)

    def _read(self, conn: SoftCtapHidConnection, timeout: float) -> bytes:
        with self._cond:
            deadline = time.monotonic() + timeout
            while True:
                now = time.monotonic()
                self._expire(now)
                if conn.outbox:
                    return conn.outbox.popleft()
                wait = deadline - now
                txn = self._transaction
                if txn is not None and txn.conn is conn and not txn.abandoned:
                    if now >= txn.next_keepalive:
                        txn.next_keepalive = now + self.keepalive_interval
                        return frame(txn.cid, CMD_KEEPALIVE, bytes([txn.status]))[0]
                    wait = min(wait, txn.next_keepalive - now)
                if self._assembly is not None:
                    wait = min(wait, self._assembly.last_packet + self.message_timeout - now)
                if now >= deadline:
                    raise TimeoutError("no CTAPHID packet from the simulated device")
                self._cond.wait(max(wait, 0.001))

    def _disconnect(self, conn: SoftCtapHidConnection) -> None:
        with self._cond:
            conn.closed = True
            conn.outbox.clear()
            txn = self._transaction
            if txn is not None and txn.conn is conn:
                txn.abandoned = True
                txn.cancel.set()
                self._transaction = None
            if self._assembly is not None and self._assembly.conn is conn:
                self._assembly = None
            self._cond.notify_all()


class SoftCtapHidConnection(CtapHidConnection):
    """One host handle on a SoftCtapHidDevice (python-fido2 `CtapHidConnection`)."""

    def __init__(self, device: SoftCtapHidDevice, *, read_timeout: float = 10.0) -> None:
        self.device = device
        self.read_timeout = read_timeout
        self.outbox: deque[bytes] = deque()
        self.closed = False

    def write_packet(self, data: bytes) -> None:
        if self.closed:
            raise OSError("connection closed")
        self.device._receive(self, bytes(data))

    def read_packet(self, timeout: float | None = None) -> bytes:
        """The next input report; TimeoutError if none arrives in time (a real
        hidraw read would block forever)."""
        if self.closed:
            raise OSError("connection closed")
        return self.device._read(self, self.read_timeout if timeout is None else timeout)

    def close(self) -> None:
        if not self.closed:
            self.device._disconnect(self)
