"""The CLI's text views (clients/render.py, on rich): what they show, aligned in display cells,
with escapes only for a terminal."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sector_credit.clients.render import (
    Cell,
    Column,
    Style,
    display_width,
    evaluation_view,
    history_table,
    table,
)
from sector_credit.clients.resources import Evaluation
from sector_credit.v1 import evaluation_pb2, scorecard_pb2
from server_process import running_server
from test_cli_e2e import COMMAND, PERSON, cli_env

WHY = "its stored documents cannot be read by this version of the service"


def unreadable(grade: str = "AA") -> Evaluation:
    """A stored evaluation as the server sends one it cannot show in full (convert/messages.py)."""
    made = Timestamp()
    made.FromDatetime(dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC))
    return Evaluation.from_proto(
        evaluation_pb2.Evaluation(
            name="evaluations/e1",
            scorecard_id="transport.taxi_driver",
            scorecard_version="2026.1",
            score="14.00",
            grade=scorecard_pb2.Grade(code=grade),
            caller="bureau",
            unreadable=WHY,
            create_time=made,
        )
    )


def test_an_unreadable_evaluation_says_so_and_shows_no_explanation() -> None:
    lines = evaluation_view(unreadable(), Style(False), "both")
    assert f"Unreadable  {WHY}" in lines
    assert lines[-1] == (
        "no lines, overrides or reasons: the stored evaluation cannot be shown in full"
    )
    assert not {"Lines", "Overrides", "Reasons", "Next grade"} & {
        line.split("  ")[0] for line in lines
    }
    assert "Score       14.00" in lines


def test_history_marks_an_unreadable_evaluation() -> None:
    header, row = history_table([unreadable()], Style(False))
    assert header.split()[:4] == ["MADE", "SCORECARD", "AS", "OF"]
    assert "AA (unreadable)" in row and "evaluations/e1" in row


@pytest.mark.parametrize(
    ("rows", "width"),
    [
        ([["AAA", "优良\nExcellent", "20"], ["A", "基本合格\nBasically qualified", "1"]], 100),
        ([["合格", "x" * 10, "11"], ["AA", "一二三四五六七八九十" * 3, "7"]], 40),
    ],
)
def test_table_lines_up_chinese_titles(rows: list[list[str]], width: int) -> None:
    lines = table(
        [Column("GRADE"), Column("TITLE", wrap=True), Column("MIN", "r")],
        rows,
        Style(False),
        width=width,
    )
    # the right-aligned last column ends in the same cell on every line that has it
    ends = {display_width(line) for line in lines if line[-1:].isdigit() or line.endswith("MIN")}
    assert len(ends) == 1, lines
    assert max(display_width(line) for line in lines) <= width


@pytest.mark.parametrize(("enabled", "escapes"), [(True, True), (False, False)])
def test_escapes_only_when_the_stream_takes_colour(enabled: bool, escapes: bool) -> None:
    style = Style(enabled)
    lines = table([Column("GRADE")], [[Cell("AAA", ("bold", "green"))]], style)
    assert ("\x1b[" in "\n".join(lines)) is escapes
    assert (style("B", "red") != "B") is escapes
    assert style("B", "no-such-colour") == "B"  # a scorecard's colour rich does not know: none


def test_the_cli_shows_a_stored_row_it_cannot_read_as_unreadable(tmp_path: Path) -> None:
    """End to end: a row another version of the service might have written (test_robust.py)."""
    with running_server(tmp_path) as address:

        def credit(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*COMMAND, "--server", address, *args],
                check=False,
                env=cli_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )

        made = credit("evaluate", "transport.taxi_driver", "--subject", PERSON, "--json")
        name = json.loads(made.stdout)["name"]
        with sqlite3.connect(tmp_path / "audit.db") as db:
            db.execute(
                "UPDATE evaluations SET result = ? WHERE id = ?",
                ('{"format": 99}', uuid.UUID(name.removeprefix("evaluations/")).hex),
            )
        got = credit("get", name, "--purpose", "supervision")
        assert got.returncode == 0, got.stderr
        assert f"Unreadable  {WHY}" in got.stdout.splitlines()
        listed = credit("history", PERSON, "--purpose", "supervision")
        assert listed.returncode == 0, listed.stderr
        assert "AAA (unreadable)" in listed.stdout
        as_json = json.loads(credit("get", name, "--purpose", "supervision", "--json").stdout)
        assert as_json["unreadable"] == WHY
