"""The errors the engine, the loader and the registry raise on purpose: bad evaluation input
(`InvalidInput`, each `FieldViolation` naming its field), an unknown scorecard or version
(`ScorecardNotFound`, with the closest known ids) and a refused scorecard file
(`InvalidScorecard`, each `DefinitionProblem` as `file: path: reason`). Each has a stable
`reason` code; the server turns them into statuses (server/errors.py). `model.py` re-exports
them, so `from .model import InvalidInput` keeps working.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldViolation:
    """One problem with the input: `field` is a path such as `indicators.bonus_points`."""

    field: str
    description: str


class DomainError(Exception):
    """Base of the errors the engine raises on purpose; `reason` is a stable code."""

    reason = "DOMAIN_ERROR"


class InvalidInput(DomainError):
    """The input is rejected whole; `violations` lists every problem."""

    reason = "INVALID_INDICATORS"

    def __init__(self, violations: list[FieldViolation] | tuple[FieldViolation, ...]):
        self.violations = tuple(violations)
        super().__init__("; ".join(f"{v.field}: {v.description}" for v in self.violations))


class ScorecardNotFound(DomainError):
    """No such scorecard (or version, or version in force on `as_of`). `field` is the request
    field at fault (`scorecard`, `version` or `as_of`, as an EvaluateRequest names them),
    `close` the closest known ids or versions, best first (SCORECARDS.md §1)."""

    reason = "SCORECARD_NOT_FOUND"

    def __init__(
        self,
        scorecard_id: str,
        version: str | None = None,
        as_of: dt.date | None = None,
        close: tuple[str, ...] = (),
        field: str | None = None,
    ):
        self.scorecard_id = scorecard_id
        self.version = version
        self.as_of = as_of
        self.close = tuple(close)
        self.field = field or ("version" if version else "as_of" if as_of else "scorecard")
        detail = f"scorecard {scorecard_id!r}"
        if version:
            detail += f" version {version!r}"
        if as_of and not version:
            detail += f" in force on {as_of.isoformat()}"
        super().__init__(f"no {detail}")

    @property
    def violation(self) -> FieldViolation:
        """The field at fault, with the closest known ids (or versions) when there are any."""
        text = str(self)
        if self.close:
            text += "; did you mean " + " or ".join(repr(c) for c in self.close) + "?"
        return FieldViolation(self.field, text)

    def at(self, field: str) -> ScorecardNotFound:
        """The same error, the field at fault named as the request at hand names it."""
        return ScorecardNotFound(self.scorecard_id, self.version, self.as_of, self.close, field)


@dataclass(frozen=True, slots=True)
class DefinitionProblem:
    """One problem in a scorecard file: the file, the path inside it, the reason."""

    file: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.reason}"


class InvalidScorecard(DomainError):
    reason = "INVALID_SCORECARD"

    def __init__(self, problems: list[DefinitionProblem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
