"""Structured (JSON) logs. Never log names, emails or card data: ids and amounts only.

Errors are described by `describe_error`, which leaves out what a database error quotes back
from the row (Postgres and asyncpg messages may hold the values that failed), and every line
has email addresses masked, in case a message or a library quoted one."""

import json
import logging
import re
import sys
import traceback

from sqlalchemy.exc import DBAPIError, StatementError

EMAIL = re.compile(r"[^\s<>()\[\]'\",;:@]+@[^\s<>()\[\]'\",;:@]+")


def without_addresses(text: str) -> str:
    """`text` with every email address replaced by `<address>`."""
    return EMAIL.sub("<address>", text)


def describe_error(exc: BaseException) -> str:
    """What went wrong, safe for logs and DLQ headers: a database error (SQLAlchemy's or the
    driver's own) is named by its class and SQLSTATE only, since Postgres and asyncpg quote the
    offending values; any other error by its type and message, addresses masked."""
    orig = exc.orig if isinstance(exc, DBAPIError | StatementError) and exc.orig is not None else exc
    if orig is not exc or type(orig).__module__.startswith("asyncpg"):
        sqlstate = getattr(orig, "sqlstate", None)
        return f"{type(orig).__name__}" + (f" (SQLSTATE {sqlstate})" if sqlstate else "")
    return without_addresses(f"{type(exc).__name__}: {exc}")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": without_addresses(record.getMessage()),
        }
        if record.exc_info and record.exc_info[1] is not None:
            entry["exc"] = self.format_error(record.exc_info[1])
        return json.dumps(entry)

    @staticmethod
    def format_error(exc: BaseException) -> str:
        """The traceback's frames with each exception in the chain told by `describe_error`."""
        parts = []
        seen: BaseException | None = exc
        while seen is not None:
            frames = "".join(traceback.format_tb(seen.__traceback__))
            parts.append(f"Traceback (most recent call last):\n{frames}{describe_error(seen)}")
            seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)
        return "\n\nwhile handling:\n".join(reversed(parts))


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
