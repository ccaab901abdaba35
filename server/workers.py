"""`--workers N`: N server processes sharing one port (SO_REUSEPORT), one supervisor.

Why: one grpc.aio process is bound by its GIL to about one core of Python work; a second
process on the same port uses the second core (the kernel spreads *connections* over the
processes, so clients need several connections to spread their calls).

How (grpc/grpc `examples/python/multiprocessing`):
- The security files and the scorecards are checked and the migrations applied once, in a
  short-lived child, so the parent never loads gRPC or SQLAlchemy; then the workers are
  started. Each child is a fresh interpreter (`subprocess`, never fork: gRPC's C core does
  not survive it) that reads its function and arguments, pickled, on stdin, and imports the
  parent's `__main__` first as `__mp_main__`, as multiprocessing's spawn does (so a
  wrapper such as bench/bound_server.py reaches the workers). Not multiprocessing itself:
  spawn starts its resource tracker, a 13 MB process for the server's life that tracks
  nothing here (issue 12). A worker reports that it serves by writing to a pipe whose write
  end it holds until it exits: the parent reads "ready", then end of file when it is gone.
- Port 0 is resolved once in the parent: a free port is picked and held by a socket with
  SO_REUSEPORT until every worker has bound it, so all workers share that one port.
- Each worker serves the whole service (`app.create_server`, `grpc.so_reuseport=1`) with its
  own audit store: group commit per process; SQLite serializes writers across processes
  (BEGIN IMMEDIATE, busy timeout), PostgreSQL takes them concurrently. Durability is the
  same as with one process: every evaluation is committed before its reply.
- One set per port (`PortLock`): a second set on the same port, even one started after
  the first one's supervisor was killed while its workers still serve, finds the port's
  lock taken and exits 1 instead of splitting the connections with it.
- Workers die with their supervisor: on Linux the kernel sends each a SIGTERM when the
  supervisor dies, however it dies (prctl PR_SET_PDEATHSIG); elsewhere, and as a second
  guard, a worker whose parent changed drains and stops within a second.
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
import ctypes
import dataclasses
import os
import pickle
import runpy
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no --workers lock
    fcntl = None  # type: ignore[assignment]

from .logs import configure, log
from .settings import Settings
from .startup import EXIT_UNAVAILABLE, StartupFailed, check_listen, listen_failed

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
START_TIMEOUT_S = 120.0
PARENT_WATCH_S = 1.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run_workers(settings: Settings) -> int:
    """Run `settings.workers` server processes on one port until SIGTERM/SIGINT; 0 on a clean
    stop, 1 when a worker died; a start-up failure is raised as StartupFailed (main logs it)
    or, found in a child, logged there and returned as its exit code."""
    if settings.metrics_port:
        check_listen(f"{settings.metrics_host}:{settings.metrics_bind_port}", "metrics")
    host, _, port_text = settings.listen.rpartition(":")
    try:
        holder = _reserve_port(host, int(port_text))
    except OSError as exc:
        raise listen_failed(exc, settings.listen, "gRPC") from None
    # the checks in the order a single process makes them (address here, then in the child
    # security, scorecards, database, migrations), each failure the start-up's one log line:
    # a public address without TLS and authentication is refused (exit 78) before the child
    # has logged "scorecards loaded". The workers start with migrate=False.
    try:
        code = _migrate_in_child(settings)
    except BaseException:
        holder.close()
        raise
    if code != 0:
        holder.close()
        return code
    port = holder.getsockname()[1]
    port_lock = PortLock(port)
    if not port_lock.acquire():
        holder.close()
        log.error(
            "another --workers set serves this port; stop it first", port=port, lock=port_lock.path
        )
        return 1

    own_dir = None
    if not os.environ.get(MULTIPROC_ENV):
        own_dir = tempfile.mkdtemp(prefix="sector-credit-metrics-")
        os.environ[MULTIPROC_ENV] = own_dir
    worker_settings = dataclasses.replace(
        settings, listen=f"{host}:{port}", migrate=False, metrics_port=0
    )

    procs: list[Child] = []
    stopping = False

    def forward(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for p in procs:
            if p.running():
                try:
                    os.kill(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    def forward_reload(
        signum: int, _frame: Any
    ) -> None:  # SIGHUP: each worker reloads its security files
        for p in procs:
            if p.running():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGHUP)

    signal.signal(signal.SIGHUP, forward_reload)
    code = 0
    try:
        for i in range(settings.workers):
            procs.append(
                Child.start(_worker_main, worker_settings, i, os.getpid(), port_lock.workers_path)
            )
        if not _wait_ready(procs, lambda: stopping):
            forward(signal.SIGTERM, None)
            for p in procs:  # a worker's own start-up failure (logged by it) is the set's code
                p.join(5.0)
            code = next((p.exitcode for p in procs if p.exitcode and p.exitcode > 1), 1)
        else:
            holder.close()
            try:
                metrics_port = _serve_metrics(settings) if settings.metrics_port else 0
            except OSError as exc:  # taken since check_listen
                raise listen_failed(
                    exc, f"{settings.metrics_host}:{settings.metrics_bind_port}", "metrics"
                ) from None
            print(f"listening on port {port}", flush=True)
            if metrics_port:
                print(f"metrics on port {metrics_port}", flush=True)
            log.info(
                "workers serving",
                workers=len(procs),
                port=port,
                pids=[p.pid for p in procs],
                metrics_port=metrics_port or None,
            )
            code = _supervise(procs, lambda: stopping, forward)
    except BaseException:
        forward(signal.SIGTERM, None)  # whatever went wrong here, the workers drain and stop
        raise
    finally:
        holder.close()
        deadline = time.monotonic() + settings.grace_seconds + 30
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode is None:
                log.error("worker did not stop in time; killing it", pid=p.pid)
                p.kill()
                p.join()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
        port_lock.close()
    log.info("stopped", workers=len(procs))
    return code


def _migrate_in_child(settings: Settings) -> int:
    """Check the security files, the scorecards and the database and apply the migrations in
    a short-lived process: the supervisor itself never loads gRPC, SQLAlchemy or Alembic
    (some 60 MB it would keep for nothing; tests/test_workers.py pins it). Its exit code: a
    start-up failure's (server/startup.py), logged there once rather than by every worker."""
    child = Child.start(_migrate_main, settings)
    child.join()
    return int(child.exitcode or 0)


