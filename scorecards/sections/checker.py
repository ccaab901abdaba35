"""The problem collector of one scorecard file and the checks every section shares.

`Checker` gathers each problem as a `DefinitionProblem` (`file: path: reason`) instead of
raising, so the loader reports every problem of a file together; its helpers read a table, a
bilingual title, an exact number and a provenance, and refuse unknown keys. It is also what a
rule kind's `parse` is given (`kinds.Checker`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, TypeGuard

from ..model import DefinitionProblem, IndicatorType, Provenance, ProvenanceTag, Title

ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
HUNDRED = Decimal(100)
NUMERIC_TYPES = (IndicatorType.COUNT, IndicatorType.NUMBER, IndicatorType.PERCENT)


def is_number(v: object) -> TypeGuard[int | Decimal]:
    return isinstance(v, (int, Decimal)) and not isinstance(v, bool)


class Checker:
    """Collects problems for one file while building the model."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[DefinitionProblem] = []

    def bad(self, path: str, reason: str) -> None:
        self.problems.append(DefinitionProblem(self.file, path, reason))

    def unknown_keys(self, table: dict[str, Any], allowed: set[str], path: str) -> None:
        for k in table:
            if k not in allowed:
                self.bad(
                    f"{path}.{k}" if path else k,
                    f"unknown key (allowed: {', '.join(sorted(allowed))})",
                )

    def item_id(
        self,
        spec: dict[str, Any],
        path: str,
        index: int,
        what: str,
        seen: set[str],
        duplicate: str,
        others: set[str] | frozenset[str] = frozenset(),
    ) -> str:
        """The `id` of the `index`-th table of an array: lowercase letters, digits and _ (`what`
        names it, as "a rule"), once among `seen` and `others` (`duplicate` is the reason, with
        `{id}` for the id); added to `seen`. A bad id reads as `#index`."""
        v = spec.get("id")
        if not isinstance(v, str) or not NAME_RE.match(v):
            self.bad(f"{path}.id", f"{what} id is lowercase letters, digits and _")
            v = f"#{index}"
        elif v in seen or v in others:
            self.bad(f"{path}.id", duplicate.format(id=repr(v)))
        seen.add(v)
        return v

    def table(self, v: object, path: str) -> dict[str, Any]:
        if isinstance(v, dict):
            return v
        self.bad(path, "must be a table")
        return {}

    def title(self, v: object, path: str) -> Title:
        if (
            isinstance(v, dict)
            and isinstance(v.get("zh"), str)
            and isinstance(v.get("en"), str)
            and v["zh"].strip()
            and v["en"].strip()
        ):
            extra = set(v) - {"zh", "en"}
            if extra:
                self.bad(path, f"unknown keys {sorted(extra)} (a title has zh and en)")
            return Title(v["zh"], v["en"])
        self.bad(path, 'must be { zh = "…", en = "…" } with both texts non-empty')
        return Title("", "")

    def number(self, v: object, path: str) -> Decimal | None:
        if is_number(v):
            d = Decimal(v)
            if d.is_finite():
                return d
        self.bad(path, f"must be a finite number, not {v!r}")
        return None

    def provenance(self, v: object, path: str) -> Provenance:
        if not isinstance(v, dict):
            self.bad(
                path,
                "missing: every rule, grade, override and measure needs { tag, source, article }",
            )
            return Provenance(ProvenanceTag.DESIGN, "")
        extra = set(v) - {"tag", "source", "article"}
        if extra:
            self.bad(path, f"unknown keys {sorted(extra)}")
        try:
            tag = ProvenanceTag(v.get("tag"))
        except ValueError:
            self.bad(
                f"{path}.tag",
                f"must be one of {[t.value for t in ProvenanceTag]}, not {v.get('tag')!r}",
            )
            tag = ProvenanceTag.DESIGN
        source = v.get("source")
        if not isinstance(source, str) or not source.strip():
            self.bad(
                f"{path}.source", "must name the source (a regulation title, or the design note)"
            )
            source = ""
        article = v.get("article", "")
        if not isinstance(article, str):
            self.bad(f"{path}.article", "must be a string")
            article = ""
        return Provenance(tag, source, article)
