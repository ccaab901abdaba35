"""structlog, configured once: JSON lines in production, a readable console on a terminal.

Personal data never reaches a log line: `mask_personal_data` masks subject ids, display names
and anything shaped like a resident id or a unified social credit code, in every event.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from sector_credit.scorecards.subject_ids import mask_id

PERSONAL_KEYS = frozenset({"subject_id", "subject", "display_name", "name_of_subject", "caller_name"})
# 18-character resident ids and unified social credit codes, wherever they appear in text:
# bounded by anything but an ASCII letter or digit (so `rid_…`, `id=…`, `张三…` are found), and
# 17 digits and a check character even glued to letters or digits (`x11010519491231002Xy`)
_ID_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])(?=[0-9A-Za-z]*\d)[0-9A-Z]{17}[0-9A-Zx](?![0-9A-Za-z])|[0-9]{17}[0-9Xx]")


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


def mask_personal_data(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
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
    """Configure structlog and the standard library logging it writes through."""
    lvl = getattr(logging, level.upper(), logging.INFO)
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer(_json_line)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
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
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # the libraries' and the store's plain lines too
        if not any(isinstance(f, _MaskingFilter) for f in handler.filters):
            handler.addFilter(_MaskingFilter())


class _MaskingFilter(logging.Filter):
    """Masks ids in standard-library log records (a driver's message may quote a value)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


log = structlog.get_logger("sector_credit")
