"""The evaluation views of AIP-157 over the wire, on SQLite and PostgreSQL: `view = BASIC`
on Evaluate, BatchEvaluate (the batch's view, or an item's own) and StreamEvaluate answers
with the FULL evaluation less its lines; the full explanation is stored either way and
GetEvaluation returns it; unspecified is FULL; a view the enum does not define is
INVALID_ARGUMENT naming the field."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import ServerProcess, evaluate_request, module_server_fixture, resident_id

BASIC, FULL, UNSPECIFIED = (
    pb.EVALUATION_VIEW_BASIC,
    pb.EVALUATION_VIEW_FULL,
    pb.EVALUATION_VIEW_UNSPECIFIED,
)

server = module_server_fixture()

# (case, scorecard, indicators, lines of the FULL reply): a plain result, one with an
# override fired, one with a group cut, one without a score or lines but with `until`
CASES = [
    (
        "taxi",
        "transport.taxi_driver",
        {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": "2"},
        6,
    ),
    ("taxi forced to B", "transport.taxi_driver", {"violations_20pt": 1, "bonus_points": "5"}, 6),
    ("taxi deductions floored", "transport.taxi_driver", {"violations_10pt": 3}, 6),
    (
        "civil servant barred until",
        "civil_servant.recruitment",
        {"exam_misconduct": "forged_material", "exam_misconduct_date": (2024, 3, 10)},
        0,
    ),
    (
        "environment",
        "environment.enterprise",
        {
            "emission_compliance_min_pct": "85",
            "solid_waste_treated_pct": "97",
            "hazardous_waste_rating": "compliant",
            "noise_exceedance_db": "3",
            "siting_compliant": True,
            "administrative_penalties": 1,
            "risk_management_complete": True,
            "other_indicators_score": "90",
            "hidden_discharge": True,
        },
        8,
    ),
]
_subjects = iter(range(5000, 6000))


def _request(
    scorecard: str, indicators: dict[str, Any], view: int = UNSPECIFIED, request_id: str = ""
) -> pb.EvaluateRequest:
    subject = (
        resident_id(next(_subjects))
        if scorecard.split(".")[0] in ("transport", "civil_servant")
        else None
    )
    request = evaluate_request(scorecard, indicators, subject_id=subject, request_id=request_id)
    request.view = view
    return request


def _unnamed(evaluation: Any) -> Any:
    """The evaluation without what differs between two stored evaluations of one input."""
    copy = type(evaluation)()
    copy.CopyFrom(evaluation)
    copy.ClearField("name")
    copy.ClearField("create_time")
    return copy


def _get(server: ServerProcess, name: str) -> Any:
    return server.stub.GetEvaluation(
        pb.GetEvaluationRequest(purpose="supervision", name=name)
    ).evaluation


def _evaluate(server: ServerProcess, how: str, request: pb.EvaluateRequest) -> Any:
    """The evaluation of `request` (its `view` set) by one method: `unary`, `batch` (the
    batch's view), `batch item` (the item's own view over a batch asking FULL), `stream`."""
    if how == "unary":
        return server.stub.Evaluate(request, timeout=30).evaluation
    if how.startswith("batch"):
        view = request.view
        if how == "batch":
            request.view = UNSPECIFIED
            batch = pb.BatchEvaluateRequest(requests=[request], view=view)
        else:
            batch = pb.BatchEvaluateRequest(requests=[request], view=FULL)
        (result,) = server.stub.BatchEvaluate(batch, timeout=30).results
        assert result.WhichOneof("result") == "evaluation", result
        return result.evaluation
    (answer,) = server.stub.StreamEvaluate(
        iter([pb.StreamEvaluateRequest(correlation_id="1", request=request)]), timeout=30
    )
    assert answer.WhichOneof("result") == "evaluation", answer
    return answer.evaluation


METHODS = ["unary", "batch", "batch item", "stream"]


@pytest.mark.parametrize("how", METHODS)
@pytest.mark.parametrize(
    ("case", "scorecard", "indicators", "lines"), CASES, ids=[c[0] for c in CASES]
)
def test_basic_is_full_without_lines_and_the_full_one_is_stored(
    server: ServerProcess,
    how: str,
    case: str,
    scorecard: str,
    indicators: dict[str, Any],
    lines: int,
) -> None:
    full = _evaluate(server, how, _request(scorecard, indicators, FULL))
    request = _request(scorecard, indicators, BASIC)
    request.subject.id = full.subject.id  # the same input, so the same evaluation
    basic = _evaluate(server, how, request)
    assert len(full.lines) == lines and not basic.lines
    assert basic.name.startswith("evaluations/") and basic.create_time.seconds  # stored, named
    assert basic.grade.code and basic.reasons == full.reasons and basic.until == full.until
    assert basic.overrides == full.overrides and basic.score == full.score
    without_lines = _unnamed(full)
    without_lines.ClearField("lines")
    assert _unnamed(basic) == without_lines
    stored = _get(server, basic.name)  # the whole explanation was kept
    assert _unnamed(stored) == _unnamed(full)
    assert stored.name == basic.name and stored.create_time == basic.create_time


@pytest.mark.parametrize("how", METHODS)
def test_unspecified_is_full(server: ServerProcess, how: str) -> None:
    _, scorecard, indicators, _ = CASES[0]
    evaluation = _evaluate(server, how, _request(scorecard, indicators))
    assert len(evaluation.lines) == 6
    assert _get(server, evaluation.name) == evaluation


def test_a_retry_gets_the_stored_evaluation_in_the_view_it_asks_for(server: ServerProcess) -> None:
    _, scorecard, indicators, _ = CASES[1]
    first = server.stub.Evaluate(_request(scorecard, indicators, FULL, request_id="view-retry-1"))
    request = _request(scorecard, indicators, BASIC, request_id="view-retry-1")
    request.subject.id = first.evaluation.subject.id
    again = server.stub.Evaluate(request).evaluation
    assert again.name == first.evaluation.name and not again.lines
    want = _unnamed(first.evaluation)
    want.ClearField("lines")
    assert _unnamed(again) == want


def test_validate_only_answers_in_the_view_asked_for(server: ServerProcess) -> None:
    _, scorecard, indicators, _ = CASES[0]
    request = _request(scorecard, indicators, BASIC)
    request.validate_only = True
    evaluation = server.stub.Evaluate(request).evaluation
    assert not evaluation.name and not evaluation.lines and evaluation.grade.code == "AA"


# an undefined view: (method, where it is set) -> the field named
BAD_VIEWS = [
    ("unary", "view"),
    ("batch", "view"),
    ("batch item", "requests[0].view"),
    ("stream", "request.view"),
]


@pytest.mark.parametrize(("how", "field"), BAD_VIEWS)
def test_an_undefined_view_is_invalid_argument_naming_the_field(
    server: ServerProcess, how: str, field: str
) -> None:
    _, scorecard, indicators, _ = CASES[0]
    request = _request(scorecard, indicators, view=7)
    if how == "unary":
        with pytest.raises(grpc.RpcError) as info:
            server.stub.Evaluate(request, timeout=30)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "view" in (info.value.details() or "")  # type: ignore[attr-defined]
        return
    if how == "batch":
        request.view = UNSPECIFIED
        with pytest.raises(grpc.RpcError) as info:
            server.stub.BatchEvaluate(
                pb.BatchEvaluateRequest(requests=[request], view=7), timeout=30
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
        assert "view" in (info.value.details() or "")  # type: ignore[attr-defined]
        return
    if how == "batch item":
        (result,) = server.stub.BatchEvaluate(
            pb.BatchEvaluateRequest(requests=[request]), timeout=30
        ).results
        error = result.error
    else:
        (answer,) = server.stub.StreamEvaluate(
            iter([pb.StreamEvaluateRequest(correlation_id="1", request=request)]), timeout=30
        )
        error = answer.error
    assert error.code == code_pb2.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == [field]
