"""A plugin adds a `credit` command through the `register_commands` hook: it is listed, takes
the global options (it reaches the server they name), and ends in the same exit codes as the
built-in commands."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_plugin import scorecard_ids
from sector_credit.clients.cli import main
from sector_credit.plugins import get_plugin_manager
from server_process import running_server
from test_docs import code_blocks

PERSON_CARDS = [
    "civil_servant.recruitment",
    "transport.driving_instructor",
    "transport.road_driver",
    "transport.taxi_driver",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("cli-plugin-server")) as address:
        yield address


def credit(*args: str, plugin: bool = True) -> tuple[int, str, str]:
    pm = get_plugin_manager(extra_plugins=[(scorecard_ids, "scorecard-ids")] if plugin else ())
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(args), stdout=stdout, stderr=stderr, plugins=pm)
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize(
    ("args", "plugin", "code", "stdout", "stderr"),
    [
        (["ids", "--subject-kind", "person"], True, 0, "\n".join(PERSON_CARDS) + "\n", ""),
        (["ids", "--subject-kind", "nobody"], True, 0, "", ""),
        (["ids", "--subject-kind"], True, 2, "", "Option '--subject-kind' requires an argument"),
        (["ids"], False, 2, "", "No such command 'ids'"),
    ],
)
def test_a_plugin_command_runs_against_the_server_the_global_options_name(
    server: str, args: list[str], plugin: bool, code: int, stdout: str, stderr: str
) -> None:
    done = credit("--server", server, *args, plugin=plugin)
    assert done[0] == code, done
    assert done[1] == stdout
    assert stderr in done[2]


def test_a_plugin_command_is_listed_in_the_help() -> None:
    code, stdout, _ = credit("--help")
    assert code == 0
    assert any(line.split()[:1] == ["ids"] for line in stdout.splitlines()), stdout
    assert "ids" not in credit("--help", plugin=False)[1].split()


def test_a_plugin_command_gets_the_exit_code_of_an_unavailable_server() -> None:
    code, _, stderr = credit("--server", "127.0.0.1:1", "ids")
    assert code == 3
    assert stderr.startswith("server unavailable: ")
    assert "is the service running at 127.0.0.1:1?" in stderr


def test_doc_command_example_is_the_tested_plugin() -> None:
    source = Path(scorecard_ids.__file__).read_text(encoding="utf-8")
    assert source in code_blocks(), (
        "the command example in docs/plugins.md differs from tests/cli_plugin/scorecard_ids.py, "
        "the code tests/test_cli_plugins.py runs; change both together"
    )
