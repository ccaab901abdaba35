"""ExploreEvaluation against a real server process: by input and by stored name, through the
Python client, the raw stub and the `credit whatif` command. Nothing is ever stored."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from sector_credit.clients import CreditClient, InvalidRequestError, NotFoundError
from sector_credit.v1 import common_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc
from server_process import resident_id, running_server
from test_cli_e2e import credit, section

TAXI = "transport.taxi_driver"
EXAMPLE_1 = {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("whatif-server")) as address:
        yield address


def changes(proposal: object) -> dict[str, str]:
    return {c.indicator: str(c.after) for c in proposal.changes}  # type: ignore[attr-defined]


def test_explore_an_input_stores_nothing(server: str) -> None:
    subject = resident_id("110105", "19800101", 301)
    with CreditClient(server, caller="whatif-test", purpose="supervision") as client:
        explored = client.explore(TAXI, subject, EXAMPLE_1, as_of="2026-06-01")
        assert client.list_evaluations(subject_id=subject).evaluations == ()
    ev = explored.evaluation
    assert (ev.grade.code, ev.score, ev.name) == ("AA", Decimal("14.00"), "")
    (target,) = explored.targets
    assert target.grade.code == "AAA"
    # 14 + 6 bonus = 20; both violations gone = 22 (SCORECARDS.md §3 example 1;
    # tests/test_whatif.py)
    assert [changes(p) for p in target.proposals[:2]] == [
        {"bonus_points": "8.00"},
        {"violations_3pt": "0", "violations_5pt": "0"},
    ]
    assert explored.actionable == (
        "violations_1pt",
        "violations_3pt",
        "violations_5pt",
        "violations_10pt",
        "violations_20pt",
        "bonus_points",
    )


def test_explore_a_stored_evaluation_by_name(server: str) -> None:
    subject = resident_id("110105", "19800101", 302)
    with CreditClient(server, caller="whatif-test", purpose="supervision") as client:
        made = client.evaluate(
            "civil_servant.recruitment",
            subject,
            {"exam_misconduct": "forged_material", "exam_misconduct_date": "2024-03-10"},
            as_of="2026-06-01",
        )
        explored = client.explore_evaluation(made.name)
        assert (
            len(client.list_evaluations(subject_id=subject).evaluations) == 1
        )  # still only the one
    assert explored.evaluation.name == made.name
    assert explored.evaluation.grade.code == "BARRED"
    assert explored.actionable == ()
    assert [(t.grade.code, t.proposals) for t in explored.targets] == [("ELIGIBLE", ())]
    assert [(e.override_id, str(e.until), e.grade) for e in explored.override_ends] == [
        ("forged_material_5y", "2029-03-10", "ELIGIBLE")
    ]


@pytest.mark.parametrize(
    ("request_", "code", "fields"),
    [
        pytest.param(
            pb.ExploreEvaluationRequest(),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["name"],
            id="neither name nor input",
        ),
        pytest.param(
            pb.ExploreEvaluationRequest(
                name="evaluations/0190b1d2-0000-7000-8000-000000000000", purpose="supervision"
            ),
            grpc.StatusCode.NOT_FOUND,
            [],
            id="an unknown evaluation",
        ),
        pytest.param(
            pb.ExploreEvaluationRequest(name="evaluations/0190b1d2-0000-7000-8000-000000000000"),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["purpose"],
            id="by name, a read: without a purpose",
        ),
        pytest.param(
            pb.ExploreEvaluationRequest(
                name="evaluations/0190b1d2-0000-7000-8000-000000000000", purpose="curiosity"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["purpose"],
            id="by name, a purpose code not configured",
        ),
        pytest.param(
            pb.ExploreEvaluationRequest(
                evaluation=pb.EvaluateRequest(scorecard=TAXI, request_id="r-1", validate_only=True)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["evaluation.request_id", "evaluation.validate_only"],
            id="request_id and validate_only: nothing is stored",
        ),
        pytest.param(
            pb.ExploreEvaluationRequest(
                evaluation=pb.EvaluateRequest(
                    scorecard="transport.taxi",
                    subject=common_pb2.Subject(
                        kind=common_pb2.SUBJECT_KIND_PERSON, id="11010519491231002X"
                    ),
                )
            ),
            grpc.StatusCode.NOT_FOUND,
            ["evaluation.scorecard"],
            id="an unknown scorecard",
        ),
    ],
)
def test_refusals_are_clear_statuses(
    server: str, request_: pb.ExploreEvaluationRequest, code: grpc.StatusCode, fields: list[str]
) -> None:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    with grpc.insecure_channel(server) as channel:
        with pytest.raises(grpc.RpcError) as err:
            pb_grpc.CreditEvaluationServiceStub(channel).ExploreEvaluation(request_, timeout=30)
    assert err.value.code() is code
    status = rpc_status.from_call(err.value)
    assert status is not None
    named = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            named += [v.field for v in bad.field_violations]
    assert named == fields


def test_bad_indicators_name_each_field_under_evaluation(server: str) -> None:
    with (
        CreditClient(server, caller="whatif-test", purpose="supervision") as client,
        pytest.raises(InvalidRequestError) as err,
    ):
        client.explore(TAXI, "11010519491231002X", {"bonus_points": 12, "violations_3pt": -1})
    assert sorted(v.field for v in err.value.violations) == [
        "evaluation.indicators.bonus_points",
        "evaluation.indicators.violations_3pt",
    ]


def test_explore_an_unknown_stored_name_is_not_found(server: str) -> None:
    with (
        CreditClient(server, caller="whatif-test", purpose="supervision") as client,
        pytest.raises(NotFoundError),
    ):
        client.explore_evaluation("0190b1d2-0000-7000-8000-000000000000")


def test_cli_whatif_prints_the_proposals_and_the_end_dates(server: str, tmp_path: Path) -> None:
    run = credit(
        server,
        "whatif",
        TAXI,
        "--subject",
        "11010519491231002X",
        "--set",
        "violations_3pt=1",
        "--set",
        "violations_5pt=1",
        "--set",
        "bonus_points=2",
        "--as-of",
        "2026-06-01",
        "--lang",
        "en",
    )
    assert run.returncode == 0, run.stderr
    rows = section(run.stdout, "What would change the grade")
    assert rows[0].split() == ["TARGET", "#", "CHANGES", "GIVES", "SCORE"]
    assert rows[1].split() == [
        "AAA",
        "Excellent",
        "1",
        "bonus_points",
        "2",
        "→",
        "8.00",
        "AAA",
        "20.00",
    ]
    assert "Evaluation  not stored (a what-if)" in run.stdout

    made = credit(
        server,
        "evaluate",
        "procurement.supplier",
        "--subject",
        "91350100M000100Y43",
        "--set",
        "major_illegal_record_date=2025-01-01",
        "--as-of",
        "2026-06-01",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    import json

    name = json.loads(made.stdout)["name"]
    run = credit(server, "whatif", name, "--lang", "en", "--purpose", "supervision")
    assert run.returncode == 0, run.stderr
    ends = section(run.stdout, "Override end dates")
    assert ends[1].split()[:4] == ["major_illegal_record", "2028-01-01", "QUALIFIED", "0.00"]
    assert f"Evaluation  {name}" in run.stdout

    unstated = credit(server, "whatif", name)  # a stored evaluation explored is a read
    assert unstated.returncode != 0 and "purpose" in unstated.stderr
    usage = credit(server, "whatif", name, "--set", "major_illegal_record_date=2025-06-01")
    assert usage.returncode == 2 and "give --subject too" in usage.stderr


def test_cli_report_writes_a_page_that_parses(server: str, tmp_path: Path) -> None:
    import html5lib

    made = credit(
        server,
        "evaluate",
        TAXI,
        "--subject",
        "11010519491231002X",
        "--name",
        "张三丰",
        "--set",
        "violations_3pt=1",
        "--as-of",
        "2026-06-01",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    import json

    name = json.loads(made.stdout)["name"]
    out = tmp_path / "r.html"
    run = credit(server, "report", name, "--out", str(out), "--purpose", "supervision")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    html5lib.HTMLParser(strict=True).parse(html)  # raises on any parse error
    assert name in html
    # local mode: the one caller holds every role, see_ids included, so the id is whole
    # (a caller whose grant has no see_ids gets it masked: test_security_see_ids.py)
    assert "11010519491231002X" in html and "张三丰" in html and "shown masked" not in html
    assert "bonus_points" in html and "AAA" in html  # the what-if guidance is on the page


def test_cli_report_prints_a_pdf_with_chromium(server: str, tmp_path: Path) -> None:
    import shutil

    from sector_credit.clients.report import BROWSERS

    if not any(shutil.which(b) for b in BROWSERS):
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)")
    if not shutil.which("pdftotext"):
        pytest.skip(
            "no pdftotext to read the PDF back (Debian: poppler-utils; .ci/run installs it)"
        )
    made = credit(
        server,
        "evaluate",
        "civil_servant.recruitment",
        "--subject",
        "11010519491231002X",
        "--set",
        "criminal_record=true",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    import json

    name = json.loads(made.stdout)["name"]
    pdf = tmp_path / "r.pdf"
    run = credit(
        server,
        "report",
        name,
        "--out",
        str(tmp_path / "r.html"),
        "--pdf",
        str(pdf),
        "--purpose",
        "supervision",
    )
    assert run.returncode == 0, run.stderr
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # the PDF says what the page says, the Chinese included: read back as text
    import subprocess

    words = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    for expected in ("信用评价报告", "Credit report", "BARRED", "否决与调整", name):
        assert expected in words, expected
    # (Chromium embeds its glyphs as unnamed Type 3 fonts, so pdffonts cannot name the face; the
    # screenshots of the closing note show the glyphs themselves)
