"""A real server process for client and CLI tests: `python -m sector_credit.server.main` on
port 0 with a SQLite file, found by the `listening on port N` line it prints once SERVING."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from installed_plugins import ONLY_BUILTIN

START_TIMEOUT = 60.0


@contextmanager
def running_server(
    workdir: Path, plugins: tuple[str, ...] = ONLY_BUILTIN, pythonpath: Path | None = None
) -> Iterator[str]:
    """Start a server with its database and log in `workdir`; yield its address; SIGTERM it
    at the end and check it exits 0. `plugins` are its plugin options (the built-ins alone
    unless told), `pythonpath` a folder of installed plugins (`installed_plugins.plugin_site`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SECTOR_CREDIT_")}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    log = (workdir / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sector_credit.server.main",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            f"sqlite:///{workdir / 'audit.db'}",
            "--metrics-port",
            "0",
            "--log-format",
            "json",
            *plugins,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        cwd=workdir,
    )
    try:
        port = _read_port(proc, workdir)
        yield f"127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError("the server did not stop within 30 s of SIGTERM") from None
            assert code == 0, f"the server exited {code} on SIGTERM; see {workdir / 'server.log'}"
        log.close()


def _read_port(proc: subprocess.Popen[bytes], workdir: Path) -> int:
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
        for line in buffer.decode(errors="replace").splitlines():
            if line.startswith("listening on port "):
                return int(line.rsplit(" ", 1)[1])
    proc.kill()
    log = (workdir / "server.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"the server did not report its port; its log ends:\n{log}")


def resident_id(area: str, birth: str, sequence: int) -> str:
    """A valid GB 11643 resident id: area code, birth date YYYYMMDD, sequence, check character."""
    body = f"{area}{birth}{sequence:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
