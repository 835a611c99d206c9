"""Run a virtual card in a vpcd reader until interrupted.

    python -m simulators.smartcard --state card.json [--reader 0] [--otp-secret HEX]
                                   [--firmware 5.7.1] [--management-algorithm 3des]

The state file is created on first use (PIN 123456, PUK 12345678, YubiKey's
default management key: AES-192 on firmware 5.7 and later, Triple DES before)
and resumed afterwards. `--management-algorithm 3des` makes a new card whose
default management key is Triple DES whatever the firmware (what Debian 12's
yubico-piv-tool 2.2 can authenticate with). The program prints one line
"inserted <reader port> serial <n>" once connected, removes the card and exits 0
on SIGTERM or SIGINT, and exits 3 if the reader goes away (pcscd stopped).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .card import VirtualCard
from .state import ALG_3DES, ALG_AES128, ALG_AES192, ALG_AES256, CardStateError
from .vpcd import VPCD_HOST, VpcdError, VpcdLink, vpcd_port

MANAGEMENT_ALGORITHMS = {
    "3des": ALG_3DES,
    "aes128": ALG_AES128,
    "aes192": ALG_AES192,
    "aes256": ALG_AES256,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simulators.smartcard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--state", type=Path, help="card state file (default: RAM only)")
    parser.add_argument("--reader", type=int, default=0, help="vpcd reader index (0 or 1)")
    parser.add_argument("--host", default=VPCD_HOST)
    parser.add_argument("--otp-secret", help="hex HMAC-SHA1 secret for OTP slot 2 (new cards)")
    parser.add_argument(
        "--firmware",
        metavar="X.Y.Z",
        help="YubiKey firmware version to act as (new cards; default 5.7.1): before 5.7 the "
        "default management key is Triple DES, before 5.3 there is no GET METADATA",
    )
    parser.add_argument(
        "--management-algorithm",
        choices=sorted(MANAGEMENT_ALGORITHMS),
        help="algorithm of the default management key (new cards; default: AES-192 from "
        "firmware 5.7, Triple DES before)",
    )
    args = parser.parse_args(argv)

    options: dict[str, object] = {}
    if args.otp_secret:
        options["otp_slot2_secret"] = bytes.fromhex(args.otp_secret)
    if args.firmware:
        parts = args.firmware.split(".")
        if len(parts) != 3 or not all(p.isdigit() and int(p) < 256 for p in parts):
            print("error: --firmware is three numbers 0..255, e.g. 5.4.3", file=sys.stderr)
            return 2
        options["firmware"] = (int(parts[0]), int(parts[1]), int(parts[2]))
    if args.management_algorithm:
        options["management_algorithm"] = MANAGEMENT_ALGORITHMS[args.management_algorithm]
    try:
        if args.state is None:
            card = VirtualCard.create(**options)  # type: ignore[arg-type]
        else:
            card = VirtualCard.load_or_create(args.state, **options)
    except (CardStateError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    link = VpcdLink(card, port=vpcd_port(args.reader), host=args.host)
    try:
        link.insert()
    except VpcdError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"inserted {link.port} serial {card.serial}", flush=True)
    while not stop.is_set():
        if link.dropped.wait(0.2):
            print("error: the reader closed the connection", file=sys.stderr)
            return 3
    link.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
