"""`--workers N`: N server processes on one port, one supervisor; on SQLite and PostgreSQL.

The kernel spreads connections over the workers, so each call here goes over its own
channel (a separate connection). Which worker answers is the kernel's choice: the tests
check what must hold whichever it is.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from installed_plugins import ONLY_BUILTIN
from sector_credit.v1 import common_pb2
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from sector_credit.v1 import credit_evaluation_service_pb2_grpc as pb_grpc
from server_process import resident_id

START_TIMEOUT = 90.0


class Workers:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, port: int, metrics_port: int):
        self.proc, self.log, self.port, self.metrics_port = proc, log, port, metrics_port

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10
        ) as r:
            return r.read().decode()


@contextmanager
def workers(
    database_url: str, tmp_path: Path, n: int = 2, listen: str = "127.0.0.1:0"
) -> Iterator[Workers]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SECTOR_CREDIT_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sector_credit.server.main",
                "--listen",
                listen,
                "--database-url",
                database_url,
                "--metrics-port",
                "any",
                "--log-format",
                "json",
                "--workers",
                str(n),
                "--grace-seconds",
                "5",
                *ONLY_BUILTIN,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=tmp_path,
        )
        try:
            lines = _read_lines(proc, log_path, want=("listening on port ", "metrics on port "))
            port = int(lines[0].rsplit(" ", 1)[1])
            yield Workers(proc, log_path, port, int(lines[1].rsplit(" ", 1)[1]))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _read_lines(proc: subprocess.Popen[bytes], log: Path, want: tuple[str, ...]) -> list[str]:
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT
    buffer = b""
    while time.monotonic() < deadline:
        if not selector.select(timeout=0.2):
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            break
        buffer += chunk
        lines = buffer.decode(errors="replace").splitlines()
        found = [next((x for x in lines if x.startswith(w)), None) for w in want]
        if all(found):
            return found  # type: ignore[return-value]
    proc.kill()
    raise AssertionError(
        f"the workers did not start; stdout {buffer!r}; log:\n{log.read_text()[-3000:]}"
    )


def _request(i: int) -> pb.EvaluateRequest:
    req = pb.EvaluateRequest(scorecard="scorecards/transport.taxi_driver", request_id=f"w-{i}")
    req.subject.kind = common_pb2.SUBJECT_KIND_PERSON
    req.subject.id = resident_id("110105", "19800101", i % 1000)
    req.indicators["violations_1pt"].count_value = i % 4
    return req


def _stub(port: int, i: int) -> tuple[grpc.Channel, pb_grpc.CreditEvaluationServiceStub]:
    channel = grpc.insecure_channel(  # its own connection: the kernel may pick either worker
        f"127.0.0.1:{port}", options=[("grpc.use_local_subchannel_pool", 1), ("test.channel", i)]
    )
    return channel, pb_grpc.CreditEvaluationServiceStub(channel)


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _worker_pids(w: Workers) -> list[int]:
    return [
        int(p)
        for p in re.findall(r'"pid": (\d+), "port": \d+, "event": "worker serving"', w.log_text())
    ]


def test_workers_share_one_port_store_durably_and_stop_on_sigterm(
    database_url: str, tmp_path: Path
) -> None:
    with workers(database_url, tmp_path) as w:
        assert w.log_text().count('"event": "worker serving"') == 2
        names = []
        for i in range(24):
            channel, stub = _stub(w.port, i)
            with channel:
                names.append(stub.Evaluate(_request(i), timeout=30).evaluation.name)
                # a retry of the same request id is answered from the store, whichever worker
                assert stub.Evaluate(_request(i), timeout=30).evaluation.name == names[-1]
        assert len(set(names)) == 24
        for i, name in enumerate(names):  # every evaluation is readable through any worker
            channel, stub = _stub(w.port, 100 + i)
            with channel:
                got = stub.GetEvaluation(
                    pb.GetEvaluationRequest(purpose="supervision", name=name), timeout=30
                )
                assert got.evaluation.name == name
        # /metrics on the parent sums the workers' counters
        text = w.metrics()
        evaluate_ok = re.search(
            r'grpc_server_handled_total\{grpc_code="OK",grpc_method="Evaluate",'
            r'grpc_service="sector_credit.v1.CreditEvaluationService",grpc_type="unary"\} (\S+)',
            text,
        )
        assert evaluate_ok is not None and float(evaluate_ok.group(1)) == 48.0, text[:2000]

        pids = _worker_pids(w)
        # the workers are the supervisor's only children: no helper process (multiprocessing's
        # resource tracker was one, 13 MB for nothing; issue 12)
        assert len(pids) == 2 and set(pids) == set(_children(w.proc.pid))
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(timeout=30) == 0, w.log_text()[-3000:]
        for pid in pids:  # the workers are gone, reaped by the parent before it exited
            assert not os.path.exists(f"/proc/{pid}"), pid
        assert w.log_text().count('"event": "worker stopped"') == 2


def test_a_worker_that_dies_stops_the_set_with_exit_code_1(tmp_path: Path) -> None:
    with workers(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path) as w:
        pids = _worker_pids(w)
        assert len(pids) == 2, w.log_text()
        os.kill(pids[0], signal.SIGKILL)
        assert w.proc.wait(timeout=60) == 1
        assert "worker exited unexpectedly" in w.log_text()


@pytest.mark.parametrize("n", [2, 3])
def test_port_zero_is_resolved_once_for_all_workers(tmp_path: Path, n: int) -> None:
    with workers(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path, n=n) as w:
        ports = set(re.findall(r'"worker": \d+, "pid": \d+, "port": (\d+)', w.log_text()))
        assert ports == {str(w.port)}, w.log_text()
        assert w.log_text().count('"event": "worker serving"') == n
        w.proc.send_signal(signal.SIGINT)
        assert w.proc.wait(timeout=30) == 0


def test_an_unreachable_database_stops_the_start_with_exit_code_69(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            "postgresql://postgres@127.0.0.1:1/nowhere",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            "--workers",
            "2",
        ],
        capture_output=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 69, proc.stderr.decode()[-2000:]
    assert b"listening on port" not in proc.stdout
    assert b"the audit database is unavailable" in proc.stderr


# what the supervisor (main.py with --workers, workers.py) must not import: it serves nothing,
# and each of these is resident memory it would hold for the server's life (issue 12)
SUPERVISOR_NEVER_IMPORTS = [
    ("sqlalchemy", "the store is opened by the migrating child and the workers"),
    ("cryptography", "the TLS front and API keys are built in the workers"),
    ("OpenSSL", "the TLS front is built in the workers"),
    ("sector_credit.server.security.keys", "API keys are read in the workers"),
    ("sector_credit.server.app", "the service is built in the workers"),
    ("grpc", "no gRPC object exists in the supervisor (about 18 MB resident)"),
    ("google.protobuf", "messages are read and written in the workers"),
    ("sector_credit.server.security", "the security files are checked by the migrating child"),
]


@pytest.mark.parametrize(("module", "why"), SUPERVISOR_NEVER_IMPORTS)
def test_the_supervisor_does_not_import(module: str, why: str) -> None:
    code = (
        "import sys, sector_credit.server.main, sector_credit.server.workers;"
        f" print({module!r} in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False", f"the supervisor imports {module}: {why}"


# what a worker in local mode on SQLite must not load (issue 12): each is resident memory in
# every worker, and none of them is used there. Read off the running worker's memory map, so
# an import anywhere on the serving path (not just at start-up) is caught.
WORKER_ON_SQLITE_NEVER_MAPS = [
    ("psycopg_binary/", "psycopg is the PostgreSQL driver (groupcommit.database_writer)"),
    ("cryptography/hazmat/bindings/", "PyJWT's and the TLS front's; no token is verified here"),
    ("OpenSSL/", "pyOpenSSL is the TLS front's (app.create_server)"),
]


def test_a_local_worker_on_sqlite_loads_neither_driver_nor_tls(tmp_path: Path) -> None:
    with workers(f"sqlite:///{tmp_path / 'audit.db'}", tmp_path) as w:
        for i in range(4):  # evaluations first, on connections of their own: most likely both
            channel, stub = _stub(w.port, i)  # workers have served one by then
            try:
                stub.Evaluate(_request(i), timeout=30)
            finally:
                channel.close()
        pids = _worker_pids(w)
        assert len(pids) == 2, w.log_text()[-2000:]
        for pid in pids:
            maps = Path(f"/proc/{pid}/maps").read_text()
            for part, why in WORKER_ON_SQLITE_NEVER_MAPS:
                assert part not in maps, f"worker {pid} maps {part}: {why}"
