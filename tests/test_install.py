"""A plain, non-editable install works outside the clone (issue 13, item 3).

The wheel is built from a copy of the source tree, as `pip install .` builds it, and installed
into a fresh venv. That venv sees, besides the wheel, only the distributions the wheel's
metadata requires (and theirs), linked from this venv: a dependency the code imports but the
metadata does not name fails here, and nothing is fetched. The installed server is then
migrated and started from a folder outside the clone, and must serve the built-in scorecards
and store an evaluation. Neither the build nor the install may print a deprecation warning.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from sector_credit.v1 import credit_evaluation_service_pb2 as pb
from service_harness import ServerProcess, taxi

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_IDS = sorted(p.stem for p in (ROOT / "scorecards" / "builtin").glob("*.toml"))
# what .gitignore keeps out of the repository, and the repository itself
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "var",
    "*.db",
    "*.db-*",
    "results",
)


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    outside: Path  # a folder that is not the clone, to run from
    pip_output: str  # what building and installing printed

    @property
    def dist_info(self) -> str:
        """The wheel's metadata folder, `sector_credit-<version>.dist-info`."""
        return "-".join(self.wheel.name.split("-")[:2]) + ".dist-info"


# nothing of this session's configuration or import path reaches the installed code
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SECTOR_CREDIT_", "PYTHON"))}


def run(*cmd: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=CLEAN_ENV,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


def required_distributions(wheel: Path) -> set[str]:
    """The distributions the wheel requires on this interpreter, with theirs, by name."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(name).decode())
    todo = [(Requirement(r), "") for r in metadata.get_all("Requires-Dist") or []]
    seen: set[tuple[str, str]] = set()  # (distribution, extra)
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        requires = importlib.metadata.distribution(req.name).requires or []
        for wanted in ("", *req.extras):
            if (canonicalize_name(req.name), wanted) not in seen:
                seen.add((canonicalize_name(req.name), wanted))
                todo += [(Requirement(r), wanted) for r in requires]
    return {name for name, _ in seen}


def link_distributions(names: set[str], into: Path) -> None:
    """Symlink each distribution's top-level files and folders of this venv into `into`."""
    site = Path(sysconfig.get_paths()["purelib"])
    into.mkdir()
    for name in names:
        for file in importlib.metadata.distribution(name).files or []:
            top = file.parts[0]
            if top != ".." and not (into / top).exists() and (site / top).exists():
                (into / top).symlink_to(site / top)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    tmp = tmp_path_factory.mktemp("install")
    source, dist, venv, deps, outside = (tmp / n for n in ("src", "dist", "venv", "deps", "run"))
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, source)
    (wheel,) = dist.glob("sector_credit-*.whl")

    run(sys.executable, "-m", "venv", "--without-pip", venv)
    target = venv / "bin" / "python"
    link_distributions(required_distributions(wheel), deps)
    site = run(target, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    (Path(site.stdout.strip()) / "dependencies.pth").write_text(f"{deps}\n")
    install = run(
        sys.executable, "-m", "pip", "--python", target, "install", "--no-deps", "--no-index", wheel
    )
    outside.mkdir()
    return Installed(
        venv,
        wheel,
        outside,
        "\n".join([built.stdout, built.stderr, install.stdout, install.stderr]),
    )


def test_build_and_install_print_no_deprecation_warning(installed: Installed) -> None:
    warnings = [line for line in installed.pip_output.splitlines() if "deprecat" in line.lower()]
    assert warnings == []


def test_the_wheel_carries_every_module_and_data_file_of_the_five_folders(
    installed: Installed,
) -> None:
    folders = {
        "protos/sector_credit": "sector_credit",
        "server": "sector_credit/server",
        "plugins": "sector_credit/plugins",
        "scorecards": "sector_credit/scorecards",
        "clients": "sector_credit/clients",
    }
    kinds = {".py", ".pyi", ".toml", ".proto", ".mako", ".ini", ".typed"}
    expected = {
        f"{package}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, package in folders.items()
        for path in (ROOT / folder).rglob("*")
        if path.suffix in kinds and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(installed.wheel) as archive:
        shipped = set(archive.namelist())
    assert expected - shipped == set()


def test_the_metadata_names_the_licence_by_its_spdx_expression(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        metadata = archive.read(f"{installed.dist_info}/METADATA").decode()
        licence = archive.read(f"{installed.dist_info}/licenses/LICENSE").decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence


def test_the_fresh_venv_imports_the_installed_package_not_the_clone(installed: Installed) -> None:
    where = run(
        installed.venv / "bin" / "python",
        "-c",
        "import sector_credit.server.db as m; print(m.__file__)",
        cwd=installed.outside,
    )
    assert Path(where.stdout.strip()).is_relative_to(installed.venv)


class InstalledServer(ServerProcess):
    """The installed `sector-credit-server` console script, run from outside the clone."""

    def __init__(self, installed: Installed, *args: str):
        super().__init__(
            f"sqlite:///{installed.outside / 'audit.db'}",
            installed.outside / "server.log",
            *args,
            metrics=False,
        )
        self.script = installed.venv / "bin" / "sector-credit-server"
        self.cwd = installed.outside
        self.env = CLEAN_ENV

    def command(self) -> list[str]:
        # the harness's flags, without its `python -m sector_credit.server.main`
        return [str(self.script), *super().command()[3:]]


@pytest.fixture(scope="module")
def server(installed: Installed) -> Iterator[ServerProcess]:
    run(
        installed.venv / "bin" / "sector-credit-server",
        "migrate",
        "--database-url",
        f"sqlite:///{installed.outside / 'audit.db'}",
        cwd=installed.outside,
    )
    # --no-migrate: the server writes to the schema that `migrate` made
    s = InstalledServer(installed, "--no-migrate").start()
    try:
        yield s
    finally:
        assert s.terminate() == 0, s.log_text()[-4000:]


def test_the_installed_server_serves_the_builtin_scorecards(server: ServerProcess) -> None:
    assert server.health_status() == health_pb2.HealthCheckResponse.SERVING
    reply = server.stub.ListScorecards(pb.ListScorecardsRequest(), timeout=10)
    assert [c.scorecard_id for c in reply.scorecards] == BUILTIN_IDS


def test_the_installed_server_stores_an_evaluation(server: ServerProcess) -> None:
    evaluation = server.stub.Evaluate(taxi("installed-1"), timeout=10).evaluation
    assert (evaluation.grade.code, evaluation.score) == ("AA", "14.00")
    again = server.stub.GetEvaluation(
        pb.GetEvaluationRequest(purpose="supervision", name=evaluation.name), timeout=10
    )
    assert again.evaluation.name == evaluation.name and again.evaluation.score == "14.00"
