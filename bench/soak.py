"""Soak test: the real server under steady load for minutes, judged on memory, latency and disk.

    .venv/bin/python bench/soak.py                       # 5 minutes at half the measured maximum
    .venv/bin/python bench/soak.py --seconds 120 --warmup 30
    .venv/bin/python bench/soak.py --rate 400            # a fixed rate, no measurement
    make soak ARGS="--seconds 120 --warmup 30"

What it does, reusing bench/service_bench.py's server start, load generators and open loop:
1. starts the server (`--workers`, default 1) on a fresh SQLite file (or `--database
   postgresql`, a scratch database);
2. unless `--rate` is given, measures the maximum: Evaluate in a closed loop with
   `--unary-inflight` calls in flight for `--measure-seconds`; the soak rate is half of it;
3. sends Evaluate at that rate in an open loop (latency from the scheduled send time, so a
   stalled server is not hidden by a client that waits) for `--seconds`, in windows of one
   minute (the first `--warmup` seconds are a window of their own), printing every 10 s the
   server's RSS (VmRSS summed over its processes, from /proc) and the SQLite write-ahead
   log's size, and after each window its p50/p99 and rate; at the end the server's own p99
   per window (handler time, from its JSON log), which tells a slow server from a slow client
   (or a starved machine: the load average is printed too).

Judged (exit 1 when any fails), on what comes after the warm-up:
- memory: the last RSS sample is less than 10% above the sample at the end of the warm-up;
- p99 flat: the last window's p99 is at most 1.5 × the first window's, and no window's p99 is
  more than 3 × the smallest (windows after the warm-up; shorter than 20 s are left out);
- WAL bounded: the write-ahead log never exceeds `--wal-limit-mb` (default 64 MB) and ends
  no larger than 2 × its size at the end of the warm-up or under 4 MB;
- no failed calls, and the offered rate reached (at least 90% of it completed).
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import service_bench as sb

RSS_GROWTH_MAX = 0.10
P99_TREND_MAX = 1.5
P99_SPREAD_MAX = 3.0
SAMPLE_EVERY_S = 10.0


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total / 1024


def file_mb(path: Path | None) -> float:
    if path is None:
        return math.nan
    try:
        return path.stat().st_size / 1e6
    except FileNotFoundError:
        return 0.0


@dataclass
class Sample:
    t: float  # seconds since the soak started
    rss_mb: float
    wal_mb: float


@dataclass
class Sampler:
    """Every SAMPLE_EVERY_S, the server's RSS and WAL size, printed and kept."""

    server: sb.Server
    wal: Path | None
    started: float
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def take(self) -> Sample:
        self.server.refresh()
        s = Sample(time.time() - self.started, rss_mb(self.server.pids), file_mb(self.wal))
        self.samples.append(s)
        wal = "" if self.wal is None else f"  WAL {s.wal_mb:7.1f} MB"
        print(f"  t={s.t:5.0f} s  RSS {s.rss_mb:6.1f} MB{wal}", flush=True)
        return s

    def run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S - (time.time() - self.started) % SAMPLE_EVERY_S):
            self.take()

    def stop(self) -> None:
        self._stop.set()


def bench_args(a: argparse.Namespace, warmup: float, window: float) -> argparse.Namespace:
    """The namespace service_bench.measure and start_server read."""
    return argparse.Namespace(
        warmup=warmup,
        window=window,
        channels=a.channels,
        workers=a.workers,
        unary_inflight=a.unary_inflight,
    )


