"""The fault scenarios of issue 16 (`make faults`; the quick ones run in `make test` too).

Each test starts a real server process (service_harness.py) and breaks what is under it: a
private PostgreSQL instance stopped and started, a small full filesystem (tmpfs, as root),
a removed or replaced SQLite file, a writer held by the lock it takes around each commit,
raw sockets that never finish the HTTP/2 handshake, a supervisor killed with SIGKILL.
Tests marked `slow` (tens of seconds each) run only under `make faults`
(SECTOR_CREDIT_FAULTS=all).
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: a fault scenario of tens of seconds; `make faults` runs it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("SECTOR_CREDIT_FAULTS") == "all":
        return
    skip = pytest.mark.skip(reason="a slow fault scenario: run `make faults`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
