"""Interval notation for bands (`"[95, 100]"`, `"(0, 5]"`, `"[5, +inf)"`) and coverage checks."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from .model import Indicator, IndicatorType, Interval

_INTERVAL = re.compile(r"^\s*([\[(])\s*([^,\s]+)\s*,\s*([^,\s\])]+)\s*([\])])\s*$")
_NEG_INF = {"-inf", "-∞"}
_POS_INF = {"+inf", "inf", "+∞", "∞"}


def parse_interval(text: str) -> Interval:
    """Parse interval notation; raises ValueError with a readable reason."""
    m = _INTERVAL.match(text)
    if not m:
        raise ValueError(f"{text!r} is not an interval such as '[0, 70)' or '[90, 100]'")
    lb, lo_s, hi_s, rb = m.groups()
    try:
        lo = None if lo_s in _NEG_INF else Decimal(lo_s)
        hi = None if hi_s in _POS_INF else Decimal(hi_s)
    except InvalidOperation:
        raise ValueError(f"{text!r}: bounds must be numbers or ±inf") from None
    if lo is None and lb == "[" or hi is None and rb == "]":
        raise ValueError(f"{text!r}: an infinite bound must be open")
    if lo is not None and hi is not None and (lo > hi or (lo == hi and (lb, rb) != ("[", "]"))):
        raise ValueError(f"{text!r} is empty")
    return Interval(lo, hi, lb == "[", rb == "]")


def coverage_problems(ranges: list[Interval], domain: Interval, integers: bool) -> list[str]:
    """Gaps and overlaps of `ranges` over `domain` (integers: only whole numbers matter)."""
    if integers:
        return _integer_coverage(ranges, domain)
    return _continuous_coverage(ranges, domain)


def _key_low(iv: Interval) -> tuple[int, Decimal, int]:
    if iv.low is None:
        return (0, Decimal(0), 0)
    return (1, iv.low, 0 if iv.low_inclusive else 1)


def _clip(iv: Interval, domain: Interval) -> Interval | None:
    low, low_inc = iv.low, iv.low_inclusive
    if domain.low is not None and (
        low is None or low < domain.low or (low == domain.low and not domain.low_inclusive)
    ):
        low, low_inc = domain.low, domain.low_inclusive
    high, high_inc = iv.high, iv.high_inclusive
    if domain.high is not None and (
        high is None or high > domain.high or (high == domain.high and not domain.high_inclusive)
    ):
        high, high_inc = domain.high, domain.high_inclusive
    if (
        low is not None
        and high is not None
        and (low > high or (low == high and not (low_inc and high_inc)))
    ):
        return None
    return Interval(low, high, low_inc, high_inc)


def _continuous_coverage(ranges: list[Interval], domain: Interval) -> list[str]:
    problems: list[str] = []
    clipped: list[tuple[Interval, Interval]] = []
    for iv in ranges:
        c = _clip(iv, domain)
        if c is None:
            problems.append(f"band {iv} lies outside the indicator's domain {domain}")
        else:
            clipped.append((iv, c))
    clipped.sort(key=lambda p: _key_low(p[1]))
    # the cursor is the first point not yet covered: (value, inclusive)
    cur_v, cur_inc = domain.low, domain.low_inclusive
    prev: Interval | None = None
    for orig, c in clipped:
        if prev is not None and cur_v is None:
            problems.append(f"band {orig} overlaps {prev}")
            continue
        if c.low == cur_v and (c.low is None or c.low_inclusive == cur_inc):
            pass
        elif (
            cur_v is None
            or c.low is None
            or c.low < cur_v
            or (c.low == cur_v and c.low_inclusive and not cur_inc)
        ):
            problems.append(f"band {orig} overlaps {prev}")
        else:
            gap = Interval(cur_v, c.low, cur_inc, not c.low_inclusive)
            problems.append(f"gap: the values {gap} are in no band (before band {orig})")
        prev = orig
        cur_v, cur_inc = c.high, not c.high_inclusive
        if c.high is None:
            cur_v = None
    if prev is None:
        problems.append("no bands")
    elif not (
        (domain.high is None and cur_v is None and prev.high is None)
        or (domain.high is not None and cur_v == domain.high and cur_inc != domain.high_inclusive)
    ):
        problems.append(f"gap after {prev}: the domain {domain} is not covered to its end")
    return problems


def _int_bounds(iv: Interval) -> tuple[int | None, int | None]:
    lo: int | None = None
    hi: int | None = None
    if iv.low is not None:
        i = int(iv.low.to_integral_value(rounding="ROUND_CEILING"))
        lo = i + 1 if (i == iv.low and not iv.low_inclusive) else i
    if iv.high is not None:
        j = int(iv.high.to_integral_value(rounding="ROUND_FLOOR"))
        hi = j - 1 if (j == iv.high and not iv.high_inclusive) else j
    return lo, hi


def _integer_coverage(ranges: list[Interval], domain: Interval) -> list[str]:
    problems: list[str] = []
    d_lo, d_hi = _int_bounds(domain)
    spans: list[tuple[int, int | None, Interval]] = []
    for iv in ranges:
        lo, hi = _int_bounds(iv)
        lo = d_lo if lo is None or (d_lo is not None and lo < d_lo) else lo
        if d_hi is not None and (hi is None or hi > d_hi):
            hi = d_hi
        if lo is None:
            lo = 0
        if hi is not None and hi < lo:
            problems.append(f"band {iv} holds no whole number of the domain {domain}")
            continue
        spans.append((lo, hi, iv))
    spans.sort(key=lambda s: s[0])
    nxt: int | None = d_lo if d_lo is not None else 0
    prev: Interval | None = None
    for lo, hi, iv in spans:
        if nxt is None:
            problems.append(f"band {iv} overlaps {prev}")
            continue
        if lo < nxt:
            problems.append(f"band {iv} overlaps {prev}")
        elif lo > nxt:
            problems.append(f"gap before {iv}: {nxt} is in no band")
        prev = iv
        nxt = None if hi is None else max(nxt, hi + 1)
    if prev is None:
        problems.append("no bands")
    elif d_hi is None and nxt is not None:
        problems.append(f"gap after {prev}: values from {nxt} up are in no band")
    elif d_hi is not None and nxt is not None and nxt <= d_hi:
        problems.append(f"gap after {prev}: {nxt} is in no band")
    return problems


def indicator_domain(ind: Indicator) -> Interval:
    """The values a numeric indicator may take: a percent within [0, 100] and a count from 0
    unless stated (bounds inclusive)."""
    if ind.type is IndicatorType.PERCENT:
        lo = ind.minimum if ind.minimum is not None else Decimal(0)
        hi = ind.maximum if ind.maximum is not None else Decimal(100)
        return Interval(lo, hi, True, True)
    if ind.type is IndicatorType.COUNT:
        return Interval(
            ind.minimum if ind.minimum is not None else Decimal(0),
            ind.maximum,
            True,
            ind.maximum is not None,
        )
    return Interval(ind.minimum, ind.maximum, ind.minimum is not None, ind.maximum is not None)
