"""The credit report: one evaluation as a self-contained HTML page a person can read and print.

`credit report evaluations/…` (cli.py) fetches the evaluation, its scorecard version and its
what-if (ExploreEvaluation) and renders `report_templates/report.html.j2`: bilingual, the grade
in its regulation's colour, an inline SVG chart of the points lost per rule, the lines,
overrides with their end dates, the sources, version and digest, who asked and when, and what
would change the grade. No external file, script or font: the page is one file. A person's id
and name are masked (the first 4 and last 2 characters of the id); an organization's unified
social credit code is public and shown whole.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from sector_credit.scorecards.subject_ids import mask_id
from sector_credit.scorecards.text import decimal_text

from .render import value_text
from .resources import Evaluation, Exploration, Provenance, Scorecard, Title

# the colours a regulation names (environment.enterprise: 绿 蓝 黄 红), as print-safe hex
COLOURS = {"green": "#2e7d32", "blue": "#1565c0", "yellow": "#b58900", "red": "#c62828"}
NEUTRAL = "#37474f"
TAG_TITLES = {"verified": Title("法规原文", "verified in the regulation"),
              "secondary": Title("转引", "read on a page quoting it"),
              "unverified": Title("未核实", "recalled, not confirmed"),
              "design": Title("本项目设定", "chosen by this project")}
BAR_WIDTH = 360  # pixels of the longest bar


LABEL_CHARS = 16  # of a rule's Chinese title beside its bar (the whole title is in the lines)


@dataclass(frozen=True)
class Bar:
    rule_id: str
    title: Title
    lost: Decimal
    width: int
    y: int

    @property
    def label(self) -> str:
        zh = self.title.zh
        return zh if len(zh) <= LABEL_CHARS else zh[:LABEL_CHARS - 1] + "…"


def _environment() -> jinja2.Environment:
    folder = resources.files("sector_credit.clients.report_templates")

    def load(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8")

    env = jinja2.Environment(loader=jinja2.FunctionLoader(load), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["dec"] = lambda d: decimal_text(d) if d is not None else ""
    env.filters["signed"] = lambda d: ("+" if d is not None and d > 0 else "") + (decimal_text(d) if d is not None else "")
    env.filters["value"] = value_text
    return env


def masked_subject(ev: Evaluation) -> tuple[str, str]:
    """The subject's id and display name as the report shows them."""
    if ev.subject.kind != "person":
        return ev.subject.id, ev.subject.display_name
    name = ev.subject.display_name
    return mask_id(ev.subject.id), (name[:1] + "*" * (len(name) - 1)) if name else ""


def points_lost(ev: Evaluation) -> list[Bar]:
    """The rules that lost points against their best, most first (ties in definition order)."""
    lost = [(line.best_points - line.points, i, line) for i, line in enumerate(ev.lines)
            if line.best_points is not None and line.best_points > line.points]
    lost.sort(key=lambda t: (-t[0], t[1]))
    if not lost:
        return []
    top = lost[0][0]
    return [Bar(line.rule_id, line.title, amount, max(2, int(BAR_WIDTH * amount / top)), 28 * k)
            for k, (amount, _, line) in enumerate(lost)]


def render_report(ev: Evaluation, card: Scorecard | None, explored: Exploration | None) -> str:
    """The report page of one evaluation (`card`: its scorecard version, for the titles and
    grade bands; `explored`: its what-if; either may be None when the server has neither)."""
    sources: dict[tuple[str, str], int] = {}
    source_list: list[tuple[int, Provenance]] = []

    def cite(p: Provenance) -> int:
        key = (p.source, p.article)
        if key not in sources:
            sources[key] = len(sources) + 1
            source_list.append((sources[key], p))
        return sources[key]

    subject_id, subject_name = masked_subject(ev)
    bars = points_lost(ev)
    colour = COLOURS.get(ev.grade.colour, NEUTRAL)
    context: dict[str, Any] = {
        "ev": ev, "card": card, "explored": explored, "subject_id": subject_id,
        "subject_name": subject_name, "grade_colour": colour, "bars": bars, "bar_width": BAR_WIDTH,
        "chart_height": 28 * len(bars), "cite": cite, "sources": source_list, "tags": TAG_TITLES,
        "colours": COLOURS, "neutral": NEUTRAL,
    }
    return _environment().get_template("report.html.j2").render(context)


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PDF_TIMEOUT_S = 120


class PdfUnavailable(Exception):
    """No headless browser to print the page with, or it failed."""


def write_pdf(html: str, pdf: Path) -> None:
    """Print the page to `pdf` with a headless Chromium from PATH (Debian: `apt-get install
    chromium`): the same page, so the PDF says exactly what the HTML says."""
    browser = next((found for name in BROWSERS if (found := shutil.which(name))), None)
    if browser is None:
        raise PdfUnavailable("no Chromium on PATH (" + ", ".join(BROWSERS) + "): the PDF is printed by one")
    with tempfile.TemporaryDirectory(prefix="credit-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        try:
            done = subprocess.run(
                [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                 f"--user-data-dir={tmp}/profile", f"--print-to-pdf={pdf.resolve()}", page.as_uri()],
                capture_output=True, text=True, timeout=PDF_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise PdfUnavailable(f"{browser} did not print the page within {PDF_TIMEOUT_S} s") from None
    if done.returncode != 0 or not pdf.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PdfUnavailable(f"{browser} could not print the page (exit {done.returncode}): {last}")
