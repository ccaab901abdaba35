"""What a first user trips over at start-up, against the real process: each mistake is one
error log line naming it and a documented exit code (server/startup.py, README
Configuration), never a traceback, and the server never says it is listening. One process
and `--workers 2` alike (the supervisor checks the address, its migrating child the rest,
before any worker starts)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from installed_plugins import plugin_site

BUILTIN = Path(__file__).resolve().parent.parent / "scorecards" / "builtin"


@pytest.fixture(scope="module")
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


MISSPELLED_HOOK = """
from sector_credit.plugins import hookimpl

@hookimpl
def register_scorecard(register):  # the hook is register_scorecards
    pass
"""

BROKEN_IMPORT = "import sector_credit_no_such_module\n"


@dataclass
class Case:
    args: list[str]
    code: int
    event: str  # the error line's event
    detail: str = ""  # a text the line holds, besides the event
    env: dict[str, str] | None = None
    prepare: Callable[[Path], dict[str, str]] | None = None  # extra env from a set-up


def gap_card(tmp: Path) -> dict[str, str]:
    text = (BUILTIN / "environment.enterprise.toml").read_text(encoding="utf-8")
    (tmp / "cards").mkdir()
    (tmp / "cards" / "gap.toml").write_text(
        text.replace('{ range = "[75, 90)", points = 70 }', '{ range = "[76, 90)", points = 70 }'),
        encoding="utf-8",
    )
    return {}


def misspelled(tmp: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(plugin_site(tmp, "typo_credit", MISSPELLED_HOOK))}


def unimportable(tmp: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(plugin_site(tmp, "broken_credit", BROKEN_IMPORT))}


def a_file(tmp: Path) -> dict[str, str]:
    (tmp / "afile").write_text("not a folder")
    return {}


CASES = {
    "grpc port in use": Case(
        ["--listen", "127.0.0.1:{taken}"],
        3,
        "cannot listen: gRPC port in use",
        "Address already in use",
    ),
    "metrics port in use": Case(
        ["--metrics-port", "{taken}"], 3, "cannot listen: metrics port in use", "127.0.0.1:{taken}"
    ),
    "listen host not this machine's": Case(
        ["--listen", "nohost.invalid:0"], 3, "cannot listen: gRPC address", "nohost.invalid"
    ),
    "sqlite folder under a file": Case(
        ["--database-url", "sqlite:///afile/var/audit.db"],
        4,
        "cannot create the SQLite database's folder",
        "afile/var",
        prepare=a_file,
    ),
    "sqlite path is a folder": Case(
        ["--database-url", "sqlite:///{tmp}"], 4, "the SQLite database path is a folder"
    ),
    "sqlite file not writable": Case(
        ["--database-url", "sqlite:////sys/audit.db"],
        4,
        "the SQLite database is not writable",
        "/sys/audit.db",
    ),
    "sqlite in memory": Case(
        ["--database-url", "sqlite://"], 4, "unsupported database URL", "needs a SQLite file"
    ),
    "unsupported database": Case(
        ["--database-url", "mysql://root@127.0.0.1/credit"],
        4,
        "unsupported database URL",
        "not 'mysql'",
    ),
    "unparsable database url": Case(
        ["--database-url", "credit.db"], 4, "unsupported database URL", "Could not parse"
    ),
    "invalid --scorecards card": Case(
        ["--scorecards", "cards"],
        5,
        "invalid scorecard",
        "gap: the values [75, 76) are in no band",
        prepare=gap_card,
    ),
    "missing --scorecards path": Case(
        ["--scorecards", "nowhere.toml"], 5, "no such scorecard file or folder", "nowhere.toml"
    ),
    "misspelled plugin hook": Case(
        [], 5, "invalid plugin", "register_scorecard", prepare=misspelled
    ),
    "--only-plugin not installed": Case(
        ["--only-plugin", "nosuch"],
        5,
        "a plugin failed to load",
        "no installed plugin is named 'nosuch'",
    ),
    "plugin that cannot be imported": Case(
        [], 5, "a plugin failed to load", "sector_credit_no_such_module", prepare=unimportable
    ),
}


def start(
    args: list[str], tmp: Path, env_extra: dict[str, str], base: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SECTOR_CREDIT_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    if "PYTHONPATH" in env_extra and env.get("PYTHONPATH"):
        env_extra = {
            **env_extra,
            "PYTHONPATH": env_extra["PYTHONPATH"] + os.pathsep + env["PYTHONPATH"],
        }
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "sector_credit.server.main", *base, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=120,
        check=False,
    )


def error_lines(stderr: str) -> list[dict[str, object]]:
    events = []
    for line in stderr.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # gRPC's C core may write its own line about a failed bind
        if event.get("level") == "error":
            events.append(event)
    return events


DEFAULTS = ("--listen", "127.0.0.1:0", "--metrics-port", "0", "--log-format", "json")


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "workers"])
@pytest.mark.parametrize("name", list(CASES))
def test_a_start_up_mistake_is_one_log_line_and_its_exit_code(
    name: str, workers: int, tmp_path: Path, taken_port: int
) -> None:
    case = CASES[name]
    extra = case.prepare(tmp_path) if case.prepare else {}
    fill = {"taken": str(taken_port), "tmp": str(tmp_path)}
    args = [a.format(**fill) for a in case.args]
    # later flags win: the case's own --listen or --metrics-port replaces the default
    run = start(
        [*args, "--workers", str(workers)], tmp_path, {**(case.env or {}), **extra}, DEFAULTS
    )
    assert run.returncode == case.code, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    assert "listening on port" not in run.stdout
    errors = error_lines(run.stderr)
    if workers > 1:  # the supervisor may add that a worker did not start; the cause comes first
        errors = errors[:1]
    assert len(errors) == 1, run.stderr[-3000:]
    (line,) = errors
    assert line["event"] == case.event, line
    assert line["exit_code"] == case.code
    assert case.detail.format(**fill) in json.dumps(line, ensure_ascii=False), line


BAD_VALUES = [
    # (environment, flags, exit code, what stderr says)
    (
        {"SECTOR_CREDIT_METRICS_PORT": "abc"},
        [],
        2,
        "sector-credit-server: error: SECTOR_CREDIT_METRICS_PORT='abc': expected a port number"
        " 0-65535",
    ),
    (
        {"SECTOR_CREDIT_WORKERS": "two"},
        [],
        2,
        "SECTOR_CREDIT_WORKERS='two': expected a whole number ≥ 1",
    ),
    (
        {"SECTOR_CREDIT_LOG_LEVEL": "loud"},
        [],
        2,
        "SECTOR_CREDIT_LOG_LEVEL='loud': expected one of debug, info, warning, error",
    ),
    (
        {"SECTOR_CREDIT_NO_MIGRATE": "maybe"},
        [],
        2,
        "SECTOR_CREDIT_NO_MIGRATE='maybe': expected 1 or 0",
    ),
    ({"SECTOR_CREDIT_GRACE_SECONDS": "nan"}, [], 2, "SECTOR_CREDIT_GRACE_SECONDS='nan'"),
    ({}, ["--metrics-port", "x"], 2, "argument --metrics-port: invalid port value: 'x'"),
    ({}, ["--metrics-port", "-1"], 2, "argument --metrics-port: invalid port value: '-1'"),
    (
        {"SECTOR_CREDIT_METRICS_PORT": "-1"},
        [],
        2,
        "SECTOR_CREDIT_METRICS_PORT='-1': expected a port number 0-65535 or any",
    ),
    ({}, ["--listen", "50051"], 2, "--listen '50051': expected host:port"),
    ({}, ["--metrics-port", "70000"], 2, "--metrics-port must be at most 65535"),
    ({}, ["--timezone", "Mars/Olympus"], 2, "--timezone: unknown time zone 'Mars/Olympus'"),
    ({}, ["--workers", "0"], 2, "--workers must be at least 1"),
]


@pytest.mark.parametrize(("env", "flags", "code", "says"), BAD_VALUES)
def test_a_bad_flag_or_environment_value_is_one_line_and_exit_2(
    env: dict[str, str], flags: list[str], code: int, says: str, tmp_path: Path
) -> None:
    metrics_given = "--metrics-port" in flags or "SECTOR_CREDIT_METRICS_PORT" in env
    base = ("--listen", "127.0.0.1:0", *(() if metrics_given else ("--metrics-port", "0")))
    run = start(flags, tmp_path, env, base)
    assert run.returncode == code, run.stderr
    assert run.stderr.count("\n") == 1 and says in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    ("env", "code", "stderr"),
    [
        ({}, 0, ""),
        (
            {"SECTOR_CREDIT_METRICS_PORT": "abc"},
            2,
            "sector-credit-server: error: SECTOR_CREDIT_METRICS_PORT='abc': expected a port number "
            "0-65535 or any (see --help)\n",
        ),
        (
            {"SECTOR_CREDIT_METRICS_PORT": "abc", "SECTOR_CREDIT_LOG_LEVEL": "loud"},
            2,
            "sector-credit-server: error: SECTOR_CREDIT_METRICS_PORT='abc': expected a port number "
            "0-65535 or any; SECTOR_CREDIT_LOG_LEVEL='loud': expected one of debug, info, warning,"
            " error "
            "(see --help)\n",
        ),
    ],
)
def test_help_lists_the_exit_codes_and_then_names_a_bad_environment_value(
    tmp_path: Path, env: dict[str, str], code: int, stderr: str
) -> None:
    run = start(["--help"], tmp_path, env, ())
    assert (run.returncode, run.stderr) == (code, stderr)
    help_text = " ".join(run.stdout.split())
    for code in (
        "2 a bad flag or environment value",
        "3 an address cannot be listened on",
        "4 the database cannot be used as configured",
        "5 an invalid scorecard or plugin",
        "69 the database could not be reached",
    ):
        assert code in help_text, help_text


def test_a_flag_given_wins_over_a_bad_environment_value(tmp_path: Path) -> None:
    # the bad variable is not used, so it is no error: the start fails later, on the card
    run = start(
        ["--metrics-port", "0", "--scorecards", "nowhere.toml"],
        tmp_path,
        {"SECTOR_CREDIT_METRICS_PORT": "abc"},
        ("--log-format", "json"),
    )
    assert run.returncode == 5, run.stderr


def test_the_readme_documents_every_exit_code() -> None:
    from sector_credit.server import startup

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    configuration = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name in (
        "EXIT_USAGE",
        "EXIT_LISTEN",
        "EXIT_DATABASE",
        "EXIT_SCORECARDS",
        "EXIT_UNAVAILABLE",
    ):
        code = getattr(startup, name)
        assert f"| `{code}` |" in configuration, f"README Configuration lacks exit code {code}"
