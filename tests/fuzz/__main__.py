"""`make fuzz`: the fuzz driver against a real server on SQLite and on PostgreSQL.

    make fuzz                                  # 100,000 requests, half per database, ≤ 30 min
    make fuzz ARGS="--requests 20000 --backends sqlite --seed 7"

Prints the counts by method and code for each database and every distinct INTERNAL/UNKNOWN
finding with an input sketch and the server's error log lines; exits 1 on any finding, a
server exit, memory above the bound, or fewer requests than asked for within the time bound.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from service_harness import database, running_server

from .runner import fuzz, read_log_errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100_000, help="calls in total, shared by the databases")
    ap.add_argument("--seconds", type=float, default=1800.0, help="time bound in total, shared by the databases")
    ap.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument("--seed", type=int, default=0, help="hypothesis seed of the first round (then +1 per round)")
    ap.add_argument("--rss-limit-mb", type=float, default=600.0,
                    help="the most the server's processes may hold resident (VmRSS), MB")
    ap.add_argument("--keep", action="store_true", help="keep the server logs (printed path)")
    a = ap.parse_args(argv)
    backends = [b for b in a.backends.split(",") if b]
    work = Path(tempfile.mkdtemp(prefix="sector-credit-fuzz-"))
    failures: list[str] = []
    total = 0
    started = time.monotonic()
    for i, backend in enumerate(backends):
        share = a.requests // len(backends) + (1 if i < a.requests % len(backends) else 0)
        budget = (a.seconds - (time.monotonic() - started)) / (len(backends) - i)
        tmp = work / backend
        tmp.mkdir()
        print(f"{backend}: {share:,} requests within {budget:.0f} s, seed {a.seed}", flush=True)
        with database(backend, tmp, "fuzz") as url, running_server(url, tmp / "server.log") as server:
            report = fuzz(server.address, server.pid, backend, requests=share, seconds=budget, seed=a.seed,
                          rss_limit_mb=a.rss_limit_mb, poll=server.proc.poll,
                          progress=lambda line: print(line, flush=True))
            report.log_errors = read_log_errors(server.log_text())
            print(report.text(), flush=True)
        failures += [f"{backend}: {f}" for f in report.failures()]
        if report.requests < share:
            failures.append(f"{backend}: only {report.requests:,} of {share:,} requests within {budget:.0f} s")
        total += report.requests
    print(f"\n{total:,} requests in {time.monotonic() - started:.0f} s on {', '.join(backends)}")
    if a.keep:
        print(f"server logs in {work}")
    if failures:
        print("FAILED:\n- " + "\n- ".join(failures))
        return 1
    print("no INTERNAL, no UNKNOWN, no server exit, memory within the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
