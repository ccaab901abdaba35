"""structlog, configured once: JSON lines in production, a readable console on a terminal.

Personal data never reaches a log line: `mask_personal_data` masks subject ids, display names
and anything shaped like a resident id or a unified social credit code, in every event.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any

import structlog
from sector_credit.scorecards.subject_ids import mask_id

from .request_context import add_call_fields

PERSONAL_KEYS = frozenset(
    {"subject_id", "subject", "display_name", "name_of_subject", "caller_name"}
)
# 18-character resident ids and unified social credit codes, wherever they appear in text:
# bounded by anything but an ASCII letter or digit (so `rid_…`, `id=…`, `张三…` are found), and
# 17 digits and a check character even glued to letters or digits (`x11010519491231002Xy`)
_ID_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])(?=[0-9A-Za-z]*\d)[0-9A-Z]{17}[0-9A-Zx](?![0-9A-Za-z])|[0-9]{17}[0-9Xx]"
)


def _mask_text(text: str) -> str:
    if len(text) < 18:  # too short to hold an id: most values of a line ("OK", "Evaluate")
        return text
    return _ID_PATTERN.sub(lambda m: mask_id(m.group(0)), text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_id(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    return "***"


def _mask_nested(value: Any) -> Any:
    """Ids inside the strings of a list, tuple or dict value (and its keys)."""
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {_mask_nested(k): _mask_nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_nested(v) for v in value]
    return value


def mask_personal_data(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event.items()):
        if key in PERSONAL_KEYS and value is not None:
            event[key] = _mask(value)
        elif isinstance(value, str):
            event[key] = _mask_text(value)
        elif isinstance(value, (dict, list, tuple)):
            event[key] = _mask_nested(value)
    return event


def _json_fallback(obj: Any) -> Any:
    """What structlog's JSONRenderer does with an object JSON has no type for."""
    method = getattr(obj, "__structlog__", None)
    return method() if method is not None else repr(obj)


# One encoder for every line: json.dumps with options would build a new one per line.
_json_encoder = json.JSONEncoder(ensure_ascii=False, default=_json_fallback)


def _json_line(event: Any, **_options: Any) -> str:
    return _json_encoder.encode(event)


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Configure structlog, and the standard library logging it shares stderr with: every line
    on stderr is then one JSON object (or a console line on a terminal), whoever wrote it:
    the service, a library through `logging` (SQLAlchemy, Alembic, asyncio, gRPC), Python's
    `warnings`, and an exception nothing caught, in the main thread or another."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(_json_line)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_call_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            add_call_fields,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in [
        h
        for h in root.handlers
        if h.get_name() == _HANDLER_NAME
        or (type(h) is logging.StreamHandler and h.stream is sys.stderr)
    ]:
        root.removeHandler(old)  # a plain handler (basicConfig's) would write plain lines
    root.addHandler(handler)
    root.setLevel(max(lvl, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn: a `py.warnings` record, not a plain line
    sys.excepthook = _uncaught
    threading.excepthook = _uncaught_in_thread
    sys.unraisablehook = _unraisable


_HANDLER_NAME = "sector_credit"


def _uncaught(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    structlog.get_logger("sector_credit").critical("uncaught exception", exc_info=(kind, value, tb))


def _uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    structlog.get_logger("sector_credit").error(
        "uncaught exception in a thread",
        thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


def _unraisable(unraisable: Any) -> None:
    structlog.get_logger("sector_credit").error(
        "exception ignored",
        where=unraisable.err_msg or "",
        object=repr(unraisable.object),
        exc_info=(
            unraisable.exc_type,
            unraisable.exc_value or unraisable.exc_type(),
            unraisable.exc_traceback,
        ),
    )


log = structlog.get_logger("sector_credit")
