"""The hardener: an oblivious hardening service of its own (docs/hardener.md)."""
