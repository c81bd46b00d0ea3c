"""bench/locustfile_capacity.py plus a timing of every garbage collection (``gc.callbacks``), for bench/stalls.py.

``GC_FREEZE=1`` / ``GC_T0=N`` try a tuning on top of the suite's own (``llm_metrics.locust_fixes``); the pauses per
generation (count, max, sum, over 10 ms) are written to ``GC_OUT`` at quit.
"""

import gc
import json
import os
import time
from typing import Any

from locust import events as _ev

from bench.locustfile_capacity import *  # noqa: F403 - the same User classes

_gc: dict[str, Any] = {"t": 0.0, "gen": None}
_pauses: list[tuple[int, float, int]] = []


def _cb(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc["t"] = time.perf_counter()
        _gc["gen"] = info["generation"]
    else:
        _pauses.append((info["generation"], (time.perf_counter() - _gc["t"]) * 1000, info.get("collected", 0)))


gc.callbacks.append(_cb)


@_ev.quitting.add_listener
def _report(**_k: Any) -> None:
    by: dict[int, list[float]] = {}
    for g, ms, _ in _pauses:
        by.setdefault(g, []).append(ms)
    out = {
        g: {"n": len(v), "max_ms": max(v), "sum_ms": sum(v), "over10": sum(1 for x in v if x > 10)}
        for g, v in by.items()
    }
    with open(os.environ.get("GC_OUT", "gc.json"), "w") as f:
        json.dump(out, f)


if os.environ.get("GC_FREEZE") == "1":

    @_ev.spawning_complete.add_listener
    def _freeze(**_k: Any) -> None:
        gc.collect()
        gc.freeze()


if os.environ.get("GC_T0"):
    gc.set_threshold(int(os.environ["GC_T0"]), int(os.environ.get("GC_T1", "10")), int(os.environ.get("GC_T2", "10")))


if os.environ.get("GC_DEFAULT") == "1":  # undo the suite's tuning (llm_metrics.locust_fixes): the "before"

    @_ev.test_start.add_listener
    def _default_threshold(**_k: Any) -> None:
        gc.set_threshold(700, 10, 10)

    @_ev.spawning_complete.add_listener
    def _unfreeze(**_k: Any) -> None:
        gc.unfreeze()
