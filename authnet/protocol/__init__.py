"""Protocol version 1, free of I/O: encodings, identifiers, the QR payload,
signed transcripts, Kc derivation and sealing. Shared by the network, the
tokens, the SDKs and the tests; docs/protocol.md is its normative text."""