def _migrate_main(settings: Settings) -> None:
    configure(settings.log_format, settings.log_level)
    from .app import load_registry
    from .db.errors import StoreUnavailable
    from .db.migrate import upgrade
    from .security import setup as security_setup
    from .startup import check_database_url

    try:
        security_setup.check(settings)
        load_registry(settings)
        check_database_url(settings.database_url)
        if settings.migrate:
            upgrade(settings.database_url)
    except StartupFailed as exc:
        log.error(exc.event, command="serve", exit_code=exc.exit_code, **exc.fields)
        sys.exit(exc.exit_code)
    except StoreUnavailable as exc:
        log.error(
            "the audit database is unavailable",
            command="serve",
            error=str(exc),
            exit_code=EXIT_UNAVAILABLE,
        )
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


def _wait_ready(procs: list[Child], stopping: Callable[[], bool]) -> bool:
    """True once every worker reported it serves; False if one died first or we were told
    to stop."""
    pending = {p.sentinel: p for p in procs}
    deadline = time.monotonic() + START_TIMEOUT_S
    while pending:
        if stopping() or time.monotonic() > deadline:
            return False
        readable, _, _ = select.select(list(pending), [], [], 0.2)
        for fd in readable:
            if not os.read(fd, 64):  # end of file before "ready": the worker is gone
                pending[fd].join(5.0)
                log.error("a worker exited during start-up", exit_codes=[p.exitcode for p in procs])
                return False
            del pending[fd]
    return True


def _supervise(procs: list[Child], stopping: Callable[[], bool], stop_all: Any) -> int:
    """Wait for the workers; when one exits unasked, stop the rest and report failure."""
    code = 0
    sentinels = {p.sentinel: p for p in procs}
    while sentinels:
        readable, _, _ = select.select(list(sentinels), [], [], 1.0)
        for s in readable:
            if os.read(s, 64):  # not the end of the pipe: the worker lives
                continue
            p = sentinels.pop(s)
            p.join()
            if not stopping():
                log.error(
                    "worker exited unexpectedly; stopping the others",
                    pid=p.pid,
                    exit_code=p.exitcode,
                )
                code = 1
                stop_all(signal.SIGTERM, None)
            elif p.exitcode not in (0, -signal.SIGTERM):
                code = 1
    return code


def _serve_metrics(settings: Settings) -> int:
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(
        settings.metrics_bind_port, addr=settings.metrics_host, registry=registry
    )
    return int(server.server_port)


# --------------------------------------------------------------------------------------------
# In each worker process


def _worker_main(settings: Settings, index: int, parent: int, lock_path: str) -> None:
    _die_with_parent(parent)
    configure(settings.log_format, settings.log_level)
    if not PortLock.join(lock_path):
        log.error("cannot share the port lock of this worker set", lock=lock_path)
        sys.exit(1)
    import asyncio

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        pass
    else:
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        asyncio.run(_serve_worker(settings, index, parent))
    except StartupFailed as exc:  # e.g. its port taken since the supervisor checked
        log.error(exc.event, worker=index, exit_code=exc.exit_code, **exc.fields)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:  # a second signal while draining
        sys.exit(130)


