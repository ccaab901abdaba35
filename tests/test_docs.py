"""docs/plugins.md is the plugin contract as written: every hook in plugins/hookspecs.py is in its
reference with its exact signature, nothing else is, every hook has a docstring, and the
example plugin in the doc is the code tests/test_plugins.py runs."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sector_credit.plugins import hookspecs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "plugins.md"
FIXTURE = Path(__file__).resolve().parent / "plugin_fixture"
SPEC_MARK = hookspecs.hookspec.project_name + "_spec"  # the attribute pluggy sets on a hookspec
REFERENCE_HEADING = "## Hook reference"


def hookspec_functions() -> dict[str, Callable[..., Any]]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, SPEC_MARK)
    }


def _annotation(a: object) -> str:
    # hookspecs.py uses `from __future__ import annotations`: annotations are their source text
    return a if isinstance(a, str) else inspect.formatannotation(a)


def signature_line(name: str, fn: Callable[..., Any]) -> str:
    """`def name(arg: Type, …) -> Return:` as the hookspec declares it."""
    sig = inspect.signature(fn)
    params = []
    for p in sig.parameters.values():
        text = p.name
        if p.annotation is not p.empty:
            text += f": {_annotation(p.annotation)}"
        if p.default is not p.empty:
            text += f" = {p.default!r}"
        params.append(text)
    ret = "" if sig.return_annotation is sig.empty else f" -> {_annotation(sig.return_annotation)}"
    return f"def {name}({', '.join(params)}){ret}:"


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def reference_sections() -> dict[str, str]:
    """`### name` sections of the hook reference: name -> section text."""
    text = doc_text()
    assert REFERENCE_HEADING in text, f"{DOC} has no '{REFERENCE_HEADING}' section"
    reference = text.split(REFERENCE_HEADING, 1)[1]
    reference = re.split(r"^## ", reference, flags=re.MULTILINE)[0]  # up to the next section
    parts = re.split(r"^### `?([a-z_][a-z0-9_]*)`?\s*$", reference, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def code_blocks() -> list[str]:
    return [
        m.group(1)
        for m in re.finditer(r"^```[a-z]*\n(.*?)^```$", doc_text(), flags=re.MULTILINE | re.DOTALL)
    ]


def test_there_are_hookspecs() -> None:
    assert set(hookspec_functions()) >= {"register_scorecards", "register_subject_id_schemes"}


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hook_is_documented_with_its_exact_signature(name: str) -> None:
    sections = reference_sections()
    assert name in sections, f"hook {name} is missing from the reference of {DOC.name}"
    expected = signature_line(name, hookspec_functions()[name])
    lines = [ln.strip() for ln in sections[name].splitlines()]
    assert expected in lines, (
        f"{DOC.name} documents {name} with another signature; hookspecs.py says:\n    {expected}"
    )


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hook_options_are_documented(name: str) -> None:
    options = getattr(hookspec_functions()[name], SPEC_MARK)
    section = reference_sections()[name]
    for option in ("firstresult", "historic"):
        if options.get(option):
            assert option in section, f"{name} is {option}: say so in {DOC.name}"


@pytest.mark.parametrize("name", sorted(hookspec_functions()))
def test_hook_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(hookspec_functions()[name])
    assert doc and doc.strip(), f"hookspec {name} has no docstring: its docstring is its contract"


def test_reference_documents_no_other_hook() -> None:
    extra = set(reference_sections()) - set(hookspec_functions())
    assert not extra, f"{DOC.name} documents hooks that hookspecs.py does not have: {sorted(extra)}"


@pytest.mark.parametrize("name", ["acme_credit.py", "acme.parking_operator.toml"])
def test_doc_example_is_the_tested_plugin(name: str) -> None:
    source = (FIXTURE / name).read_text(encoding="utf-8")
    assert source in code_blocks(), (
        f"the example in {DOC.name} differs from tests/plugin_fixture/{name}, the code the "
        "plugin tests run; change both together"
    )


def test_doc_rule_kind_example_is_the_tested_plugin() -> None:
    source = (FIXTURE.parent / "kind_plugin" / "capped_kind.py").read_text(encoding="utf-8")
    assert source in code_blocks(), (
        f"the rule-kind example in {DOC.name} differs from tests/kind_plugin/capped_kind.py, "
        "the code tests/test_rule_kinds.py runs; change both together"
    )


def test_doc_entry_point_group_is_the_projects() -> None:
    assert f"[project.entry-points.{hookspecs.PROJECT}]" in doc_text()


# --------------------------------------------------------------------------------------------
# Every page's examples: one request id, one request. A reader who runs two examples against
# one server must never get REQUEST_ID_REUSED (or, worse, another example's evaluation back).

DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CLI_COMMAND = re.compile(r"^\$ (credit .*?(?:\\\n.*?)*)$", re.MULTILINE)
BUF_CURL_BODY = re.compile(r"-d '(\{.*?\})'", re.DOTALL)
PYTHON_CALL = re.compile(r"\w+\((?:[^()]|\([^()]*\))*request_id=\"[^\"]+\"(?:[^()]|\([^()]*\))*\)")


def requests_with_ids(text: str) -> list[tuple[str, str]]:
    """(request id, the request written out) for every request in a page's examples that
    carries an id: a `credit … --request-id` command, a `buf curl -d` body with `requestId`,
    a Python call with `request_id=`. Replies that echo an id are not requests."""
    found = []
    for m in CLI_COMMAND.finditer(text):
        command = " ".join(m.group(1).replace("\\\n", " ").split())
        rid = re.search(r"--request-id[ =](\S+)", command)
        if rid:
            found.append((rid.group(1), command))
    for m in BUF_CURL_BODY.finditer(text):
        body = json.loads(m.group(1))
        if "requestId" in body:
            found.append((body["requestId"], json.dumps(body, sort_keys=True)))
    for m in PYTHON_CALL.finditer(text):
        rid = re.search(r'request_id="([^"]+)"', m.group(0))
        assert rid is not None
        found.append((rid.group(1), " ".join(m.group(0).split())))
    return found


def test_the_request_id_finder_finds_each_kind() -> None:
    text = """$ credit evaluate a --request-id one \\
    --set x=1
