"""Exact arithmetic and dates, shared by the engine (`engine.py`) and the code it generates
(`codegen.py`).

Points are decimals exact to 2 places (SCORECARDS.md §1). The reference evaluator works in
`Decimal` and rounds every rule's points with `q2`; the generated code works in integer
hundredths and turns them into `Decimal`s only to build the result (`HUNDREDTHS`). Both give
the same numbers with the same exponents: a rule's points, a group total before its cut, the
score and the points to the next grade always have exactly 2 places.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

Q2 = Decimal("0.01")
ZERO_00 = Decimal("0.00")


def q2(x: Decimal) -> Decimal:
    """`x` rounded half up to 2 places; a zero is always `0.00` (−1 × 0 is not `-0.00`)."""
    d = x.quantize(Q2, rounding=ROUND_HALF_UP)
    return d if d else ZERO_00


def shown_decimal(x: Decimal) -> Decimal:
    """A scorecard's own number as a result shows it: with 2 places when it is exact to 2
    (a base of 20 is 20.00, like the score), else as written (the reference evaluates such
    cards, codegen.py)."""
    return q2(x) if x == q2(x) else x


def to_hundredths(x: Decimal) -> int:
    """`q2(x)` as a whole number of hundredths: Decimal("3.7") -> 370, Decimal("0.125") -> 13."""
    n, d = x.as_integer_ratio()
    if 100 % d == 0:  # exact to 2 places already: no rounding, no Decimal arithmetic
        return n * (100 // d)
    return int(q2(x).scaleb(2))


class _Hundredths(dict[int, Decimal]):
    """Whole hundredths -> the Decimal with 2 places: `HUNDREDTHS[-250]` is Decimal("-2.50").

    Made on first use and kept (a Decimal is immutable, so results may share them); past
    `LIMIT` entries they are still made exactly, just no longer kept."""

    LIMIT = 1 << 14

    def __missing__(self, hundredths: int) -> Decimal:
        d = Decimal(f"{hundredths}E-2")  # exact whatever the size; 0 gives 0.00
        if len(self) < self.LIMIT:
            self[hundredths] = d
        return d


HUNDREDTHS = _Hundredths()


def add_years(d: dt.date, years: int) -> dt.date:
    """d plus whole years; 29 February becomes 28 February in a common year. A year past
    9999 (the calendar's end) gives 9999-12-31: an `until` that far is "no end in sight"."""
    year = d.year + years
    if year > dt.MAXYEAR:
        return dt.date.max
    try:
        return d.replace(year=year)
    except ValueError:
        return d.replace(year=year, day=28)
