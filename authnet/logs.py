"""Logging for the network: one line per event, to stderr and a log file.

What may be logged is decided where events happen (authnet.network): ticket
*tags* (8 hex digits of the ticket hash), SP names, token kinds, error codes.
Never tickets, keys, sealed keys, signatures, challenges or PUIDs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"


def setup(level: str = "info", path: Path | None = None, *, stderr: bool = True) -> None:
    root = logging.getLogger("authnet")
    root.setLevel(level.upper())
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    fmt = logging.Formatter(FORMAT)
    if stderr:
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        root.addHandler(sh)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(path, encoding="utf-8")
        fh.setFormatter(fmt)
        root.addHandler(fh)
    root.propagate = False
