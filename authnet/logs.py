"""Logging for the network: one line per event, to stderr and a log file.

What may be logged is decided where events happen (authnet.network): ticket
*tags* (8 hex digits of the ticket hash), SP names, token kinds, error codes.
Never tickets, keys, sealed keys, signatures, challenges or PUIDs.

Two formats: "text" (FORMAT, for people) and "json" (one object per line, for
log collectors): ts, level, logger, message, node_id, and exc / stack when
present. The JSON line holds exactly what the text line shows, no more: the
formatted message, and a traceback rendered the same way (no local variables,
no `extra=` fields, no call arguments), so switching formats cannot leak what
text logs keep out.

`NODE_ID` names the node a line came from. A node sets it while it starts its
servers, so the tasks serving its calls inherit it; several nodes in one
process (tests, the demo) then label their own lines.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from pathlib import Path

from authnet.config import ConfigError

FORMAT = "%(asctime)s %(levelname)-5s %(name)s: %(message)s"
FORMATS = ("text", "json")

NODE_ID: contextvars.ContextVar[str] = contextvars.ContextVar("authnet_node_id", default="")


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `node_id` is the process's default when the
    record's context names none."""

    def __init__(self, node_id: str = "") -> None:
        super().__init__()
        self.node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        node_id = NODE_ID.get() or self.node_id
        if node_id:
            line["node_id"] = node_id
        if record.exc_info and not record.exc_text:
            # The same rendering as the text format's (and cached on the record
            # the same way), so both formats show the same traceback.
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def formatter(log_format: str = "text", *, node_id: str = "") -> logging.Formatter:
    if log_format == "text":
        return logging.Formatter(FORMAT)
    if log_format == "json":
        return JsonFormatter(node_id)
    raise ConfigError(f"log_format must be one of {', '.join(FORMATS)}, not {log_format!r}")


class _FormatOnce(logging.Formatter):
    """Formats each record once for every handler that shares this formatter
    (stderr and the log file), keeping the line on the record."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        done = record.__dict__.get("_authnet_line")
        if done is not None and done[0] is self:
            return str(done[1])
        line = self.inner.format(record)
        record.__dict__["_authnet_line"] = (self, line)
        return line


def setup(
    level: str = "info",
    path: Path | None = None,
    *,
    stderr: bool = True,
    log_format: str = "text",
    node_id: str = "",
) -> None:
    fmt = _FormatOnce(formatter(log_format, node_id=node_id))
    # A node logs a line per login. Neither format shows the calling file and
    # line, the thread or the process, so the records skip finding them (the
    # logging HOWTO's "Optimization"): a line costs about a third less. Only
    # `authnet serve` calls setup, so these process-wide switches stay there.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger("authnet")
    root.setLevel(level.upper())
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
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
