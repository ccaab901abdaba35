"""`credit`: the command line for the sector credit service (see docs/cli.md).

    credit scorecards list [--all-versions]
    credit scorecards show transport.taxi_driver
    credit evaluate transport.taxi_driver --subject 11010519491231002X --set violations_3pt=1
    credit batch transport.taxi_driver examples/taxi_drivers.csv --out results.csv [--resume]
    credit history 11010519491231002X [--scorecard transport.taxi_driver]
    credit get evaluations/… --purpose bid_review
    credit audit subject 11010519491231002X [--right-to-know]
    credit audit caller transport-bureau [--since 2026-12-01]
    credit test [PATHS]

Exit codes: 0 ok; 1 the server refused an evaluation or some rows failed (each field
violation on its own line); 2 usage (a bad flag or file); 3 the server is unavailable;
130 interrupted.

The package, on click: `app.py` the group, its global options (`--server`, `--caller`, TLS,
`--token`, each with its environment variable), plugin commands and exit codes;
`session.py` what the commands share (the session of the global options, the output
streams, common options and checks); one module per family of commands.
"""

from .app import build_cli, main, run
from .session import Output, Session, UsageError

__all__ = ["Output", "Session", "UsageError", "build_cli", "main", "run"]
