"""`python -m sector_credit.clients.cli`: the same program as `credit`."""

from .app import run

run()
