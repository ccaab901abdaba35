"""The built-in sector scorecards: a plugin like any third party's, loaded through the
`sector_credit` entry-point group. The scorecards are the TOML files beside this module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sector_credit.plugins import hookimpl
from sector_credit.scorecards.records import BUILTIN_KINDS

FOLDER = Path(__file__).parent


@hookimpl
def register_scorecards(register: Callable[[Any], None]) -> None:
    for path in sorted(FOLDER.glob("*.toml")):
        register(path)


@hookimpl
def register_record_kinds(register: Callable[[Any], None]) -> None:
    for kind in BUILTIN_KINDS:
        register(kind)
