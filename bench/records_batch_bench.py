"""The records read of a batch on a record-derived card (issue 10): one query per item, as
BatchEvaluate did, against one `touching_many` for the whole batch, as it does now.

    .venv/bin/python bench/records_batch_bench.py                    # SQLite in a temp dir
    .venv/bin/python bench/records_batch_bench.py --url postgresql+psycopg://...  # empty db

A batch of `--items` organizations (default 1000, the batch limit), each with two records
(one with a linked person), is read both ways `--repeat` times, interleaved; the median
seconds of each way and their ratio are printed. Both ways return the same records.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sector_credit.scorecards import records as rec
from sector_credit.scorecards.model import SubjectKind
from sector_credit.scorecards.subject_ids import uscc_problem
from sector_credit.server.db import migrate
from sector_credit.server.db.records import RecordStore


def org_id(n: int) -> str:
    body = f"9131000013{n:06d}0"
    return next(
        b for b in (body + c for c in "0123456789ABCDEFGHJKLMNPQRTUWXY") if not uscc_problem(b)
    )


async def run(url: str, items: int, repeat: int) -> None:
    migrate.upgrade(url)
    store = RecordStore(url)
    subjects = [org_id(n) for n in range(items)]
    event = rec.Event(1, rec.EventType.CREATED, dt.date(2026, 1, 5), "bench", "", ())
    for n, s in enumerate(subjects):
        for kind, linked in (
            ("administrative_penalty", ()),
            (
                "dishonest_debtor",
                (rec.LinkedPerson("11010519491231002X", rec.LinkRole.PRINCIPAL, ""),),
            ),
        ):
            await store.create(
                rec.Record(
                    id="",
                    subject_kind=SubjectKind.ORGANIZATION,
                    subject_id=s,
                    kind=kind,
                    authority="某局",
                    basis_regulation="某条例",
                    basis_document=f"{n}",
                    decision_date=dt.date(2026, 1, 5),
                    severity=rec.Severity.GENERAL,
                    linked=linked,
                ),
                event,
            )
    per_item, batched = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        one_by_one = {s: (await store.list(subject_id=s, page_size=1000))[0] for s in subjects}
        per_item.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        together = await store.touching_many(subjects)
        batched.append(time.perf_counter() - t0)
        assert together == one_by_one
    await store.close()
    a, b = statistics.median(per_item), statistics.median(batched)
    print(f"{items} subjects, {repeat} repetitions, {url.split(':')[0]}")
    print(f"  one query per item (before): {a * 1000:8.1f} ms")
    print(f"  one read per batch (after):  {b * 1000:8.1f} ms")
    print(f"  ratio: {a / b:.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'records.db'}"
        asyncio.run(run(url, args.items, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
