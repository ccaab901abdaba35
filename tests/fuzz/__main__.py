"""`make fuzz`: the fuzz driver against a real server on SQLite and on PostgreSQL.

    make fuzz                                  # 100,000 requests, half per database, ≤ 30 min
    make fuzz ARGS="--requests 20000 --backends sqlite --seed 7"

The databases run side by side, each in a process of its own with its own server (the time
bound applies to each). Prints the counts by method and code for each database and every
distinct INTERNAL/UNKNOWN finding with an input sketch and the server's error log lines;
exits 1 on any finding, a server exit, memory above the bound, or fewer requests than asked
for within the time bound.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service_harness import database, running_server

from .runner import fuzz, read_log_errors


def run_one(
    backend: str, requests: int, seconds: float, seed: int, rss_limit_mb: float, work: Path
) -> int:
    """Fuzz one database's server; 0 when nothing failed."""
    tmp = work / backend
    tmp.mkdir(parents=True, exist_ok=True)
    print(f"{backend}: {requests:,} requests within {seconds:.0f} s, seed {seed}", flush=True)
    with database(backend, tmp, "fuzz") as url, running_server(url, tmp / "server.log") as server:
        report = fuzz(
            server.address,
            server.pid,
            backend,
            requests=requests,
            seconds=seconds,
            seed=seed,
            rss_limit_mb=rss_limit_mb,
            poll=server.proc.poll,
            progress=lambda line: print(line, flush=True),
        )
        report.log_errors = read_log_errors(server.log_text())
    failures = report.failures()
    if report.requests < requests:
        failures.append(f"only {report.requests:,} of {requests:,} requests within {seconds:.0f} s")
    print(
        report.text()
        + (
            "\n" + f"{backend} FAILED:\n- " + "\n- ".join(failures)
            if failures
            else f"\n{backend}: no INTERNAL, no UNKNOWN, no server exit, memory within the bound"
        ),
        flush=True,
    )
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make fuzz", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--requests", type=int, default=100_000, help="calls in total, shared by the databases"
    )
    ap.add_argument(
        "--seconds", type=float, default=1800.0, help="time bound (each database runs side by side)"
    )
    ap.add_argument("--backends", default="sqlite,postgresql", help="sqlite, postgresql or both")
    ap.add_argument(
        "--seed", type=int, default=0, help="hypothesis seed of the first round (then +1 per round)"
    )
    ap.add_argument(
        "--rss-limit-mb",
        type=float,
        default=600.0,
        help="the most the server's processes may hold resident (VmRSS), MB",
    )
    ap.add_argument("--work", help=argparse.SUPPRESS)  # the folder a child process writes to
    ap.add_argument("--keep", action="store_true", help="keep the server logs (printed path)")
    a = ap.parse_args(argv)
    backends = [b for b in a.backends.split(",") if b]
    # SIGTERM as an exception: the server is stopped and a scratch database dropped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if a.work:  # a child: one database
        return run_one(backends[0], a.requests, a.seconds, a.seed, a.rss_limit_mb, Path(a.work))
    work = Path(tempfile.mkdtemp(prefix="sector-credit-fuzz-"))
    started = time.monotonic()
    children = []
    for i, backend in enumerate(backends):
        share = a.requests // len(backends) + (1 if i < a.requests % len(backends) else 0)
        children.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fuzz",
                    "--backends",
                    backend,
                    "--requests",
                    str(share),
                    "--seconds",
                    str(a.seconds),
                    "--seed",
                    str(a.seed),
                    "--rss-limit-mb",
                    str(a.rss_limit_mb),
                    "--work",
                    str(work),
                ]
            )
        )
    try:
        codes = [child.wait() for child in children]
    except BaseException:
        for child in children:
            child.terminate()
        raise
    print(
        f"\n{a.requests:,} requests asked for on {', '.join(backends)};"
        f" {time.monotonic() - started:.0f} s"
    )
    if a.keep:
        print(f"server logs in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    failed = [b for b, code in zip(backends, codes) if code]
    print(f"FAILED on {', '.join(failed)}" if failed else "passed on every database")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
