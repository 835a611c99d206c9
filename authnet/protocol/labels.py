"""Every domain-separation label of protocol version 1, in one place.

docs/protocol.md lists the same labels; a test checks the two agree. Changing a
label changes every key or signature derived under it: that is a new protocol
version, not an edit.
"""

from __future__ import annotations

from typing import Final

# Hashes of public values that bind contexts.
TICKET_HASH: Final = b"authnet/v1 ticket"
BROWSER_KEY_HASH: Final = b"authnet/v1 browser key"
SEALED_KC_HASH: Final = b"authnet/v1 sealed kc digest"
# The browser's X-Wing key (its hash rides in the QR code) and a dual offer.
BROWSER_PQ_KEY_HASH: Final = b"authnet/v1 browser pq key"
BROWSER_OFFER: Final = b"authnet/v1 browser offer"

# Signed transcripts (token -> network).
AUTH_RESPONSE: Final = b"authnet/v1 auth response"
AUTH_DECLINE: Final = b"authnet/v1 auth decline"
ENROL: Final = b"authnet/v1 enrol"
ADD_TOKEN: Final = b"authnet/v1 add token"
LIST_TOKENS: Final = b"authnet/v1 list tokens"
REVOKE_TOKEN: Final = b"authnet/v1 revoke token"
# A token registering the success key of its hardened PIN (§17).
ENROL_PIN: Final = b"authnet/v1 enrol pin"
# A browser-native security-key login (the page asserts with WebAuthn).
WEBAUTHN_LOGIN: Final = b"authnet/v1 webauthn login"

# Client key Kc: HKDF salts naming each token kind, and the inputs the devices
# compute on (see authnet.protocol.kc).
KC_PHONE_SALT: Final = b"authnet/v1 phone kc"
KC_FIDO2_SALT: Final = b"authnet/v1 fido2 kc"
KC_PIV_SALT: Final = b"authnet/v1 piv kc"
KC_PKCS11_SALT: Final = b"authnet/v1 pkcs11 kc"
KC_OTP_SALT: Final = b"authnet/v1 otp kc"
FIDO2_PRF_INPUT: Final = b"authnet/v1 fido2 prf"
PIV_KC_POINT_DST: Final = b"authnet/v1 piv kc point P256_XMD:SHA-256_SSWU_RO_"
PKCS11_HMAC_INPUT: Final = b"authnet/v1 pkcs11 hmac"
OTP_CHALLENGE: Final = b"authnet/v1 otp challenge"
KC_INFO: Final = b"authnet/v1 kc"
KC_FINGERPRINT: Final = b"authnet/v1 kc fingerprint"
SEAL_INFO: Final = b"authnet/v1 sealed kc"

# Network-internal keys derived from the network master secret.
NETWORK_SALT: Final = b"authnet/v1 network"
PUID_KEY: Final = b"authnet/v1 puid key"
KEY_ID_KEY: Final = b"authnet/v1 key id key"
RENEW_KEY: Final = b"authnet/v1 renew key"
RENEWED_TICKET: Final = b"authnet/v1 renewed ticket"
PUID: Final = b"authnet/v1 puid"
KEY_ID: Final = b"authnet/v1 key id"

# Phone key store at rest.
PHONE_KEYSTORE: Final = b"authnet/v1 phone keystore"
# HKDF info of a hardened key store's key K (version 2, §17).
PHONE_KEYSTORE_KEY: Final = b"authnet/v1 phone keystore key"

ALL: Final = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, bytes)
}
