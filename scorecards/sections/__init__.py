"""The parsers of a scorecard file's sections, one module each, all reporting through one
`checker.Checker`; `loader.py` reads the file and calls them in order (docs/scorecard-format.md).

- `checker`: the problem collector and the checks every section shares (titles, numbers,
  provenance, unknown keys, ids);
- `indicators`: `[indicators]` (types, bounds, defaults, `required_when`, `from_records`);
- `conditions`: the conditions of overrides and of `required_when`;
- `scoring`: `[groups]`, `[[rules]]` (each kind's own keys through `kinds.py`) and `[[grades]]`;
- `overrides`: `[[overrides]]` and the `[[measures]]` that follow from grades and overrides;
- `cases`: the golden `[[cases]]` a card carries (run by `golden.py`).
"""
