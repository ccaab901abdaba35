"""The fuzz suite's short run, against a real server on SQLite and on PostgreSQL: a few
hundred hypothesis-generated calls over every method (structure-aware and raw bytes, see
tests/fuzz/; batches of at most 20 items to keep it short), deterministic for its seed.
`make fuzz` is the long run (100,000 requests, batches up to 1,001 items).

Whatever the input, the server answers with a status that is not INTERNAL or UNKNOWN (for
the call and for every batch or stream item), stays up, and stays within a memory bound.
"""

from __future__ import annotations

from fuzz.runner import fuzz, read_log_errors
from service_harness import ServerProcess, module_server_fixture

server = module_server_fixture()

SEED = 20261202
REQUESTS = 500
RSS_LIMIT_MB = 600.0


def test_no_input_makes_the_server_fail_internally_crash_or_grow(server: ServerProcess) -> None:
    report = fuzz(
        server.address,
        server.pid,
        server.database_url.split(":")[0].split("+")[0],
        requests=REQUESTS,
        seconds=300,
        seed=SEED,
        rss_limit_mb=RSS_LIMIT_MB,
        round_examples=4,
        largest_batch=20,
        poll=server.proc.poll,
    )
    report.log_errors = read_log_errors(server.log_text())
    print(report.text())
    assert report.requests >= REQUESTS, report.text()
    every_method = {label.removesuffix(" (raw)") for label, _ in report.calls}
    assert len(every_method) == 9 and any(label.endswith("(raw)") for label, _ in report.calls), (
        report.text()
    )
    assert report.failures() == [], report.text()
