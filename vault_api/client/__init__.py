"""The `vault` command: the vault's client for terminals and scripts.

The same client-side cryptography as the browser (vault_api.crypto), so what
one writes the other reads. Modules, each named for what it handles:

| module       | I/O | what                                                          |
|--------------|-----|---------------------------------------------------------------|
| `api`        | yes | the HTTP API over httpx: cookies, CSRF, streamed file bodies   |
| `login`      | yes | an authnet login as the page does it; the token answers        |
| `session`    | yes | the 0600 state file; starting and unlocking a session          |
| `vault`      | yes | safes, folders, items, files: encrypted and decrypted here      |
| `keys`       | no  | the key slot, the private key, safe keys and their chain       |
| `contents`   | no  | a safe opened: folders, items, finding them by name or id       |
| `items`      | no  | item JSON: making, editing, one field, describing without secrets |
| `totp`       | no  | RFC 6238 codes                                                 |
| `importers`  | no  | Bitwarden JSON, KeePass 2 XML, Chrome and Firefox CSV in       |
| `exporters`  | no  | Bitwarden JSON and CSV out                                     |
| `passwords`  | no  | random passwords                                               |
| `commands`   | yes | one coroutine per command                                      |
| `cli`        | yes | the argument parser, exit statuses, `main`                     |
| `shell`      | yes | `vault shell`: keys kept in memory between commands            |

docs/vault.md, "The vault command", describes it for people.
"""
