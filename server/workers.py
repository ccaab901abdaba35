"""`--workers N`: N server processes sharing one port (SO_REUSEPORT), one supervisor.

Why: one grpc.aio process is bound by its GIL to about one core of Python work; a second
process on the same port uses the second core (the kernel spreads *connections* over the
processes, so clients need several connections to spread their calls).

How (grpc/grpc `examples/python/multiprocessing`):
- The migrations are applied once (in a short-lived child, so the parent never loads
  SQLAlchemy), then the workers are started with `multiprocessing` spawn; no gRPC object
  ever exists in the parent (gRPC's C core does not survive fork).
- Port 0 is resolved once in the parent: a free port is picked and held by a socket with
  SO_REUSEPORT until every worker has bound it, so all workers share that one port.
- Each worker serves the whole service (`app.create_server`, `grpc.so_reuseport=1`) with its
  own audit store: group commit per process; SQLite serializes writers across processes
  (BEGIN IMMEDIATE, busy timeout), PostgreSQL takes them concurrently. Durability is the
  same as with one process: every evaluation is committed before its reply.
- `listening on port N` is printed once every worker serves. SIGTERM/SIGINT are forwarded to
  the workers, which drain as a single server does (health NOT_SERVING, in-flight calls
  finish within the grace period, the store is drained); the parent then exits 0. If a
  worker dies on its own, the parent stops the others and exits 1, so a supervisor
  restarts the whole set.
- Metrics: prometheus_client multiprocess mode. PROMETHEUS_MULTIPROC_DIR (a fresh folder
  unless set) is exported before the workers start, so their counters and histograms go
  to files there; the parent serves /metrics on `--metrics-port`, summed over the workers
  (`MultiProcessCollector`). The folder is removed at exit when the parent made it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing as mp
import os
import queue
import shutil
import signal
import socket
import sys
import tempfile
import time
from multiprocessing.connection import wait
from typing import Any

from .logs import configure, log
from .settings import Settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXIT_UNAVAILABLE = 69  # as main.py: the database could not be reached at start-up
START_TIMEOUT_S = 120.0


def run_workers(settings: Settings) -> int:
    """Run `settings.workers` server processes on one port until SIGTERM/SIGINT; 0 on a clean
    stop, 1 when start-up failed or a worker died."""
    ctx = mp.get_context("spawn")
    if settings.migrate:  # once, before the workers (which start with migrate=False)
        code = _migrate_in_child(ctx, settings)
        if code != 0:
            return code

    host, _, port_text = settings.listen.rpartition(":")
    try:
        holder = _reserve_port(host, int(port_text))
    except (OSError, ValueError) as exc:
        log.error("cannot listen", address=settings.listen, error=str(exc))
        return 1
    port = holder.getsockname()[1]

    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="sector-credit-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    worker_settings = dataclasses.replace(
        settings, listen=f"{host}:{port}", migrate=False, metrics_port=0)

    ready = ctx.Queue()
    procs = [ctx.Process(target=_worker_main, args=(worker_settings, i, ready),
                         name=f"sector-credit-worker-{i}") for i in range(settings.workers)]
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    def forward_reload(signum: int, _frame: Any) -> None:  # SIGHUP: each worker reloads its security files
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGHUP)

    signal.signal(signal.SIGHUP, forward_reload)
    code = 0
    try:
        for p in procs:
            p.start()
        if not _wait_ready(procs, ready, lambda: stopping):
            forward(signal.SIGTERM, None)
            code = 1
        else:
            holder.close()
            metrics_port = _serve_metrics(settings) if settings.metrics_port else 0
            print(f"listening on port {port}", flush=True)
            if metrics_port:
                print(f"metrics on port {metrics_port}", flush=True)
            log.info("workers serving", workers=len(procs), port=port,
                     pids=[p.pid for p in procs], metrics_port=metrics_port or None)
            code = _supervise(procs, lambda: stopping, forward)
    except BaseException:
        forward(signal.SIGTERM, None)  # whatever went wrong here, the workers drain and stop
        raise
    finally:
        holder.close()
        deadline = time.monotonic() + settings.grace_seconds + 30
        for p in procs:
            if p.pid is not None:
                p.join(max(0.0, deadline - time.monotonic()))
                if p.exitcode is None:
                    log.error("worker did not stop in time; killing it", pid=p.pid)
                    p.kill()
                    p.join()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    log.info("stopped", workers=len(procs))
    return code


def _migrate_in_child(ctx: Any, settings: Settings) -> int:
    """Apply the migrations in a short-lived process: the supervisor itself never loads
    SQLAlchemy or Alembic (some 40 MB it would keep for nothing). Its exit code, 69 when
    the database cannot be reached (as `sector-credit-server migrate`)."""
    child = ctx.Process(target=_migrate_main, args=(settings,), name="sector-credit-migrate")
    child.start()
    child.join()
    return int(child.exitcode or 0)


def _migrate_main(settings: Settings) -> None:
    configure(settings.log_format, settings.log_level)
    from .db.errors import StoreUnavailable
    from .db.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except StoreUnavailable as exc:
        log.error("the audit database is unavailable", command="serve", error=str(exc))
        sys.exit(EXIT_UNAVAILABLE)


def _reserve_port(host: str, port: int) -> socket.socket:
    """A socket bound to `host:port` (port 0: a free one) with SO_REUSEPORT, holding the port
    for the workers: it never listens, so it takes no connections."""
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host.strip("[]") or "0.0.0.0", port))
    except OSError:
        sock.close()
        raise
    return sock


def _wait_ready(procs: list[Any], ready: Any, stopping: Any) -> bool:
    """True once every worker reported it serves; False if one died first or we were told
    to stop."""
    pending = len(procs)
    deadline = time.monotonic() + START_TIMEOUT_S
    while pending:
        if stopping() or time.monotonic() > deadline:
            return False
        if any(p.exitcode is not None for p in procs):
            log.error("a worker exited during start-up",
                      exit_codes=[p.exitcode for p in procs])
            return False
        try:
            ready.get(timeout=0.2)
        except queue.Empty:
            continue
        pending -= 1
    return True


def _supervise(procs: list[Any], stopping: Any, stop_all: Any) -> int:
    """Wait for the workers; when one exits unasked, stop the rest and report failure."""
    code = 0
    sentinels = {p.sentinel: p for p in procs}
    while sentinels:
        for s in wait(list(sentinels), timeout=1.0):
            p = sentinels.pop(s)
            p.join()
            if not stopping():
                log.error("worker exited unexpectedly; stopping the others",
                          pid=p.pid, exit_code=p.exitcode)
                code = 1
                stop_all(signal.SIGTERM, None)
            elif p.exitcode not in (0, -signal.SIGTERM):
                code = 1
    return code


def _serve_metrics(settings: Settings) -> int:
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(settings.metrics_port, addr=settings.metrics_host,
                                        registry=registry)
    return int(server.server_port)


# --------------------------------------------------------------------------------------------
# In each worker process


def _worker_main(settings: Settings, index: int, ready: Any) -> None:
    configure(settings.log_format, settings.log_level)
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(_serve_worker(settings, index, ready))
    except KeyboardInterrupt:  # a second signal while draining
        sys.exit(130)


async def _serve_worker(settings: Settings, index: int, ready: Any) -> None:
    import asyncio

    from .app import create_server, freeze_startup_objects

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started: list[Any] = []  # a SIGHUP before the server is up has nothing to reload yet
    loop.add_signal_handler(signal.SIGHUP, lambda: started and started[0].security.reload())
    running = await create_server(settings)
    started.append(running)
    freeze_startup_objects()
    log.info("worker serving", worker=index, pid=os.getpid(), port=running.port)
    ready.put(index)
    await stop.wait()
    log.info("draining", worker=index, grace_seconds=settings.grace_seconds)
    await running.stop()
    log.info("worker stopped", worker=index)
