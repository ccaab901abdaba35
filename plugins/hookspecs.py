"""The plugin contract of the sector credit service: every hook a plugin may implement.

A plugin is a module or object with functions marked `@hookimpl` and named as below, made
known to the service through the `sector_credit` entry-point group of its distribution::

    [project.entry-points.sector_credit]
    my_cards = "my_package.credit_plugin"

The built-in scorecards are a plugin on these same hooks (`sector_credit.scorecards.builtin`).
Hooks are grouped by the phase in which the host calls them. Every hook here is documented in
`docs/plugins.md` with its exact signature; a test fails when one is missing there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy

PROJECT = "sector_credit"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# The callback a `register_*` hook receives: call it once per object.
Register = Callable[[Any], None]


# -- start-up: what the service can evaluate ---------------------------------------------------


@hookspec
def register_rule_kinds(register: Callable[[Any], None]) -> None:
    """Register rule kinds beyond the built-in ones (per_unit, bands, flag, choice, direct,
    weighted), for this plugin's scorecards to use as `kind = "..."`.

    Called once at start-up, for every plugin, before `register_scorecards` (a scorecard is
    checked against the kinds registered by then).

    :param register: call it once per kind with a `sector_credit.scorecards.kinds.RuleKindSpec`
        (its name, the indicator types it scores, how it parses its keys, its points, its best
        points, its description, optionally the code it emits). A name already taken by
        another kind raises `ValueError` and start-up fails; the same spec again is a no-op.
    :return: nothing; results are ignored.
    """


@hookspec
def register_scorecards(register: Callable[[str | Path | Any], None]) -> None:
    """Register the scorecards this plugin provides.

    Called once at start-up, for every plugin, before the server accepts calls.

    :param register: call it once per scorecard with either the path of a scorecard TOML file
        (or of a folder of them), or an already loaded `sector_credit.scorecards.model.Scorecard`.
        The host validates each scorecard as it arrives and raises at once (start-up fails) if it
        is invalid or if the same id and version is already registered by another plugin.
    :return: nothing; results are ignored.
    """


@hookspec
def register_subject_id_schemes(
    register: Callable[[str, Callable[[str], str | None]], None],
) -> None:
    """Register extra subject id schemes, for subjects that are neither resident ids (GB 11643)
    nor unified social credit codes (GB 32100).

    Called once at start-up, after `register_scorecards`.

    :param register: call it as ``register(prefix, check)``: a subject id that starts with
        ``prefix`` (for example ``"HK:"``) is validated by ``check(id)``, which returns None when
        the id is valid and a short reason when it is not. A prefix may be registered once.
    :return: nothing; results are ignored.
    """


@hookspec
def register_record_kinds(register: Callable[[Any], None]) -> None:
    """Register kinds of credit records (list entries, classes of penalty) beyond the
    built-in ones (`sector_credit.scorecards.records.BUILTIN_KINDS`), for the records service
    and for scorecard indicators that read records (`from_records`).

    Called once at start-up, for every plugin, after `register_rule_kinds` and before
    `register_scorecards` (a scorecard's `from_records` kinds are checked against them).

    :param register: call it once per kind with a `sector_credit.scorecards.records.RecordKind`
        (its name, bilingual title, the subject kinds it covers, the minimum and maximum
        publicity periods in months, whether a record under objection still counts, its
        provenance, and optionally the linked roles it bars and for how long). A name already
        registered with other values raises `ValueError` and start-up fails; the same kind
        again is a no-op.
    :return: nothing; results are ignored.
    """


# -- after an evaluation -----------------------------------------------------------------------


@hookspec
def evaluation_stored(evaluation: dict[str, Any]) -> None:
    """Called after an evaluation has been committed to the audit store, for integrations
    (notifications, exports). Not called for `validate_only` requests or idempotent replays.

    :param evaluation: the stored evaluation as a JSON-safe dict: ``name``, ``scorecard_id``,
        ``version``, ``digest``, ``subject`` (kind and id), ``as_of``, ``grade``, ``score``,
        ``create_time``. Treat it as read-only.
    :return: nothing. Runs on the server's event loop thread: it must be quick and must not
        block; an exception is logged and never fails the evaluation.
    """


# -- the command line ----------------------------------------------------------------------


@hookspec
def register_commands(cli: Any) -> None:
    """Add commands to the `credit` command line (as llm's plugins do).

    Called once each time `credit` starts, for every plugin, after the built-in commands are
    added and before the command line is parsed; the server never calls it.

    :param cli: the `credit` group, a `click.Group`: add commands with ``@cli.command()`` or
        ``cli.add_command(...)``. A command that takes ``@click.pass_obj`` gets the session of
        the global options (`sector_credit.clients.cli.Session`): ``session.client()`` is a
        `CreditClient` connected as ``--server``, ``--caller``, TLS and ``--token`` say, and
        ``session.out`` the output streams. A command returns its exit code (None is 0); an
        error of the client it lets through ends in the same exit codes as the built-in
        commands' (1 refused, 3 unavailable).
    :return: nothing; results are ignored.
    """
