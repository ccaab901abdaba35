"""The generated code (codegen.py) against the reference evaluator (engine.ReferenceScorecard).

For every built-in card and every small card of test_engine.py: on random inputs, valid and
invalid, of every type a caller may send, `CompiledScorecard.evaluate` (the generated code)
gives exactly what the reference gives: an equal result with the same repr (so the same Decimal
exponents), or the same `InvalidInput` violations.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from contextlib import redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import test_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sector_credit.scorecards import codegen, loader
from sector_credit.scorecards.engine import CompiledScorecard, ReferenceScorecard, compile_scorecard
from sector_credit.scorecards.loader import indicator_domain, iter_scorecard_files, load_file
from sector_credit.scorecards.model import (
    Indicator,
    IndicatorType,
    InvalidInput,
    Scorecard,
    Subject,
    SubjectKind,
)

BUILTIN = Path(loader.__file__).parent / "builtin"
BUILTIN_CARDS = {c.id: c for c in (load_file(p) for p in iter_scorecard_files(BUILTIN))}
TEST_ENGINE_CARDS = {
    name: c.card for name, c in vars(test_engine).items() if isinstance(c, CompiledScorecard)
}
ALL_CARDS = {**BUILTIN_CARDS, **{f"test_engine.{k}": v for k, v in TEST_ENGINE_CARDS.items()}}

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def resident_id(rng: random.Random) -> str:
    birth = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(50 * 365))
    body = f"110105{birth:%Y%m%d}{rng.randrange(1000):03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _ID_WEIGHTS)) % 11]


def uscc(rng: random.Random) -> str:
    body = "91350100" + "".join(rng.choice(_USCC_CHARS[:-5]) for _ in range(9))
    total = sum(_USCC_CHARS.index(ch) * w for ch, w in zip(body, _USCC_WEIGHTS))
    return body + _USCC_CHARS[(31 - total % 31) % 31]


# --------------------------------------------------------------------------------------------
# Random inputs, drawn from the card's own definition


def numbers(ind: Indicator) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, invalid) values of a number or percent indicator."""
    dom = indicator_domain(ind)
    lo = dom.low if dom.low is not None else Decimal(-1000)
    hi = dom.high if dom.high is not None else Decimal(1000)
    inside = st.decimals(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)
    valid = st.one_of(
        inside.map(lambda d: d.quantize(Decimal("0.01"))),  # Decimals, up to 2 places
        st.sampled_from([lo, hi, ((lo + hi) / 2).quantize(Decimal("0.01"))]),
        st.integers(int(lo), int(hi)),  # ints
        inside.map(lambda d: round(float(d), 2)),  # floats as JSON sends them
        inside.map(lambda d: str(d.quantize(Decimal("0.01")))),  # strings
    )
    invalid = st.one_of(
        st.sampled_from(
            [lo - 1, hi + 1, float("nan"), float("inf"), Decimal("NaN"), "NaN", True, "x", [1]]
        ),
        inside.map(lambda d: d.quantize(Decimal("0.001")) + Decimal("0.001")).filter(
            lambda d: d.as_tuple().exponent == -3 and d.as_tuple().digits[-1] != 0
        ),  # 3 places
        inside.map(lambda d: f" {d.quantize(Decimal('0.01'))} "),  # surrounding spaces
    )
    return valid, invalid


def counts(ind: Indicator) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    hi = indicator_domain(ind).high
    top = int(hi) if hi is not None else 30
    valid = st.one_of(
        st.integers(0, top),
        st.integers(0, 3),
        st.just(10**6) if hi is None else st.just(top),
        st.integers(0, top).map(float),
        st.integers(0, top).map(Decimal),
        st.integers(0, top).map(str),
    )
    invalid = st.sampled_from(
        [
            -1,
            top + 1,
            10**6 + 1,
            2.5,
            Decimal("1.5"),
            float("nan"),
            True,
            False,
            "two",
            " 5 ",
            "1_0",
            "١٢٣",
        ]
    )
    return valid, invalid


def indicator_values(
    ind: Indicator, as_of: dt.date
) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    """(valid, invalid) values of an indicator, of every type a caller may send."""
    t = ind.type
    if t is IndicatorType.COUNT:
        return counts(ind)
    if t in (IndicatorType.NUMBER, IndicatorType.PERCENT):
        return numbers(ind)
    if t is IndicatorType.FLAG:
        return st.booleans(), st.sampled_from(["true", 1, 0])
    if t is IndicatorType.CHOICE:
        return st.sampled_from(ind.choices), st.sampled_from(["bogus", ind.choices[0].upper(), 1])
    days = st.integers(-12 * 366, 0 if ind.past else 4 * 366).map(
        lambda n: as_of + dt.timedelta(days=n)
    )
    later = st.integers(1, 400).map(lambda n: as_of + dt.timedelta(days=n))
    return (
        st.one_of(days, days.map(dt.date.isoformat)),
        st.one_of(
            later if ind.past else st.nothing(),
            days.map(lambda d: f" {d.isoformat()}"),
            st.sampled_from(["2025-02-30", "yesterday", 20250101, dt.datetime(2025, 1, 1)]),
        ),
    )


