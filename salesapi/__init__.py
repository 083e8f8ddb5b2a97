"""The sales gRPC API: generated messages and stubs (see scripts/generate_proto.py), client helpers."""
