"""The newest N of a listing: the same rows as sorting everything, holding only N."""

from __future__ import annotations

import gc
import random
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from atwh.client.filters import DeliveryFilter, NewestFirst, select_newest

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(eq=False)
class Record:
    n: int
    created: datetime | None
    failed: bool = False
    event_name: str | None = "ticket.created"
    status_code: int | None = 200


def _sorted_all(records, flt, count):
    """What select_newest gave when it kept and sorted every match (before issue 27): it
    stops at the first match beyond `count` while the dates so far come newest first."""
    order = NewestFirst()
    kept = []
    for r in records:
        order.see(r.created)
        if flt.matches(r):
            kept.append(r)
            if count is not None and len(kept) > count and order.holds:
                break
    if not order.holds:
        kept.sort(key=lambda r: r.created or NEVER, reverse=True)
    return kept if count is None else kept[:count]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.integers(0, 20)), max_size=60),
    st.one_of(st.none(), st.integers(1, 10)),
    st.booleans(),
)
def test_the_same_rows_as_sorting_everything(minutes, count, failed_only):
    records = [
        Record(i, None if m is None else T0 + timedelta(minutes=m), failed=i % 3 == 0)
        for i, m in enumerate(minutes)
    ]
    flt = DeliveryFilter(failed_only=failed_only)
    picked = select_newest(records, flt, count)
    expected = _sorted_all(records, flt, count)
    assert [r.n for r in picked.rows] == [r.n for r in expected]
    if picked.complete:
        assert picked.more == sum(map(flt.matches, records)) - len(expected)


def test_a_listing_in_no_order_holds_only_the_rows_it_shows():
    """10,000 records in no order, 5 shown: the others are let go as they are read."""
    alive: weakref.WeakSet[Record] = weakref.WeakSet()
    most = 0

    def records():
        nonlocal most
        order = list(range(10_000))
        random.Random(1).shuffle(order)
        for i in order:
            r = Record(i, T0 + timedelta(seconds=i))
            alive.add(r)
            if i % 500 == 0:
                gc.collect()
                most = max(most, len(alive))
            yield r

    picked = select_newest(records(), DeliveryFilter(), 5)
    assert [r.n for r in picked.rows] == [9999, 9998, 9997, 9996, 9995]
    assert picked.more == 9_995 and picked.complete
    assert most <= 5 + 2, most
