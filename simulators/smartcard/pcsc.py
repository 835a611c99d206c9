"""The real PC/SC stack for tests: start (or reuse) pcscd, and put a VirtualCard
into one of its vpcd readers.

    from simulators.smartcard.pcsc import Pcscd, virtual_card

    with Pcscd.ensure() as pcscd, virtual_card(reader=0, pcscd=pcscd) as slot:
        with slot.connection() as conn:    # a pyscard CardConnection, connected
            data, sw1, sw2 = conn.transmit(list(bytes.fromhex("00A4040005A000000308")))

`Pcscd.ensure()` reuses a pcscd that already answers on its socket, or starts
`pcscd --foreground` itself (and stops it on `stop()`/exit); either way it
waits until the vpcd readers are listed, and raises PcscError with the reason
(and pcscd's own output) if that does not happen in time. `virtual_card()`
inserts the card, waits until pcscd reports it present, and at the end
removes it and waits until pcscd reports it gone, so consecutive tests never
see each other's card. A file lock per reader keeps two processes from
inserting cards into the same reader at once.

Timing: pcscd polls the vpcd driver about every 400 ms, so an insertion or a
removal takes up to half a second to become visible; everything here waits
on pcscd's own state (SCardGetStatusChange) with a deadline, never a fixed
sleep.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from smartcard import scard

from .card import VirtualCard
from .vpcd import VPCD_HOST, VpcdLink, vpcd_port

__all__ = [
    "PCSCD_PID",
    "PCSCD_SOCKET",
    "PcscError",
    "Pcscd",
    "ReaderSlot",
    "card_present",
    "list_readers",
    "pcscd_listening",
    "reader_name",
    "virtual_card",
    "wait_for_card",
    "wait_for_readers",
]

PCSCD_SOCKET = Path(os.environ.get("PCSCLITE_CSOCK_NAME", "/run/pcscd/pcscd.comm"))
PCSCD_PID = PCSCD_SOCKET.with_name("pcscd.pid")
VPCD_READER_PREFIX = "Virtual PCD 00 "


class PcscError(RuntimeError):
    """The PC/SC stack is not in the state a test needs (with the reason)."""


def reader_name(index: int = 0) -> str:
    """The PC/SC name of vpcd reader `index`: "Virtual PCD 00 00", "... 00 01"."""
    return f"{VPCD_READER_PREFIX}{index:02d}"


# --- pcscd ------------------------------------------------------------------------------


def pcscd_listening(socket_path: Path = PCSCD_SOCKET) -> bool:
    """True if a pcscd accepts connections on its socket (a leftover socket file
    with nobody behind it does not count)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2.0)
        try:
            s.connect(str(socket_path))
        except OSError:
            return False
    return True


def _live_pcscd(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    comm = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 : stat.rfind(")") + 3]
    return comm == "pcscd" and state not in ("Z", "X")


def clear_stale_pcscd_files(socket_path: Path = PCSCD_SOCKET, pid_path: Path = PCSCD_PID) -> bool:
    """Remove the socket and pid files a killed pcscd left behind (pcscd refuses
    to start while they exist). Returns True if it removed anything. Raises
    PcscError if the pid file names a live pcscd that does not answer."""
    if pcscd_listening(socket_path):
        return False
    pid: int | None = None
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_path.read_text().strip())
    if pid is not None and _live_pcscd(pid):
        raise PcscError(
            f"pcscd (pid {pid}) is running but does not answer on {socket_path}; stop it first"
        )
    removed = False
    for path in (socket_path, pid_path):
        try:
            path.unlink()
            removed = True
        except FileNotFoundError:
            pass
        except OSError as e:
            raise PcscError(f"cannot remove stale pcscd file {path}: {e}") from None
    return removed


def _establish() -> Any:
    hresult, hcontext = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise PcscError(f"no PC/SC service: {scard.SCardGetErrorMessage(hresult)}")
    return hcontext


