"""`credit records …` end to end (issue 10 item 5): the command as a subprocess against a real
server process: add, object, forward, decide, repair, show, list --overdue, disclose, a
refusal naming its field, and a CSV import with per-row errors and --resume."""

from __future__ import annotations

import json
import re
from pathlib import Path

from service_harness import ORG_IDS, PERSON_IDS, ServerProcess, module_server_fixture
from test_cli_e2e import credit

server = module_server_fixture(params=("sqlite",))

FIRM = ORG_IDS[2]
ADD = (
    "records",
    "add",
    "--kind",
    "administrative_penalty",
    "--subject",
    FIRM,
    "--authority",
    "上海市市场监督管理局",
    "--regulation",
    "《行政处罚法》第28条",
    "--document",
    "沪市监罚〔2026〕15号",
    "--decided",
    "2026-09-01",
)


def test_a_lifecycle_from_the_command_line(server: ServerProcess) -> None:
    added = credit(server.address, *ADD, "--json")
    assert added.returncode == 0, added.stderr
    name = json.loads(added.stdout)["name"]
    steps = [
        (
            ("object", name, "--on", "2026-09-30", "--by", "the subject", "--reason", "金额有误"),
            "forward by 2026-10-09",
        ),
        (
            ("forward", name, "--on", "2026-10-09", "--to", "上海市市场监督管理局"),
            "decide by 2026-10-15",
        ),
        (
            ("decide", name, "--on", "2026-10-14", "--outcome", "rejected", "--reason", "复核无误"),
            "ACTIVE on",
        ),
        (
            ("repair", name, "--on", "2026-12-01", "--proof", "doc:paid", "--reason", "已缴清"),
            "Public until 2026-12-04",
        ),
    ]
    for args, expected in steps:
        done = credit(server.address, "records", *args)
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout
    shown = credit(
        server.address, "records", "show", name, "--as-of", "2026-10-01", "--purpose", "supervision"
    )
    assert "UNDER_OBJECTION on 2026-10-01" in shown.stdout
    assert [ln.split()[1] for ln in shown.stdout.splitlines() if re.match(r"  \d\.", ln)] == [
        "2026-09-01",
        "2026-09-30",
    ]


def test_a_refusal_names_the_field_and_exits_1(server: ServerProcess) -> None:
    added = credit(server.address, *ADD, "--json")
    name = json.loads(added.stdout)["name"]
    early = credit(
        server.address,
        "records",
        "repair",
        name,
        "--on",
        "2026-11-30",
        "--proof",
        "doc:p",
        "--reason",
        "x",
    )
    assert early.returncode == 1
    assert "action_date: repair may be asked from 2026-12-01" in early.stderr
    bad = credit(
        server.address,
        "records",
        "add",
        *ADD[2:4],
        "--subject",
        FIRM,
        "--authority",
        "x",
        "--regulation",
        "x",
        "--document",
        "x",
        "--decided",
        "2099-01-01",
    )
    assert bad.returncode == 1 and "record.decision_date" in bad.stderr


def test_import_reports_each_row_and_resumes(server: ServerProcess, tmp_path: Path) -> None:
    person = PERSON_IDS[1]
    source = tmp_path / "records.csv"
    header = (
        "kind,subject_kind,subject_id,authority,regulation,document_number,decision_date,severity"
    )
    rows = [
        f"administrative_penalty,organization,{ORG_IDS[3]},某局,某条例,某〔2026〕1号,2026-05-12,general",
        f"parking_fine,organization,{ORG_IDS[3]},某局,某条例,某〔2026〕2号,2026-05-12,minor",
        f"administrative_penalty,person,{person},某局,某条例,某〔2026〕3号,2026-05-12,general",
    ]
    source.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    first = credit(server.address, "records", "import", str(source), "--out", str(out))
    assert first.returncode == 1
    assert "2 created, 1 failed" in first.stdout and "records: 3/3 sent, 1 failed" in first.stderr
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["row"] for x in lines] == [2, 3, 4]
    assert "record.kind" in lines[1]["fields"]
    again = credit(server.address, "records", "import", str(source), "--out", str(out))
    assert again.returncode == 2 and "--resume" in again.stderr
    source.write_text(
        "\n".join([header, rows[0], rows[1].replace("parking_fine", "dishonest_debtor"), rows[2]])
        + "\n",
        encoding="utf-8",
    )
    resumed = credit(
        server.address, "records", "import", str(source), "--out", str(out), "--resume"
    )
    assert resumed.returncode == 0 and "1 created, 0 failed" in resumed.stdout
    listed = credit(
        server.address, "records", "list", "--subject", ORG_IDS[3], "--purpose", "supervision"
    )
    assert len(listed.stdout.splitlines()) == 2


def test_the_disclosure_view_masks_personal_ids(server: ServerProcess) -> None:
    person = PERSON_IDS[2]
    added = credit(
        server.address,
        "records",
        "add",
        "--kind",
        "licence_revoked",
        "--subject",
        ORG_IDS[1],
        "--authority",
        "某局",
        "--regulation",
        "《公司法》第178条",
        "--document",
        "某〔2025〕3号",
        "--decided",
        "2025-03-01",
        "--linked",
        f"{person}:legal_representative",
    )
    assert added.returncode == 0, added.stderr
    shown = credit(server.address, "records", "disclose", ORG_IDS[1])
    assert shown.returncode == 0, shown.stderr
    assert f"linked {person[:4]}{'*' * 12}{person[-2:]}  legal_representative" in shown.stdout
    assert person not in shown.stdout


# the ban end on the command line and in the CSV: each accepted or refused naming the field
BAN = (
    "records",
    "add",
    "--kind",
    "procurement_debarment",
    "--subject",
    ORG_IDS[0],
    "--authority",
    "上海市财政局",
    "--regulation",
    "《政府采购法》第77条",
    "--document",
    "沪财采罚〔2026〕3号",
    "--decided",
    "2026-03-01",
)


def test_a_ban_end_is_given_on_the_command_line_and_in_the_csv(
    server: ServerProcess, tmp_path: Path
) -> None:
    added = credit(server.address, *BAN, "--restriction-end", "2028-03-01")
    assert added.returncode == 0, added.stderr
    assert "Ban ends    2028-03-01" in added.stdout
    too_long = credit(server.address, *BAN, "--restriction-end", "2029-03-02")
    assert too_long.returncode == 1 and "record.restriction_end" in too_long.stderr
    not_a_date = credit(server.address, *BAN, "--restriction-end", "soon")
    assert not_a_date.returncode == 2 and "restriction end" in not_a_date.stderr

    source = tmp_path / "bans.csv"
    header = "kind,subject_kind,subject_id,authority,regulation,document_number,decision_date,"
    source.write_text(
        header + "severity,restriction_end\n"
        f"procurement_debarment,organization,{ORG_IDS[0]},某局,某条例,某〔2026〕1号,"
        "2026-03-01,general,2027-03-01\n"
        f"administrative_penalty,organization,{ORG_IDS[0]},某局,某条例,某〔2026〕2号,"
        "2026-03-01,general,2027-03-01\n",
        encoding="utf-8",
    )
    out = tmp_path / "results.jsonl"
    done = credit(server.address, "records", "import", str(source), "--out", str(out))
    assert done.returncode == 1 and "1 created, 1 failed" in done.stdout
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert "name" in lines[0] and list(lines[1]["fields"]) == ["record.restriction_end"]