async def _serve_worker(settings: Settings, index: int, parent: int) -> None:
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
    Child.ready()
    watch = asyncio.ensure_future(_watch_parent(parent, stop))
    await stop.wait()
    watch.cancel()
    log.info("draining", worker=index, grace_seconds=settings.grace_seconds)
    await running.stop()
    log.info("worker stopped", worker=index)


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for a SIGTERM when the supervisor dies (Linux); a worker whose
    supervisor died before this line exits at once."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning(
                "prctl(PR_SET_PDEATHSIG) failed; watching the parent instead",
                errno=ctypes.get_errno(),
            )
    if os.getppid() != parent:
        sys.exit(1)


async def _watch_parent(parent: int, stop: Any) -> None:
    """Without a parent-death signal (or should it be lost): stop once the parent changed."""
    import asyncio

    while os.getppid() == parent:
        await asyncio.sleep(PARENT_WATCH_S)
    log.warning("the supervisor is gone; draining", supervisor=parent)
    stop.set()


class PortLock:
    """One worker set per port, through two advisory locks on files named for the port in
    the temporary folder: the supervisor holds `path` exclusively for its life, each worker
    holds `workers_path` shared for its own. A new supervisor needs both free: the first
    is taken while an old supervisor lives, the second while any of its workers does (its
    supervisor killed). The kernel releases a lock when the process holding it dies,
    however it dies."""

    def __init__(self, port: int) -> None:
        self.path = os.path.join(tempfile.gettempdir(), f"sector-credit-port-{port}.lock")
        self.workers_path = self.path + ".workers"
        self._fd = -1

    def acquire(self) -> bool:
        """For the supervisor: True when no other set holds the port, which is now ours."""
        if fcntl is None:
            return True
        fd = _flock(self.path, fcntl.LOCK_EX)
        if fd is None:
            return False
        workers = _flock(self.workers_path, fcntl.LOCK_EX)
        if workers is None:  # a supervisor died, its workers serve on
            os.close(fd)
            return False
        os.close(workers)  # free for our workers to share
        self._fd = fd
        return True

    @staticmethod
    def join(workers_path: str) -> bool:
        """For a worker: hold the set's shared lock until the process ends."""
        return fcntl is None or _flock(workers_path, fcntl.LOCK_SH) is not None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _flock(path: str, how: int) -> int | None:
    """An open descriptor of `path` holding the lock `how`, or None when it is taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd  # locked while open: a worker keeps it open for its life


# --------------------------------------------------------------------------------------------
# The child processes


READY_FD_ENV = "SECTOR_CREDIT_READY_FD"


class Child:
    """A child process running `target(*args)` in a fresh interpreter (the module docstring).
    `sentinel`: the read end of its pipe, readable with "ready" once it serves and at end of
    file once it has exited."""

    def __init__(self, popen: subprocess.Popen[bytes], sentinel: int) -> None:
        self._popen = popen
        self.pid = popen.pid
        self.sentinel = sentinel

    @classmethod
    def start(cls, target: Callable[..., None], *args: Any) -> Child:
        # two pickles: the child imports the parent's __main__ before it unpickles the target
        payload = pickle.dumps(_main_module()) + pickle.dumps((target, args))
        read_end, write_end = os.pipe()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-c", "from sector_credit.server.workers import _child; _child()"],
                stdin=subprocess.PIPE,
                pass_fds=(write_end,),
                env={**os.environ, READY_FD_ENV: str(write_end)},
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)  # the child's now: end of file when it is gone
        assert popen.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died at once: its exit code says
            popen.stdin.write(payload)
            popen.stdin.close()
        return cls(popen, read_end)

    @property
    def exitcode(self) -> int | None:
        """None while it runs; its exit status, or minus the signal that ended it."""
        return self._popen.poll()

    def running(self) -> bool:
        return self.exitcode is None

    def join(self, timeout: float | None = None) -> None:
        """Wait for it to exit (at most `timeout` seconds); the pipe is closed once it has."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout)
        if self._popen.returncode is not None and self.sentinel >= 0:
            os.close(self.sentinel)
            self.sentinel = -1

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self._popen.kill()

    @staticmethod
    def ready() -> None:
        """In the child: tell the parent it serves."""
        os.write(int(os.environ[READY_FD_ENV]), b"ready")


def _main_module() -> tuple[str, str] | None:
    """How a child imports the parent's `__main__`: ("name", module) when it was run with
    `-m`, ("path", file) when run as a file (the console script, a wrapper), else None."""
    main = sys.modules["__main__"]
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name != "__main__":
        return ("name", spec.name)
    path = getattr(main, "__file__", None)
    return ("path", path) if path and os.path.exists(path) else None


def _child() -> None:
    """The child's entry point (`Child.start`): the parent's `__main__` (its module-level code
    only, as `__mp_main__`: the `if __name__ == "__main__"` part does not run), then the
    target."""
    main = pickle.load(sys.stdin.buffer)
    if main is not None:
        how, where = main
        if how == "name":
            runpy.run_module(where, run_name="__mp_main__", alter_sys=True)
        else:
            runpy.run_path(where, run_name="__mp_main__")
    target, args = pickle.load(sys.stdin.buffer)
    sys.stdin.close()
    target(*args)
