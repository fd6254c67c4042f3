"""Decoding a page of deliveries, with its dates in each form the API could send.

    python bench/date_forms.py                 # 200 pages of 100 deliveries, 15 rounds
    python bench/date_forms.py --pages 50 --rounds 5

In this process, no network: bench/fake_api.py makes the same 100 deliveries (seed 1, every
one failed) with their dates in each form (`--dates` there): JavaScript's `.000Z` (what
Allthings sends), ISO 8601 with `+00:00`, with microseconds and `+00:00`, and epoch
milliseconds. Each round decodes the page of every form `--pages` times in turn
(client.wire.read_page: the answer's bytes to DeliveryRows, dates read), then writes their
CSV rows (output.export.csv_row_of, into a StringIO), and prints the median time per
delivery, and its ratio to the `Z` form's in the same rounds. It checks that every form was
read by the fast path (a form it declines would be read by the general one, about four
times slower).

Goal (issue 27): every form at most 1.1x the `Z` form. Exits 1 when one is not.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fake_api  # noqa: E402

from atwh.client.wire import read_page  # noqa: E402
from atwh.output.export import csv_row_of  # noqa: E402

GOAL = 1.1


def page_bytes(form: str) -> bytes:
    fake_api.DATE_FORM = form
    rng = random.Random(1)
    now = datetime(2026, 12, 5, 12, tzinfo=UTC)
    nodes = [fake_api.make_node(i, rng, now, failed_only=True) for i in range(100)]
    answer = {
        "data": {
            "webhook": {
                "id": fake_api.WEBHOOK_ID,
                "deliveries": {
                    "totalCount": 100,
                    "pageInfo": {"hasNextPage": False, "endCursor": "c100"},
                    "nodes": nodes,
                },
            }
        }
    }
    return json.dumps(answer, separators=(",", ":")).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=200, help="pages decoded a round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    pages = {form: page_bytes(form) for form in fake_api.DATE_FORMS}
    for form, content in pages.items():
        data = read_page(content)
        if data is None:
            print(f"{form}: declined by the fast path")
            return 1
        row = data["webhook"]["deliveries"]["nodes"][0]
        print(f"{form:>7}: createdDate {row.created_text or row.created.isoformat()!s}")
    decode: dict[str, list[float]] = {f: [] for f in pages}
    export: dict[str, list[float]] = {f: [] for f in pages}
    order = list(pages)
    for i in range(args.rounds + 1):  # the first round warms up, and is not counted
        random.Random(i).shuffle(order)
        for form in order:
            content = pages[form]
            t0 = time.perf_counter()
            for _ in range(args.pages):
                rows = read_page(content)["webhook"]["deliveries"]["nodes"]  # type: ignore[index]
            t1 = time.perf_counter()
            writer = csv.writer(io.StringIO(), lineterminator="\n")
            for _ in range(args.pages):
                writer.writerows([csv_row_of(r, "wh", True) for r in rows])
            t2 = time.perf_counter()
            if i == 0:
                continue
            per = args.pages * len(rows)
            decode[form].append((t1 - t0) / per * 1e6)
            export[form].append((t2 - t0) / per * 1e6)
    print(f"\nmedian of {args.rounds} rounds, {args.pages} pages of 100 deliveries each")
    print(f"{'dates':>7} {'decode us':>10} {'x Z':>6} {'+ csv us':>9} {'x Z':>6}")
    ok = True
    z_decode = statistics.median(decode["z"])
    z_export = statistics.median(export["z"])
    for form in pages:
        d = statistics.median(decode[form])
        e = statistics.median(export[form])
        ok = ok and d / z_decode <= GOAL
        print(f"{form:>7} {d:>10.2f} {d / z_decode:>5.2f}x {e:>9.2f} {e / z_export:>5.2f}x")
    verdict = "met" if ok else "MISSED"
    print(f"\ngoal: every form's decoding at most {GOAL}x the Z form's: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
