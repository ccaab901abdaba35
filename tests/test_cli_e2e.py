"""End to end: the `credit` command, run as a subprocess, against a real server process."""

from __future__ import annotations

import collections
import csv
import json
import os
import pty
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sector_credit.clients import CreditClient
from sector_credit.clients.render import display_width
from server_process import resident_id, running_server

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("credit")
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "sector_credit.clients.cli"]
PERSON = "11010519491231002X"
TAXI = "transport.taxi_driver"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("cli-server")) as address:
        yield address


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "160", **extra})
    return env


def credit(server: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, "--server", server, "--caller", "e2e", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=ROOT,
    )


def interruptible(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen` for a child the test stops with SIGINT, as Ctrl-C would. A child
    inherits an ignored SIGINT, and Python (asyncio.run too) leaves it ignored: pytest started
    in the background by a shell without job control (`make test &` in a script) runs with
    SIGINT ignored, and the child would never see the signal. A caught signal is reset to its
    default on exec, so while the child starts SIGINT is caught here, by a handler that does
    nothing (this process goes on ignoring it), and ignored again once the child runs."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, lambda *_: None)
    try:
        return subprocess.Popen(args, **kwargs)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def section(text: str, title: str) -> list[str]:
    """The lines of one titled section of the output (up to the next blank line)."""
    lines = text.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


# -- scorecards ------------------------------------------------------------------------------


def test_scorecards_list(server: str) -> None:
    result = credit(server, "scorecards", "list")
    assert result.returncode == 0, result.stderr
    for sid in (
        "transport.taxi_driver",
        "construction.firm",
        "civil_servant.recruitment",
        "social_org.evaluation.anhui",
        "procurement.supplier",
    ):
        assert re.search(rf"^{re.escape(sid)}\s+2026\.1\s", result.stdout, re.MULTILINE), sid
    assert "出租汽车驾驶员服务质量信誉考核" in result.stdout
    as_json = json.loads(credit(server, "scorecards", "list", "--json").stdout)
    assert len(as_json) == 9 and as_json[0]["scorecard_id"] == "civil_servant.recruitment"


def test_output_into_a_closed_pipe_is_no_traceback(server: str) -> None:
    # `credit … | head -1`: the reader leaves after one line; the CLI ends quietly
    proc = subprocess.Popen(
        [*COMMAND, "--server", server, "scorecards", "show", "construction.firm"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=60) in (0, 141)
    assert b"Traceback" not in proc.stderr.read()


def test_scorecards_show(server: str) -> None:
    result = credit(server, "scorecards", "show", TAXI)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    indicators = section(out, "Indicators")
    assert indicators[0].split() == ["NAME", "TYPE", "NEED", "VALUES", "TITLE"]
    assert any(line.startswith("bonus_points") and "[0, 10]" in line for line in indicators)
    rules = section(out, "Rules")
    assert re.search(
        r"^violations_3pt\s+violations_3pt\s+per_unit\s+-3 per unit\s+deductions",
        "\n".join(rules),
        re.MULTILINE,
    )
    assert "secondary [1]" in "\n".join(rules)
    grades = section(out, "Grades")
    assert [line.split()[0] for line in grades[1::2]] == ["AAA", "AA", "A", "B"]
    # Chinese titles are two cells wide: the MIN SCORE column ends at the same place on every row
    header = grades[0]
    edge = display_width(header[: header.index("MIN SCORE") + len("MIN SCORE")])
    for row in grades[1::2]:
        score = re.search(r"\s(\d+)\s", row)
        assert score is not None
        assert display_width(row[: score.end(1)]) == edge, row
    overrides = "\n".join(section(out, "Overrides (一票否决)"))
    assert (
        "whole_20_lost" in overrides
        and "group.deductions <= -20" in overrides
        and "force B" in overrides
    )
    assert "《出租汽车服务质量信誉考核办法》" in "\n".join(section(out, "Sources"))

    card = json.loads(credit(server, "scorecards", "show", TAXI, "--json").stdout)
    assert [g["code"] for g in card["grades"]] == ["AAA", "AA", "A", "B"]
    assert (
        card["rules"][1]["points"] == "-3" and card["rules"][1]["provenance"]["tag"] == "secondary"
    )

    missing = credit(server, "scorecards", "show", "no.such.card")
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr and "SCORECARD_NOT_FOUND" in missing.stderr


@pytest.mark.parametrize(
    ("scorecard", "actionable"),
    [
        (
            TAXI,
            "violations_1pt, violations_3pt, violations_5pt, violations_10pt, violations_20pt, "
            "bonus_points",
        ),
        (
            "civil_servant.recruitment",
            "none: nothing the subject can change (credit whatif varies only these)",
        ),
    ],
)
def test_scorecards_show_names_the_actionable_indicators(
    server: str, scorecard: str, actionable: str
) -> None:
    result = credit(server, "scorecards", "show", scorecard)
    assert result.returncode == 0, result.stderr
    assert f"Actionable     {actionable}" in result.stdout.splitlines()


def test_scorecards_show_says_which_indicators_come_from_records(server: str) -> None:
    result = credit(server, "scorecards", "show", "civil_servant.recruitment")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "From records   on_joint_punishment_list (joint_punishment: active)" in lines
    row = next(line for line in lines if line.startswith("on_joint_punishment_list "))
    assert row.split()[1:3] == ["flag", "from"], row  # NEED: "from records", not a default
    taxi = credit(server, "scorecards", "show", TAXI).stdout
    assert "From records" not in taxi and "from records" not in taxi  # all submitted
    card = json.loads(credit(server, "scorecards", "show", "construction.firm", "--json").stdout)
    found = {i["name"]: i for i in card["indicators"]}
    assert found["bad_records_b"]["derived_from"] == ["construction.bad_record"]
    assert found["bad_records_b"]["derivation"] == "count within 3 years, severity general"
    assert found["qualification_fraud"]["derived_from"] == []


# -- evaluate --------------------------------------------------------------------------------


def test_evaluate_text(server: str) -> None:
    result = credit(
        server,
        "evaluate",
        TAXI,
        "--subject",
        PERSON,
        "--set",
        "violations_3pt=1",
        "--set",
        "violations_5pt=1",
        "--set",
        "bonus_points=2",
        "--as-of",
        "2026-01-01",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^Grade\s+AA\s+合格 / Qualified$", out, re.MULTILINE)
    assert re.search(r"^Score\s+14\.00$", out, re.MULTILINE)
    assert re.search(r"^Next grade\s+6\.00 points to AAA$", out, re.MULTILINE)
    assert re.search(r"^Evaluation\s+evaluations/\S+$", out, re.MULTILINE)
    lines = "\n".join(section(out, "Lines"))
    assert re.search(
        r"^violations_3pt\s+计3分的违规行为，每次扣3分\s+violations_3pt = 1"
        r"\s+-3\.00\s+deductions\s+secondary \[1\]",
        lines,
        re.MULTILINE,
    )
    assert re.search(r"^bonus_points .*\+2\.00", lines, re.MULTILINE)
    assert section(out, "Overrides") == ["none fired"]
    reasons = section(out, "Reasons")
    assert [r.split()[1] for r in reasons[1::2]] == [
        "bonus_points",
        "violations_5pt",
        "violations_3pt",
    ]


# a firm with 7 serious bad records (construction.firm reads bad_records_a from the records)
RECORDED_FIRM = "913100001320000E1B"


@pytest.fixture(scope="module")
def recorded_firm(server: str) -> str:
    from sector_credit.clients.records_cli import Records, new_record

    with CreditClient(server) as client:
        for n in range(7):
            Records(client).add(
                new_record(
                    kind="construction.bad_record",
                    subject_kind="organization",
                    subject_id=RECORDED_FIRM,
                    authority="上海市住房和城乡建设管理委员会",
                    regulation="《建筑市场信用管理暂行办法》",
                    document_number=f"沪建罚〔2025〕{n + 1}号",
                    decision_date="2025-07-01",
                    severity="serious",
                )
            )
    return RECORDED_FIRM


@pytest.mark.parametrize(
    ("scorecard", "subject", "values", "expected"),
    [
        # issue 13: base + group totals + ungrouped points = the score before the cut, shown
        (
            "construction.firm",
            RECORDED_FIRM,
            [],
            [
                r"^Grade\s+C\s",
                r"^Base\s+60\.00$",
                r"^Score\s+0\.00  \(-10\.00 before the score range \[0, 100\] cut it\)$",
                r"^Next grade\s+60\.00 points to B$",
                r"^Sum: 60\.00 \(base\) \+ 0\.00 \(good\) - 70\.00 \(bad\) = -10\.00, cut to the"
                r" score 0\.00$",
                # the line cites the records it read, each with its basis (wrapped in its cell)
                r"^bad_records_a .* bad_records_a = 7 .*\n.* records \[R1\] \[R2\]",
                r"^\[R7\] records/\S+ \(basis 《建筑市场信用管理暂行办法》 沪建罚〔2025〕\d号\)$",
            ],
        ),
        # a force holds the grade: no points to a next grade
        (
            "transport.taxi_driver",
            PERSON,
            ["violations_10pt=2"],
            [
                r"^Grade\s+B\s",
                r"^Base\s+20\.00$",
                r"^Score\s+0\.00$",
                r"^Next grade\s+none: an override forces the grade$",
                r"^Sum: 20\.00 \(base\) - 20\.00 \(deductions\) \+ 0\.00 \(bonus\) = 0\.00$",
            ],
        ),
        # a cap above the grade: the points to the grade the cap allows
        (
            "transport.road_driver",
            PERSON,
            ["category=dangerous_goods", "violations_10pt=2"],
            [r"^Grade\s+B\s", r"^Score\s+0\.00$", r"^Next grade\s+1\.00 points to A$"],
        ),
        # a cap that holds the grade
        (
            "transport.road_driver",
            PERSON,
            ["category=dangerous_goods", "violations_10pt=1", "violations_5pt=1"],
            [
                r"^Grade\s+A\s",
                r"^Score\s+5\.00$",
                r"^Next grade\s+none: more points would not change the grade \(an override holds"
                r" it\)$",
            ],
        ),
        # weighted lines, each rounded where computed; no groups
        (
            "environment.enterprise",
            "91350100M000100Y43",
            [
                "emission_compliance_min_pct=85",
                "solid_waste_treated_pct=97",
                "hazardous_waste_rating=compliant",
                "noise_exceedance_db=3",
                "siting_compliant=true",
                "administrative_penalties=1",
                "risk_management_complete=true",
                "other_indicators_score=88.63",
            ],
            [
                r"^Score\s+74\.10$",
                r"^Sum: 0\.00 \(base\) \+ 10\.50 \(emission_compliance\) .*\n {5}\+ .* \+ 39\.00"
                r" \(other_indicators\) = 74\.10$",
            ],
        ),
    ],
)
def test_evaluate_adds_up_by_hand(
    server: str,
    recorded_firm: str,
    scorecard: str,
    subject: str,
    values: list[str],
    expected: list[str],
) -> None:
    args = [a for v in values for a in ("--set", v)]
    result = credit(
        server,
        "--lang",
        "en",
        "evaluate",
        scorecard,
        "--subject",
        subject,
        *args,
        "--as-of",
        "2026-01-01",
    )
    assert result.returncode == 0, result.stderr
    for pattern in expected:
        assert re.search(pattern, result.stdout, re.MULTILINE), (pattern, result.stdout)
    ev = json.loads(
        credit(
            server,
            "evaluate",
            scorecard,
            "--subject",
            subject,
            *args,
            "--as-of",
            "2026-01-01",
            "--validate-only",
            "--json",
        ).stdout
    )
    uncut = (
        Decimal(ev["base"])
        + sum(Decimal(g["total"]) for g in ev["group_totals"])
        + sum(Decimal(x["points"]) for x in ev["lines"] if not x["group"])
    )
    assert uncut == Decimal(ev["score_before_cut"] or ev["score"])


@pytest.mark.parametrize(
    ("command", "stderr"),
    [
        (
            ["evaluate", "transport.taxi_drver", "--subject", PERSON, "--set", "violations_10pt=2"],
            [
                "error: NOT_FOUND [SCORECARD_NOT_FOUND]: 1 problem",
                "  scorecard: no scorecard 'transport.taxi_drver'; did you mean"
                " 'transport.taxi_driver' or "
                "'transport.road_driver'?",
            ],
        ),
        (
            ["scorecards", "show", "construction.frim"],
            [
                "error: NOT_FOUND [SCORECARD_NOT_FOUND]: 1 problem",
                "  name: no scorecard 'construction.frim'; did you mean 'construction.firm'?",
            ],
        ),
        (
            ["evaluate", "no.such.card", "--subject", PERSON],
            [
                "error: NOT_FOUND [SCORECARD_NOT_FOUND]: 1 problem",
                "  scorecard: no scorecard 'no.such.card'",
            ],
        ),
    ],
)
def test_an_unknown_scorecard_is_named_with_the_closest_ids(
    server: str, command: list[str], stderr: list[str]
) -> None:
    result = credit(server, *command)
    assert result.returncode == 1
    assert result.stderr.splitlines() == stderr


def test_docs_show_real_evaluate_output(server: str) -> None:
    """docs/cli.md's evaluate example (which the README copies) is what the command prints,
    apart from the evaluation's name, time and peer."""
    doc = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    command = (
        "$ credit evaluate transport.taxi_driver --subject 11010519491231002X \\\n"
        "    --file examples/indicators.json --as-of 2026-01-01\n"
    )
    shown = doc.split(command, 1)[1].split("```", 1)[0].splitlines()
    result = subprocess.run(
        [
            *COMMAND,
            "--server",
            server,
            "evaluate",
            TAXI,
            "--subject",
            PERSON,
            "--file",
            "examples/indicators.json",
            "--as-of",
            "2026-01-01",
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=cli_env(COLUMNS="100"),
    )
    assert result.returncode == 0, result.stderr

    def stable(lines: list[str]) -> list[str]:
        return [line for line in lines if not line.startswith(("Evaluation ", "Made "))]

    assert stable(result.stdout.splitlines()) == stable(shown)


def test_evaluate_file_and_override_until(server: str, tmp_path: Path) -> None:
    indicators = tmp_path / "values.json"
    indicators.write_text(
        json.dumps({"exam_misconduct": "forged_material", "exam_misconduct_date": "2024-03-10"})
    )
    result = credit(
        server,
        "evaluate",
        "civil_servant.recruitment",
        "--subject",
        PERSON,
        "--file",
        str(indicators),
        "--as-of",
        "2026-06-01",
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Grade\s+BARRED\s+不得录用 / Barred$", result.stdout, re.MULTILINE)
    assert re.search(r"^Until\s+2029-03-10 ", result.stdout, re.MULTILINE)
    fired = section(result.stdout, "Overrides")
    assert re.search(r"^forged_material_5y\s+force BARRED\s+2029-03-10\s", fired[1])


def test_evaluate_readme_example(server: str) -> None:
    result = credit(
        server,
        "evaluate",
        TAXI,
        "--subject",
        PERSON,
        "--file",
        "examples/indicators.json",
        "--as-of",
        "2026-01-01",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["score"] == "14.00"


def test_evaluate_json(server: str) -> None:
    result = credit(
        server,
        "evaluate",
        TAXI,
        "--subject",
        PERSON,
        "--set",
        "violations_20pt=1",
        "--set",
        "violations_5pt=1",
        "--set",
        "bonus_points=5",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    ev = json.loads(result.stdout)
    assert ev["grade"]["code"] == "B" and ev["score"] == "5.00" and ev["score_grade"] == "A"
    assert ev["points_to_next_grade"] is None
    assert [o["override_id"] for o in ev["overrides"]] == ["whole_20_lost"]
    assert ev["overrides"][0]["until"] is None
    assert ev["reasons"][0] == {
        "code": "whole_20_lost",
        "kind": "override",
        "title": ev["overrides"][0]["title"],
        "points_lost": None,
    }
    assert len(ev["lines"]) == 6 and ev["caller"] == "local"  # local mode: x-caller is no identity
    assert ev["name"].startswith("evaluations/") and ev["request_id"]

    shown = credit(server, "get", ev["name"], "--json", "--purpose", "supervision")
    assert shown.returncode == 0 and json.loads(shown.stdout)["name"] == ev["name"]


def test_evaluate_invalid_prints_each_violation(server: str) -> None:
    result = credit(
        server,
        "evaluate",
        TAXI,
        "--subject",
        "110105194912310021",
        "--set",
        "violations_3pt=-1",
        "--set",
        "bonus_points=abc",
        "--set",
        "violation_5pt=1",
    )
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "error: INVALID_ARGUMENT [INVALID_INDICATORS]: 4 problems"
    assert sorted(lines[1:]) == sorted(
        [
            "  subject.id: the check character is 1, GB 11643 gives X",
            "  indicators.violation_5pt: not an indicator of transport.taxi_driver; did you mean"
            " 'violations_5pt'?",
            "  indicators.violations_3pt: a count is a whole number ≥ 0, not -1",
            "  indicators.bonus_points: expected a number, not 'abc'",
        ]
    )
    assert result.stdout == ""


def test_exit_codes_for_usage_and_unavailable(server: str) -> None:
    assert credit(server, "evaluate", TAXI, "--subject", PERSON, "--set", "novalue").returncode == 2
    assert credit(server, "evaluate", TAXI, "--subject", PERSON, "--as-of", "June").returncode == 2
    assert credit(server, "frobnicate").returncode == 2
    down = subprocess.run(
        [*COMMAND, "scorecards", "list"],
        check=False,
        capture_output=True,
        text=True,
        env=cli_env(SECTOR_CREDIT_SERVER="127.0.0.1:1"),
        timeout=60,
    )
    assert down.returncode == 3
    assert "server unavailable: UNAVAILABLE" in down.stderr and "127.0.0.1:1" in down.stderr


@pytest.mark.parametrize(
    ("env", "args", "code", "says"),
    [
        # a global option from its variable; the flag, given before the command, wins over it
        ({"SECTOR_CREDIT_SERVER": "{server}"}, ["scorecards", "list", "--json"], 0, ""),
        (
            {"SECTOR_CREDIT_SERVER": "127.0.0.1:1"},
            ["--server", "{server}", "scorecards", "list"],
            0,
            "",
        ),
        (
            {"SECTOR_CREDIT_SERVER": "{server}"},
            ["--server", "127.0.0.1:1", "scorecards", "list"],
            3,
            "is the service running at 127.0.0.1:1?",
        ),
        (
            {"SECTOR_CREDIT_SERVER": "{server}", "SECTOR_CREDIT_CA": "/no/such/ca.pem"},
            ["scorecards", "list"],
            2,
            "credit: error: /no/such/ca.pem: No such file or directory",
        ),
        (
            {},
            ["--server", "{server}", "--timeout", "0", "scorecards", "list"],
            2,
            "Invalid value for '--timeout': 0.0 is not in the range x>0.",
        ),
        (
            {},
            ["--server", "{server}", "scorecards", "list", "--lang", "fr"],
            2,
            "Invalid value for '--lang': 'fr' is not one of 'zh', 'en', 'both'.",
        ),
        (
            {},
            ["--server", "{server}", "scorecards", "list", "--server", "{server}"],
            2,
            "--server is an option of credit itself: give it before the command (credit --server … "
            "scorecards list …), or set its variable",
        ),
    ],
)
def test_global_options_from_flags_and_environment(
    server: str, env: dict[str, str], args: list[str], code: int, says: str
) -> None:
    fill = {k: v.format(server=server) for k, v in env.items()}
    done = subprocess.run(
        [*COMMAND, *(a.format(server=server) for a in args)],
        check=False,
        capture_output=True,
        text=True,
        env=cli_env(**fill),
        timeout=60,
    )
    assert done.returncode == code, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


# -- batch -----------------------------------------------------------------------------------


def taxi_rows(
    count: int, birth_year: int, bad: dict[int, str]
) -> tuple[list[list[str]], dict[int, str]]:
    """`count` taxi rows (1-based row numbers); the rows in `bad` broken in the way named.
    Returns the rows and, for the good ones, the grade the scorecard gives by hand."""
    rows, grades = [], {}
    for n in range(1, count + 1):
        v1, v3, v5, v10, v20 = (
            n % 4,
            (n // 4) % 3,
            (n // 12) % 2,
            int(n % 17 == 0),
            int(n % 41 == 0),
        )
        bonus = Decimal(n % 7) / 2
        subject = resident_id(
            "330106", f"{birth_year + n // 366}{(n % 12) + 1:02d}{(n % 28) + 1:02d}", n % 1000
        )
        row = [
            subject,
            f"司机{n}",
            "2025-12-31",
            str(v1),
            str(v3),
            str(v5),
            str(v10),
            str(v20),
            str(bonus),
        ]
        flaw = bad.get(n)
        if flaw == "check":
            row[0] = subject[:17] + ("1" if subject[17] != "1" else "2")
        elif flaw == "negative":
            row[4] = "-2"
        elif flaw == "text":
            row[8] = "lots"
        elif flaw == "missing":
            row[0] = ""
        elif flaw == "above":
            row[8] = "10.5"
        if flaw is None:
            deductions = -(v1 + 3 * v3 + 5 * v5 + 10 * v10 + 20 * v20)
            score = 20 + max(deductions, -20) + min(bonus, Decimal(10))
            grade = "AAA" if score >= 20 else "AA" if score >= 11 else "A" if score >= 1 else "B"
            grades[n] = "B" if deductions <= -20 else grade
        rows.append(row)
    return rows, grades


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "subject_id",
                "display_name",
                "as_of",
                "violations_1pt",
                "violations_3pt",
                "violations_5pt",
                "violations_10pt",
                "violations_20pt",
                "bonus_points",
            ]
        )
        writer.writerows(rows)


def read_results(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


BAD = {7: "check", 100: "negative", 333: "text", 500: "missing", 777: "above", 998: "check"}


def test_batch_of_1000_rows(server: str, tmp_path: Path) -> None:
    rows, expected = taxi_rows(1000, 1960, BAD)
    source, out = tmp_path / "drivers.csv", tmp_path / "results.csv"
    write_csv(source, rows)
    result = credit(server, "batch", TAXI, str(source), "--out", str(out))
    assert result.returncode == 1, result.stderr  # some rows failed

    records = read_results(out)
    assert [int(r["row"]) for r in records] == list(range(1, 1001))
    assert {int(r["row"]) for r in records if r["status"] == "error"} == set(BAD)
    assert {int(r["row"]): r["grade"] for r in records if r["status"] == "ok"} == expected
    assert all(r["evaluation"].startswith("evaluations/") for r in records if r["status"] == "ok")
    assert "subject.id: the check character" in records[6]["error"]
    # sent in the BASIC view (no lines): every column the file had before views is there and filled
    assert list(records[0]) == [
        "row",
        "subject_id",
        "status",
        "grade",
        "score",
        "points_to_next_grade",
        "next_grade",
        "until",
        "overrides",
        "reasons",
        "evaluation",
        "scorecard_version",
        "scorecard_digest",
        "request_id",
        "as_of",
        "error",
    ]
    ok = [r for r in records if r["status"] == "ok"]
    assert all(
        r["score"] and r["reasons"] and r["scorecard_digest"] and r["request_id"] for r in ok
    )
    assert any(r["points_to_next_grade"] and r["next_grade"] for r in ok)

    # each bad row reported by number (and line), with its field violations below it
    report = result.stderr
    for number in BAD:
        assert re.search(rf"^row {number} \(line {number + 1}\)", report, re.MULTILINE), number
    assert re.search(
        r"^row 100 \(line 101\) \S+: INVALID_ARGUMENT \[INVALID_INDICATORS\]: 1 problem\n"
        r"  indicators.violations_3pt: a count is a whole number ≥ 0, not -2$",
        report,
        re.MULTILINE,
    )
    assert re.search(
        r"^row 500 \(line 501\): not sent: 1 problem\n  subject_id: required$", report, re.MULTILINE
    )
    assert "\r" not in report  # no progress bar: stderr is not a terminal

    # the summary: counts per grade, then the failures
    counts = collections.Counter(expected.values())
    summary = result.stdout.splitlines()
    assert summary[0] == (
        f"transport.taxi_driver: {len(expected)} of 1000 rows scored, {len(BAD)} failed; "
        f"results in {out}"
    )
    for code in ("AAA", "AA", "A", "B"):
        assert re.search(rf"^{code}\s+.*\s{counts[code]}$", result.stdout, re.MULTILINE), code
    assert re.search(rf"^failed\s+{len(BAD)}$", result.stdout, re.MULTILINE)
    assert summary[-1] == "failed rows: 7, 100, 333, 500, 777, 998"
    table = summary[1:-1]  # Chinese titles, right-aligned counts: every line ends in the same cell
    assert len({display_width(line) for line in table}) == 1, table


def test_batch_refuses_unknown_columns_and_existing_output(server: str, tmp_path: Path) -> None:
    source = tmp_path / "typo.csv"
    source.write_text(f"subject_id,violation_3pt\n{PERSON},1\n", encoding="utf-8")
    result = credit(server, "batch", TAXI, str(source))
    assert result.returncode == 2
    assert "did you mean 'violations_3pt'?" in result.stderr

    good = tmp_path / "good.csv"
    good.write_text(f"subject_id,violations_3pt\n{PERSON},1\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert credit(server, "batch", TAXI, str(good), "--out", str(out)).returncode == 0
    again = credit(server, "batch", TAXI, str(good), "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr


ENVIRONMENT = "environment.enterprise"
# its required indicators (no default), in definition order
ENVIRONMENT_REQUIRED = [
    "emission_compliance_min_pct",
    "solid_waste_treated_pct",
    "hazardous_waste_rating",
    "noise_exceedance_db",
    "siting_compliant",
    "risk_management_complete",
    "other_indicators_score",
]
ORGANIZATION = "91350100M000100Y43"

COLUMN_CASES = [
    # (file name, content, what stderr says once; every case exits 2 having sent nothing)
    (
        "missing.csv",
        "subject_id,emission_compliance_min_pct,siting_compliant\n"
        + f"{ORGANIZATION},85,true\n" * 50,
        "missing required indicators of environment.enterprise: solid_waste_treated_pct, "
        "hazardous_waste_rating, noise_exceedance_db, risk_management_complete,"
        " other_indicators_score",
    ),
    (
        "unknown.csv",
        "subject_id,"
        + ",".join(ENVIRONMENT_REQUIRED)
        + ",hidden_dischage\n"
        + f"{ORGANIZATION},85,97,compliant,3,true,true,90,false\n" * 50,
        "not indicators of environment.enterprise: 'hidden_dischage' (did you mean"
        " 'hidden_discharge'?)",
    ),
    (
        "both.jsonl",
        "".join(
            json.dumps(
                {
                    "subject_id": ORGANIZATION,
                    "siting_compliant": True,
                    "emission_compliance_min_pct": 85,
                    "color": "red",
                }
            )
            + "\n"
            for _ in range(50)
        ),
        "missing required indicators of environment.enterprise: solid_waste_treated_pct, "
        "hazardous_waste_rating, noise_exceedance_db, risk_management_complete, "
        "other_indicators_score; not indicators of environment.enterprise: 'color'",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "says"), COLUMN_CASES, ids=[c[0] for c in COLUMN_CASES]
)
def test_batch_checks_the_columns_before_sending_anything(
    server: str, tmp_path: Path, name: str, content: str, says: str
) -> None:
    source, out = tmp_path / name, tmp_path / "results.csv"
    source.write_text(content, encoding="utf-8")
    with CreditClient(server, purpose="supervision") as client:
        before = len(client.list_evaluations(subject_id=ORGANIZATION, page_size=100).evaluations)
    result = credit(server, "batch", ENVIRONMENT, str(source), "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"credit: error: {source}: {says}; nothing was sent\n"
    assert not out.exists() and not out.with_name(out.name + ".state.json").exists()
    with CreditClient(server, purpose="supervision") as client:
        after = len(client.list_evaluations(subject_id=ORGANIZATION, page_size=100).evaluations)
    assert after == before


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_batch_output_carries_the_scorecard_version_and_digest(
    server: str, tmp_path: Path, suffix: str
) -> None:
    source, out = tmp_path / "drivers.csv", tmp_path / f"results{suffix}"
    write_csv(source, taxi_rows(3, 1971, {2: "check"})[0])
    result = credit(server, "batch", TAXI, str(source), "--out", str(out))
    assert result.returncode == 1, result.stderr
    with CreditClient(server) as client:
        card = client.get_scorecard(TAXI, as_of="2025-12-31")
    if suffix == ".csv":
        records = read_results(out)
    else:
        records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    got = [
        (r["status"], r.get("scorecard_version", ""), r.get("scorecard_digest", ""))
        for r in records
    ]
    assert got == [
        ("ok", card.version, card.digest),
        ("error", "", ""),
        ("ok", card.version, card.digest),
    ]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", card.digest), card.digest


def test_resume_into_results_without_the_version_columns_rewrites_them(
    server: str, tmp_path: Path
) -> None:
    # a results file an older credit wrote (no scorecard_version/digest), cut after row 2
    source, out = tmp_path / "drivers.csv", tmp_path / "results.csv"
    write_csv(source, taxi_rows(3, 1972, {})[0])
    assert credit(server, "batch", TAXI, str(source), "--out", str(out)).returncode == 0
    old = [
        {k: v for k, v in r.items() if not k.startswith("scorecard_")}
        for r in read_results(out)[:2]
    ]
    with out.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(old[0]))
        writer.writeheader()
        writer.writerows(old)
    result = credit(server, "batch", TAXI, str(source), "--out", str(out), "--resume")
    assert result.returncode == 0, result.stderr
    records = read_results(out)
    assert [(r["row"], r["status"]) for r in records] == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    assert records[2]["scorecard_version"] == "2026.1" and records[2][
        "scorecard_digest"
    ].startswith("sha256:")
    assert None not in records[2]  # no cells beyond the header


def test_batch_jsonl_to_stdout(server: str, tmp_path: Path) -> None:
    source = tmp_path / "drivers.jsonl"
    source.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "subject_id": PERSON,
                        "as_of": "2026-01-01",
                        "violations_3pt": 1,
                        "violations_5pt": 1,
                        "bonus_points": 2,
                    }
                ),
                "",
                json.dumps({"subject_id": PERSON, "indicators": {"bonus_points": 11}}),
                "{not json",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    result = credit(server, "batch", TAXI, str(source))
    assert result.returncode == 1
    records = list(csv.DictReader(result.stdout.splitlines()))
    assert [(r["row"], r["status"], r["grade"], r["score"]) for r in records] == [
        ("1", "ok", "AA", "14.00"),
        ("2", "error", "", ""),
        ("3", "error", "", ""),
    ]
    assert (
        "row 2 (line 3)" in result.stderr
        and "indicators.bonus_points: 11 is outside [0, 10]" in result.stderr
    )
    assert "row 3 (line 4): not sent" in result.stderr
    assert "1 of 3 rows scored, 2 failed" in result.stderr  # the summary, beside the results


def road_rows(count: int, bad: set[int], area: str) -> tuple[list[list[str]], set[str]]:
    rows, good = [], set()
    for n in range(1, count + 1):
        subject = resident_id(
            area, f"19{50 + n % 40}{(n % 12) + 1:02d}{(n % 28) + 1:02d}", n % 1000
        )
        category = ("passenger", "dangerous_goods", "freight")[n % 3]
        row = [subject, category, str(n % 3), str(n % 2), "0", str(int(n % 13 == 0)), "0"]
        if n in bad:
            row[1] = "tanker"
        else:
            good.add(subject)
        rows.append(row)
    assert len({r[0] for r in rows}) == count  # every subject once
    return rows, good


def test_an_interruptible_child_gets_sigint_when_the_tests_ignore_it() -> None:
    """pytest started in the background by a script ignores SIGINT, and a child of a plain
    Popen does too: test_batch_resume_after_interruption[sigint] then saw `credit batch` go on
    to its last row and exit 1. `interruptible` starts the child with SIGINT at its default."""
    child = [
        sys.executable,
        "-c",
        "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)",
    ]
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        plain = subprocess.run(child, capture_output=True, text=True, check=True, timeout=30)
        proc = interruptible(child, stdout=subprocess.PIPE, text=True)
        started, _ = proc.communicate(timeout=30)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # this process ignores it still
    finally:
        signal.signal(signal.SIGINT, previous)
    assert plain.stdout == "False\n"  # the child ignores SIGINT: Ctrl-C would not reach it
    assert started == "True\n" and proc.returncode == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_batch_resume_after_interruption(server: str, tmp_path: Path, stop: signal.Signals) -> None:
    """Interrupt a real run part-way, resume it: every row once in the output, and the server
    holds exactly one evaluation per good row (nothing scored twice)."""
    total, bad = 1500, {5, 1234, 1499}
    # subjects of their own per run of this test, so the server's counts are this run's
    rows, good_subjects = road_rows(total, bad, "510107" if stop is signal.SIGINT else "510108")
    source, out = tmp_path / "road.csv", tmp_path / "road-results.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "subject_id",
                "category",
                "violations_1pt",
                "violations_3pt",
                "violations_5pt",
                "violations_10pt",
                "violations_20pt",
            ]
        )
        writer.writerows(rows)

    args = [
        *COMMAND,
        "--server",
        server,
        "batch",
        "transport.road_driver",
        str(source),
        "--out",
        str(out),
        "--chunk-size",
        "10",
        "--parallel",
        "2",
    ]
    proc = interruptible(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") > 100:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(stop)
    _, err = proc.communicate(timeout=60)
    if stop is signal.SIGINT:
        assert proc.returncode == 130, err.decode()
        assert "re-run with --resume" in err.decode()
    else:
        assert proc.returncode == -signal.SIGKILL
    written = out.read_text().count("\n") - 1
    assert 0 < written < total

    resumed = credit(
        server, "batch", "transport.road_driver", str(source), "--out", str(out), "--resume"
    )
    assert resumed.returncode == 1, resumed.stderr  # the bad rows
    assert "scored by the earlier run" in resumed.stdout

    records = read_results(out)
    numbers = [int(r["row"]) for r in records]
    assert sorted(numbers) == list(range(1, total + 1))  # every row exactly once
    assert {int(r["row"]) for r in records if r["status"] == "error"} == bad
    assert len({r["evaluation"] for r in records if r["status"] == "ok"}) == total - len(bad)

    with CreditClient(server, purpose="supervision") as client:
        stored = collections.Counter(
            e.subject.id
            for e in client.iter_evaluations(scorecard="transport.road_driver", page_size=1000)
            if e.subject.id in good_subjects
        )
    assert len(stored) == len(good_subjects) == total - len(bad)
    assert set(stored.values()) == {1}, "a row was scored twice"


def test_progress_bar_only_on_a_terminal(server: str, tmp_path: Path) -> None:
    rows, _ = taxi_rows(60, 1940, {})
    source = tmp_path / "few.csv"
    write_csv(source, rows)
    code, seen, stdout = run_on_terminal(
        [
            *COMMAND,
            "--server",
            server,
            "batch",
            TAXI,
            str(source),
            "--out",
            str(tmp_path / "few-results.csv"),
            "--chunk-size",
            "20",
        ],
        cli_env(),
        "stderr",
    )
    assert code == 0
    assert b"60/60 rows" in seen and b" rows/s" in seen  # rich's bar: done of all, the rate
    assert b"\r" not in stdout and b"60 of 60 rows scored" in stdout


def run_on_terminal(
    args: Sequence[str], env: dict[str, str], stream: str = "stdout"
) -> tuple[int, bytes, bytes]:
    """Run the CLI with `stream` (stdout or stderr) on a pseudo-terminal: the exit code, what
    the terminal showed, and what the other stream got."""
    leader, follower = pty.openpty()
    with tempfile.TemporaryFile() as other:
        streams = {"stdout": other, "stderr": other, stream: follower}
        proc = subprocess.Popen(args, env=env, **streams)  # type: ignore[call-overload]
        os.close(follower)  # the child holds the terminal now: EOF (EIO) once it exits
        seen = b""
        try:
            while chunk := os.read(leader, 65536):
                seen += chunk
        except OSError:
            pass
        finally:
            os.close(leader)
        code = proc.wait(timeout=60)
        other.seek(0)
        return code, seen, other.read()


def test_colours_only_on_a_terminal_without_no_color(server: str) -> None:
    args = [*COMMAND, "--server", server, "scorecards", "list"]
    env = {k: v for k, v in cli_env().items() if k != "NO_COLOR"}
    code, coloured, _ = run_on_terminal(args, env)
    assert code == 0 and b"\x1b[1m" in coloured
    code, plain, _ = run_on_terminal(args, {**env, "NO_COLOR": "1"})
    assert code == 0 and b"\x1b[" not in plain and b"transport.taxi_driver" in plain
    piped = subprocess.run(args, check=False, capture_output=True, env=env, timeout=60)
    assert piped.returncode == 0 and b"\x1b[" not in piped.stdout


# -- history and test ----------------------------------------------------------------------------


def test_history_newest_first(server: str) -> None:
    subject = resident_id("370202", "19770707", 7)
    names = []
    for as_of in ("2024-01-01", "2025-01-01", "2026-01-01"):
        made = credit(
            server,
            "evaluate",
            TAXI,
            "--subject",
            subject,
            "--set",
            "violations_1pt=2",
            "--as-of",
            as_of,
            "--json",
        )
        names.append(json.loads(made.stdout)["name"])
    credit(
        server,
        "evaluate",
        "transport.road_driver",
        "--subject",
        subject,
        "--set",
        "category=freight",
    )

    result = credit(server, "history", subject, "--scorecard", TAXI, "--purpose", "supervision")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["MADE", "SCORECARD", "AS", "OF", "GRADE"]
    assert [re.search(r"evaluations/\S+", line).group(0) for line in lines[1:]] == names[::-1]  # type: ignore[union-attr]
    assert all(
        " AA " in line and line.rstrip().endswith(" local") for line in lines[1:]
    )  # local mode

    everything = json.loads(
        credit(server, "history", subject, "--json", "--purpose", "supervision").stdout
    )
    assert [e["scorecard_id"] for e in everything] == ["transport.road_driver", TAXI, TAXI, TAXI]
    limited = credit(server, "history", subject, "--limit", "2", "--purpose", "supervision")
    assert len(limited.stdout.splitlines()) == 4 and "--limit 0 shows all" in limited.stdout
    nobody = credit(
        server, "history", resident_id("370202", "19770708", 8), "--purpose", "supervision"
    )
    assert nobody.returncode == 0 and nobody.stdout.startswith("no evaluations of")


def test_golden_cases_command(tmp_path: Path) -> None:
    """`credit test` is the golden-case command: same report, same exit code."""
    ours = subprocess.run(
        [*COMMAND, "test"], check=False, capture_output=True, text=True, env=cli_env(), timeout=120
    )
    golden = subprocess.run(
        [sys.executable, "-m", "sector_credit.scorecards.golden"],
        check=False,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert (ours.returncode, ours.stdout) == (golden.returncode, golden.stdout)
    assert re.search(r"^\d+ passed, \d+ failed$", ours.stdout, re.MULTILINE)
    missing = subprocess.run(
        [*COMMAND, "test", str(tmp_path / "nope.toml")],
        check=False,
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert missing.returncode == 2 and "no such file or folder" in missing.stdout
