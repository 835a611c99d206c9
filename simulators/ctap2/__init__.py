"""A software CTAP 2.1 authenticator (a FIDO2 security key with a button, a
client PIN and no biometric) that unmodified python-fido2 drives.

The authenticator itself is I/O-free (`Authenticator.process(command, payload)`
→ status byte + CBOR) over a JSON state file; two transports carry it:

* `SoftCtapDevice`: a `fido2.ctap.CtapDevice` that hands CTAPHID_CBOR payloads
  straight to the authenticator (no framing);
* `SoftCtapHidDevice`: the same behind real 64-byte CTAPHID packets;
  `.open()` returns python-fido2's own `fido2.hid.CtapHidDevice`.

Typical use (fido2 2.2)::

    from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
    from fido2.ctap2 import Ctap2
    from fido2.ctap2.pin import ClientPin
    from simulators.ctap2 import Authenticator, SoftCtapDevice, SoftCtapHidDevice

    auth = Authenticator(tmp_path / "key.json")           # new device, or resume
    device = SoftCtapDevice(auth)                          # or SoftCtapHidDevice(auth).open()
    ClientPin(Ctap2(device)).set_pin("1234")

    class Pin(UserInteraction):
        def request_pin(self, permissions, rp_id):
            return "1234"

    client = Fido2Client(device, DefaultClientDataCollector("https://example.com"), Pin())
    # client.make_credential(options), client.get_assertion(options): PRF is on by
    # default; pass extensions=[HmacSecretExtension(allow_hmac_secret=True)] for
    # raw hmac-secret.

User presence is `Authenticator(presence=...)`: a callable given a
`PresenceRequest` that returns True (touched), False (refused) or None (nobody
touched before the timeout); `approve` (default), `deny`, `no_touch` and
`TouchButton` (waits for `press()`, honours cancellation) are provided. The
attribute can be swapped at any time (`auth.presence = deny`).
`verification=` is asked before a pinUvAuthToken is issued (a key with a
display confirming the permissions). `auth.power_cycle()` unplugs and replugs.
"""

from simulators.ctap2.authenticator import (
    DEFAULT_AAGUID,
    Authenticator,
    CredentialInfo,
    PresenceCallback,
    PresenceRequest,
    PresenceResult,
    TouchButton,
    VerificationCallback,
    VerificationRequest,
    approve,
    deny,
    no_touch,
)
from simulators.ctap2.device import SoftCtapDevice
from simulators.ctap2.hid import SoftCtapHidConnection, SoftCtapHidDevice
from simulators.ctap2.status import CtapFail, Status

__all__ = [
    "DEFAULT_AAGUID",
    "Authenticator",
    "CredentialInfo",
    "CtapFail",
    "PresenceCallback",
    "PresenceRequest",
    "PresenceResult",
    "SoftCtapDevice",
    "SoftCtapHidConnection",
    "SoftCtapHidDevice",
    "Status",
    "TouchButton",
    "VerificationCallback",
    "VerificationRequest",
    "approve",
    "deny",
    "no_touch",
]
