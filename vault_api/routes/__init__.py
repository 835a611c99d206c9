"""The HTTP API, one router per domain noun. Handlers are thin: they parse,
call one store function in one transaction (vault_api.store), and return
its result. docs/vault.md lists every endpoint."""
