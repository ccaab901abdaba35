"""rowjson writes the stored documents exactly as json + codec would: every golden case of
every built-in scorecard, and values of every kind. Format 2 (the result without its
scorecard's static text) reads back equal to the result written, with the scorecard's parts."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from installed_plugins import BUILTIN_ONLY
from sector_credit.plugins import get_plugin_manager
from sector_credit.scorecards import codec
from sector_credit.scorecards.golden import DEFAULT_AS_OF, SAMPLE_IDS, case_input
from sector_credit.scorecards.model import EvaluationInput, InvalidInput, Subject, SubjectKind
from sector_credit.scorecards.registry import build_registry
from sector_credit.server.db.engine import _json_dumps
from sector_credit.server.db.rowjson import (
    JsonText,
    input_json,
    result_from_document,
    result_json,
    result_json_compact,
    result_parts,
    result_parts_from_document,
    result_parts_json,
)
from sector_credit.server.db.rows import EvaluationRecord, evaluation_row

_reference = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


REGISTRY = build_registry(get_plugin_manager(only=BUILTIN_ONLY))
PARTS = {c.card.digest: result_parts(c.card) for c in REGISTRY.all()}


def _golden_results():  # type: ignore[no-untyped-def]
    for compiled in REGISTRY.all():
        for case in compiled.card.cases:
            subj = case.subject or {}
            try:
                kind = SubjectKind(subj.get("kind", compiled.card.subject_kind.value))
            except ValueError:
                kind = compiled.card.subject_kind
            subject = Subject(
                kind, subj.get("id", SAMPLE_IDS[kind]), subj.get("display_name", '名字 "q"\n')
            )
            try:  # indicators derived from records filled from the case's, with their evidence
                values, evidence = case_input(compiled.card, case, subject)
                result = compiled.evaluate(subject, values, case.as_of or DEFAULT_AS_OF)
            except InvalidInput:
                continue
            result.evidence = evidence
            yield f"{compiled.id}/{case.name}", subject, case, result


GOLDEN = list(_golden_results())


def test_there_are_golden_results_with_overrides_and_cuts() -> None:
    assert len(GOLDEN) > 50
    assert any(r.overrides for *_, r in GOLDEN)
    assert any(line.points_before_cut is not None for *_, r in GOLDEN for line in r.lines)


@pytest.mark.parametrize("name,subject,case,result", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_result_json_is_the_json_of_result_to_dict(name, subject, case, result) -> None:  # type: ignore[no-untyped-def]
    text = result_json(result)
    assert isinstance(text, JsonText)
    assert text == _reference(codec.result_to_dict(result))
    assert result_json(result) == text  # from the cache, the same
    assert codec.result_from_dict(json.loads(text)) == result


@pytest.mark.parametrize("name,subject,case,result", GOLDEN[:20], ids=[g[0] for g in GOLDEN[:20]])
def test_input_json_is_canonical_and_gives_the_request_digest(name, subject, case, result) -> None:  # type: ignore[no-untyped-def]
    inp = EvaluationInput(result.scorecard_id, subject, dict(case.indicators), case.as_of, None)
    text, digest = input_json(inp)
    assert text == codec.canonical_json(codec.input_to_dict(inp))
    assert digest == codec.request_digest(inp)
    assert codec.input_from_dict(json.loads(text)) == inp


def test_values_of_every_kind() -> None:
    result = copy.deepcopy(GOLDEN[0][-1])  # the shared golden result stays as it is
    values = {
        "i": 3,
        "neg": -7,
        "b": True,
        "f": False,
        "d": Decimal("97.50"),
        "s": 'a"b\\c\n中',
        "day": dt.date(2024, 2, 29),
        "none": None,
        "fl": 0.1,
    }
    result.indicators = values  # type: ignore[assignment]
    assert result_json(result) == _reference(codec.result_to_dict(result))
    with pytest.raises(TypeError):
        result.indicators = {"when": dt.datetime(2024, 1, 1)}  # type: ignore[assignment]
        result_json(result)
    with pytest.raises(ValueError):
        result.indicators = {"x": float("nan")}  # type: ignore[assignment]
        result_json(result)


def test_the_engine_serializer_stores_encoded_documents_as_they_are() -> None:
    assert _json_dumps(JsonText('{"a":1}')) == '{"a":1}'
    assert _json_dumps({"a": "中"}) == '{"a":"中"}'
    assert _json_dumps('{"a":1}') == '"{\\"a\\":1}"'  # a plain string is a JSON string


@pytest.mark.parametrize("name,subject,case,result", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_result_from_document_reads_back_what_the_codec_reads(name, subject, case, result) -> None:  # type: ignore[no-untyped-def]
    from sector_credit.server.db.rowjson import result_from_document

    data = json.loads(result_json(result))
    got = result_from_document(data)
    assert got == codec.result_from_dict(data) == result
    again = result_from_document(json.loads(result_json(result)))
    for a, b in zip(got.lines, again.lines):  # static pieces are shared, as the engine shares them
        assert a.title is b.title and a.provenance is b.provenance
    assert got.grade is again.grade


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"format": 3},
        [],
        "x",
        {"format": 1, "scorecard_id": "x"},
    ],
)
def test_result_from_document_refuses_what_the_codec_refuses(bad: object) -> None:
    from sector_credit.server.db.rowjson import result_from_document

    with pytest.raises(ValueError) as ours:
        result_from_document(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError) as theirs:
        codec.result_from_dict(bad)  # type: ignore[arg-type]
    assert str(ours.value) == str(theirs.value)


def test_result_from_document_refuses_a_bad_reason_kind() -> None:
    from sector_credit.server.db.rowjson import result_from_document

    result = next(r for *_, r in GOLDEN if r.reasons)
    data = json.loads(result_json(result))
    data["reasons"][0]["kind"] = "whim"
    with pytest.raises(ValueError):
        result_from_document(data)


# --------------------------------------------------------------------------------------------
# Format 2


@pytest.mark.parametrize("name,subject,case,result", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_format_2_keeps_the_decisions_and_reads_back_the_same_result(
    name, subject, case, result
) -> None:  # type: ignore[no-untyped-def]
    parts = PARTS[result.digest]
    text = result_json_compact(result, parts)
    data = json.loads(text)
    assert data["format"] == 2  # every result of a built-in card fits its parts
    assert len(text) < len(result_json(result))
    assert [line[0] for line in data["lines"]] == [line.rule_id for line in result.lines]
    got = result_from_document(data, PARTS.get)
    assert got == result
    for a, b in zip(got.lines, result.lines):  # the scorecard's own objects, as the engine's
        assert a.title is b.title and a.provenance is b.provenance
    assert got.grade is result.grade


@pytest.mark.parametrize("compiled", list(REGISTRY.all()), ids=lambda c: f"{c.id}@{c.version}")
def test_result_parts_survive_their_stored_form(compiled) -> None:  # type: ignore[no-untyped-def]
    parts = PARTS[compiled.card.digest]
    again = result_parts_from_document(json.loads(result_parts_json(parts)))
    assert again == parts
    # and results read with the stored parts equal the engine's
    for name, _subject, _case, result in GOLDEN:
        if result.digest == parts.digest:
            data = json.loads(result_json_compact(result, parts))
            assert result_from_document(data, {parts.digest: again}.get) == result, name


def test_a_result_its_parts_do_not_describe_is_stored_whole() -> None:
    result = next(r for *_, r in GOLDEN if r.lines)
    parts = PARTS[result.digest]
    line = result.lines[0]
    retitled = dataclasses.replace(line, title=dataclasses.replace(line.title, en="another title"))
    changed = dataclasses.replace(result, lines=(retitled, *result.lines[1:]))
    data = json.loads(result_json_compact(changed, parts))
    assert data["format"] == 1 and result_from_document(data) == changed
    other = dataclasses.replace(result, digest="sha256:" + "0" * 64)
    assert json.loads(result_json_compact(other, parts))["format"] == 1
    assert json.loads(result_json_compact(result, None))["format"] == 1


CARDS = {c.card.digest: c.card for c in REGISTRY.all()}


@pytest.mark.parametrize("name,subject,case,result", GOLDEN, ids=[g[0] for g in GOLDEN])
def test_a_result_of_the_cards_engine_is_written_unchecked_to_the_same_bytes(
    name, subject, case, result
) -> None:  # type: ignore[no-untyped-def]
    """The premise of `made_by`: the engine's results fit their card's parts by construction,
    so the unchecked document is the checked one."""
    parts, card = PARTS[result.digest], CARDS[result.digest]
    assert parts.card is card
    unchecked = result_json_compact(result, parts, made_by=card)
    assert unchecked == result_json_compact(result, parts)
    assert json.loads(unchecked)["format"] == 2


def test_the_row_of_a_record_made_by_its_card_holds_the_same_documents() -> None:
    for name, _subject, case, result in GOLDEN:
        inp = EvaluationInput(result.scorecard_id, result.subject, dict(case.indicators))
        card = CARDS[result.digest]
        rows = [
            evaluation_row(EvaluationRecord(input=inp, result=result, made_by=by), PARTS)[0]
            for by in (None, card)
        ]
        assert rows[0]["input"] == rows[1]["input"], name
        assert rows[0]["result"] == rows[1]["result"], name
        assert json.loads(rows[1]["result"])["format"] == 2, name


def test_a_result_is_checked_unless_its_card_made_it_and_the_parts_are_that_cards() -> None:
    result = next(r for *_, r in GOLDEN if r.lines)
    card = CARDS[result.digest]
    other_card = next(c for d, c in CARDS.items() if d != result.digest)
    line = result.lines[0]
    retitled = dataclasses.replace(line, title=dataclasses.replace(line.title, en="another title"))
    changed = dataclasses.replace(result, lines=(retitled, *result.lines[1:]))
    read_back = result_parts_from_document(json.loads(result_parts_json(PARTS[result.digest])))
    assert read_back.card is None
    cases = [  # (parts, made_by): a result not made by the parts' card is checked, and whole
        (PARTS[result.digest], None),
        (PARTS[result.digest], other_card),
        (read_back, card),  # parts read back from the store: checked though the card made it
    ]
    for parts, made_by in cases:
        data = json.loads(result_json_compact(changed, parts, made_by=made_by))
        assert data["format"] == 1 and result_from_document(data) == changed, made_by
        assert json.loads(result_json_compact(result, parts, made_by=made_by))["format"] == 2


def test_format_2_without_its_parts_or_against_them_is_refused() -> None:
    result = next(r for *_, r in GOLDEN if len(r.lines) > 1)
    parts = PARTS[result.digest]
    data = json.loads(result_json_compact(result, parts))
    with pytest.raises(ValueError, match="parts of scorecard"):
        result_from_document(data)
    with pytest.raises(ValueError, match="parts of scorecard"):
        result_from_document(data, {}.get)
    swapped = copy.deepcopy(data)
    swapped["lines"][0], swapped["lines"][1] = swapped["lines"][1], swapped["lines"][0]
    with pytest.raises(ValueError, match="where the scorecard has rule"):
        result_from_document(swapped, PARTS.get)
    short = copy.deepcopy(data)
    short["lines"].pop()
    with pytest.raises(ValueError, match="format-2"):
        result_from_document(short, PARTS.get)
    unknown = copy.deepcopy(data)
    unknown["grade"] = "no such grade"
    with pytest.raises(ValueError, match="format-2"):
        result_from_document(unknown, PARTS.get)


# Rows written before results carried their base and score before the cut (issue 13) read back
# whole: the base from the parts of their digest, the score before the cut derived from it.

OLD_KEYS = {1: ("base", "score_before_cut"), 2: ("score_before_cut",)}


@pytest.mark.parametrize("name,subject,case,result", GOLDEN, ids=[g[0] for g in GOLDEN])
@pytest.mark.parametrize("fmt", [1, 2])
def test_a_row_written_before_the_base_reads_back_with_it(fmt, name, subject, case, result) -> None:  # type: ignore[no-untyped-def]
    parts = PARTS[result.digest]
    data = json.loads(result_json(result) if fmt == 1 else result_json_compact(result, parts))
    assert data["format"] == fmt
    for key in OLD_KEYS[fmt]:
        del data[key]
    old_parts = result_parts_json(parts).replace(
        ',"base":' + ("null" if parts.base is None else f'"{parts.base}"'), ""
    )
    assert "base" not in json.loads(old_parts)
    assert result_from_document(data, PARTS.get) == result
    if fmt == 1:  # no parts known for the digest: everything but what they would give
        assert result_from_document(data) == dataclasses.replace(
            result, base=None, score_before_cut=None
        )
    # parts stored before they recorded the base: a row read with them has none
    read = result_from_document(
        data, {parts.digest: result_parts_from_document(json.loads(old_parts))}.get
    )
    assert read == dataclasses.replace(result, base=None, score_before_cut=None)


def test_the_cut_score_of_an_old_row_is_derived() -> None:
    # construction.firm, bad_records_a = 7: base 60 + good 0 + bad -70 = -10, cut to 0
    (result,) = [r for n, *_, r in GOLDEN if n.startswith("construction.firm/score −10 clamped")]
    assert (str(result.score), str(result.base), str(result.score_before_cut)) == (
        "0.00",
        "60.00",
        "-10.00",
    )
    for text in (result_json(result), result_json_compact(result, PARTS[result.digest])):
        data = json.loads(text)
        data.pop("base", None)
        del data["score_before_cut"]
        got = result_from_document(data, PARTS.get)
        assert (str(got.base), str(got.score_before_cut)) == ("60.00", "-10.00")


# --------------------------------------------------------------------------------------------
# Documents written before orjson: tests/data/documents_before_orjson.json holds, for two
# golden cases of every built-in card, the input, format-1 and format-2 documents and the
# cards' parts exactly as the hand-written encoder (main at e4318b3) stored them.

BEFORE = json.loads(
    (Path(__file__).parent / "data" / "documents_before_orjson.json").read_text(encoding="utf-8")
)
BY_NAME = {g[0]: g for g in GOLDEN}


def test_the_documents_of_before_cover_every_card() -> None:
    cards = {BY_NAME[c["name"]][-1].scorecard_id for c in BEFORE["cases"]}
    assert cards == {c.id for c in REGISTRY.all()}


def _before_measures(result, digest):  # type: ignore[no-untyped-def]
    """The result and its card's parts as they were when those documents were stored: the
    cards had no measures yet (docs/scorecard-format.md#measures), so another digest."""
    card = REGISTRY.resolve(result.scorecard_id, result.version).card
    grades = {g.code: dataclasses.replace(g, measures=()) for g in card.grades}
    overrides = {o.id: dataclasses.replace(o, measures=()) for o in card.overrides}
    then = dataclasses.replace(
        card, digest=digest, grades=tuple(grades.values()), overrides=tuple(overrides.values())
    )
    fired = tuple(dataclasses.replace(o, measures=()) for o in result.overrides)
    return (
        dataclasses.replace(
            result, digest=digest, grade=grades[result.grade.code], overrides=fired
        ),
        result_parts(then),
    )


@pytest.mark.parametrize("case", BEFORE["cases"], ids=[c["name"] for c in BEFORE["cases"]])
def test_documents_are_the_bytes_stored_before_and_those_read_back_equal(case) -> None:  # type: ignore[no-untyped-def]
    name, subject, golden, result = BY_NAME[case["name"]]
    values = dict(golden.indicators)
    if golden.records:  # the case gives records now; it submitted their values when stored
        values = codec.input_from_dict(json.loads(case["input"])).indicators
        compiled = REGISTRY.resolve(result.scorecard_id, result.version)
        result = compiled.evaluate(subject, values, golden.as_of or DEFAULT_AS_OF)
    result, parts = _before_measures(result, json.loads(case["format1"])["digest"])
    inp = EvaluationInput(result.scorecard_id, subject, values, golden.as_of, None)
    assert input_json(inp) == (case["input"], case["digest"])
    assert result_json(result) == case["format1"]
    assert result_json_compact(result, parts) == case["format2"]
    assert result_parts_json(parts) == BEFORE["parts"][result.digest]
    stored_parts = result_parts_from_document(json.loads(BEFORE["parts"][result.digest]))
    assert codec.input_from_dict(json.loads(case["input"])) == inp
    assert result_from_document(json.loads(case["format1"])) == result
    assert (
        result_from_document(json.loads(case["format2"]), {result.digest: stored_parts}.get)
        == result
    )


@pytest.mark.parametrize(
    "value", [1e-07, 1e16, 1.5e300, 5e-324, 0.1, -0.0, 2**64, -(2**70), 2**63 - 1]
)
def test_inputs_orjson_would_write_otherwise_keep_the_json_modules_text(value: object) -> None:
    inp = EvaluationInput(
        "transport.taxi_driver",
        Subject(SubjectKind.PERSON, "S-1", "名"),
        {"x": value, "y": 1},
        None,
        None,
    )
    text, digest = input_json(inp)
    assert text == codec.canonical_json(codec.input_to_dict(inp))
    assert digest == codec.request_digest(inp)
    result = copy.deepcopy(GOLDEN[0][-1])
    result.indicators = {"x": value}  # type: ignore[assignment]
    assert result_json(result) == _reference(codec.result_to_dict(result))
