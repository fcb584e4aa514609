"""Logging: one JSON object per line (machine-read in production), configured once.

Every record carries its ``extra`` fields (``strategy_id``, ``client_order_id``, ``reason``,
...) as keys. Values that look like secrets are never logged by our code; as a last line of
defence the formatter masks any extra field whose name contains a secret-looking word.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import TextIO

__all__ = ["JsonFormatter", "configure_logging"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_SECRET_PARTS = ("password", "secret", "token", "api_key", "apikey", "totp", "pin", "jwt")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: ts, level, logger, msg, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            if any(p in key.lower() for p in _SECRET_PARTS) and key != "client_order_id":
                value = "***"
            out[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


JsonFormatter.converter = __import__("time").gmtime  # timestamps in UTC


def configure_logging(
    level: str = "INFO", *, json_lines: bool = True, stream: TextIO | None = None
) -> None:
    """Configure the root logger once: JSON lines (or plain text) on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