-d '{"scorecard": "a", "requestId": "two"}'
client.evaluate("a", "b", request_id="three")
"""
    assert [rid for rid, _ in requests_with_ids(text)] == ["one", "two", "three"]


@pytest.mark.parametrize("page", DOC_PAGES, ids=[p.name for p in DOC_PAGES])
def test_no_example_reuses_a_request_id_for_another_request(page: Path) -> None:
    requests: dict[str, set[str]] = {}
    where: dict[str, set[str]] = {}
    for other in DOC_PAGES:  # an id is unique across the pages, not only within this one
        for rid, request in requests_with_ids(other.read_text(encoding="utf-8")):
            requests.setdefault(rid, set()).add(request)
            where.setdefault(rid, set()).add(other.name)
    mine = {rid for rid, _ in requests_with_ids(page.read_text(encoding="utf-8"))}
    reused = {
        rid: (sorted(where[rid]), sorted(requests[rid])) for rid in mine if len(requests[rid]) > 1
    }
    assert not reused, f"{page.name}: one request id for different requests: {reused}"


# --------------------------------------------------------------------------------------------
# The pages point only at what the repository has: the engine's semantics are docs/semantics.md,
# not a contract file kept elsewhere.

MARKDOWN_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", DOC_PAGES, ids=[p.name for p in DOC_PAGES])
def test_links_resolve_and_no_page_cites_a_file_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "SCORECARDS.md" not in text, (
        f"{page.name} cites SCORECARDS.md: point to docs/semantics.md"
    )
    broken = [
        target
        for target in MARKDOWN_LINK.findall(text)
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert not broken, f"{page.name} links to files that do not exist: {broken}"


def test_semantics_page_covers_the_engine() -> None:
    text = (ROOT / "docs" / "semantics.md").read_text(encoding="utf-8")
    for topic in (
        "## Indicators",
        "## Points",
        "**Exact arithmetic.**",
        "half away from zero",
        "**Groups.**",
        "## Grades",
        "## Overrides",
        "until",
        "## The explanation",
        "points to the next grade",
        "## Versions",
        "`places`",
        "score before the cut",
    ):
        assert topic in text, f"docs/semantics.md says nothing of {topic!r}"
    for kind in ("per_unit", "bands", "flag", "choice", "direct", "weighted"):
        assert f"| `{kind}` |" in text, f"docs/semantics.md lacks the rule kind {kind}"
