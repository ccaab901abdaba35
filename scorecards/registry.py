"""The registry the plugins fill: every loaded scorecard version, compiled once.

The host validates each scorecard as it arrives (`register`), refuses a duplicate id+version,
and resolves an evaluation's scorecard by id and either an explicit version or `as_of`.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable
from pathlib import Path

import pluggy
from sector_credit.plugins.manager import hook_per_plugin

from . import kinds
from .engine import CompiledScorecard, SubjectIdCheck, compile_scorecard
from .loader import iter_scorecard_files, load_file
from .model import (
    DefinitionProblem,
    FieldViolation,
    InvalidInput,
    InvalidScorecard,
    Scorecard,
    ScorecardNotFound,
)
from .records import RecordKindRegistry


class VersionNotInForce(InvalidInput):
    """An explicit version asked for on a day before it takes effect: refused, naming the
    field `version` and the day it takes effect (no evaluation speaks for a day under rules
    that did not apply yet)."""

    reason = "VERSION_NOT_IN_FORCE"

    def __init__(self, card: Scorecard, as_of: dt.date):
        self.effective_from = card.effective_from
        super().__init__(
            [
                FieldViolation(
                    "version",
                    (
                        f"{card.id} version {card.version} takes effect on"
                        f" {card.effective_from.isoformat()}, "
                        f"after as_of {as_of.isoformat()}: evaluate on or after that day, or leave"
                        f" version "
                        "empty for the version in force"
                    ),
                )
            ]
        )


class ScorecardRegistry:
    def __init__(self) -> None:
        self._versions: dict[str, list[CompiledScorecard]] = {}  # newest effective_from first
        self._id_schemes: dict[str, SubjectIdCheck] = {}
        self.origin: dict[tuple[str, str], str] = {}  # (id, version) -> plugin or file
        self.record_kinds = RecordKindRegistry()  # the kinds of credit records (records.py)

    # -- filling ------------------------------------------------------------------------

    def register(self, item: str | Path | Scorecard, origin: str = "") -> None:
        """Add a scorecard, a TOML file, or every TOML file in a folder."""
        if isinstance(item, Scorecard):
            self._add(item, origin)
            return
        if isinstance(item, (str, Path)):
            for path in iter_scorecard_files(item):
                self._add(load_file(path), origin or str(path))
            return
        raise TypeError(f"register() takes a Scorecard or a path, not {type(item).__name__}")

    def _add(self, card: Scorecard, origin: str) -> None:
        key = (card.id, card.version)
        if key in self.origin:
            raise InvalidScorecard(
                [
                    DefinitionProblem(
                        card.source_path or origin,
                        "id",
                        f"{card.id} version {card.version} is already registered by"
                        f" {self.origin[key]}",
                    )
                ]
            )
        versions = self._versions.setdefault(card.id, [])
        for other in versions:
            if other.card.effective_from == card.effective_from:
                raise InvalidScorecard(
                    [
                        DefinitionProblem(
                            card.source_path or origin,
                            "effective_from",
                            f"{card.id} version {other.version} already takes effect on"
                            f" {card.effective_from}",
                        )
                    ]
                )
        unknown = sorted(
            {
                k
                for i in card.indicators
                if i.from_records is not None
                for k in i.from_records.kinds
                if k not in self.record_kinds
            }
        )
        if unknown:
            raise InvalidScorecard(
                [
                    DefinitionProblem(
                        card.source_path or origin,
                        "from_records",
                        f"unknown record kind(s) {', '.join(unknown)}; known:"
                        f" {', '.join(self.record_kinds.names())}",
                    )
                ]
            )
        versions.append(compile_scorecard(card, self._id_schemes))
        versions.sort(key=lambda c: c.card.effective_from, reverse=True)
        self.origin[key] = origin or card.source_path or "<object>"

    def register_id_scheme(self, prefix: str, check: Callable[[str], str | None]) -> None:
        if not prefix or prefix in self._id_schemes:
            raise ValueError(f"subject id scheme prefix {prefix!r} is empty or already registered")
        self._id_schemes[prefix] = check

    @property
    def id_schemes(self) -> dict[str, SubjectIdCheck]:
        """The plugins' subject id schemes, by prefix (records check their ids with them)."""
        return dict(self._id_schemes)

    def load_plugins(self, pm: pluggy.PluginManager) -> None:
        """Ask every plugin for its rule kinds (first: the scorecards may use them), its
        scorecards, its id schemes and its kinds of credit records."""
        pm.hook.register_rule_kinds(register=kinds.register)
        pm.hook.register_record_kinds(register=self.record_kinds.register)
        for name, register_scorecards in hook_per_plugin(pm, "register_scorecards"):
            register_scorecards(register=lambda item, _n=name: self.register(item, origin=_n))
        pm.hook.register_subject_id_schemes(register=self.register_id_scheme)

    # -- reading ------------------------------------------------------------------------

    def ids(self) -> list[str]:
        return sorted(self._versions)

    def versions(self, scorecard_id: str) -> list[CompiledScorecard]:
        """All versions of one scorecard, newest effective_from first."""
        return list(self._versions.get(scorecard_id, ()))

    def latest(self) -> Iterable[CompiledScorecard]:
        for sid in self.ids():
            yield self._versions[sid][0]

    def all(self) -> Iterable[CompiledScorecard]:
        for sid in self.ids():
            yield from self._versions[sid]

    def resolve(
        self, scorecard_id: str, version: str | None = None, as_of: dt.date | None = None
    ) -> CompiledScorecard:
        """The version asked for, else the one in force on `as_of` (else the newest). A
        version asked for that takes effect after `as_of` raises VersionNotInForce."""
        versions = self._versions.get(scorecard_id)
        if not versions:
            close = difflib.get_close_matches(scorecard_id, list(self._versions), n=3)
            raise ScorecardNotFound(scorecard_id, close=tuple(close))
        if version:
            for c in versions:
                if c.version == version:
                    if as_of is not None and c.card.effective_from > as_of:
                        raise VersionNotInForce(c.card, as_of)
                    return c
            known = [c.version for c in versions]
            close = difflib.get_close_matches(version, known, n=3) or known[:3]
            raise ScorecardNotFound(scorecard_id, version=version, close=tuple(close))
        if as_of is None:
            return versions[0]
        for c in versions:
            if c.card.effective_from <= as_of:
                return c
        raise ScorecardNotFound(scorecard_id, as_of=as_of)

    def __len__(self) -> int:
        return sum(len(v) for v in self._versions.values())


def build_registry(
    pm: pluggy.PluginManager, extra_paths: Iterable[str | Path] = ()
) -> ScorecardRegistry:
    """The registry from every plugin, plus scorecard files or folders named in the
    configuration."""
    reg = ScorecardRegistry()
    reg.load_plugins(pm)
    for p in extra_paths:
        reg.register(p)
    return reg


__all__ = ["ScorecardRegistry", "VersionNotInForce", "build_registry"]
