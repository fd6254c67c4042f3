"""How long one GraphQL request holds the emulator's event loop (run by hand).

Each request runs on the loop that also delivers, so its time is how long deliveries
wait. Measured in process on an emulator with `--history 300`: a full page of deliveries
with every field (the baseline, what `atwh deliveries` asks), the largest query the limits
let through (10,000 fields), and the 138-byte nested query that asked for a million
objects before the limits (now refused). Median of --repeat rounds, each variant in turn,
with its ratio to the baseline of the same round.

    python bench/emulator_limits.py --repeat 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from atwh.client import queries
from atwh.emulator.app import Emulator, EmulatorSettings
from atwh.emulator.limits import MAX_FIELDS

HOOK = "wh-history"
NESTED = (
    '{webhook(id:"ID"){deliveries(first:100){nodes{webhook{deliveries(first:100){nodes{'
    "webhook{deliveries(first:100){nodes{id}}}}}}}}}}"
).replace("ID", HOOK)
# 100 deliveries × (1 + 98 aliases) + 2 = 9,902 fields, just under MAX_FIELDS
LARGEST = (
    '{webhook(id:"ID"){deliveries(first:100){nodes{'
    + " ".join(f"a{i}:createdDate" for i in range(98))
    + "}}}}"
).replace("ID", HOOK)


async def once(emu: Emulator, payload: dict) -> tuple[float, bool, int]:
    started = time.perf_counter()
    _, result = await emu.execute(payload)
    body = json.dumps(result)
    return time.perf_counter() - started, "errors" in result, len(body)


async def main(repeat: int) -> None:
    emu = Emulator(EmulatorSettings(history=300, seed=3, log=lambda line: None))
    variants = {
        "page (baseline)": {
            "query": queries.load("QueryWebhookDeliveriesPage"),
            "variables": {"id": HOOK, "first": 100},
        },
        f"largest allowed (<{MAX_FIELDS} fields)": {"query": LARGEST},
        "nested, 138 bytes (refused)": {"query": NESTED},
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    shape: dict[str, tuple[bool, int]] = {}
    for _ in range(repeat):
        base = None
        for name, payload in variants.items():
            took, refused, size = await once(emu, payload)
            base = base if base is not None else took
            times[name].append(took)
            ratios[name].append(took / base)
            shape[name] = (refused, size)
    print(f"one request on the emulator's loop, median of {repeat} (ms; x the page query)")
    print(f"{'request':36} {'ms':>8} {'x base':>7} {'answer':>10}  refused")
    for name in variants:
        refused, size = shape[name]
        print(
            f"{name:36} {statistics.median(times[name]) * 1000:8.1f} "
            f"{statistics.median(ratios[name]):6.2f}x {size:10,}  {refused}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    asyncio.run(main(parser.parse_args().repeat))
