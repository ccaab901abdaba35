"""The limits every input is held to: one module, read by the engine's validators, the
conversion from the wire and the error builder (docs/limits.md lists them for users).

Anything outside a limit is refused as bad input naming the field (INVALID_ARGUMENT on the
wire), before anything is scored or stored: so nothing stored is too large to read back or
to acknowledge, and no caller's input costs the service more than a bounded amount of work.
"""

from __future__ import annotations

import re
from decimal import Decimal

from .intervals import indicator_domain
from .model import Indicator, IndicatorType

# -- indicator values ---------------------------------------------------------------------

MAX_COUNT = 10**6
"""The largest count any indicator takes; an indicator's own `max` may lower it, never raise it."""

MAX_NUMBER = Decimal(10) ** 12
"""The largest magnitude of a `number` value (an indicator's `min`/`max` may narrow it)."""

DEFAULT_PLACES = 2
"""Decimal places a `number` or `percent` value may have unless its indicator declares
`places` (trailing zeros do not count: 1.500 has 1 place)."""

MAX_PLACES = 6
"""The most `places` an indicator may declare."""

MAX_DECIMAL_TEXT = 40
"""The longest decimal string (`decimal_value`) read."""

MAX_INDICATORS = 256
"""Indicators per request; a request with more is refused without looking at their names."""

MAX_UNKNOWN_NAMED = 20
"""Unknown indicator names reported one by one; the rest are counted in one more violation."""

# -- strings --------------------------------------------------------------------------------

MAX_SUBJECT_ID = 64  # subject ids (and the subject_id filter of ListEvaluations)
MAX_DISPLAY_NAME = 200
MAX_REQUEST_ID = 128
MAX_NAME = 64  # indicator names, choice codes
MAX_SCORECARD_ID = 128  # scorecard ids and names (`scorecards/{id}`), the scorecard filter
MAX_VERSION = 64
MAX_PAGE_TOKEN = 512
MAX_RESOURCE_NAME = 128  # `evaluations/{id}`

# -- dates ------------------------------------------------------------------------------------

MIN_YEAR = 1900
MAX_YEAR = 2199
"""Dates (as_of and date indicators) lie in these years: far enough for any credit record,
and an `until` of a date plus some years stays inside the calendar."""

# -- errors -----------------------------------------------------------------------------------

MAX_ECHO = 64
"""Characters of a caller's value repeated in an error message; longer ones are cut with `…`."""

MAX_ERROR_MESSAGE = 300
"""Characters of an error's message (grpc-message)."""

MAX_ERROR_DETAILS_BYTES = 3000
"""Encoded bytes of an error's details (google.rpc.Status in grpc-status-details-bin): with
the message, well under the 8 KiB of metadata a default gRPC client accepts."""


_ASCII_DIGITS = re.compile(r"[0-9]+")
# what Decimal() reads, in ASCII only: no other script's digits, no `_`, no spaces
_DECIMAL_TEXT = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:nan|inf|infinity)",
    re.IGNORECASE,
)
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def echo(value: object, limit: int = MAX_ECHO) -> str:
    """`repr`-like text of a caller's value for an error message, at most `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    cut = text if len(text) <= limit else text[:limit] + "…"
    return repr(cut) if isinstance(value, str) else cut


def cut(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, with `…` when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def field_key(key: str) -> str:
    """A caller's map key as it goes into a field path: cut, a NUL shown as `\\x00`."""
    return cut(key, MAX_NAME + 1).replace("\x00", "\\x00")


def text_problem(value: str, limit: int) -> str | None:
    """Why a caller's string is refused (too long, or holding a NUL), or None."""
    if len(value) > limit:
        return f"{len(value)} characters; at most {limit}"
    if "\x00" in value:
        return "contains a NUL character"
    return None


def is_ascii_digits(text: str) -> bool:
    """Only the digits 0-9 (no other script's digits, no `_`, sign or spaces)."""
    return _ASCII_DIGITS.fullmatch(text) is not None


def decimal_text_problem(text: str) -> str | None:
    """Why a decimal string is not read as a number (too long, not plain ASCII notation), or
    None. NaN and Infinity are read (and refused by the engine with their own reason)."""
    if len(text) > MAX_DECIMAL_TEXT:
        return f"a decimal string of {len(text)} characters; at most {MAX_DECIMAL_TEXT}"
    if _DECIMAL_TEXT.fullmatch(text) is None:
        return (
            f"{echo(text)} is not a decimal number"
            " (digits 0-9, an optional sign, point and exponent)"
        )
    return None


def is_date_text(text: str) -> bool:
    """`YYYY-MM-DD` in ASCII digits (the calendar check is the date's own)."""
    return _DATE_TEXT.fullmatch(text) is not None


def year_problem(year: int) -> str | None:
    if MIN_YEAR <= year <= MAX_YEAR:
        return None
    return f"the year {year} is outside [{MIN_YEAR}, {MAX_YEAR}]"


def places_of(d: Decimal) -> int:
    """Decimal places of a finite value, trailing zeros not counted (1.50 has 1). Read from
    the digits, not `normalize()`, which rounds to the context's 28 digits."""
    _sign, digits, exponent = d.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    places = -exponent
    end = len(digits)
    while places and end and digits[end - 1] == 0:
        places -= 1
        end -= 1
    return places


# -- the values one indicator accepts ---------------------------------------------------------


def accepted_bounds(ind: Indicator) -> tuple[Decimal | None, Decimal | None]:
    """The inclusive bounds a numeric indicator's input is held to: its domain, within the
    service's limits (a count at most `MAX_COUNT`, a number's magnitude at most
    `MAX_NUMBER`). The domain itself (best points, band coverage) stays as declared."""
    dom = indicator_domain(ind)
    cap = Decimal(MAX_COUNT) if ind.type is IndicatorType.COUNT else MAX_NUMBER
    lo = dom.low if dom.low is not None and dom.low > -cap else -cap
    hi = dom.high if dom.high is not None and dom.high < cap else cap
    return lo, hi


def accepted_places(ind: Indicator) -> int:
    """Decimal places a number or percent value of `ind` may have."""
    return DEFAULT_PLACES if ind.places is None else ind.places
