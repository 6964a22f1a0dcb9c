"""YAML documents with a comment header (the export's provenance) and their reading back."""

from __future__ import annotations

from typing import Any

import yaml


def dump_docs(header_lines: list[str], docs: list[dict[str, Any]]) -> str:
    head = "".join(f"# {line}\n" for line in header_lines)
    body = "---\n".join(yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=120) for d in docs)
    return head + body


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]
