"""Fresh SoftHSM2 tokens for tests and demos: a real PKCS#11 module (Debian's
softhsm2) over a token directory of our own.

SoftHSM reads its configuration (SOFTHSM2_CONF) and finds its tokens once per
process, when the module initialises; a token initialised later by
softhsm2-util stays invisible to that process (and re-initialising the module
would end every open session). So `SoftHsm.shared()` initialises a pool of
tokens before the module is first loaded, and `new_token()` hands them out.

    hsm = SoftHsm.shared()
    token = hsm.new_token()                  # -> HsmToken(label, pin, so_pin)
    Pkcs11PassKey.provision(Pkcs11Config(module=hsm.module, token_label=token.label),
                            pin=token.pin)
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


class SoftHsmUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class HsmToken:
    label: str
    pin: str
    so_pin: str


class SoftHsm:
    _shared: ClassVar[SoftHsm | None] = None
    POOL: ClassVar[int] = 64
    PIN: ClassVar[str] = "1234"

    def __init__(self, root: Path) -> None:
        util = shutil.which("softhsm2-util")
        if not Path(MODULE).exists() or util is None:
            raise SoftHsmUnavailable(
                f"SoftHSM2 is not installed ({MODULE}); install the Debian package softhsm2"
            )
        self.root = root
        self.module = MODULE
        self.util = util
        (root / "tokens").mkdir(parents=True, exist_ok=True)
        self.conf = root / "softhsm2.conf"
        self.conf.write_text(
            f"directories.tokendir = {root / 'tokens'}\n"
            "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
        self._pool: list[HsmToken] = []

    @classmethod
    def shared(cls) -> SoftHsm:
        """This process's SoftHSM (created on first use, in a temporary folder)."""
        if cls._shared is None:
            existing = os.environ.get("SOFTHSM2_CONF")
            root = Path(tempfile.mkdtemp(prefix="authnet-softhsm-"))
            atexit.register(shutil.rmtree, root, ignore_errors=True)
            hsm = cls(root)
            if existing and existing != str(hsm.conf):
                # The module may already have read another configuration.
                hsm.conf = Path(existing)
            os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
            hsm._pool = [hsm.init_token(pin=cls.PIN) for _ in range(cls.POOL)]
            cls._shared = hsm
        return cls._shared

    def new_token(self) -> HsmToken:
        """A token no one has used yet (PIN `SoftHsm.PIN`)."""
        if not self._pool:
            raise SoftHsmUnavailable(
                f"all {self.POOL} pre-initialised SoftHSM tokens are in use: raise SoftHsm.POOL"
            )
        return self._pool.pop()

    def token_dir(self, label: str) -> Path:
        """The directory where SoftHSM keeps the token labelled `label`."""
        tokendir = self.root / "tokens"
        for line in self.conf.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "directories.tokendir":
                tokendir = Path(value.strip())
        # token.object holds the label as a 32-byte, space-padded field.
        wanted = label.encode().ljust(32, b" ")
        for d in sorted(tokendir.iterdir()):
            with contextlib.suppress(OSError):
                if wanted in (d / "token.object").read_bytes():
                    return d
        raise SoftHsmUnavailable(f"no SoftHSM token labelled {label!r} in {tokendir}")

    def pull_out(self, label: str) -> None:
        """Delete the token's storage, which is what a token pulled out of the
        computer looks like to a process that has the module loaded: its
        objects vanish, and opening it fails (CKR_GENERAL_ERROR)."""
        shutil.rmtree(self.token_dir(label))

    def init_token(self, *, label: str | None = None, pin: str) -> HsmToken:
        """Initialise a token with softhsm2-util (visible to processes that load
        the module afterwards)."""
        label = label or f"authnet-{secrets.token_hex(4)}"
        so_pin = secrets.token_hex(8)
        # Fixed program, arguments as a list (no shell): nothing to inject into.
        done = subprocess.run(  # noqa: S603
            [
                self.util,
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                so_pin,
            ],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SoftHsmUnavailable(f"softhsm2-util failed: {done.stderr.strip()}")
        return HsmToken(label=label, pin=pin, so_pin=so_pin)
