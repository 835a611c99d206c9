"""Generated gRPC stubs for proto/hardener/v1 (scripts/gen_proto.py; do not edit)."""
