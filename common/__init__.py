"""Shared plumbing: the input-error type, safe YAML/JSON reading, atomic writes, strict model base."""
