"""A plugin that adds a `credit` command, as docs/plugins.md shows it (tests/test_cli_plugins.py
checks the doc's copy is this code): `credit ids`, the ids of the scorecards in force."""

import click
from sector_credit.clients.cli import Session
from sector_credit.plugins import hookimpl


@hookimpl
def register_commands(cli: click.Group) -> None:
    @cli.command()
    @click.option("--subject-kind", metavar="KIND", help="only cards for person or organization")
    @click.pass_obj
    def ids(session: Session, subject_kind: str | None) -> int:
        """The ids of the scorecards in force, one a line (for scripts)."""
        with session.client() as client:
            cards = client.list_scorecards()
        for card in cards:
            if subject_kind in (None, card.subject_kind):
                session.out.stdout.write(card.scorecard_id + "\n")
        return 0