def server_p99s(log_path: Path, spans: list[tuple[float, float]]) -> list[float]:
    """The p99 of the Evaluate handler's duration per (start, end) wall-time span, from the
    server's `rpc` log records."""
    import datetime as dt
    import json

    durations: list[list[float]] = [[] for _ in spans]
    with open(log_path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if '"rpc"' not in line:
                continue
            try:
                r = json.loads(line)
                t = dt.datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp()
                d = float(r["duration_ms"])
            except (ValueError, KeyError, TypeError):
                continue
            for i, (a, b) in enumerate(spans):
                if a <= t < b:
                    durations[i].append(d)
                    break
    return [sb._pct(d, 0.99) for d in durations]


def judge(
    samples: list[Sample],
    windows: list[tuple[float, sb.Run]],
    warmup: float,
    rate: float,
    wal_limit_mb: float,
) -> list[str]:
    """What failed; `windows` are (length in seconds, run), the warm-up first."""
    failures = []
    after = [s for s in samples if s.t >= warmup - 1]
    if len(after) >= 2:
        base, last = after[0], after[-1]
        growth = (last.rss_mb - base.rss_mb) / base.rss_mb
        print(
            f"RSS after warm-up: {base.rss_mb:.1f} MB at t={base.t:.0f} s -> {last.rss_mb:.1f} MB"
            f" at "
            f"t={last.t:.0f} s ({growth * 100:+.1f}%; most {max(s.rss_mb for s in after):.1f} MB)"
        )
        if growth >= RSS_GROWTH_MAX:
            failures.append(
                f"RSS grew {growth * 100:.1f}% after the warm-up (limit"
                f" {RSS_GROWTH_MAX * 100:.0f}%)"
            )
        wals = [s.wal_mb for s in after if not math.isnan(s.wal_mb)]
        if wals:
            print(
                f"WAL after warm-up: {wals[0]:.1f} MB -> {wals[-1]:.1f} MB, most {max(wals):.1f} MB"
            )
            if max(wals) > wal_limit_mb:
                failures.append(f"the WAL reached {max(wals):.1f} MB (limit {wal_limit_mb:.0f} MB)")
            if wals[-1] > max(2 * wals[0], 4.0):
                failures.append(f"the WAL kept growing: {wals[0]:.1f} MB -> {wals[-1]:.1f} MB")
    else:
        failures.append("too few samples after the warm-up to judge memory")
    judged = [w for length, w in windows[1:] if length >= 20 and not math.isnan(w.p99_ms)]
    if len(judged) >= 2:
        p99s = [w.p99_ms for w in judged]
        print("p99 per window after warm-up: " + ", ".join(f"{p:.1f}" for p in p99s) + " ms")
        if p99s[-1] > P99_TREND_MAX * p99s[0]:
            failures.append(
                f"p99 rose from {p99s[0]:.1f} to {p99s[-1]:.1f} ms (limit ×{P99_TREND_MAX})"
            )
        if max(p99s) > P99_SPREAD_MAX * min(p99s):
            failures.append(
                f"p99 ranged {min(p99s):.1f}-{max(p99s):.1f} ms (limit ×{P99_SPREAD_MAX})"
            )
    else:
        failures.append("fewer than two windows of at least 20 s after the warm-up: p99 not judged")
    for _, w in windows:
        if w.errors:
            failures.append(f"{w.errors} failed calls in a window: {'; '.join(w.notes)}")
        if w.calls_per_s < 0.9 * rate:
            failures.append(
                f"a window completed {w.calls_per_s:.0f} calls/s of the {rate:.0f}/s offered"
            )
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Soak test (see the module docstring).")
    ap.add_argument("--seconds", type=float, default=300.0, help="length of the soak (default 300)")
    ap.add_argument(
        "--warmup", type=float, default=60.0, help="first seconds not judged (default 60)"
    )
    ap.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="Evaluate calls per second (default: half the measured maximum)",
    )
    ap.add_argument(
        "--measure-seconds", type=float, default=10.0, help="length of the maximum's measurement"
    )
    ap.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    ap.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    ap.add_argument("--clients", type=int, default=2, help="load generator processes")
    ap.add_argument("--channels", type=int, default=8, help="channels per load generator")
    ap.add_argument(
        "--unary-inflight", type=int, default=64, help="calls in flight while measuring the maximum"
    )
    ap.add_argument(
        "--wal-limit-mb", type=float, default=64.0, help="the most the SQLite WAL may hold"
    )
    ap.add_argument("--pool", type=int, default=4000, help="distinct requests")
    ap.add_argument("--pg-url", default=sb.PG_ADMIN_URL)
    ap.add_argument(
        "--keep", action="store_true", help="keep the work folder (server log, database)"
    )
    a = ap.parse_args(argv)
    if a.warmup >= a.seconds:
        ap.error("--warmup must be shorter than --seconds")

    print(f"machine: {sb.machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="sector-credit-soak-"))
    pool_file = work / "pool.pickle"
    pool_file.write_bytes(pickle.dumps(sb.build_pool(a.pool)))
    pg = sb.PgScratch(a.pg_url) if a.database == "postgresql" else None
    clients = sb.Clients(a.clients, pool_file)
    windows: list[tuple[float, sb.Run]] = []
    sampler: Sampler | None = None
    try:
        server = sb.start_server(a.database, 0, bench_args(a, 0, 0), work, pg, work / "unused")
        wal = work / "audit-r0.db-wal" if a.database == "sqlite" else None
        try:
            rate = a.rate
            if not rate:
                m = sb.measure(
                    server, clients, a.database, "unary", 0, bench_args(a, 2.0, a.measure_seconds)
                )
                rate = m.calls_per_s / 2
                print(
                    f"maximum: {m.calls_per_s:,.0f} calls/s (p99 {m.p99_ms:.1f} ms, {m.errors}"
                    f" failed) over "
                    f"{a.measure_seconds:g} s with {a.unary_inflight} in flight; soak rate"
                    f" {rate:,.0f}/s",
                    flush=True,
                )
            print(
                f"soak: {a.seconds:g} s at {rate:,.0f} Evaluate/s on {a.database}, {a.workers}"
                f" worker(s); "
                f"warm-up {a.warmup:g} s; RSS/WAL every {SAMPLE_EVERY_S:g} s",
                flush=True,
            )
            started = time.time()
            sampler = Sampler(server, wal, started)
            sampler.take()
            thread = threading.Thread(target=sampler.run, daemon=True)
            thread.start()
            bounds = [a.warmup, *_minutes(a.warmup, a.seconds)]
            prev = 0.0
            spans = []
            for end in bounds:
                length = end - prev
                # measure() adds a second for the clients to connect before the window
                run = sb.measure(
                    server,
                    clients,
                    a.database,
                    "unary@half",
                    0,
                    bench_args(a, 0, length - 1),
                    rate=rate,
                )
                windows.append((length, run))
                spans.append((started + prev, started + end))
                label = "warm-up" if not prev else f"{prev:.0f}-{end:.0f} s"
                print(
                    f"window {label}: {run.calls_per_s:,.0f} calls/s  p50 {run.p50_ms:.1f} ms  "
                    f"p99 {run.p99_ms:.1f} ms  {run.errors} failed; load average"
                    f" {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                prev = end
            sampler.stop()
            thread.join()
            sampler.take()
        finally:
            server.stop()
        if windows:
            print(
                "server p99 per window (Evaluate handler, from its log): "
                + ", ".join(f"{p:.1f}" for p in server_p99s(server.log_path, spans))
                + " ms",
                flush=True,
            )
    finally:
        clients.close()
        if pg is not None:
            pg.drop()
        if a.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    assert sampler is not None
    failures = judge(sampler.samples, windows, a.warmup, rate, a.wal_limit_mb)
    print(
        f"judged: RSS growth < {RSS_GROWTH_MAX * 100:.0f}% after warm-up; p99 flat = last window ≤ "
        f"{P99_TREND_MAX}× the first and every window ≤ {P99_SPREAD_MAX}× the smallest; WAL ≤"
        f" {a.wal_limit_mb:g} MB "
        "and not growing"
    )
    if failures:
        print("FAILED:\n- " + "\n- ".join(failures))
        return 1
    print("passed")
    return 0


def _minutes(start: float, end: float) -> list[float]:
    """Window ends after the warm-up: every minute, the last one possibly shorter."""
    out = []
    t = start
    while t < end - 1e-9:
        t = min(t + 60.0, end)
        out.append(t)
    return out


if __name__ == "__main__":
    sys.exit(main())