@st.composite
def evaluations(draw: st.DrawFn, card: Scorecard) -> tuple[Subject, dict[str, Any], dt.date]:
    """Mostly valid input (an indicator left out only where that is allowed); one in five
    "messy": any indicator may be missing, None or invalid, the subject may be wrong."""
    messy = draw(st.integers(0, 4)) == 0
    as_of = draw(st.dates(dt.date(2015, 1, 1), dt.date(2030, 12, 31)))
    indicators: dict[str, Any] = {}
    for ind in card.indicators:
        valid, invalid = indicator_values(ind, as_of)
        optional = not ind.required and ind.required_when is None
        how = draw(
            st.sampled_from(
                ["valid"] * 4
                + (["absent"] if optional or messy else [])
                + (["invalid", "none"] if messy else [])
            )
        )
        if how == "valid":
            indicators[ind.name] = draw(valid)
        elif how == "invalid":
            indicators[ind.name] = draw(invalid)
        elif how == "none":
            indicators[ind.name] = None
    if messy and draw(st.integers(0, 5)) == 0:
        indicators[
            draw(st.sampled_from(["bonus_point", "colour", card.indicators[0].name + "s"]))
        ] = 1
    rng = random.Random(draw(st.integers(0, 2**32)))
    kind = card.subject_kind
    sid = resident_id(rng) if kind is SubjectKind.PERSON else uscc(rng)
    sid = draw(
        st.sampled_from(
            [sid, sid.lower(), f" {sid} "] + ([sid[:-1] + "0", sid[:10], ""] if messy else [])
        )
    )
    if messy and draw(st.integers(0, 5)) == 0:
        kind = SubjectKind.ORGANIZATION if kind is SubjectKind.PERSON else SubjectKind.PERSON
    return Subject(kind, sid, draw(st.sampled_from(["", "某某"]))), indicators, as_of


def outcome(
    evaluator: Any, subject: Subject, indicators: dict[str, Any], as_of: dt.date
) -> tuple[str, Any]:
    try:
        result = evaluator.evaluate(subject, dict(indicators), as_of)
    except InvalidInput as e:
        return "invalid", e.violations
    return "ok", (result, repr(result))


COMPILED = {
    name: (compile_scorecard(card), ReferenceScorecard(card)) for name, card in ALL_CARDS.items()
}


@pytest.mark.parametrize("name", sorted(COMPILED))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_code_agrees_with_the_reference(name: str, data: st.DataObject) -> None:
    compiled, reference = COMPILED[name]
    assert compiled.source is not None  # every card here is exact to 2 places
    subject, indicators, as_of = data.draw(evaluations(compiled.card))
    got = outcome(compiled, subject, indicators, as_of)
    want = outcome(reference, subject, indicators, as_of)
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert got[1][0] == want[1][0]
        assert got[1][1] == want[1][1]  # the same repr: the same Decimal exponents, the same order
        # and `score` on validated values (the server's validate-then-score path)
        s, values = compiled.validate(subject, dict(indicators), as_of)
        assert repr(compiled.score(s, values, as_of)) == want[1][1]
    else:
        assert got[1] == want[1]


# --------------------------------------------------------------------------------------------
# The source itself


@pytest.mark.parametrize("card_id", sorted(BUILTIN_CARDS))
def test_every_builtin_card_is_generated(card_id: str) -> None:
    compiled = compile_scorecard(BUILTIN_CARDS[card_id])
    assert compiled.source is not None
    compile(compiled.source, card_id, "exec")
    for rule in compiled.card.rules:
        assert f"p_{rule.id} = " in compiled.source
    for o in compiled.card.overrides:
        assert f"# {o.id}: " in compiled.source


def test_the_source_can_be_printed() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert codegen.main(["transport.taxi_driver"]) == 0
    text = out.getvalue()
    assert "def evaluate(subject, indicators, as_of):" in text
    assert "p_violations_5pt = -500 * v_violations_5pt" in text
    assert text.strip() == compile_scorecard(BUILTIN_CARDS["transport.taxi_driver"]).source.strip()  # type: ignore[union-attr]


def test_a_traceback_shows_the_generated_line() -> None:
    import traceback

    compiled = compile_scorecard(BUILTIN_CARDS["transport.taxi_driver"])
    try:
        compiled.score(Subject(SubjectKind.PERSON, "11010519491231002X"), {}, dt.date(2026, 1, 1))
    except KeyError:
        text = traceback.format_exc()
    assert "<scorecard transport.taxi_driver 2026.1>" in text
    assert "v_violations_1pt = values['violations_1pt']" in text


# --------------------------------------------------------------------------------------------
# Fast path and general path; zeros; a card the generated code does not take

