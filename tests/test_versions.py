"""Scorecard versions over the wire, against a real server given a card with two versions
(`--scorecards`): ListScorecards shows the versions in force, or every version with
`all_versions` (and `credit scorecards list --all-versions`); an evaluation without a version
uses the one in force on as_of; an explicit version not yet in force on as_of is refused in
Evaluate, BatchEvaluate and StreamEvaluate (INVALID_ARGUMENT naming `version`, with the day
it takes effect), while an explicit superseded version still evaluates (reproducing the past)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import ServerProcess, evaluate_request, running_server

ACME = Path(__file__).resolve().parent / "plugin_fixture" / "acme.parking_operator.toml"
CARD = "fixture.versions"
# (version, effective_from, base): the second takes effect in 2030, long after these tests
VERSIONS = [("2026.1", "2026-01-01", "100"), ("2030.1", "2030-01-01", "90")]


def write_versions(folder: Path) -> Path:
    text = ACME.read_text(encoding="utf-8")
    folder.mkdir()
    for version, effective_from, base in VERSIONS:
        card = (
            text.replace('id = "acme.parking_operator"', f'id = "{CARD}"')
            .replace('version = "2026.1"', f'version = "{version}"')
            .replace("effective_from = 2026-01-01", f"effective_from = {effective_from}")
            .replace("base = 100", f"base = {base}")
        )
        card = card.split("[[cases]]", 1)[0]  # the acme cases pin base 100
        assert card.count(CARD) == 1 and f'"{version}"' in card
        (folder / f"{CARD}.{version}.toml").write_text(card, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("versions")
    cards = write_versions(tmp / "cards")
    with running_server(
        f"sqlite:///{tmp / 'audit.db'}", tmp / "server.log", "--scorecards", str(cards)
    ) as s:
        yield s


def listed(server: ServerProcess, **request: object) -> list[tuple[str, str, str]]:
    cards, token = [], ""
    while True:
        reply = server.stub.ListScorecards(
            pb.ListScorecardsRequest(page_token=token, **request), timeout=30
        )
        cards += [
            (
                c.scorecard_id,
                c.version,
                f"{c.effective_from.year:04d}-{c.effective_from.month:02d}-{c.effective_from.day:02d}",
            )
            for c in reply.scorecards
        ]
        token = reply.next_page_token
        if not token:
            return cards


def test_list_shows_the_version_in_force_and_all_versions_shows_each(server: ServerProcess) -> None:
    in_force = [c for c in listed(server) if c[0] == CARD]
    assert in_force == [(CARD, "2026.1", "2026-01-01")]
    every = listed(server, all_versions=True)
    assert [c for c in every if c[0] == CARD] == [
        (CARD, "2030.1", "2030-01-01"),
        (CARD, "2026.1", "2026-01-01"),
    ]
    assert len(every) == len(listed(server)) + 1  # the built-ins have one version each
    assert [c[0] for c in every] == sorted(c[0] for c in every)
    # pages of 2 give the same entries, each once
    assert listed(server, all_versions=True, page_size=2) == every


def item(version: str, as_of: str, complaints: int = 1) -> pb.EvaluateRequest:
    request = evaluate_request(CARD, {"complaints": complaints}, as_of=as_of)
    request.version = version
    return request


REFUSED = "fixture.versions version 2030.1 takes effect on 2030-01-01, after as_of 2026-06-01"

CASES = [
    # (version asked, as_of, score expected or None for refused)
    ("", "2026-06-01", "95.00"),  # the version in force: 2026.1, base 100
    ("", "2030-06-01", "85.00"),  # 2030.1, base 90
    ("2026.1", "2031-01-01", "95.00"),  # superseded, asked for explicitly: still evaluates
    ("2030.1", "2030-01-01", "85.00"),  # the day it takes effect
    ("2030.1", "2026-06-01", None),  # not yet in force: refused
]


@pytest.mark.parametrize(("version", "as_of", "score"), CASES)
def test_evaluate_with_and_without_a_version(
    server: ServerProcess, version: str, as_of: str, score: str | None
) -> None:
    if score is not None:
        evaluation = server.stub.Evaluate(item(version, as_of), timeout=30).evaluation
        assert (evaluation.scorecard_version, evaluation.score) == (
            version or evaluation.scorecard_version,
            score,
        )
        return
    with pytest.raises(grpc.RpcError) as info:
        server.stub.Evaluate(item(version, as_of), timeout=30)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violations(info.value) == [("version", REFUSED)]
    assert reason(info.value) == "VERSION_NOT_IN_FORCE"


def violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    found = []
    for detail in rpc_status.from_call(error).details:  # type: ignore[arg-type, union-attr]
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += [(v.field, v.description.split(":", 1)[0]) for v in bad.field_violations]
    return found


def reason(error: grpc.RpcError) -> str:
    for detail in rpc_status.from_call(error).details:  # type: ignore[arg-type, union-attr]
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


GET_CASES = [
    # (version asked, as_of, version shown): unset as_of is today, as in Evaluate
    ("", "", "2026.1"),
    ("", "2026-06-01", "2026.1"),
    ("", "2030-01-01", "2030.1"),
    ("2030.1", "", "2030.1"),  # asked for by name: shown before it takes effect
    ("2030.1", "2026-06-01", None),  # ...but not as the card in force on a day before
    ("2026.1", "2031-01-01", "2026.1"),  # a superseded version asked for by name
]


@pytest.mark.parametrize(("version", "as_of", "shown"), GET_CASES)
def test_get_scorecard_shows_the_version_an_evaluation_would_use(
    server: ServerProcess, version: str, as_of: str, shown: str | None
) -> None:
    request = pb.GetScorecardRequest(name=f"scorecards/{CARD}", version=version)
    if as_of:
        year, month, day = (int(x) for x in as_of.split("-"))
        request.as_of.year, request.as_of.month, request.as_of.day = year, month, day
    if shown is None:
        with pytest.raises(grpc.RpcError) as info:
            server.stub.GetScorecard(request, timeout=30)
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert reason(info.value) == "VERSION_NOT_IN_FORCE"
        return
    assert server.stub.GetScorecard(request, timeout=30).scorecard.version == shown


def test_batch_refuses_only_the_item_asking_for_a_version_not_in_force(
    server: ServerProcess,
) -> None:
    reply = server.stub.BatchEvaluate(
        pb.BatchEvaluateRequest(
            requests=[
                item("2026.1", "2026-06-01"),
                item("2030.1", "2026-06-01"),
                item("", "2026-06-01"),
            ]
        ),
        timeout=30,
    )
    assert [r.WhichOneof("result") for r in reply.results] == ["evaluation", "error", "evaluation"]
    error = reply.results[1].error
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [(v.field, v.description.split(":", 1)[0]) for v in error.field_violations] == [
        ("requests[1].version", REFUSED)
    ]


def test_stream_refuses_only_the_item_asking_for_a_version_not_in_force(
    server: ServerProcess,
) -> None:
    requests = [
        pb.StreamEvaluateRequest(correlation_id=cid, request=item(version, "2026-06-01"))
        for cid, version in [("now", "2026.1"), ("later", "2030.1")]
    ]
    replies = {r.correlation_id: r for r in server.stub.StreamEvaluate(iter(requests), timeout=30)}
    assert replies["now"].WhichOneof("result") == "evaluation"
    later = replies["later"]
    assert later.WhichOneof("result") == "error"
    assert [(v.field, v.description.split(":", 1)[0]) for v in later.error.field_violations] == [
        ("request.version", REFUSED)
    ]


def credit(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "160"})
    return subprocess.run(
        [sys.executable, "-m", "sector_credit.clients.cli", "--server", server.address, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_credit_scorecards_list_all_versions(server: ServerProcess) -> None:
    plain = credit(server, "scorecards", "list")
    assert plain.returncode == 0, plain.stderr
    assert re.findall(rf"^{re.escape(CARD)}\s+(\S+)\s+(\S+)", plain.stdout, re.MULTILINE) == [
        ("2026.1", "2026-01-01")
    ]
    every = credit(server, "scorecards", "list", "--all-versions")
    assert every.returncode == 0, every.stderr
    assert re.findall(rf"^{re.escape(CARD)}\s+(\S+)\s+(\S+)", every.stdout, re.MULTILINE) == [
        ("2030.1", "2030-01-01"),
        ("2026.1", "2026-01-01"),
    ]
    as_json = json.loads(credit(server, "scorecards", "list", "--all-versions", "--json").stdout)
    assert [(c["version"], c["effective_from"]) for c in as_json if c["scorecard_id"] == CARD] == [
        ("2030.1", "2030-01-01"),
        ("2026.1", "2026-01-01"),
    ]
