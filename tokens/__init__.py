"""The PassKey side of authnet: one interface (`PassKey`), its backends, the
I/O-free handshake, and the client of the network's PassKey API."""

from tokens.passkey import PassKey, TokenDescription, TokenKind
from tokens.phone import PhoneKeyStore, PhonePassKey

__all__ = ["PassKey", "PhoneKeyStore", "PhonePassKey", "TokenDescription", "TokenKind"]