def list_readers() -> list[str]:
    """The readers pcscd lists now ([] if none; PcscError if pcscd is not there)."""
    hcontext = _establish()
    try:
        hresult, readers = scard.SCardListReaders(hcontext, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscError(f"cannot list readers: {scard.SCardGetErrorMessage(hresult)}")
        return list(readers)
    finally:
        scard.SCardReleaseContext(hcontext)


def wait_for_readers(names: list[str], timeout: float = 10.0) -> None:
    """Wait until pcscd lists all of `names`."""
    deadline = time.monotonic() + timeout
    last: list[str] | str = []
    while True:
        try:
            last = list_readers()
            if all(n in last for n in names):
                return
        except PcscError as e:
            last = str(e)
        if time.monotonic() >= deadline:
            raise PcscError(
                f"pcscd did not list the readers {names} within {timeout:.0f} s (it has: "
                f"{last}); is vsmartcard-vpcd installed (/etc/reader.conf.d/vpcd)?"
            )
        time.sleep(0.05)


class Pcscd:
    """A pcscd this process started (`started` True) or one it found running."""

    def __init__(self, process: subprocess.Popen[bytes] | None, log_path: Path | None) -> None:
        self.process = process
        self.log_path = log_path
        self._log_file: IO[bytes] | None = None

    @property
    def started(self) -> bool:
        return self.process is not None

    @classmethod
    def ensure(
        cls,
        *,
        timeout: float = 15.0,
        executable: str = "pcscd",
        readers: tuple[int, ...] = (0, 1),
        debug: bool = False,
        socket_path: Path = PCSCD_SOCKET,
    ) -> Pcscd:
        """A running pcscd with the vpcd readers: the one already there, or a new
        `pcscd --foreground`. Fails loudly (PcscError) if neither works.
        (`socket_path` is where pcscd is looked for: its compiled-in socket.)"""
        names = [reader_name(i) for i in readers]
        if pcscd_listening(socket_path):
            wait_for_readers(names, timeout)
            return cls(None, None)
        binary = shutil.which(executable) or (
            f"/usr/sbin/{executable}" if Path(f"/usr/sbin/{executable}").exists() else None
        )
        if binary is None:
            raise PcscError(
                f"{executable} is not installed: install the Debian packages pcscd and "
                "vsmartcard-vpcd (scripts/install-system-deps.sh test)"
            )
        clear_stale_pcscd_files(socket_path, socket_path.with_name("pcscd.pid"))
        fd, log_name = tempfile.mkstemp(prefix="authnet-pcscd-", suffix=".log")
        log_file = os.fdopen(fd, "wb")
        args = [binary, "--foreground"] + (["--debug", "--apdu"] if debug else [])
        try:
            process = subprocess.Popen(  # noqa: S603  # fixed argv, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            log_file.close()
            raise PcscError(f"cannot start {binary}: {e}") from None
        daemon = cls(process, Path(log_name))
        daemon._log_file = log_file
        atexit.register(daemon.stop)
        deadline = time.monotonic() + timeout
        try:
            while not pcscd_listening(socket_path):
                if process.poll() is not None:
                    raise PcscError(
                        f"pcscd exited with status {process.returncode} at startup "
                        f"(it needs root, or write access to {socket_path.parent}). "
                        f"Its output:\n{daemon.log_tail()}"
                    )
                if time.monotonic() >= deadline:
                    raise PcscError(
                        f"pcscd did not open {socket_path} within {timeout:.0f} s. "
                        f"Its output:\n{daemon.log_tail()}"
                    )
                time.sleep(0.02)
            wait_for_readers(names, max(deadline - time.monotonic(), 1.0))
        except BaseException:
            daemon.stop()
            raise
        return daemon

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None:
            return "(not started here: see the system log)"
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:]) or "(no output)"

    def stop(self) -> None:
        """Stop pcscd if this object started it (a reused one is left running)."""
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None
        atexit.unregister(self.stop)

    def __enter__(self) -> Pcscd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# --- cards ---------------------------------------------------------------------------------


def _reader_state(hcontext: Any, reader: str, current: int, timeout_ms: int) -> tuple[int, int]:
    hresult, states = scard.SCardGetStatusChange(hcontext, timeout_ms, [(reader, current)])
    return hresult, (states[0][1] if hresult == scard.SCARD_S_SUCCESS else current)


