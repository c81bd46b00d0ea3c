"""The tables a ``MetricStore`` (``store``) keeps, and their wire form between a worker and the master.

A ``Part`` is one set of series: histograms, counters and rates (``[hits, total]``) per metric and tags. A
store keeps a live part and an accumulated one; ``fold`` adds one part into another. ``to_wire`` is what a
worker sends (``take_delta``), ``from_wire`` reads it back on the master (``merge_wire``). The wire structure
is plain lists, str-keyed dicts, ints, floats and strings: safe for Locust's msgpack transport (no int map
keys)::

    {"v": 1,
     "h": [[metric, [k1, v1, k2, v2, ...], histogram_wire], ...],
     "c": [[metric, [k1, v1, ...], value], ...],
     "r": [[metric, [k1, v1, ...], hits, total], ...]}

Pure: no Locust import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.tags import Kind, Tags, flat_tags, unflat_tags

__all__ = ["WIRE_VERSION", "Part", "fold", "from_wire", "to_wire"]

WIRE_VERSION = 1


class Part:
    """One set of series (the live part or the accumulated part of a store)."""

    __slots__ = ("counters", "hists", "rates")

    def __init__(self) -> None:
        self.hists: dict[str, dict[Tags, Histogram]] = {}
        self.counters: dict[str, dict[Tags, float]] = {}
        self.rates: dict[str, dict[Tags, list[int]]] = {}  # [hits, total]

    def empty(self) -> bool:
        return not (self.hists or self.counters or self.rates)


def to_wire(part: Part) -> dict[str, Any]:
    """The part as a wire structure; series without data are left out."""
    return {
        "v": WIRE_VERSION,
        "h": [
            [m, flat_tags(t), h.to_wire()]
            for m, series in part.hists.items()
            for t, h in series.items()
            if h.count or h.invalid
        ],
        "c": [[m, flat_tags(t), v] for m, series in part.counters.items() for t, v in series.items() if v],
        "r": [
            [m, flat_tags(t), cell[0], cell[1]]
            for m, series in part.rates.items()
            for t, cell in series.items()
            if cell[1]
        ],
    }


def from_wire(wire: Mapping[str, Any], admit: Callable[[str, Kind, Tags], Tags]) -> Part:
    """A ``to_wire`` structure as a part; ``admit`` checks each series' kind and gives the tags to file it under
    (the store's cardinality bound). ValueError when malformed."""
    if not isinstance(wire, Mapping) or wire.get("v") != WIRE_VERSION:
        raise ValueError(f"not a metric store wire structure (version {WIRE_VERSION}): {wire!r:.80}")
    part = Part()
    for m, flat, hw in wire.get("h", ()):
        tags = admit(m, "trend", unflat_tags(flat))
        h = Histogram.from_wire(hw)
        series = part.hists.setdefault(m, {})
        if tags in series:
            series[tags].merge(h)
        else:
            series[tags] = h
    for m, flat, v in wire.get("c", ()):
        tags = admit(m, "counter", unflat_tags(flat))
        cseries = part.counters.setdefault(m, {})
        cseries[tags] = cseries.get(tags, 0) + v
    for m, flat, hits, total in wire.get("r", ()):
        tags = admit(m, "rate", unflat_tags(flat))
        rseries = part.rates.setdefault(m, {})
        cell = rseries.setdefault(tags, [0, 0])
        cell[0] += int(hits)
        cell[1] += int(total)
    return part


def fold(base: Part, part: Part) -> None:
    """Add ``part`` into ``base`` (``part``'s histograms may become ``base``'s own)."""
    for m, series in part.hists.items():
        bs = base.hists.setdefault(m, {})
        for t, h in series.items():
            old = bs.get(t)
            if old is None:
                bs[t] = h
            else:
                old.merge(h)
    for m, cseries in part.counters.items():
        bc = base.counters.setdefault(m, {})
        for t, v in cseries.items():
            bc[t] = bc.get(t, 0) + v
    for m, rseries in part.rates.items():
        br = base.rates.setdefault(m, {})
        for t, cell in rseries.items():
            old_cell = br.get(t)
            if old_cell is None:
                br[t] = list(cell)
            else:
                old_cell[0] += cell[0]
                old_cell[1] += cell[1]
