"""Rule kinds (scorecards/kinds.py): the table the loader, both evaluators, the wire and the
CLI read, and a kind a plugin adds (tests/kind_plugin: `capped_per_unit`), which loads,
scores the same in the reference and the generated evaluator, and goes through GetScorecard
and Evaluate of a real server process."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
from installed_plugins import BUILTIN_ONLY, plugin_site
from kind_plugin import capped_kind
from sector_credit.clients import CreditClient
from sector_credit.plugins import get_plugin_manager
from sector_credit.scorecards import golden, kinds
from sector_credit.scorecards.engine import compile_reference
from sector_credit.scorecards.loader import load_text
from sector_credit.scorecards.model import InvalidScorecard, RuleKind, Subject, SubjectKind
from sector_credit.scorecards.registry import build_registry
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc
from sector_credit.v1 import scorecard_pb2
from server_process import running_server

CARD_ID = "kinds.parking_fines"
CARD_FILE = Path(capped_kind.__file__).with_name("kinds.parking_fines.toml")
COMPANY = Subject(SubjectKind.ORGANIZATION, "91350100M000100Y43")
AS_OF = dt.date(2026, 6, 1)


def registry() -> Any:
    return build_registry(
        get_plugin_manager(extra_plugins=[(capped_kind, "kinds")], only=BUILTIN_ONLY)
    )


# --------------------------------------------------------------------------------------------
# the table


def test_every_builtin_kind_is_in_the_table_once() -> None:
    assert {k.value for k in RuleKind} <= set(kinds.known())


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (kinds.PER_UNIT, None),  # the same spec again: nothing changes
        (
            dataclasses.replace(kinds.PER_UNIT, describe=lambda r: "mine"),
            "rule kind 'per_unit' is already registered",
        ),
        (
            dataclasses.replace(kinds.PER_UNIT, name="nothing_scored", types=()),
            "at least one indicator type",
        ),
    ],
)
def test_registering_a_kind(spec: kinds.RuleKindSpec, error: str | None) -> None:
    if error is None:
        kinds.register(spec)
        assert kinds.get(spec.name) is kinds.PER_UNIT
    else:
        with pytest.raises(ValueError, match=error):
            kinds.register(spec)
        assert kinds.get("per_unit") is kinds.PER_UNIT


# --------------------------------------------------------------------------------------------
# a plugin's kind, in process


@pytest.mark.parametrize(
    ("fines", "awards", "lines", "score", "grade", "reasons"),
    [
        (0, 0, {"fines": "0.00", "awards": "0.00"}, "100.00", "GOOD", [("awards", "3.00")]),
        (
            3,
            0,
            {"fines": "-6.00", "awards": "0.00"},
            "94.00",
            "FAIR",
            [("fines", "6.00"), ("awards", "3.00")],
        ),
        (
            5,
            1,
            {"fines": "-10.00", "awards": "1.50"},
            "91.50",
            "FAIR",
            [("fines", "10.00"), ("awards", "1.50")],
        ),
        (80, 5, {"fines": "-10.00", "awards": "3.00"}, "93.00", "FAIR", [("fines", "10.00")]),
        (
            0,
            1,
            {"fines": "0.00", "awards": "1.50"},
            "100.00",
            "GOOD",
            [("awards", "1.50")],
        ),  # 101.5 cut to 100
    ],
)
def test_a_plugin_kind_scores_the_same_in_both_evaluators(
    fines: int,
    awards: int,
    lines: dict[str, str],
    score: str,
    grade: str,
    reasons: list[tuple[str, str]],
) -> None:
    compiled = registry().resolve(CARD_ID)
    assert compiled.source is not None  # the generated evaluator, not the reference standing in
    assert "POINTS_FN" in compiled.source  # a kind without `emit`: its points function, rounded
    indicators = {"fines": fines, "awards": awards}
    result = compiled.evaluate(COMPANY, indicators, AS_OF)
    assert {ln.rule_id: str(ln.points) for ln in result.lines} == lines
    assert (str(result.score), result.grade.code) == (score, grade)
    assert [(r.code, str(r.points_lost)) for r in result.reasons] == reasons
    reference = compile_reference(compiled.card).evaluate(COMPANY, indicators, AS_OF)
    assert result == reference and repr(result) == repr(reference)


def test_a_plugin_kind_card_passes_its_golden_cases() -> None:
    outcomes = golden.run_scorecard(registry().resolve(CARD_ID))
    assert [o.passed for o in outcomes] == [True, True], [o.mismatches for o in outcomes]


def test_best_points_of_a_plugin_kind() -> None:
    card = registry().resolve(CARD_ID).card
    inds = {i.name: i for i in card.indicators}
    assert {r.id: kinds.best_points(r, inds[r.indicator]) for r in card.rules} == {
        "fines": Decimal("0.00"),
        "awards": Decimal("3.00"),
    }


@pytest.mark.parametrize(
    ("replace", "by", "problem"),
    [
        (
            "cap = -10",
            "cap = 10",
            ("rules[0].cap", "a cap is on the side of the points (-2), not 10"),
        ),
        ("cap = -10", "", ("rules[0].cap", "must be a finite number, not None")),
        (
            "cap = -10",
            "cap = -10\nweight = 5",
            ("rules[0].weight", "does not apply to a capped_per_unit rule on a count indicator"),
        ),
        ("cap = -10", "cap = -10\nbogus = 1", ("rules[0].bogus", "unknown key")),
        (
            'kind = "capped_per_unit"\nindicator = "fines"',
            'kind = "capped_per_unit"\nindicator = "flagged"',
            (
                "rules[0].indicator",
                "a capped_per_unit rule cannot score a flag indicator (flagged)",
            ),
        ),
        (
            'kind = "capped_per_unit"\nindicator = "fines"',
            'kind = "caped_per_unit"\nindicator = "fines"',
            ("rules[0].kind", "unknown rule kind 'caped_per_unit'"),
        ),
    ],
)
def test_a_plugin_kind_checks_its_keys(replace: str, by: str, problem: tuple[str, str]) -> None:
    registry()  # the plugin's kind is registered
    text = CARD_FILE.read_text(encoding="utf-8").replace(replace, by, 1)
    text += '\n[indicators.flagged]\ntype = "flag"\ntitle = { zh = "标记", en = "Flagged" }\n'
    with pytest.raises(InvalidScorecard) as info:
        load_text(text)
    got = [(p.path, p.reason) for p in info.value.problems]
    assert len(got) == 1 and got[0][0] == problem[0] and got[0][1].startswith(problem[1]), got


# --------------------------------------------------------------------------------------------
# a plugin's kind, through a real server process


@pytest.fixture(scope="module")
def kind_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("kind-server")
    site = plugin_site(tmp, "capped_kind", Path(capped_kind.__file__).read_text(encoding="utf-8"))
    (site / CARD_FILE.name).write_text(CARD_FILE.read_text(encoding="utf-8"), encoding="utf-8")
    with running_server(
        tmp, ("--only-plugin", "builtin", "--only-plugin", "capped_kind"), site
    ) as address:
        yield address, site


def wire_rules(address: str, card_id: str) -> list[scorecard_pb2.Rule]:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.CreditEvaluationServiceStub(channel)
        request = pb.GetScorecardRequest(name=f"scorecards/{card_id}", view=pb.SCORECARD_VIEW_FULL)
        return list(stub.GetScorecard(request, timeout=30).scorecard.rules)


def test_get_scorecard_carries_a_plugin_kind_by_name_and_description(kind_server: Any) -> None:
    wire = wire_rules(kind_server[0], CARD_ID)
    with CreditClient(kind_server[0], caller="test-kinds") as client:
        card = client.get_scorecard(CARD_ID)
    assert [(r.kind, r.kind_name, r.description) for r in wire] == [
        (scorecard_pb2.RULE_KIND_UNSPECIFIED, "capped_per_unit", "-2 per unit, up to -10"),
        (scorecard_pb2.RULE_KIND_UNSPECIFIED, "capped_per_unit", "+1.5 per unit, up to +3"),
    ]
    assert [(r.kind, r.description, r.points) for r in card.rules] == [
        ("capped_per_unit", "-2 per unit, up to -10", Decimal(-2)),
        ("capped_per_unit", "+1.5 per unit, up to +3", Decimal("1.5")),
    ]


def test_get_scorecard_describes_the_builtin_kinds(kind_server: Any) -> None:
    rules = {r.id: r for r in wire_rules(kind_server[0], "transport.taxi_driver")}
    assert (rules["violations_5pt"].kind, rules["violations_5pt"].kind_name) == (
        scorecard_pb2.RULE_KIND_PER_UNIT,
        "per_unit",
    )
    assert rules["violations_5pt"].description == "-5 per unit"


def test_evaluate_scores_a_plugin_kind(kind_server: Any) -> None:
    with CreditClient(kind_server[0], caller="test-kinds") as client:
        ev = client.evaluate(CARD_ID, COMPANY.id, {"fines": 8, "awards": 1}, as_of=AS_OF)
    assert {ln.rule_id: ln.points for ln in ev.lines} == {
        "fines": Decimal("-10.00"),
        "awards": Decimal("1.50"),
    }
    assert (ev.score, ev.grade.code) == (Decimal("91.50"), "FAIR")


def test_credit_show_prints_the_kind_description(kind_server: Any) -> None:
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.clients.cli",
            "--server",
            kind_server[0],
            "scorecards",
            "show",
            CARD_ID,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert run.returncode == 0, run.stderr
    assert "-2 per unit, up to -10" in run.stdout and "capped_per_unit" in run.stdout, run.stdout
