"""The one loader of published test vectors (tests/vectors/*.json).

Each file is named after its source (rfc9180-hpke.json: RFC 9180 Appendix A)
and carries a "source" field saying exactly where its values come from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parent / "vectors"


def load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    data = json.loads(path.read_text())
    assert isinstance(data, dict), f"{path} must hold a JSON object"
    assert data.get("source"), f"{path} must say its source"
    return data
