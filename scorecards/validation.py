"""The one validator of evaluation input, for both evaluators: the subject (kind, id under its
scheme, display name), `as_of`, and every indicator (unknown names, missing required ones,
types, bounds, decimal places, dates in the past, `required_when`), every problem collected
into one `InvalidInput` (limits: docs/limits.md).

`InputValidator` is what `reference.ReferenceScorecard` builds on; the generated evaluator
(`codegen.py`) has fast paths of its own for valid input and hands anything else to this
`validate`, so every error message comes from here.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from . import limits
from .limits import accepted_bounds, accepted_places
from .model import (
    FieldViolation,
    Indicator,
    IndicatorType,
    InvalidInput,
    Scorecard,
    Subject,
    SubjectKind,
)
from .predicates import Values, compile_condition
from .semantics import SUBJECT_ID_CHECKS, SubjectIdCheck, normalize
from .text import condition_text

# (value, None) when valid, (None, reason) when not
Validator = Callable[[object], tuple[Any, str | None]]


def _to_decimal(x: object) -> Decimal | None:
    if type(x) is Decimal:
        return x if x.is_finite() else None
    if type(x) is int:
        return Decimal(x)
    if type(x) is float:
        d = Decimal(repr(x))  # the shortest repr: 0.15 stays 0.15
        return d if d.is_finite() else None
    if type(x) is str and limits.decimal_text_problem(x) is None:
        d = Decimal(x)
        return d if d.is_finite() else None
    return None


def _numeric_validator(ind: Indicator) -> Validator:
    lo, hi = accepted_bounds(ind)
    is_count = ind.type is IndicatorType.COUNT
    places = accepted_places(ind)
    bounds = f"[{lo}, {hi}]"
    what = {"count": "a whole number ≥ 0", "percent": "a number within [0, 100]"}.get(
        ind.type.value, "a number"
    )

    def validate(x: object) -> tuple[Any, str | None]:
        if type(x) is int and is_count:
            if x < 0:
                return None, f"a count is a whole number ≥ 0, not {x}"
            if lo is not None and x < lo:
                return None, f"{x} is below the minimum {lo}"
            if hi is not None and x > hi:
                return None, f"{x} is above the maximum {hi}"
            return x, None
        if isinstance(x, bool):
            return None, f"expected {what}, not a flag"
        if is_count and type(x) is str and not limits.is_ascii_digits(x):
            return (
                None,
                f"expected a whole number ≥ 0 written with the digits 0-9, not {limits.echo(x)}",
            )
        d = _to_decimal(x)
        if d is None:
            if isinstance(x, (float, Decimal)) or (
                isinstance(x, str) and x.lower().lstrip("+-") in ("nan", "inf", "infinity", "snan")
            ):
                return None, f"expected {what}, not {x} (NaN and Infinity are not numbers here)"
            return None, f"expected {what}, not {limits.echo(x)}"
        if (lo is not None and d < lo) or (hi is not None and d > hi):
            return None, f"{limits.cut(str(x), limits.MAX_ECHO)} is outside {bounds}"
        if is_count:
            if d != d.to_integral_value():
                return None, f"a count is a whole number, not {limits.echo(x)}"
            return int(d), None
        n = limits.places_of(d)
        if n > places:
            return None, (
                f"{limits.echo(x)} has {n} decimal places; this indicator takes at most "
                f"{places} (it is never rounded)"
            )
        return d, None

    return validate


def _flag_validator(ind: Indicator) -> Validator:
    def validate(x: object) -> tuple[Any, str | None]:
        if x is True or x is False:
            return x, None
        return None, f"expected true or false, not {limits.echo(x)}"

    return validate


def _choice_validator(ind: Indicator) -> Validator:
    choices = frozenset(ind.choices)
    listed = ", ".join(ind.choices)

    def validate(x: object) -> tuple[Any, str | None]:
        if type(x) is str and x in choices:
            return x, None
        return None, f"{limits.echo(x)} is not one of: {listed}"

    return validate


def _date_validator(ind: Indicator) -> Validator:
    def validate(x: object) -> tuple[Any, str | None]:
        d = None
        if type(x) is dt.date:
            d = x
        elif type(x) is str and limits.is_date_text(x):
            try:
                d = dt.date.fromisoformat(x)
            except ValueError:
                pass
        if d is None:
            return None, f"expected a date (YYYY-MM-DD), not {limits.echo(x)}"
        why = limits.year_problem(d.year)
        return (d, None) if why is None else (None, why)

    return validate


_VALIDATORS: dict[IndicatorType, Callable[[Indicator], Validator]] = {
    IndicatorType.COUNT: _numeric_validator,
    IndicatorType.NUMBER: _numeric_validator,
    IndicatorType.PERCENT: _numeric_validator,
    IndicatorType.FLAG: _flag_validator,
    IndicatorType.CHOICE: _choice_validator,
    IndicatorType.DATE: _date_validator,
}


class InputValidator:
    """The validator of one scorecard's input, built once (see the module doc)."""

    def __init__(self, card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None):
        self.card = card
        self.id = card.id
        self._id_schemes = id_schemes if id_schemes is not None else {}
        self._inds = [(i.name, _VALIDATORS[i.type](i), i) for i in card.indicators]
        self._names = frozenset(i.name for i in card.indicators)
        self._required_when = [
            (i.name, compile_condition(i.required_when), _describe_required_when(i))
            for i in card.indicators
            if i.required_when is not None
        ]
        self._past = [i.name for i in card.indicators if i.past]
        self._id_check = SUBJECT_ID_CHECKS.get(card.subject_kind)

    def validate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> tuple[Subject, Values]:
        """Check the subject and every indicator; raise InvalidInput listing every problem."""
        problems: list[FieldViolation] = []
        if len(indicators) > limits.MAX_INDICATORS:
            # refused before any name is looked at: the work stays bounded whatever was sent
            raise InvalidInput(
                [
                    FieldViolation(
                        "indicators",
                        f"{len(indicators)} indicators; a request has at most"
                        f" {limits.MAX_INDICATORS}",
                    )
                ]
            )
        subject = self._check_subject(subject, problems)
        why = limits.year_problem(as_of.year)
        if why is not None:
            problems.append(FieldViolation("as_of", why))
        values: Values = {}
        names = self._names
        unknown = [key for key in indicators if key not in names]
        for key in unknown[: limits.MAX_UNKNOWN_NAMED]:
            text = str(key)
            close = (
                difflib.get_close_matches(text, names, n=1) if len(text) <= limits.MAX_NAME else []
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(
                FieldViolation(
                    f"indicators.{limits.field_key(text)}", f"not an indicator of {self.id}{hint}"
                )
            )
        if len(unknown) > limits.MAX_UNKNOWN_NAMED:
            problems.append(
                FieldViolation(
                    "indicators",
                    f"{len(unknown) - limits.MAX_UNKNOWN_NAMED} more names that are not indicators"
                    f" of {self.id}",
                )
            )
        for name, validate, ind in self._inds:
            raw = indicators.get(name)
            if raw is None:
                if ind.default is not None:
                    values[name] = ind.default
                elif ind.required:
                    problems.append(
                        FieldViolation(
                            f"indicators.{name}", f"required {ind.type.value} indicator is missing"
                        )
                    )
                continue
            value, why = validate(raw)
            if why is None:
                values[name] = value
            else:
                problems.append(FieldViolation(f"indicators.{name}", why))
        for name in self._past:
            d = values.get(name)
            if d is not None and d > as_of:  # type: ignore[operator]
                problems.append(
                    FieldViolation(
                        f"indicators.{name}",
                        f"{d} is after as_of {as_of}: this date must be in the past",
                    )
                )
        for name, pred, text in self._required_when:
            if name not in values and pred(values, {}, None, as_of):
                if not any(p.field == f"indicators.{name}" for p in problems):
                    problems.append(FieldViolation(f"indicators.{name}", f"required when {text}"))
        if problems:
            raise InvalidInput(problems)
        return subject, values

    def _check_subject(self, subject: Subject, problems: list[FieldViolation]) -> Subject:
        if subject.display_name:
            why = limits.text_problem(subject.display_name, limits.MAX_DISPLAY_NAME)
            if why is not None:
                problems.append(FieldViolation("subject.display_name", why))
        if subject.kind is not self.card.subject_kind:
            got = subject.kind.value if isinstance(subject.kind, SubjectKind) else subject.kind
            problems.append(
                FieldViolation(
                    "subject.kind",
                    f"{self.id} evaluates a {self.card.subject_kind.value}, not a {got}",
                )
            )
            return subject
        why = limits.text_problem(subject.id, limits.MAX_SUBJECT_ID)
        if why is not None:
            problems.append(FieldViolation("subject.id", why))
            return subject
        sid = normalize(subject.id)
        if not sid:
            problems.append(FieldViolation("subject.id", "required"))
            return subject
        check = self._id_check
        for prefix, scheme in self._id_schemes.items():
            if sid.startswith(prefix):
                check = scheme
                break
        if check is not None:
            why = check(sid)
            if why is not None:
                problems.append(FieldViolation("subject.id", why))
        if sid != subject.id:
            return Subject(subject.kind, sid, subject.display_name)
        return subject


def _describe_required_when(ind: Indicator) -> str:
    assert ind.required_when is not None
    return condition_text(ind.required_when)
