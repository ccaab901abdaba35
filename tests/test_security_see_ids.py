"""Who may see a person's id (issue 11): the server masks a person's id and name in the
evaluations it returns to a caller whose reader grant has no `see_ids`, and shows them whole
to one whose grant has it. Two callers, each with an API key, against a real server process
over TLS; the Python stub and the `credit report` command (single and --history) read the
same evaluations. The query audit keeps the whole id, and the masked caller still looks the
subject up by the id it knows.

SQLite only: the masking happens on the reply, after the store (whose PostgreSQL reads
test_security.py covers)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import html5lib
import pytest
from sector_credit.v1 import access_log_service_pb2 as access_pb
from sector_credit.v1 import access_log_service_pb2_grpc as access_pb_grpc
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from security_harness import Pki, bearer, server_keys, stub
from service_harness import ServerProcess, evaluate_request, resident_id, running_server, wait_until

CONFIG = """
[callers.repair-desk]        # the credit-repair desk: reads show the person whole
evaluator = {}
reader = { see_ids = true }

[callers.transport-bureau]   # reads show the person masked
evaluator = {}
reader = { scorecards = ["transport.taxi_driver", "procurement.supplier"] }

[callers.audit-office]
auditor = {}
"""
PURPOSE = "credit_repair"
PERSON_ID = resident_id(711)
MASKED_ID = PERSON_ID[:4] + "*" * 12 + PERSON_ID[-2:]
ORG_ID = "91350100M000100Y43"


@dataclass
class Setup:
    server: ServerProcess
    pki: Pki
    tokens: dict[str, str]

    def call(self, who: str, method: str, request: Any, service: Any = None) -> Any:
        channel, s = stub(self.server.address, self.pki.credentials())
        try:
            target = service(channel) if service else s
            return getattr(target, method)(request, metadata=bearer(self.tokens[who]), timeout=10)
        finally:
            channel.close()

    def credit(self, who: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
        env.update(
            SECTOR_CREDIT_TOKEN=self.tokens[who], SECTOR_CREDIT_CA=str(self.pki.folder / "ca.pem")
        )
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sector_credit.clients.cli",
                "--server",
                f"localhost:{self.server.port}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            check=False,
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("see-ids")
    pki = Pki.make(tmp / "pki")
    config = tmp / "security.toml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp / 'see-ids.db'}"
    tokens = {
        who: server_keys(url, "create", "--caller", caller, "--description", who)["token"]
        for who, caller in (
            ("desk", "repair-desk"),
            ("bureau", "transport-bureau"),
            ("auditor", "audit-office"),
        )
    }
    args = (*pki.server_args(mutual=False), "--security-config", str(config))
    with running_server(url, tmp / "server.log", *args) as server:
        yield Setup(server, pki, tokens)


@pytest.fixture(scope="module")
def made(setup: Setup) -> dict[str, str]:
    """Three evaluations by the bureau: a driver in 2025 and 2026, and a supplier firm."""
    names = {}
    for label, request in (
        (
            "driver-2025",
            evaluate_request(
                "transport.taxi_driver",
                {"violations_10pt": 1},
                subject_id=PERSON_ID,
                as_of="2025-06-01",
            ),
        ),
        (
            "driver-2026",
            evaluate_request(
                "transport.taxi_driver",
                {"violations_3pt": 1},
                subject_id=PERSON_ID,
                as_of="2026-06-01",
            ),
        ),
        ("firm", evaluate_request("procurement.supplier", {}, subject_id=ORG_ID)),
    ):
        reply = setup.call("bureau", "Evaluate", request)
        assert reply.evaluation.subject.id == request.subject.id  # the evaluator sent it: whole
        names[label] = reply.evaluation.name
    return names


# (caller, evaluation, the id and name it reads, subject_masked)
READS = [
    ("desk", "driver-2026", PERSON_ID, "张三", False),
    ("bureau", "driver-2026", MASKED_ID, "张*", True),
    ("desk", "firm", ORG_ID, "张三", False),
    ("bureau", "firm", ORG_ID, "张三", False),  # an organization's credit code is public
]


@pytest.mark.parametrize(("who", "which", "subject_id", "name", "masked"), READS)
def test_get_evaluation_shows_the_subject_as_the_grant_allows(
    setup: Setup,
    made: dict[str, str],
    who: str,
    which: str,
    subject_id: str,
    name: str,
    masked: bool,
) -> None:
    ev = setup.call(
        who, "GetEvaluation", pb.GetEvaluationRequest(name=made[which], purpose=PURPOSE)
    ).evaluation
    assert (ev.subject.id, ev.subject.display_name, ev.subject_masked) == (subject_id, name, masked)


@pytest.mark.parametrize(
    ("who", "subject_id", "masked"), [("desk", PERSON_ID, False), ("bureau", MASKED_ID, True)]
)
def test_a_listing_by_the_whole_id_returns_the_subject_as_the_grant_allows(
    setup: Setup, made: dict[str, str], who: str, subject_id: str, masked: bool
) -> None:
    reply = setup.call(
        who,
        "ListEvaluations",
        pb.ListEvaluationsRequest(
            subject_id=PERSON_ID, scorecard="transport.taxi_driver", purpose=PURPOSE
        ),
    )
    assert [e.name for e in reply.evaluations] == [made["driver-2026"], made["driver-2025"]]
    assert {(e.subject.id, e.subject_masked) for e in reply.evaluations} == {(subject_id, masked)}
    # the masked form is not a key: it finds nothing
    none = setup.call(
        who,
        "ListEvaluations",
        pb.ListEvaluationsRequest(
            subject_id=MASKED_ID, purpose=PURPOSE, scorecard="transport.taxi_driver"
        ),
    )
    assert list(none.evaluations) == []


@pytest.mark.parametrize(("who", "subject_id"), [("desk", PERSON_ID), ("bureau", MASKED_ID)])
def test_a_what_if_of_a_stored_evaluation_masks_it_the_same_way(
    setup: Setup, made: dict[str, str], who: str, subject_id: str
) -> None:
    explored = setup.call(  # by name: a read, with its purpose (sec9)
        who,
        "ExploreEvaluation",
        pb.ExploreEvaluationRequest(name=made["driver-2026"], purpose=PURPOSE),
    )
    assert explored.evaluation.subject.id == subject_id


def test_the_query_audit_keeps_the_whole_id(setup: Setup, made: dict[str, str]) -> None:
    setup.call(
        "bureau",
        "GetEvaluation",
        pb.GetEvaluationRequest(name=made["driver-2025"], purpose=PURPOSE),
    )

    def driver_reads() -> list[Any]:
        records = setup.call(
            "auditor",
            "ListAccessRecords",
            access_pb.ListAccessRecordsRequest(page_size=1000),
            access_pb_grpc.AccessLogServiceStub,
        ).access_records
        return [
            r
            for r in records
            if r.method.endswith("GetEvaluation")
            and r.caller == "transport-bureau"
            and r.scorecard == "transport.taxi_driver"
        ]

    assert {r.subject_id for r in wait_until(driver_reads)} == {PERSON_ID}


@pytest.mark.parametrize(
    ("who", "shown", "hidden", "note"),
    [
        ("desk", f"个人 person {PERSON_ID} (张三)", None, False),
        ("bureau", f"个人 person {MASKED_ID} (张*)", PERSON_ID, True),
    ],
)
def test_credit_report_shows_what_the_server_sent(
    setup: Setup,
    made: dict[str, str],
    tmp_path: Path,
    who: str,
    shown: str,
    hidden: str | None,
    note: bool,
) -> None:
    for args, out in (
        ((made["driver-2026"],), "one.html"),
        (("--history", PERSON_ID, "--scorecard", "transport.taxi_driver"), "history.html"),
    ):
        run = setup.credit(who, "report", *args, "--out", str(tmp_path / out), "--purpose", PURPOSE)
        assert run.returncode == 0, run.stderr
        html = (tmp_path / out).read_text(encoding="utf-8")
        root = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(html)
        subject = root.find(".//*[@id='subject']")
        assert subject is not None and " ".join("".join(subject.itertext()).split()) == shown, out
        assert hidden is None or hidden not in html, out
        assert ("shown masked" in html) is note, out
    history = (tmp_path / "history.html").read_text(encoding="utf-8")
    assert history.count('class="point"') == 2  # 2025 and 2026


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--history", PERSON_ID), "--history needs --scorecard"),
        (
            ("evaluations/x", "--history", PERSON_ID, "--scorecard", "transport.taxi_driver"),
            "give an evaluation NAME, or",
        ),
        ((), "give an evaluation NAME, or"),
        (
            ("evaluations/x", "--scorecard", "transport.taxi_driver"),
            "--scorecard goes with --history",
        ),
    ],
)
def test_credit_report_usage(setup: Setup, args: tuple[str, ...], error: str) -> None:
    run = setup.credit("desk", "report", *args, "--purpose", PURPOSE)
    assert run.returncode == 2 and error in run.stderr, run.stderr


def test_a_history_of_no_evaluations_writes_nothing(setup: Setup, tmp_path: Path) -> None:
    out = tmp_path / "none.html"
    run = setup.credit(
        "desk",
        "report",
        "--history",
        resident_id(712),
        "--scorecard",
        "transport.taxi_driver",
        "--out",
        str(out),
        "--purpose",
        PURPOSE,
    )
    assert run.returncode == 1 and "no evaluations of" in run.stderr and not out.exists()