TAXI = BUILTIN_CARDS["transport.taxi_driver"]
PERSON = Subject(SubjectKind.PERSON, "11010519491231002X")
AS_OF = dt.date(2026, 1, 1)


@pytest.mark.parametrize(
    "same",
    [
        {"violations_3pt": 2.0, "bonus_points": "2.5"},  # general path: a whole float, a string
        {"violations_3pt": Decimal(2), "bonus_points": Decimal("2.5")},
        {"violations_3pt": "2", "bonus_points": 2.5},
    ],
)
def test_every_accepted_type_gives_the_same_result(same: dict[str, Any]) -> None:
    compiled = compile_scorecard(TAXI)
    fast = compiled.evaluate(PERSON, {"violations_3pt": 2, "bonus_points": 2.5}, AS_OF)
    assert compiled.evaluate(PERSON, same, AS_OF) == fast
    assert fast.score == Decimal("16.50")


def test_a_zero_count_scores_zero_not_minus_zero() -> None:
    for evaluator in (compile_scorecard(TAXI), ReferenceScorecard(TAXI)):
        r = evaluator.evaluate(PERSON, {"violations_3pt": 0}, AS_OF)
        for ln in r.lines[:5]:
            assert str(ln.points) == "0.00", (ln.rule_id, ln.points)
            assert str(ln.best_points) == "0.00", (ln.rule_id, ln.best_points)
        assert str(r.groups[0].total) == "0.00"


def test_a_card_not_exact_to_2_places_is_evaluated_by_the_reference() -> None:
    text = (
        (BUILTIN / "transport.taxi_driver.toml")
        .read_text(encoding="utf-8")
        .replace("floor = -20", "floor = -19.995")
    )
    card = loader.load_text(text, file="taxi.toml")
    assert codegen.not_exact(card) == ["group deductions floor -19.995"]
    compiled = compile_scorecard(card)
    assert compiled.source is None
    r = compiled.evaluate(PERSON, {"violations_20pt": 1, "bonus_points": 5}, AS_OF)
    assert r == ReferenceScorecard(card).evaluate(
        PERSON, {"violations_20pt": 1, "bonus_points": 5}, AS_OF
    )
    assert r.groups[0].total == Decimal("-19.995") and r.score == Decimal(
        "5.01"
    )  # 20 − 19.995 + 5, rounded


def test_a_subject_id_scheme_registered_later_applies() -> None:
    schemes: dict[str, Any] = {}
    compiled = compile_scorecard(TAXI, schemes)
    with pytest.raises(InvalidInput):
        compiled.evaluate(Subject(SubjectKind.PERSON, "P:12345"), {}, AS_OF)
    schemes["P:"] = lambda sid: None if sid[2:].isdigit() else "digits after P:"
    assert (
        compiled.evaluate(Subject(SubjectKind.PERSON, "p:12345"), {}, AS_OF).subject.id == "P:12345"
    )
    with pytest.raises(InvalidInput) as info:
        compiled.evaluate(Subject(SubjectKind.PERSON, "P:12a45"), {}, AS_OF)
    assert info.value.violations[0].description == "digits after P:"


@pytest.mark.parametrize("raw", [10**6 + 1, 2**62, 10**30, str(10**30), Decimal("1e19"), 1e308])
def test_a_count_above_the_limit_is_refused_by_both_engines(raw: object) -> None:
    """Counts are at most limits.MAX_COUNT (10^6) whatever type carries them: the generated fast
    path hands them to the reference validator, which refuses them."""
    for engine in (ReferenceScorecard(TAXI), compile_scorecard(TAXI)):
        with pytest.raises(InvalidInput) as refused:
            engine.evaluate(PERSON, {"violations_1pt": raw}, AS_OF)
        (violation,) = refused.value.violations
        assert violation.field == "indicators.violations_1pt"
        assert "1000000" in violation.description


@pytest.mark.parametrize(
    ("expr", "op", "target", "values"),
    [
        ("x", "<", Decimal("2.5"), range(-3, 6)),
        ("x", "<=", Decimal("2.5"), range(-3, 6)),
        ("x", ">", Decimal("2.5"), range(-3, 6)),
        ("x", ">=", Decimal("2.5"), range(-3, 6)),
        ("x", "=", Decimal("2.5"), range(-3, 6)),
        ("x", "!=", Decimal("2.5"), range(-3, 6)),
        ("x", "<", Decimal("-2.5"), range(-5, 3)),
        ("x", ">=", Decimal("-2.5"), range(-5, 3)),
        ("x", "=", Decimal(2), range(-3, 6)),
        ("x", "<=", Decimal(-2000), range(-2003, -1997)),
    ],
)
def test_integer_comparisons_with_a_decimal(
    expr: str, op: str, target: Decimal, values: range
) -> None:
    py = {"=": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[op]
    test = codegen.int_test(expr, op, target)
    for x in values:
        assert eval(test, {"x": x}) == eval(
            f"Decimal(x) {py} target", {"Decimal": Decimal, "x": x, "target": target}
        )
