"""`python -m sector_credit.scorecards.golden` (the `scorecard-test` command), run as a user
runs it: exit 0 when every card is valid and every golden case passes, 1 naming each failing
case with expected and actual values, 2 naming each problem of an invalid card."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sector_credit.scorecards.loader import load_file

ROOT = Path(__file__).resolve().parent.parent
BUILTIN = ROOT / "scorecards" / "builtin"
TAXI = BUILTIN / "transport.taxi_driver.toml"
ENVIRONMENT = BUILTIN / "environment.enterprise.toml"


def scorecard_test(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sector_credit.scorecards.golden", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def copy_with(source: Path, target: Path, old: str, new: str) -> Path:
    if not source.exists():
        pytest.skip(f"{source.name} is not written yet")
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{source.name}: the edit {old!r} must match exactly once"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return target


def test_builtins_pass(tmp_path: Path) -> None:
    run = scorecard_test(cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^\d+ passed, 0 failed$", run.stdout, flags=re.MULTILINE), run.stdout
    for card in sorted(BUILTIN.glob("*.toml")):
        assert f"ok    {card.stem} " in run.stdout, f"{card.stem} not tested:\n{run.stdout}"


def test_a_changed_number_fails_the_case_that_pins_it(tmp_path: Path) -> None:
    # the 3-point violation costs 4 instead of 3: §3 example 1 (20 − 3 − 5 + 2) becomes 13
    changed = copy_with(
        TAXI,
        tmp_path / "transport.taxi_driver.toml",
        'indicator = "violations_3pt"\npoints = -3\n',
        'indicator = "violations_3pt"\npoints = -4\n',
    )
    card = load_file(TAXI)
    example_1 = [
        c
        for c in card.cases
        if c.indicators == {"violations_3pt": 1, "violations_5pt": 1, "bonus_points": 2}
    ]
    assert example_1, "transport.taxi_driver.toml has lost SCORECARDS.md §3 example 1"
    run = scorecard_test(changed, cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    out = run.stdout
    assert f"FAIL  transport.taxi_driver {card.version}: {example_1[0].name}\n" in out
    case_report = out.split(example_1[0].name, 1)[1]
    assert re.match(r"\n\s+score: expected 14\n\s+actual\s+13(\.00)?\n", case_report), out
    assert re.search(r"^\d+ passed, [1-9]\d* failed$", out, flags=re.MULTILINE)


def test_a_band_gap_is_an_invalid_card(tmp_path: Path) -> None:
    broken = copy_with(
        ENVIRONMENT,
        tmp_path / "environment.enterprise.toml",
        '{ range = "[75, 90)", points = 70 }',
        '{ range = "[76, 90)", points = 70 }',
    )
    run = scorecard_test(broken, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    (problem,) = [ln for ln in run.stdout.splitlines() if ln.startswith("INVALID ")]
    assert problem.startswith(f"INVALID {broken}: "), problem
    assert re.search(
        r": rules\[\d+\]\.bands: gap: the values \[75, 76\) are in no band", problem
    ), problem


def test_a_missing_path_is_reported(tmp_path: Path) -> None:
    run = scorecard_test(tmp_path / "nowhere.toml", cwd=tmp_path)
    assert run.returncode == 2
    assert f"{tmp_path / 'nowhere.toml'}: no such file or folder" in run.stdout


def make_golden(paths: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`make golden PATHS=…` with this interpreter's scripts (`-o install`: the environment
    running the tests is installed already; no make target reinstalls it)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            "-o",
            "install",
            "golden",
            f"PATHS={paths}",
            f"BIN={Path(sys.executable).parent}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_make_golden_checks_only_the_paths_given(tmp_path: Path) -> None:
    cards = tmp_path / "cards"
    cards.mkdir()
    changed = copy_with(
        TAXI,
        cards / "transport.taxi_driver.toml",
        'indicator = "violations_3pt"\npoints = -3\n',
        'indicator = "violations_3pt"\npoints = -4\n',
    )
    run = make_golden(f"{ENVIRONMENT} {cards}", tmp_path)
    assert run.returncode != 0, run.stdout + run.stderr  # make reports the failed recipe
    tested = re.findall(r"^(?:ok|FAIL)\s+(\S+) ", run.stdout, flags=re.MULTILINE)
    assert set(tested) == {"environment.enterprise", "transport.taxi_driver"}, run.stdout
    assert re.search(r"^ok\s+environment\.enterprise ", run.stdout, flags=re.MULTILINE)
    assert re.search(r"^FAIL\s+transport\.taxi_driver ", run.stdout, flags=re.MULTILINE)
    assert changed.exists()

    passing = make_golden(str(ENVIRONMENT), tmp_path)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert re.findall(r"^ok\s+(\S+) ", passing.stdout, flags=re.MULTILINE) == [
        "environment.enterprise"
    ]


def test_a_misspelled_plugin_hook_is_reported_not_a_traceback(tmp_path: Path) -> None:
    import os

    from installed_plugins import plugin_site

    site = plugin_site(
        tmp_path,
        "typo_cards",
        "from sector_credit.plugins import hookimpl\n\n"
        "@hookimpl\ndef register_scorecard(register):\n    pass\n",
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }
    run = subprocess.run(
        [sys.executable, "-m", "sector_credit.scorecards.golden"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert re.search(
        r"^INVALID plugins: PluginValidationError: unknown hook 'register_scorecard'",
        run.stdout,
        flags=re.MULTILINE,
    ), run.stdout
