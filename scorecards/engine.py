"""The engine: a scorecard is compiled once, then evaluated many times.

`compile_scorecard(card)` returns a `CompiledScorecard`; its `evaluate` validates the subject and
every indicator (collecting every problem into one `InvalidInput`), scores the rules, applies
group floors and ceilings, grades, applies overrides and explains the result. Semantics:
SCORECARDS.md §1.

Two evaluators give the same results:

- `CompiledScorecard` (here): what the service uses. It runs the Python source `codegen.py`
  writes for the card (one straight-line function, integer hundredths, validators specialised
  per indicator), kept in `CompiledScorecard.source`. Anything its fast path does not take
  (invalid input, unusual value types) goes through the reference validator; a card whose
  numbers are not exact to 2 places is evaluated by the reference altogether.
- `ReferenceScorecard` (`reference.py`, re-exported here): the definition turned into plain
  closures and generic loops, in Decimal arithmetic: the test oracle. Its `validate`
  (`validation.py`) is the one validator of both, with every error message.

Both take what a rule kind means from `kinds.py` and what the scoring rules mean (group cut,
overrides and `until`, grades, reasons, subject ids) from `semantics.py`: neither holds a copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from . import codegen
from .exact import add_years, q2
from .model import EvaluationResult, Scorecard, Subject
from .predicates import Values
from .reference import ReferenceScorecard
from .semantics import SubjectIdCheck


class CompiledScorecard:
    """A scorecard compiled to generated Python (codegen.py); `evaluate` is the hot path.

    `source` is the generated source (None when the card is evaluated by the reference, see
    `codegen.generate`); `reference` the `ReferenceScorecard` of the same card."""

    def __init__(self, card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None):
        self.card = card
        self.id = card.id
        self.version = card.version
        self.digest = card.digest
        schemes = id_schemes if id_schemes is not None else {}
        self.reference = ReferenceScorecard(card, schemes)
        generated = codegen.generate(card)
        self.source: str | None = None
        if generated is None:
            self._score = self.reference.score
            self.evaluate = self.reference.evaluate  # type: ignore[method-assign]
        else:
            self.source = generated.source
            evaluate, self._score = generated.build(self.reference.validate, schemes)
            # the generated function itself, not the method below calling it: one call less per
            # evaluation (a few percent of one)
            self.evaluate = evaluate  # type: ignore[method-assign]

    def evaluate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> EvaluationResult:
        """Validate, score and explain; raises InvalidInput listing every problem.

        (Each instance binds `evaluate` to its generated function, which gives the same result
        faster; this method is what it does, the slow way.)"""
        subject, values = self.validate(subject, indicators, as_of)
        return self._score(subject, values, as_of)

    def validate(
        self, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
    ) -> tuple[Subject, Values]:
        """Check the subject and every indicator; raise InvalidInput listing every problem."""
        return self.reference.validate(subject, indicators, as_of)

    def score(self, subject: Subject, values: Values, as_of: dt.date) -> EvaluationResult:
        """Score validated values (from `validate`)."""
        return self._score(subject, values, as_of)


def compile_scorecard(
    card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None
) -> CompiledScorecard:
    """Compile once; `id_schemes` (prefix -> check) is read at evaluation time, so schemes
    registered later by plugins apply."""
    return CompiledScorecard(card, id_schemes)


def compile_reference(
    card: Scorecard, id_schemes: Mapping[str, SubjectIdCheck] | None = None
) -> ReferenceScorecard:
    """The reference evaluator of `card` (tests compare the generated code with it)."""
    return ReferenceScorecard(card, id_schemes)


def reference_evaluate(
    card: Scorecard, subject: Subject, indicators: Mapping[str, object], as_of: dt.date
) -> EvaluationResult:
    """One evaluation by the reference evaluator (compiles the card's closures each call)."""
    return ReferenceScorecard(card).evaluate(subject, indicators, as_of)


__all__ = [
    "CompiledScorecard",
    "ReferenceScorecard",
    "SubjectIdCheck",
    "add_years",
    "compile_reference",
    "compile_scorecard",
    "q2",
    "reference_evaluate",
]
