"""Service logging: one plain line per event on a terminal, one JSON object per line with
``--log-json`` (for journald, Loki, CloudWatch and the like).

Fields given as ``extra={"event": ..., "issue": ...}`` become JSON keys, so a log pipeline can
filter on ``event == "job.error"`` without parsing sentences.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is ours.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, extra fields, traceback."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(record_fields(record))
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """``2026-11-23 08:00:01 INFO scheduler: message [issue=2026-W47]`` with the traceback below."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record_fields(record).items() if k != "event"}
        if fields:
            first, sep, rest = line.partition("\n")
            extras = " ".join(f"{k}={v}" for k, v in fields.items())
            line = f"{first} [{extras}]{sep}{rest}"
        return line


def setup_logging(*, json_lines: bool, verbose: bool = False, stream: TextIO | None = None) -> None:
    """Replace the root handlers: the service logs to stderr only, in one chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # APScheduler's own INFO lines ("Added job", "Running job") duplicate ours; keep warnings.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if verbose else logging.WARNING)
    # The executor's own error and missed-run lines are logged by our listener instead (once,
    # in our format, with the traceback): see scheduler/runner.py.
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
