"""ACME's scorecards for the sector credit service."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sector_credit.plugins import hookimpl

CARDS = Path(__file__).parent


@hookimpl
def register_scorecards(register: Callable[[Any], None]) -> None:
    register(CARDS / "acme.parking_operator.toml")
