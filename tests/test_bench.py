"""The parts of bench/serve_bench.py and serve_ab.py that need no server: the table's
arithmetic, the event ids, the check of another Python (the benchmarks are run by hand)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import serve_bench  # noqa: E402


def runs(*rps: float) -> list[dict[str, float]]:
    return [{"rps": r, "p50": 1.0, "p99": 4.0} for r in rps]


def test_the_ratio_is_taken_round_by_round() -> None:
    # per round 1.10, 0.95 and 1.00: median 1.00; the ratio of the medians would be 0.95
    results = {("koa", 16): runs(10, 20, 30), ("atwh", 16): runs(11, 19, 30)}
    table = serve_bench.summary(results, [16], ("koa", "atwh"))
    atwh = next(line for line in table.splitlines() if "| atwh |" in line)
    assert atwh.startswith("| 16 | atwh | 19 | 1.00 | 4.00 | 1.00x [")
    assert atwh.endswith("| 2/3 |")


def test_the_interval_holds_the_median_and_stays_within_the_values() -> None:
    values = [0.8, 0.9, 0.95, 1.0, 1.02, 1.05, 1.1, 1.3]
    low, high = serve_bench.bootstrap_median(values)
    assert min(values) <= low <= 0.985 <= high <= max(values)
    assert low < high
    assert serve_bench.bootstrap_median(values) == (low, high)  # a fixed seed


def test_identical_rounds_give_an_interval_of_one_point() -> None:
    assert serve_bench.bootstrap_median([1.2] * 5) == pytest.approx((1.2, 1.2))


def test_serve_ab_takes_a_python_3_11_or_newer(tmp_path: Path) -> None:
    import argparse

    import serve_ab

    assert serve_ab.interpreter(sys.executable) == sys.executable
    with pytest.raises(argparse.ArgumentTypeError, match="cannot run it"):
        serve_ab.interpreter(str(tmp_path / "no-such-python"))
    old = tmp_path / "python"  # runs, and says it is older than 3.11
    old.write_text("#!/bin/sh\nexit 1\n")
    old.chmod(0o755)
    with pytest.raises(argparse.ArgumentTypeError, match="not a Python 3.11 or newer"):
        serve_ab.interpreter(str(old))


def test_scattered_ids_are_unique_unordered_and_shaped_like_uuids() -> None:
    import bisect
    import re
    import statistics
    import uuid

    ids = [serve_bench.event_id(n, "scattered") for n in range(20_000)]
    assert len(set(ids)) == len(ids)
    shape = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}")
    assert all(shape.fullmatch(i) for i in ids)
    assert uuid.UUID(ids[7]).version == 4
    # new ids land all over the index, where sequential ones all land at its end
    known = sorted(ids[:19_000])
    where = [bisect.bisect(known, i) / len(known) for i in ids[19_000:]]
    assert min(where) < 0.01 and max(where) > 0.99 and 0.45 < statistics.mean(where) < 0.55
    sequential = [serve_bench.event_id(n) for n in range(20_000)]
    assert sequential == sorted(sequential) and sequential[7] == "evt-00000007"
    known = sequential[:19_000]
    assert all(bisect.bisect(known, i) == len(known) for i in sequential[19_000:])


def test_the_lua_script_fills_in_the_ids_the_signatures_were_made_for(tmp_path: Path) -> None:
    for ids in serve_bench.IDS:
        script = serve_bench.lua_script(tmp_path, 16, tmp_path / "sigs.txt", ids).read_text()
        assert serve_bench.ID_LUA[ids] in script
        assert "string.format(body_format, event_id(n), n)" in script
