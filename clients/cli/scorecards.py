"""`credit scorecards list|show` and `credit test` (the golden cases of scorecard files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..render import scorecard_view, scorecards_table
from ..resources import Scorecard
from .session import EXIT_OK, Session, date_arg, json_option, lang_option


@click.group("scorecards")
def scorecards() -> None:
    """List scorecards or show one's definition."""


@scorecards.command("list")
@click.option(
    "--all-versions",
    is_flag=True,
    help="every version of each scorecard with the day it takes effect "
    "(default: the version in force today)",
)
@json_option
@lang_option
@click.pass_obj
def scorecards_list(session: Session, all_versions: bool, as_json: bool, lang: str | None) -> int:
    """The scorecards that can be evaluated."""
    with session.client() as client:
        cards = client.list_scorecards(all_versions=all_versions)
    out = session.out
    if as_json:
        out.json([_basic(c) for c in cards])
    else:
        out.lines(scorecards_table(cards, out.style, session.language(lang)))
    return EXIT_OK


def _basic(card: Scorecard) -> dict[str, Any]:
    data = card.to_dict()
    return {
        k: data[k]
        for k in (
            "name",
            "scorecard_id",
            "version",
            "effective_from",
            "digest",
            "title",
            "subject_kind",
            "description",
            "versions",
        )
    }


@scorecards.command("show")
@click.argument("scorecard", metavar="ID")
@click.option("--version", help="a version (default: the one in force on --as-of or today)")
@click.option("--as-of", metavar="DATE", help="show the version in force on this day")
@json_option
@lang_option
@click.pass_obj
def scorecards_show(
    session: Session,
    scorecard: str,
    version: str | None,
    as_of: str | None,
    as_json: bool,
    lang: str | None,
) -> int:
    """A scorecard's indicators, rules, grades and overrides.

    ID: e.g. transport.taxi_driver.
    """
    day = date_arg(as_of, "--as-of")
    with session.client() as client:
        card = client.get_scorecard(scorecard, version=version, as_of=day)
    out = session.out
    if as_json:
        out.json(card.to_dict())
    else:
        out.lines(scorecard_view(card, out.style, session.language(lang)))
    return EXIT_OK


@click.command("test")
@click.argument("paths", nargs=-1, metavar="[PATH]...", type=click.Path(path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="list passing cases too")
def golden(paths: tuple[Path, ...], verbose: bool) -> int:
    """Check scorecard files and run their golden cases (no server needed).

    Exit 0 pass, 1 a case failed, 2 an invalid file. PATH: scorecard files or folders
    (default: every registered scorecard).
    """
    from sector_credit.scorecards.golden import main as golden_main

    return golden_main([*map(str, paths), *(["-v"] if verbose else [])])
