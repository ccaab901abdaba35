"""End to end: `credit history/get --purpose` and `credit audit subject|caller`, the `credit`
command as a subprocess against a real server process (SQLite). The server runs in local
mode: every caller is the local principal, `local`, whatever `--caller` says."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
from server_process import resident_id, running_server
from test_cli_e2e import COMMAND, ROOT, TAXI, cli_env


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("cli-audit-server")) as address:
        yield address


def credit(server: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "--server", server, "--caller", "forged-name", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(**env),
        cwd=ROOT,
    )


def test_reads_need_a_purpose_from_the_flag_or_the_environment(server: str) -> None:
    subject = resident_id("370202", "19800101", 1)
    made = credit(
        server, "evaluate", TAXI, "--subject", subject, "--set", "violations_1pt=1", "--json"
    )
    name = json.loads(made.stdout)["name"]
    cases = [  # args, env, exit code, what stderr says
        (["history", subject], {}, 1, "purpose: required"),
        (["get", name], {}, 1, "purpose: required"),
        (["history", subject, "--purpose", "gossip"], {}, 1, "'gossip' is not a purpose code"),
        (["history", subject, "--purpose", "annual_assessment"], {}, 0, ""),
        (["get", name], {"SECTOR_CREDIT_PURPOSE": "subject_request"}, 0, ""),
    ]
    for args, env, code, says in cases:
        done = credit(server, *args, **env)
        assert done.returncode == code, (args, done.stderr)
        assert says in done.stderr


def test_audit_subject_and_caller_list_the_records(server: str) -> None:
    subject = resident_id("370202", "19800102", 2)
    credit(server, "evaluate", TAXI, "--subject", subject, "--set", "violations_3pt=1")
    credit(server, "evaluate", TAXI, "--subject", subject, "--set", "violations_3pt=-1")
    credit(
        server, "history", subject, "--purpose", "recruitment_review", "--purpose-note", "case 7"
    )

    by_subject = credit(server, "audit", "subject", subject)
    assert by_subject.returncode == 0, by_subject.stderr
    lines = by_subject.stdout.splitlines()
    assert lines[0].split() == [
        "WHEN",
        "CALLER",
        "PROVEN",
        "METHOD",
        "SUBJECT",
        "SCORECARD",
        "PURPOSE",
        "RETURNED",
        "CODE",
        "REQUEST",
    ]
    rows = [line.split() for line in lines[1:]]
    assert [(r[2], r[3], r[4]) for r in rows] == [  # caller, proven by, method; newest first
        ("local", "local", "ListEvaluations"),
        ("local", "local", "Evaluate"),
        ("local", "local", "Evaluate"),
    ]
    assert "recruitment_review (case 7)" in lines[1] and lines[1].split()[-3] == "1"
    assert "INVALID_ARGUMENT INVALID_INDICATORS" in lines[2] and " OK " in lines[3]

    as_json = json.loads(credit(server, "audit", "subject", subject, "--json").stdout)
    assert [(r["caller"], r["method"], r["code"], r["evaluations_returned"]) for r in as_json] == [
        ("local", "ListEvaluations", "OK", 1),
        ("local", "Evaluate", "INVALID_ARGUMENT", 0),
        ("local", "Evaluate", "OK", 1),
    ]

    by_caller = json.loads(
        credit(server, "audit", "caller", "local", "--limit", "0", "--json").stdout
    )
    assert [
        (r["method"], r["purpose"], r["purpose_note"])
        for r in by_caller
        if r["subject_id"] == subject
    ] == [
        ("ListEvaluations", "recruitment_review", "case 7"),
        ("Evaluate", "", ""),
        ("Evaluate", "", ""),
    ]
    assert not json.loads(credit(server, "audit", "caller", "forged-name", "--json").stdout)
    limited = credit(server, "audit", "subject", subject, "--limit", "1")
    assert len(limited.stdout.splitlines()) == 3 and "--limit 0 shows all" in limited.stdout
    none_yet = credit(server, "audit", "caller", "local", "--since", "2999-01-01")
    assert none_yet.returncode == 0 and none_yet.stdout.startswith(
        "no access records of caller local"
    )


def test_audit_right_to_know_shows_who_why_and_when_only(server: str) -> None:
    subject = resident_id("370202", "19800103", 3)
    credit(server, "evaluate", TAXI, "--subject", subject)
    credit(server, "history", subject, "--purpose", "bid_review", "--purpose-note", "internal note")
    credit(server, "history", subject)  # refused: no purpose, nothing shown
    done = credit(server, "audit", "subject", subject, "--right-to-know")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["DATE", "CALLER", "PURPOSE"]
    assert [line.split()[1:] for line in lines[1:]] == [
        ["local", "bid_review"],
        ["local", "evaluation"],
    ]
    assert "internal note" not in done.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["audit", "caller", "x", "--since", "yesterday"], "--since: 'yesterday' is not a day"),
        (
            ["audit", "caller", "x", "--since", "2026-02-01", "--until", "2026-01-01"],
            "end_time: must be after start_time",
        ),
        (["audit", "subject", "1" * 70], "subject_id: 70 characters, more than 64"),
        (["audit", "caller", "x", "--limit", "-1"], "--limit must not be negative"),
        # an empty name is no filter to the service: it would list every caller's records
        (["audit", "caller", ""], "NAME is empty: name the caller"),
        (["audit", "caller", "  "], "NAME is empty: name the caller"),
        (["audit", "subject", ""], "SUBJECT_ID is empty: name the subject"),
        (["audit", "subject", "", "--right-to-know"], "SUBJECT_ID is empty: name the subject"),
    ],
)
def test_audit_bad_arguments(server: str, args: list[str], says: str) -> None:
    done = credit(server, *args)
    assert done.returncode in (1, 2) and says in done.stderr, done.stderr
