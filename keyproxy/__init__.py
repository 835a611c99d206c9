"""The one-time key proxy: holds a sealed blob under an unguessable token
until it is claimed once (docs/keyproxy.md). A trust domain of its own: it
imports nothing from authnet, hardener, tokens or vault_api."""
