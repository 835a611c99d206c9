"""vault_api: the reference service provider on authnet, a password vault whose
secrets are encrypted and decrypted only on the client.

    vault_api.crypto      the client-side format (Python reference; no I/O)
    vault_api.app         the HTTP JSON API (FastAPI) and the static UI
    vault_api.store       the database (SQLAlchemy Core; SQLite or PostgreSQL)
    vault_api.blobs       file bodies on disk, behind a small interface
    vault_api.cli         `vault-api serve | migrate`

docs/vault.md describes the keys, formats, API and what each party can do.
"""

from __future__ import annotations

__version__ = "0.1.0"
