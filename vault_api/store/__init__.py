"""The vault's database operations. Each public function takes a Connection
inside an open transaction (vault_api.db.Database.read / .write) and does one
API operation completely: the access check, the change, the audit record.
No function here does network or file I/O.

    access.py     who may do what in a safe (roles, row locks)
    users.py      accounts, handles, public keys, key slots
    sessions.py   sessions and pending logins
    safes.py      safes, the key chain, members
    records.py    folders and items (with history)
    files.py      file records and upload states
    rotations.py  staged key rotation
    audit.py      the per-safe audit log
"""