def card_present(reader: str) -> bool:
    hcontext = _establish()
    try:
        hresult, event = _reader_state(hcontext, reader, scard.SCARD_STATE_UNAWARE, 0)
        if hresult != scard.SCARD_S_SUCCESS:
            raise PcscError(f"{reader}: {scard.SCardGetErrorMessage(hresult)}")
        return bool(event & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(hcontext)


def wait_for_card(reader: str, *, present: bool = True, timeout: float = 10.0) -> None:
    """Wait until pcscd reports a card in `reader` (or, with present=False, none)."""
    deadline = time.monotonic() + timeout
    hcontext = _establish()
    try:
        current = scard.SCARD_STATE_UNAWARE
        while True:
            remaining = deadline - time.monotonic()
            slice_ms = max(0, min(int(remaining * 1000), 250))
            hresult, event = _reader_state(hcontext, reader, current, slice_ms)
            if hresult == scard.SCARD_S_SUCCESS:
                if event & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_IGNORE):
                    raise PcscError(f"pcscd has no reader {reader!r}")
                if bool(event & scard.SCARD_STATE_PRESENT) == present:
                    return
                current = event & ~scard.SCARD_STATE_CHANGED
            elif hresult == scard.SCARD_E_UNKNOWN_READER:
                raise PcscError(f"pcscd has no reader {reader!r}")
            elif hresult != scard.SCARD_E_TIMEOUT:
                raise PcscError(f"{reader}: {scard.SCardGetErrorMessage(hresult)}")
            if remaining <= 0:
                what = "a card to appear" if present else "the card to leave"
                raise PcscError(
                    f"timed out after {timeout:.1f} s waiting for {what} in {reader!r}"
                    + (" (is another card program connected to this reader?)" if present else "")
                )
    finally:
        scard.SCardReleaseContext(hcontext)


@contextlib.contextmanager
def _reader_lock(index: int, timeout: float) -> Iterator[None]:
    path = Path(tempfile.gettempdir()) / f"authnet-vpcd-reader-{index}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PcscError(
                        f"vpcd reader {index} is in use by another test or process ({path})"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class ReaderSlot:
    """A VirtualCard in a vpcd reader of the running pcscd."""

    def __init__(self, card: VirtualCard, index: int = 0, *, timeout: float = 10.0) -> None:
        self.card = card
        self.index = index
        self.reader = reader_name(index)
        self.timeout = timeout
        self.link = VpcdLink(card, port=vpcd_port(index), host=VPCD_HOST)

    def insert(self) -> None:
        """Insert the card and wait until pcscd has it."""
        self.link.insert()
        try:
            wait_for_card(self.reader, present=True, timeout=self.timeout)
        except BaseException:
            self.link.remove()
            raise

    def remove(self) -> None:
        """Pull the card and wait until pcscd has noticed."""
        self.link.remove()
        wait_for_card(self.reader, present=False, timeout=self.timeout)

    def swap(self, card: VirtualCard) -> None:
        """Remove the current card and insert `card` (e.g. the same state file
        reloaded, as after a restart of the card program)."""
        if self.link.inserted:
            self.remove()
        self.card = card
        self.link = VpcdLink(card, port=vpcd_port(self.index), host=VPCD_HOST)
        self.insert()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connected pyscard CardConnection to this reader, found through
        `smartcard.System.readers()`; disconnected and released on exit (a
        pyscard connection left to the garbage collector after pcscd stops
        raises from its destructor)."""
        from smartcard.Exceptions import CardConnectionException
        from smartcard.System import readers

        matches = [r for r in readers() if str(r) == self.reader]
        if not matches:
            raise PcscError(f"pcscd does not list {self.reader!r}")
        conn = matches[0].createConnection()
        try:
            conn.connect()
            yield conn
        finally:
            with contextlib.suppress(CardConnectionException):
                conn.disconnect()
            with contextlib.suppress(CardConnectionException):
                conn.release()


@contextlib.contextmanager
def virtual_card(
    card: VirtualCard | None = None,
    *,
    reader: int = 0,
    pcscd: Pcscd | None = None,
    timeout: float = 10.0,
) -> Iterator[ReaderSlot]:
    """A VirtualCard (a fresh default one unless given) in vpcd reader `reader`,
    present in pcscd for the duration of the block. Without `pcscd`, ensures
    one itself (and stops it afterwards if it had to start it)."""
    own = pcscd is None
    daemon = Pcscd.ensure(timeout=timeout) if pcscd is None else pcscd
    try:
        with _reader_lock(reader, timeout):
            if card_present(reader_name(reader)):
                raise PcscError(
                    f"{reader_name(reader)} already holds a card: another card program "
                    "is connected to it"
                )
            slot = ReaderSlot(card or VirtualCard.create(), reader, timeout=timeout)
            slot.insert()
            try:
                yield slot
            finally:
                if slot.link.inserted:
                    slot.remove()
                else:
                    slot.link.remove()
                    wait_for_card(slot.reader, present=False, timeout=timeout)
    finally:
        if own:
            daemon.stop()
