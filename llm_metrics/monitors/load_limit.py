"""The per-process limit: how much LLM work one load-generator process held while its event loop kept time.

The self-monitor (``selfmon.SelfMonitor``) tags each event-loop lag sample with the band of LLM calls open in its
process at that moment (``gauge.LOAD``; bands 1, 2, 5, 10, 20, 50, ... open calls, each band labelled with its top:
``"200"`` holds 101-200 open calls, ``"0"`` none), and records, per band, the open calls themselves and, each
second, the token events read per second. These are metrics like any other (tags ``process`` and ``open_calls``),
merged on the master: a sample is one process's state, so the samples of every process at one band merge into one
histogram that says how one process behaves at that load.

``per_process_limit`` finds the highest band whose lag p99 stayed within the guard's ``loop_lag_p99_ms`` and the
lowest band above it that went over, each judged only from ``MIN_BAND_S`` seconds of probing (summed over the
processes; fewer are a passage, e.g. the ramp-up), and how many processes the run's load would need to stay
within. ``limit_text`` is the console line (``per process: ...``). Pure: no gevent, no Locust.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store import MetricStore

__all__ = [
    "BANDED_METRICS",
    "BAND_TAG",
    "CLIENT_LAG_AT_LOAD",
    "CLIENT_OPEN_CALLS",
    "CLIENT_TOKENS_READ",
    "LoadBands",
    "band_label",
    "band_low",
    "band_range",
    "bands_from_store",
    "limit_text",
    "open_calls_band",
    "per_process_limit",
]

CLIENT_LAG_AT_LOAD = "client_loop_lag_at_load_ms"
"""The event-loop lag samples again, tagged with the open-calls band (``client_loop_lag_ms`` stays untagged)."""
CLIENT_OPEN_CALLS = "client_open_calls"
"""LLM calls open in the process at each lag sample, tagged with their band."""
CLIENT_TOKENS_READ = "client_tokens_read_per_s"
"""Token events read per second by the process (counted when each call ends), each second, tagged with the band."""
BANDED_METRICS = frozenset((CLIENT_LAG_AT_LOAD, CLIENT_OPEN_CALLS, CLIENT_TOKENS_READ))
BAND_TAG = "open_calls"
MIN_BAND_S = 5.0
"""A band is judged from this many seconds of probing on (the guard's ``MIN_JUDGED_S``)."""

_LADDER = [m * 10**e for e in range(8) for m in (1, 2, 5)]
_LABELS = [str(b) for b in _LADDER]


def open_calls_band(n: int) -> str:
    """The band label of ``n`` open calls: the smallest of 1, 2, 5, 10, 20, 50, ... that is >= n ("0": none)."""
    if n <= 0:
        return "0"
    i = bisect_left(_LADDER, n)
    return _LABELS[i] if i < len(_LABELS) else str(n)


def band_low(top: int) -> int:
    """The fewest open calls of the band ``top``: ``200`` -> 101, ``1`` -> 1, ``0`` -> 0."""
    i = bisect_left(_LADDER, top)
    return _LADDER[i - 1] + 1 if 0 < i < len(_LADDER) and _LADDER[i] == top else top


def band_range(top: int) -> str:
    """``200`` -> ``"101-200"``, ``1`` -> ``"1"``, ``0`` -> ``"0"``."""
    low = band_low(top)
    return f"{top:,}" if low >= top else f"{low:,}-{top:,}"


def band_label(top: int) -> str:
    return band_range(top) + (" open call" if top == 1 else " open calls")


@dataclass(slots=True)
class LoadBands:
    """The merged per-band data of a run: band top -> histogram, and each process's most open calls."""

    lag: dict[int, Histogram] = field(default_factory=dict)
    open_calls: dict[int, Histogram] = field(default_factory=dict)
    tokens: dict[int, Histogram] = field(default_factory=dict)
    held: dict[str, float] = field(default_factory=dict)
    """Process -> the most LLM calls open in it at one lag sample."""


def _band_of(tags: Iterable[tuple[str, str]]) -> tuple[int | None, str]:
    d = dict(tags)
    try:
        return int(d.get(BAND_TAG, "")), d.get("process", "")
    except ValueError:  # a band folded into __other__ by the store's cardinality bound
        return None, d.get("process", "")


def bands_from_store(store: MetricStore) -> LoadBands:
    """Merge the band-tagged series of ``store`` over the processes."""
    out = LoadBands()
    for table, metric in (
        (out.lag, CLIENT_LAG_AT_LOAD),
        (out.open_calls, CLIENT_OPEN_CALLS),
        (out.tokens, CLIENT_TOKENS_READ),
    ):
        for _, tags, h in store.histograms(metric):
            band, process = _band_of(tags)
            if band is None:
                continue
            merged = table.get(band)
            table[band] = h.copy() if merged is None else merged.merge(h)
            if metric == CLIENT_OPEN_CALLS and h.vmax is not None:
                out.held[process] = max(out.held.get(process, 0.0), h.vmax)
    return out


def _band_row(top: int, bands: LoadBands, limit_ms: float, interval_s: float) -> dict[str, Any]:
    lag = bands.lag[top]
    p99 = lag.percentile(99.0)
    probed_s = lag.count * interval_s + lag.sum / 1000.0  # each sample: the interval plus its lag
    opened = bands.open_calls.get(top)
    tokens = bands.tokens.get(top)
    judged = top > 0 and probed_s >= MIN_BAND_S and p99 is not None
    return {
        "open_calls": band_range(top),
        "band": top,
        "max_open_calls": opened.vmax if opened is not None else None,
        "samples": lag.count,
        "probed_s": probed_s,
        "lag_p99_ms": p99,
        "lag_max_ms": lag.vmax,
        "tokens_per_s": tokens.mean if tokens is not None and tokens.count else None,
        "judged": judged,
        "within": (p99 <= limit_ms) if judged and p99 is not None else None,
    }


def per_process_limit(bands: LoadBands | None, limit_ms: float, interval_s: float = 0.05) -> dict[str, Any]:
    """The per-process limit's figures (module docstring); ``status`` says which case, ``text`` the console line.

    ``status``: ``limit_found`` (a band within the limit and a higher one over it), ``all_within``, ``all_over``
    (already over at the lowest band judged), ``too_little_data`` (no band with ``MIN_BAND_S`` of probing) or
    ``not_measured`` (no lag sample while an LLM call was open).
    """
    rows = [_band_row(top, bands, limit_ms, interval_s) for top in sorted(bands.lag)] if bands else []
    held = dict(bands.held) if bands else {}
    out: dict[str, Any] = {
        "limit_ms": limit_ms,
        "min_band_s": MIN_BAND_S,
        "bands": rows,
        "held_per_process": max(held.values(), default=0.0),
        "held_total": sum(held.values()),
        "processes": len(held),
    }
    judged = [r for r in rows if r["judged"]]
    within = [r for r in judged if r["within"]]
    best = within[-1] if within else None
    over = [r for r in judged if not r["within"] and (best is None or r["band"] > best["band"])]
    out["within"] = best
    out["over"] = over[0] if over else None
    out["also_over_below"] = [r["open_calls"] for r in judged if not r["within"] and best and r["band"] < best["band"]]
    out["limit_open_calls"] = best["max_open_calls"] if best else None
    out["processes_needed"] = None
    out["processes_at_least"] = None
    if best is not None and over:
        out["status"] = "limit_found"
        limit = best["max_open_calls"] or best["band"]
        out["processes_needed"] = max(1, math.ceil(out["held_total"] / limit))
    elif best is not None:
        out["status"] = "all_within"
    elif over:
        out["status"] = "all_over"
        below = band_low(over[0]["band"]) - 1  # the limit is at most this many open calls
        if below >= 1:
            out["processes_at_least"] = max(1, math.ceil(out["held_total"] / below))
    elif any(r["band"] > 0 for r in rows):
        out["status"] = "too_little_data"
    else:
        out["status"] = "not_measured"
    idle = next((r for r in rows if r["band"] == 0 and r["probed_s"] >= MIN_BAND_S), None)
    out["idle_lag_p99_ms"] = idle["lag_p99_ms"] if idle else None
    out["text"] = limit_text(out)
    return out


_ADVICE = "--processes N on this machine, or more workers"


def _n(x: float | None) -> str:
    return "?" if x is None else f"{x:,.0f}"


def _ms(x: float | None) -> str:
    return "?" if x is None else f"{x:.1f} ms"


def _tokens(r: Mapping[str, Any]) -> str:
    t = r["tokens_per_s"]
    return "tokens/s not sampled" if t is None else f"about {_n(t)} tokens/s read" if t else "no streamed token read"


def _within_part(r: Mapping[str, Any]) -> str:
    p99 = _ms(r["lag_p99_ms"])
    return f"up to {_n(r['max_open_calls'])} open LLM calls ({_tokens(r)}; p99 {p99} at {r['open_calls']})"


def _over_part(r: Mapping[str, Any]) -> str:
    return f"{band_label(r['band'])} (p99 {_ms(r['lag_p99_ms'])}; {_tokens(r)})"


def limit_text(f: Mapping[str, Any]) -> str:
    """The console line of ``per_process_limit``'s figures."""
    idle = f.get("idle_lag_p99_ms")
    if idle is not None and idle > f["limit_ms"]:  # the loop was late without LLM calls too: not their doing
        return _limit_text(f) + f" (p99 {_ms(idle)} while no LLM call was open: something else blocks the loop)"
    return _limit_text(f)


def _limit_text(f: Mapping[str, Any]) -> str:
    status, limit = f["status"], f"{f['limit_ms']:g} ms"
    held = f"This run held up to {_n(f['held_per_process'])} open calls in one process"
    if f["processes"] > 1:
        held += f" ({_n(f['held_total'])} in all, {f['processes']} processes)"
    if status == "not_measured":
        return "per process: limit not measured (no LLM call was open while the event-loop lag was probed)"
    if status == "too_little_data":
        longest = max((r for r in f["bands"] if r["band"] > 0), key=lambda r: r["probed_s"])
        return (
            f"per process: too little data to find the limit (no load held for {f['min_band_s']:g} s of probing; "
            f"the longest: {longest['probed_s']:.1f} s at {band_label(longest['band'])})"
        )
    if status == "all_over":
        o = f["over"]
        text = (
            f"per process: event-loop lag p99 over {limit} already at {_over_part(o)}, the lowest load judged: the "
            f"limit is lower. {held}"
        )
        if f["processes_at_least"] is not None:
            text += f": for p99 <= {limit} run at least {f['processes_at_least']} processes ({_ADVICE})"
        return text
    w = f["within"]
    text = f"per process: event-loop lag p99 <= {limit} {_within_part(w)}"
    if f["also_over_below"]:
        text += f" (but over it at {', '.join(f['also_over_below'])} open calls)"
    if status == "all_within":
        return text + f": every load judged stayed within, the limit is at or above it. {held}"
    o = f["over"]
    return (
        f"{text}; over it at {_over_part(o)}. {held}: for p99 <= {limit} "
        f"run about {f['processes_needed']} processes ({_ADVICE})"
    )
