"""Stored documents: rowjson's orjson encoder against the hand-written one it replaced.

    .venv/bin/python bench/documents_bench.py [--rev e4318b3]
    .venv/bin/python bench/documents_bench.py --rows [--rounds 7]

The hand-written encoder (server/db/rowjson.py before issue 14) is loaded from git history
(`git show REV:server/db/rowjson.py`, so this needs a checkout with history) and both encode
the same 300 real taxi-driver evaluations of the built-in card, as the service stores them:
the canonical input document (which gives the request digest), the result in format 2 (what
the service writes for its scorecards) and in format 1 (results their parts do not describe,
rare). Printed: µs per document, median of 15 passes, and the ratio orjson / hand-written;
then both are checked to give the same bytes.

`--rows`: the whole stored row (`rows.evaluation_row`) of the same 300 evaluations as the
servicer hands them in (`made_by`, the card whose engine made the result: the format-2 fit
check skipped) against the same records without it (every result checked, `_fits`), and
each phase alone: the input document and its parts (`codec.input_to_dict`, the canonical
text, its SHA-256), the format-2 result checked and unchecked, `_fits`. The variants take
turns within each round (3 passes over the 300 each), in an order rotated per round; timed
by the process's CPU time (`time.process_time`: on a shared, loaded machine the time spent
waiting for a core is not counted). Printed: CPU µs per evaluation, the median of `--rounds`
rounds, and the spread (lowest–highest); then both are checked to give the same documents.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_bench as sb

ROOT = Path(__file__).resolve().parent.parent


def _old_module(rev: str, folder: str) -> Any:
    text = subprocess.run(
        ["git", "show", f"{rev}:server/db/rowjson.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(folder) / "rowjson_before.py"
    path.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("sector_credit.server.db.rowjson_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _per_document(encode: Callable[[int], object], n: int) -> float:
    passes = []
    for _ in range(15):
        started = time.perf_counter()
        for i in range(n):
            encode(i)
        passes.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(passes)


def _rows(taxi: Any, inputs: list[Any], results: list[Any], rounds: int) -> int:
    import hashlib

    from sector_credit.scorecards import codec
    from sector_credit.server.db import rowjson
    from sector_credit.server.db.rows import EvaluationRecord, evaluation_row

    parts = {taxi.card.digest: rowjson.result_parts(taxi.card)}
    p = parts[taxi.card.digest]
    checked = [EvaluationRecord(input=i, result=r) for i, r in zip(inputs, results)]
    made = [EvaluationRecord(input=i, result=r, made_by=taxi.card) for i, r in zip(inputs, results)]
    dicts = [codec.input_to_dict(i) for i in inputs]
    texts = [rowjson.dumps(d, sort_keys=True).encode() for d in dicts]
    phases: list[tuple[str, Callable[[int], object]]] = [
        ("row, every result checked", lambda i: evaluation_row(checked[i], parts)),
        ("row, made_by (unchecked)", lambda i: evaluation_row(made[i], parts)),
        ("  input document", lambda i: rowjson.input_json(inputs[i])),
        ("    input_to_dict", lambda i: codec.input_to_dict(inputs[i])),
        ("    canonical text", lambda i: rowjson.dumps(dicts[i], sort_keys=True)),
        ("    sha256", lambda i: hashlib.sha256(texts[i]).hexdigest()),
        ("  result, checked", lambda i: rowjson.result_json_compact(results[i], p)),
        ("  result, unchecked", lambda i: rowjson.result_json_compact(results[i], p, taxi.card)),
        ("    _fits", lambda i: rowjson._fits(results[i], p)),
    ]
    n = len(results)
    found: dict[str, list[float]] = {name: [] for name, _ in phases}
    for k in range(rounds):
        for name, run in phases[k % len(phases) :] + phases[: k % len(phases)]:
            started = time.process_time()
            for _ in range(3):
                for i in range(n):
                    run(i)
            found[name].append((time.process_time() - started) / (3 * n) * 1e6)
    for name, _ in phases:
        f = found[name]
        print(f"{name:28} {statistics.median(f):7.1f} µs  ({min(f):.1f}–{max(f):.1f})")
    same = True
    for a, b in zip(checked, made):
        row_a, row_b = evaluation_row(a, parts)[0], evaluation_row(b, parts)[0]
        same = same and (row_a["input"], row_a["result"]) == (row_b["input"], row_b["result"])
    print("the same documents:", "yes" if same else "NO")
    return 0 if same else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="e4318b3", help="a commit with the hand-written encoder")
    parser.add_argument("--rows", action="store_true", help="the stored row and its phases")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of --rows (median)")
    a = parser.parse_args(argv)
    from sector_credit.plugins import get_plugin_manager
    from sector_credit.scorecards.registry import build_registry
    from sector_credit.server import convert
    from sector_credit.server.db import rowjson as new
    from sector_credit.v1 import credit_evaluation_service_pb2 as pb

    with tempfile.TemporaryDirectory() as folder:
        old = _old_module(a.rev, folder)
    taxi = build_registry(get_plugin_manager()).resolve(sb.SCORECARD)
    inputs = [
        convert.evaluation_input_from_proto(pb.EvaluateRequest.FromString(body))
        for body in sb.build_pool(300)
    ]
    results = [taxi.evaluate(i.subject, i.indicators, i.as_of) for i in inputs]
    if a.rows:
        return _rows(taxi, inputs, results, a.rounds)
    old_parts, new_parts = old.result_parts(taxi.card), new.result_parts(taxi.card)
    n = len(results)
    rows = [
        (
            "input (canonical)",
            lambda i: old.input_json(inputs[i]),
            lambda i: new.input_json(inputs[i]),
        ),
        (
            "result, format 2",
            lambda i: old.result_json_compact(results[i], old_parts),
            lambda i: new.result_json_compact(results[i], new_parts),
        ),
        (
            "result, format 1",
            lambda i: old.result_json(results[i]),
            lambda i: new.result_json(results[i]),
        ),
    ]
    for name, before, after in rows:
        b, o = _per_document(before, n), _per_document(after, n)
        print(f"{name:18}  hand-written {b:6.1f} µs  orjson {o:6.1f} µs  ratio {o / b:4.2f}")
    same = all(old.input_json(i) == new.input_json(i) for i in inputs) and all(
        old.result_json_compact(r, old_parts) == new.result_json_compact(r, new_parts)
        and old.result_json(r) == new.result_json(r)
        for r in results
    )
    print("the same bytes:", "yes" if same else "NO")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
