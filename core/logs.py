"""Logs: JSON lines (or readable console lines) from structlog, with every standard-library
logger (uvicorn, procrastinate, psycopg) rendered the same way, and secrets redacted from
whatever a line carries: API keys, `whsec_` secrets, credentials headers and the payload
fields named in EVENTGATE_LOG_REDACT_FIELDS."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor

API_KEY = re.compile(r"\b(eg_[0-9a-f]{16})_[A-Za-z0-9_-]+")
WHSEC = re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+")
SECRET_NAMES = {"authorization", "x-api-key", "secret", "previous_secret", "password", "token"}
REDACTED = "[redacted]"


class Redactor:
    """A processor that scrubs secrets from every value of a log line, nested ones too."""

    def __init__(self, fields: Iterable[str] = ()) -> None:
        self._names = SECRET_NAMES | {field.lower() for field in fields}

    def __call__(self, logger: Any, method: str, event: EventDict) -> EventDict:
        return {key: self._scrub(key, value) for key, value in event.items()}

    def _scrub(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and key.lower() in self._names:
            return REDACTED
        if isinstance(value, str):
            return WHSEC.sub("whsec_" + REDACTED, API_KEY.sub(r"\1_" + REDACTED, value))
        if isinstance(value, dict):
            return {k: self._scrub(k, v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._scrub(None, v) for v in value]
        return value


def _compact_json(document: Any, **_: Any) -> str:
    return msgspec.json.encode(document, enc_hook=str).decode()


def _drop_color_message(logger: Any, method: str, event: EventDict) -> EventDict:
    event.pop("color_message", None)  # uvicorn's ANSI-coloured copy of the message
    return event


# Periodic bookkeeping jobs that run every second or minute: their routine start, success and
# deferral lines are debug, not info (an idle worker would otherwise log several a second).
BOOKKEEPING_TASKS = frozenset({"purge_rate_windows", "retry_stalled_jobs"})


class BookkeepingAtDebug(logging.Filter):
    """Demote procrastinate's routine info lines about bookkeeping jobs to debug."""

    def __init__(self, root: logging.Logger) -> None:
        super().__init__()
        self._root = root

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a demoted line unless debug is on."""
        job = getattr(record, "job", None)
        if (
            record.levelno == logging.INFO
            and record.name.startswith("procrastinate")
            and isinstance(job, dict)
            and job.get("task_name") in BOOKKEEPING_TASKS
        ):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self._root.isEnabledFor(logging.DEBUG)
        return True


def configure(log_format: str = "json", level: str = "INFO", redact: Iterable[str] = ()) -> None:
    """Route every logger through structlog in one format (idempotent)."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        Redactor(redact),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer(serializer=_compact_json)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    handler.addFilter(BookkeepingAtDebug(root))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _Direct.handler = handler if log_format == "json" else None
    _Direct.info_enabled = root.isEnabledFor(logging.INFO)
    for name in ("uvicorn", "uvicorn.error", "procrastinate"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn writes an access line whenever this logger has a handler, path and query
    # included (a trigger's path is its credential): Eventgate's own line replaces it.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


class _Direct:
    """Where JSON lines may be written without the processor chain (set by configure)."""

    handler: logging.StreamHandler[TextIO] | None = None
    info_enabled = True


def line(logger_name: str, event: str, fields: dict[str, Any]) -> None:
    """Log one info line of plain fields (strings, numbers, None) on the hot path: in JSON
    format it is encoded by msgspec and written straight to the log stream, with the same keys
    the processor chain gives (about a tenth of the cost); in console format it goes through
    the chain. Only API keys are scrubbed here: pass no other secret."""
    handler = _Direct.handler
    if handler is None:
        get(logger_name).info(event, **fields)
        return
    if not _Direct.info_enabled:
        return
    document = {
        k: API_KEY.sub(r"\1_" + REDACTED, v) if isinstance(v, str) else v for k, v in fields.items()
    }
    document.update(
        event=event,
        level="info",
        logger=logger_name,
        timestamp=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    )
    text = msgspec.json.encode(document).decode() + "\n"
    handler.acquire()
    try:
        handler.stream.write(text)
    except (OSError, ValueError):
        pass  # as logging does: a log line that cannot be written never fails the request
    finally:
        handler.release()


def reset() -> None:
    """Forget the configured stream (tests that configured logging for themselves)."""
    _Direct.handler = None
    structlog.reset_defaults()


def get(name: str) -> Any:
    """A structured logger."""
    return structlog.get_logger(name)
