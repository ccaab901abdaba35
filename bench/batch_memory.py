"""Resident memory of a real server's processes under BatchEvaluate load, step by step.

    .venv/bin/python bench/batch_memory.py [--workers 2] [--basic] [--database-url URL]

Starts `sector-credit-server --workers N` (SQLite in a scratch folder unless a URL is given;
with SECTOR_CREDIT_BENCH_OFF set, bench/bound_server.py with those parts switched off), then
prints VmRSS/VmHWM of each of its processes (supervisor first) and the sum of VmHWM, the
figure service_bench.py reports as "peak MB":

- idle, once every worker serves;
- after one BatchEvaluate of 1,000 taxi items, then after ten more one at a time;
- after K calls in flight at once (K = 2, 4, 8; five calls each, in K threads), each call
  on one of 4 channels (connections: the kernel spreads them over the workers).

Where service_bench.py gives one peak per mode, this shows what each step adds: a worker's
imports (idle), one batch, batches waiting together for the writer (docs/benchmarks.md,
"Peak memory (issue 12)"). Figures move by a few MB from run to run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_bench as sb  # noqa: E402  (the request pool and the process tree)

ROOT = Path(__file__).resolve().parent.parent
BATCH = "/sector_credit.v1.CreditEvaluationService/BatchEvaluate"


def _status(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of a process, in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    rss = re.search(r"VmRSS:\s+(\d+)", text)
    hwm = re.search(r"VmHWM:\s+(\d+)", text)
    assert rss and hwm
    return int(rss.group(1)) // 1024, int(hwm.group(1)) // 1024


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--basic", action="store_true", help="the BASIC view")
    ap.add_argument("--database-url", default="", help="default: SQLite in a scratch folder")
    a = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="batch-memory-"))
    url = a.database_url or f"sqlite:///{work / 'audit.db'}"
    off = os.environ.get("SECTOR_CREDIT_BENCH_OFF")
    exe = (
        [sys.executable, str(ROOT / "bench" / "bound_server.py")]
        if off
        else [str(Path(sys.executable).parent / "sector-credit-server")]
    )
    server = subprocess.Popen(
        [*exe, "--listen", "127.0.0.1:0", "--database-url", url, "--workers", str(a.workers)]
        + ["--metrics-port", "0", "--log-level", "warning", "--insecure"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = next(int(x.split()[-1]) for x in server.stdout if x.startswith("listening"))
        time.sleep(1.0)
        pids = sb._proc_tree(server.pid)
        print(f"server processes {pids} (supervisor first); MB as VmRSS/VmHWM", flush=True)

        def show(step: str) -> None:
            figures = [_status(p) for p in pids]
            cells = " ".join(f"{rss}/{hwm}" for rss, hwm in figures)
            print(f"{step:24s} {cells}   sum of VmHWM {sum(h for _, h in figures)}", flush=True)

        show("idle")
        pool = sb.build_pool(2000)
        channels = [
            grpc.insecure_channel(
                f"127.0.0.1:{port}",
                options=[("grpc.max_receive_message_length", 64 << 20), ("test.channel", i)],
            )
            for i in range(4)
        ]
        calls = [ch.unary_unary(BATCH) for ch in channels]

        def call(i: int) -> None:
            calls[i % len(calls)](sb.batch_bytes(pool, 1000, i * 1000, basic=a.basic), timeout=120)

        call(0)
        show("after 1 batch")
        for i in range(10):
            call(i)
        show("after 11 in sequence")
        for k in (2, 4, 8):
            threads = [
                threading.Thread(target=lambda t=t: [call(t + j) for j in range(5)])
                for t in range(k)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            show(f"after {k} in flight x5")
        for ch in channels:
            ch.close()
    finally:
        server.terminate()
        server.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
