"""`buf curl` over server reflection, with the commands of docs/buf-curl.md.

The test runs each `buf curl` command of the page, exactly as written there (only the address
changes to the test server's), and checks the output against the one the page shows: the
method list line for line, the evaluation's grade, score, explanation and provenance, and the
error's code and message. What differs on every run (the evaluation's name and create time) is
left out of the comparison.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_harness import ServerProcess, running_server

DOC = Path(__file__).resolve().parents[1] / "docs" / "buf-curl.md"
DOC_ADDRESS = "http://127.0.0.1:50051"
PER_RUN = {"name", "createTime"}  # the caller is not: `local`, the principal of local mode


def buf() -> str:
    beside_python = Path(sys.executable).parent / "buf"
    found = str(beside_python) if beside_python.exists() else shutil.which("buf")
    assert found, "buf is not installed: `pip install buf-bin` (a dev extra of this project)"
    return found


def examples() -> list[tuple[str, str]]:
    """(command, the output shown after it) for each ```sh block of the page."""
    blocks = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    pairs = []
    for (lang, code), (_, output) in itertools.pairwise(blocks):
        if lang == "sh" and code.startswith("buf curl"):
            pairs.append((code.replace("\\\n", " "), output.strip()))
    return pairs


EXAMPLES = examples()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("buf-curl")
    with running_server(f"sqlite:///{tmp / 'audit.db'}", tmp / "server.log", metrics=False) as s:
        yield s


def run(server: ServerProcess, command: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command.replace(DOC_ADDRESS, f"http://{server.address}"))
    assert argv[:2] == ["buf", "curl"]
    return subprocess.run(
        [buf(), *argv[1:]], capture_output=True, text=True, timeout=60, check=False
    )


def without_per_run_fields(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_per_run_fields(v) for k, v in value.items() if k not in PER_RUN}
    if isinstance(value, list):
        return [without_per_run_fields(v) for v in value]
    return value


def test_the_page_has_the_three_examples() -> None:
    assert [c.split()[-1].rsplit("/", 1)[-1] for c, _ in EXAMPLES] == [
        "127.0.0.1:50051",
        "Evaluate",
        "Evaluate",
    ]


def test_list_methods_over_reflection(server: ServerProcess) -> None:
    command, shown = EXAMPLES[0]
    assert "--list-methods" in command
    done = run(server, command)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == shown.splitlines()
    assert "sector_credit.v1.CreditEvaluationService/Evaluate" in done.stdout


def test_evaluate_with_a_json_body(server: ServerProcess) -> None:
    command, shown = EXAMPLES[1]
    done = run(server, command)
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)["evaluation"]
    # SCORECARDS.md §3 example 1, as a JSON client reads it
    assert (
        reply["score"],
        reply["grade"]["code"],
        reply["pointsToNextGrade"],
        reply["nextGrade"],
    ) == ("14.00", "AA", "6.00", "AAA")
    assert reply["name"].startswith("evaluations/") and reply["requestId"] == "doc-buf-curl-1"
    assert all(line["provenance"]["source"] for line in reply["lines"])
    assert without_per_run_fields(reply) == without_per_run_fields(
        json.loads(shown)["evaluation"]
    ), (
        "docs/buf-curl.md shows another reply than the server gives: run the command and update"
        " the page"
    )

    again = run(server, command)  # the same requestId: the stored evaluation comes back
    assert json.loads(again.stdout)["evaluation"]["name"] == reply["name"]


def test_an_error_comes_back_as_a_status_with_details(server: ServerProcess) -> None:
    command, shown = EXAMPLES[2]
    done = run(server, command)
    assert done.returncode != 0 and done.stdout == ""
    status = json.loads(done.stderr)
    assert status == json.loads(shown)
    assert status["code"] == "not_found"
    assert [d["type"] for d in status["details"]] == [
        "google.rpc.BadRequest",
        "google.rpc.ErrorInfo",
    ]
