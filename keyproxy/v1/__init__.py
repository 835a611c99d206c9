"""Generated gRPC stubs for proto/keyproxy/v1 (scripts/gen_proto.py; do not edit)."""
