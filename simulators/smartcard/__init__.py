"""A virtual smartcard on the real PC/SC stack: PIV (NIST SP 800-73-4) and the
YubiKey OTP application's HMAC-SHA1 challenge-response.

Layers, each usable alone:

- `VirtualCard` (card.py): the card itself, I/O-free. `process(apdu) -> response`
  implements ISO 7816-4 framing and the PIV and OTP applications; its memory is
  a JSON state file (0600, written atomically) or RAM only.
- `VpcdLink` (vpcd.py): connects a VirtualCard to a vsmartcard vpcd reader of
  pcscd over TCP; `insert()` / `remove()` are card insertion and removal.
- `Pcscd`, `virtual_card`, `ReaderSlot` (pcsc.py): start or reuse pcscd, wait
  for readers and cards, and give a test "a virtual card in reader 0" that any
  PC/SC client (pyscard, OpenSC, ykman, KeePassXC) sees as hardware.
- `python -m simulators.smartcard --state card.json` runs a card program.

Defaults are a YubiKey 5's: PIN 123456, PUK 12345678 (3 tries each), card
management key 010203040506070801020304050607080102030405060708, AES-192 on the
default firmware 5.7.1 and Triple DES on cards created with firmware before 5.7.
"""

from .apdu import CommandApdu, SwError
from .card import ATR, DEFAULT_FIRMWARE, VirtualCard
from .otp import OTP_AID
from .pcsc import (
    Pcscd,
    PcscError,
    ReaderSlot,
    card_present,
    list_readers,
    pcscd_listening,
    reader_name,
    virtual_card,
    wait_for_card,
    wait_for_readers,
)
from .piv import (
    DEFAULT_MANAGEMENT_KEY,
    DEFAULT_PIN,
    DEFAULT_PUK,
    DEFAULT_RETRIES,
    PIV_AID,
)
from .state import CardState, CardStateError
from .vpcd import VPCD_PORT, VpcdError, VpcdLink, vpcd_port

__all__ = [
    "ATR",
    "DEFAULT_FIRMWARE",
    "DEFAULT_MANAGEMENT_KEY",
    "DEFAULT_PIN",
    "DEFAULT_PUK",
    "DEFAULT_RETRIES",
    "OTP_AID",
    "PIV_AID",
    "VPCD_PORT",
    "CardState",
    "CardStateError",
    "CommandApdu",
    "PcscError",
    "Pcscd",
    "ReaderSlot",
    "SwError",
    "VirtualCard",
    "VpcdError",
    "VpcdLink",
    "card_present",
    "list_readers",
    "pcscd_listening",
    "reader_name",
    "virtual_card",
    "vpcd_port",
    "wait_for_card",
    "wait_for_readers",
]
