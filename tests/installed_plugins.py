"""Tests are hermetic: a scorecard plugin installed in the same environment (docs/plugins.md)
must not change what they count or list. Servers the tests start take `ONLY_BUILTIN`
(`--only-plugin builtin`), and plugin managers built in a test take `only=BUILTIN_ONLY`,
unless the test says otherwise; `plugin_site` installs a plugin for a test that does."""

from __future__ import annotations

from pathlib import Path

BUILTIN_ONLY = ("builtin",)
ONLY_BUILTIN = ("--only-plugin", "builtin")


def plugin_site(root: Path, module: str, source: str) -> Path:
    """A folder for sys.path / PYTHONPATH holding `module` as an installed plugin: a
    distribution's metadata with the `sector_credit` entry point, as `pip install` leaves it."""
    site = root / "site"
    dist = site / f"{module}_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[sector_credit]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(source, encoding="utf-8")
    return site
