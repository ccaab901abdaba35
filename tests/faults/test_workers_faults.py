"""Issue 16, item 5: `--workers` sets die with their supervisor and never share a port.

The supervisor killed with SIGKILL (no signal forwarded, no clean-up): its workers get the
parent-death signal, drain and exit within seconds. While a set lives, whether its
supervisor does or not, a second set on the same port exits 1 with one clear line instead
of splitting the connections with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_workers import _request, _stub, _worker_pids, workers


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def second_set(database_url: str, tmp_path: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SECTOR_CREDIT_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "--listen",
            f"127.0.0.1:{port}",
            "--database-url",
            database_url,
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            "--workers",
            "2",
            "--no-migrate",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.slow_fault
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_workers_exit_when_their_supervisor_is_killed_and_only_then_the_port_is_free(
    database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with workers(database_url, tmp_path / "a", n=2) as w:
        pids = _worker_pids(w)
        assert len(pids) == 2 and all(alive(p) for p in pids)

        # a second set on the same port, while the first serves: refused
        refused = second_set(database_url, tmp_path, w.port)
        assert refused.returncode == 1
        assert "another --workers set serves this port" in refused.stderr
        assert "listening" not in refused.stdout

        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait(10)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids), "workers outlived their supervisor"

    # the port is free again: a new set takes it and serves
    with workers(database_url, tmp_path / "b", n=2, listen=f"127.0.0.1:{w.port}") as fresh:
        channel, stub = _stub(fresh.port, 0)
        with channel:
            assert stub.Evaluate(_request(7), timeout=30).evaluation.name
