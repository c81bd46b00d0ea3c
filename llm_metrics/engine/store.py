"""Metric store: histograms, counters and rates keyed by (metric name, tags), mergeable across processes.

Series. A series is a metric name plus a tag set (``tags``: ``make_tags`` and the other key helpers are
importable from here too). A metric name has one kind for the life of the store: ``trend`` (a
``Histogram``), ``counter`` (a number) or ``rate`` (hits out of a total, e.g. ``http_req_failed``,
``goodput``).

Deltas. Everything is recorded into a *live* part. ``take_delta()`` (a worker, every 3 s in
``report_to_master``) returns the live part as a wire structure, folds it into the accumulated part and
starts a new live part; ``merge_wire()`` (the master, in ``worker_report``) adds a wire structure into the
accumulated part. Reads (``select``, ``series``, ``histograms``...) see both parts. With
``keep_totals=False`` (a worker that never reads its own totals) ``take_delta`` drops the live part
instead of folding it. The parts, their wire structure (msgpack-safe plain lists and str-keyed dicts) and
the fold are in ``store_parts``.

Cardinality. At most ``max_series`` series per metric (default 1000). Further tag sets collapse into one
series whose tag values are all ``"__other__"`` (same keys), and ``overflowed`` counts what was collapsed per
metric, so a tag carrying e.g. a request id cannot eat the memory; ``warnings()`` reports it.

Hot path. ``record_call`` caches, per (scenario, name, prompt, status, extra tags), the tag tuple and the
live cells it feeds (histograms, goodput, token-source count), and ``record_request`` per request key its
tags and live cells (``store_cells``), so a call costs the metric math plus one dict lookup and one list
append per value; the appended values are recorded in bulk before any read, when the live part is sent and
every ``store_cells.FLUSH_EVERY`` requests, exactly as one ``record`` per value would (the chunk times too,
their gaps recorded as one ``Histogram.record_diffs`` per call would); the live cells are forgotten with the
live part (``take_delta``).

Duration. ``mark_start``/``mark_stop`` (wall clock) give ``duration_s``, the denominator of the ``rate``
aggregation of counters (count per second).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from llm_metrics.engine.calls import (
    METRIC_CHUNK_GAP,
    CallRecord,
    GoodputSLO,
    meets_slo,
    reasoning_token_source,
    scalar_metric_values,
)
from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.store_cells import FLUSH_EVERY, HELD_TIMES, CallSeries, Pending, RequestCells
from llm_metrics.engine.store_parts import Part, fold, from_wire, to_wire
from llm_metrics.engine.tags import OTHER, Kind, Tags, TagsLike, make_tags, tags_dict, tags_match

__all__ = [
    "GOODPUT",
    "HTTP_REQS",
    "HTTP_REQ_DURATION",
    "HTTP_REQ_FAILED",
    "OTHER",
    "REASONING_TOKEN_SOURCE",
    "REQUESTS_BLOCKED",
    "TOKEN_SOURCE",
    "Kind",
    "MetricStore",
    "RateValue",
    "Tags",
    "TagsLike",
    "make_tags",
    "tags_dict",
    "tags_match",
]

GOODPUT = "goodput"
TOKEN_SOURCE = "llm_token_source"
"""Counter of calls per output-token source; tags are the call's plus ``source`` (usage or events)."""
REASONING_TOKEN_SOURCE = "llm_reasoning_token_source"
"""Counter of calls per reasoning-token source (usage or events), for calls that showed reasoning."""
HTTP_REQ_DURATION = "http_req_duration"
HTTP_REQ_FAILED = "http_req_failed"
HTTP_REQS = "http_reqs"
REQUESTS_BLOCKED = "requests_blocked"
_Cell = TypeVar("_Cell")
_NONE: Mapping[Tags, Any] = {}


@dataclass(slots=True)
class RateValue:
    """Hits out of a total (``http_req_failed``: failed requests out of all)."""

    hits: int = 0
    total: int = 0

    @property
    def rate(self) -> float | None:
        return self.hits / self.total if self.total else None

    def add(self, other: RateValue) -> RateValue:
        self.hits += other.hits
        self.total += other.total
        return self


class MetricStore:
    """Histograms, counters and rates per (metric, tags). See the module docstring."""

    def __init__(self, *, max_series: int = 1000, keep_totals: bool = True) -> None:
        self.max_series = max_series
        self.keep_totals = keep_totals
        self._live = Part()
        self._base = Part()
        self._kinds: dict[str, Kind] = {}
        self._known: dict[str, set[Tags]] = {}
        self.overflowed: dict[str, int] = {}
        self._call_cache: dict[tuple[Any, ...], CallSeries] = {}
        self._req_cache: dict[tuple[Any, ...], Tags] = {}
        self._req_cells: dict[tuple[Any, ...], RequestCells] = {}
        self._pending = Pending()
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    # -- run duration ------------------------------------------------------------------------------

    def mark_start(self, t: float | None = None) -> None:
        """Wall-clock start of the run (``time.time()`` when not given)."""
        self.started_at = time.time() if t is None else t
        self.stopped_at = None

    def mark_stop(self, t: float | None = None) -> None:
        self.stopped_at = time.time() if t is None else t

    def duration_s(self, now: float | None = None) -> float | None:
        """Seconds from ``mark_start`` to ``mark_stop`` (or ``now``); None before ``mark_start``."""
        if self.started_at is None:
            return None
        end = self.stopped_at if self.stopped_at is not None else (time.time() if now is None else now)
        return max(0.0, end - self.started_at)

    # -- series bookkeeping ------------------------------------------------------------------------

    def kind(self, metric: str) -> Kind | None:
        return self._kinds.get(metric)

    def _claim(self, metric: str, kind: Kind) -> None:
        k = self._kinds.get(metric)
        if k is None:
            self._kinds[metric] = kind
            self._known[metric] = set()
        elif k != kind:
            raise ValueError(f"metric {metric!r} is a {k}, cannot record it as a {kind}")

    def _admit(self, metric: str, kind: Kind, tags: Tags) -> Tags:
        """Check the kind and the cardinality bound; returns the tags to use (maybe collapsed)."""
        self._claim(metric, kind)
        known = self._known[metric]
        if tags in known:
            return tags
        if len(known) >= self.max_series:
            self.overflowed[metric] = self.overflowed.get(metric, 0) + 1
            tags = tuple((key, OTHER) for key, _ in tags)
        known.add(tags)
        return tags

    def _live_cell(
        self, table: dict[str, dict[Tags, _Cell]], metric: str, kind: Kind, tags: Tags, new: Callable[[], _Cell]
    ) -> _Cell:
        """The live cell of a series (a histogram, a rate's [hits, total]), made by ``new`` when missing."""
        series = table.get(metric)
        if series is None:
            self._claim(metric, kind)
            series = table[metric] = {}
        cell = series.get(tags)
        if cell is None:
            tags = self._admit(metric, kind, tags)
            cell = series.get(tags)
            if cell is None:
                cell = series[tags] = new()
        return cell

    def _live_hist(self, metric: str, tags: Tags) -> Histogram:
        h = self._live.hists.get(metric, _NONE).get(tags)  # hot path: the series exists
        return h if h is not None else self._live_cell(self._live.hists, metric, "trend", tags, Histogram)

    def _live_rate(self, metric: str, tags: Tags) -> list[int]:
        cell = self._live.rates.get(metric, _NONE).get(tags)
        return cell if cell is not None else self._live_cell(self._live.rates, metric, "rate", tags, _new_rate_cell)

    def _live_counter(self, metric: str, tags: Tags) -> tuple[dict[Tags, float], Tags]:
        series = self._live.counters.get(metric)
        if series is None:
            self._claim(metric, "counter")
            series = self._live.counters[metric] = {}
        if tags not in series:
            tags = self._admit(metric, "counter", tags)
            series.setdefault(tags, 0)
        return series, tags

    # -- recording ---------------------------------------------------------------------------------

    def add(self, metric: str, tags: TagsLike, value: float) -> None:
        """Record one value of a trend metric."""
        t = tags if isinstance(tags, tuple) else make_tags(tags)
        self._live_hist(metric, t).record(value)

    def add_many(self, metric: str, tags: TagsLike, values: Iterable[float]) -> None:
        t = tags if isinstance(tags, tuple) else make_tags(tags)
        self._live_hist(metric, t).record_many(values)

    def inc(self, counter: str, tags: TagsLike, n: float = 1) -> None:
        """Add ``n`` to a counter."""
        t = tags if isinstance(tags, tuple) else make_tags(tags)
        series, t = self._live_counter(counter, t)
        series[t] += n

    def rate(self, metric: str, tags: TagsLike, hit: bool) -> None:
        """Count one event of a rate metric, a hit or not."""
        t = tags if isinstance(tags, tuple) else make_tags(tags)
        cell = self._live_rate(metric, t)
        if hit:
            cell[0] += 1
        cell[1] += 1

    def _call_series(self, key: tuple[Any, ...]) -> CallSeries:
        scenario, name, prompt, status, extra = key
        tags = make_tags([("scenario", scenario), ("name", name), ("prompt", prompt), ("status", status)])
        if extra:
            tags = make_tags(dict(tags) | dict(extra))
        entry = self._call_cache[key] = CallSeries(tags)
        return entry

    def record_call(self, rec: CallRecord, goodput_slo: GoodputSLO | None = None, good: bool | None = None) -> None:
        """Record every metric of one LLM call (``calls.metric_values``), the token source and goodput.

        Tags: scenario, name, prompt, status (the failure status for a failed call) and ``rec.tags``.
        ``goodput`` (a rate) is recorded only when ``goodput_slo`` sets at least one limit; ``good`` is
        ``meets_slo(rec, goodput_slo)`` when the caller has it already (computed here when None).
        """
        key = (rec.scenario, rec.name, rec.prompt, rec.status, rec.tags)
        entry = self._call_cache.get(key)
        if entry is None:
            entry = self._call_series(key)
        pending = entry.pending
        for metric, v in scalar_metric_values(rec):
            p = pending.get(metric)
            if p is None:
                p = pending[metric] = self._pending.list_for(self._live_hist(metric, entry.tags))
            p.append(v)
        if not rec.ok:
            if goodput_slo is not None and not goodput_slo.empty:
                self._goodput(entry, False)
            return
        ct = rec.chunk_times
        n = len(ct)
        if n > 1:  # the gaps between successive chunks, in ms, recorded in bulk (store_cells)
            runs = entry.gaps
            if runs is None:
                runs = entry.gaps = self._pending.runs_for(self._live_hist(METRIC_CHUNK_GAP, entry.tags))
            runs.times += ct
            runs.lengths.append(n)
            waiting = self._pending
            waiting.held += n
            if waiting.held >= HELD_TIMES:
                waiting.flush_runs()
        source = (
            "usage"
            if rec.usage_completion_tokens is not None
            else "tokenizer"
            if rec.tokenizer_completion_tokens is not None
            else "events"
            if rec.stream
            else "unknown"
        )
        cell = entry.source_cell.get(source)
        if cell is None:
            cell = entry.source_cell[source] = self._live_counter(
                TOKEN_SOURCE, make_tags(dict(entry.tags) | {"source": source})
            )
        cell[0][cell[1]] += 1
        rsource = reasoning_token_source(rec)
        if rsource is not None:
            self.inc(REASONING_TOKEN_SOURCE, make_tags(dict(entry.tags) | {"source": rsource}))
        if goodput_slo is not None and not goodput_slo.empty:
            self._goodput(entry, meets_slo(rec, goodput_slo) if good is None else good)

    def _goodput(self, entry: CallSeries, good: bool) -> None:
        cell = entry.goodput
        if cell is None:
            cell = entry.goodput = self._live_rate(GOODPUT, entry.tags)
        if good:
            cell[0] += 1
        cell[1] += 1

    def record_request(
        self,
        *,
        name: str,
        method: str,
        status: int | str,
        scenario: str,
        response_time_ms: float | None,
        failed: bool,
        extra_tags: tuple[tuple[str, str], ...] = (),
        blocked: str | None = None,
    ) -> None:
        """The k6 views over one request event: ``http_req_duration`` (trend), ``http_req_failed`` (rate),
        ``http_reqs`` (counter), tagged name, method, status, scenario (+ ``extra_tags``), and one count of
        the answer counted apart: the counter named by ``blocked`` (e.g. ``budget_exceeded``) when the
        caller classified the answer, else ``requests_blocked`` for a 429. ``response_time_ms`` None (no
        response) leaves the duration out.
        """
        key = (name, method, status, scenario, extra_tags)
        cells = self._req_cells.get(key)
        if cells is None:
            cells = self._request_cells(key)
        tags = cells.tags
        if response_time_ms is not None:
            p = cells.duration
            if p is None:
                p = cells.duration = self._pending.list_for(self._live_hist(HTTP_REQ_DURATION, tags))
            p.append(response_time_ms)
        rate = cells.failed
        if failed:
            rate[0] += 1
        rate[1] += 1
        cells.reqs[cells.reqs_tags] += 1
        if blocked:
            self.inc(blocked, tags)
        elif str(status) == "429":
            self.inc(REQUESTS_BLOCKED, tags)
        pending = self._pending
        pending.requests += 1
        if pending.requests >= FLUSH_EVERY:
            pending.flush()

    def _request_cells(self, key: tuple[Any, ...]) -> RequestCells:
        """The tags of a request key (cached for the store's life) and its live cells (until ``take_delta``)."""
        name, method, status, scenario, extra_tags = key
        tags = self._req_cache.get(key)
        if tags is None:
            base = {"name": name, "method": method, "status": status, "scenario": scenario}
            tags = self._req_cache[key] = make_tags(base | dict(extra_tags))
        failed = self._live_rate(HTTP_REQ_FAILED, tags)
        cells = self._req_cells[key] = RequestCells(tags, failed, self._live_counter(HTTP_REQS, tags))
        return cells

    def clear(self) -> None:
        """Forget every series, count and the run's start and stop (Locust's "Reset stats", a new run)."""
        self.__init__(max_series=self.max_series, keep_totals=self.keep_totals)  # type: ignore[misc]

    # -- worker -> master --------------------------------------------------------------------------

    def take_delta(self) -> dict[str, Any]:
        """Everything recorded since the last call, as a wire structure; starts a new delta."""
        self._pending.flush()
        self._pending.forget()
        live = self._live
        wire = to_wire(live)
        if self.keep_totals:
            fold(self._base, live)
        self._live = Part()
        self._call_cache.clear()
        self._req_cells.clear()
        return wire

    def merge_wire(self, wire: Mapping[str, Any]) -> None:
        """Add a ``take_delta`` structure (from a worker) into this store; ValueError when malformed."""
        fold(self._base, from_wire(wire, self._admit))

    # -- reading -----------------------------------------------------------------------------------

    def _parts(self) -> tuple[Part, ...]:
        self._pending.flush()  # every read goes through here: the pending values first
        return (self._base, self._live)

    def metrics(self) -> list[str]:
        """Every metric name recorded, sorted."""
        return sorted(self._kinds)

    def series(self) -> list[tuple[Kind, str, Tags]]:
        """Every (kind, metric, tags) with data, sorted by metric then tags."""
        seen: set[tuple[Kind, str, Tags]] = set()
        for part in self._parts():
            for m, hs in part.hists.items():
                seen.update(("trend", m, t) for t, h in hs.items() if h.count)
            for m, cs in part.counters.items():
                seen.update(("counter", m, t) for t in cs)
            for m, rs in part.rates.items():
                seen.update(("rate", m, t) for t, cell in rs.items() if cell[1])
        return sorted(seen, key=lambda s: (s[1], s[2]))

    def _merged(
        self, table: Callable[[Part], dict[str, dict[Tags, Any]]], metric: str | None, add: Callable[[Any, Any], Any]
    ) -> list[tuple[str, Tags, Any]]:
        """(metric, tags, value) of every series of one table of both parts (only ``metric`` when given), sorted
        by metric then tags; ``add(so_far or None, cell)`` merges the cells, None leaves a series out."""
        merged: dict[tuple[str, Tags], Any] = {}
        for part in self._parts():
            for m, series in table(part).items():
                if metric is None or m == metric:
                    for t, cell in series.items():
                        merged[(m, t)] = add(merged.get((m, t)), cell)
        return [(m, t, v) for (m, t), v in sorted(merged.items(), key=lambda kv: kv[0]) if v is not None]

    def histograms(self, metric: str | None = None) -> Iterator[tuple[str, Tags, Histogram]]:
        """(metric, tags, merged histogram) of every trend series, sorted by metric then tags."""
        yield from self._merged(lambda p: p.hists, metric, _add_hist)

    def counters(self, metric: str | None = None) -> Iterator[tuple[str, Tags, float]]:
        yield from self._merged(lambda p: p.counters, metric, lambda total, v: (total or 0) + v)

    def rates(self, metric: str | None = None) -> Iterator[tuple[str, Tags, RateValue]]:
        yield from self._merged(lambda p: p.rates, metric, _add_rate)

    def _matching(
        self, table: Callable[[Part], dict[str, dict[Tags, _Cell]]], metric: str, filt: TagsLike | None
    ) -> Iterator[_Cell]:
        """The cells, in both parts, of every series of ``metric`` whose tags contain ``filt``."""
        f = filt if isinstance(filt, tuple) else make_tags(filt)
        for part in self._parts():
            for t, cell in table(part).get(metric, _NONE).items():
                if tags_match(t, f):
                    yield cell

    def select_hist(self, metric: str, filt: TagsLike | None = None) -> Histogram | None:
        """Merged histogram of every series of ``metric`` whose tags contain ``filt``; None without data."""
        out = Histogram()
        for h in self._matching(lambda p: p.hists, metric, filt):
            out.merge(h)
        return out if out.count else None

    def select_counter(self, metric: str, filt: TagsLike | None = None) -> float | None:
        """Sum of every matching counter series; None when no series matches."""
        values = list(self._matching(lambda p: p.counters, metric, filt))
        return sum(values) if values else None

    def select_rate(self, metric: str, filt: TagsLike | None = None) -> RateValue | None:
        """Hits and total over every matching rate series; None when the total is 0."""
        out = RateValue()
        for hits, total in self._matching(lambda p: p.rates, metric, filt):
            out.hits += hits
            out.total += total
        return out if out.total else None

    def select(self, metric: str, filt: TagsLike | None = None) -> Histogram | float | RateValue | None:
        """``select_hist``, ``select_counter`` or ``select_rate`` according to the metric's kind."""
        kind = self._kinds.get(metric)
        if kind == "trend":
            return self.select_hist(metric, filt)
        if kind == "counter":
            return self.select_counter(metric, filt)
        if kind == "rate":
            return self.select_rate(metric, filt)
        return None

    def token_sources(self, metric: str = TOKEN_SOURCE) -> dict[str, int]:
        """Calls per output-token source (``usage``, ``events``, ``unknown``), over every scenario; with
        ``metric=REASONING_TOKEN_SOURCE`` the same for the reasoning tokens."""
        out: dict[str, int] = {}
        for _, tags, v in self.counters(metric):
            src = dict(tags).get("source", "unknown")
            out[src] = out.get(src, 0) + int(v)
        return dict(sorted(out.items()))

    def warnings(self) -> list[str]:
        return [
            f"metric {m!r}: {n} samples or series beyond {self.max_series} tag sets were collapsed into "
            f"tag value {OTHER!r}; a tag has too many distinct values"
            for m, n in sorted(self.overflowed.items())
        ]


def _new_rate_cell() -> list[int]:
    return [0, 0]


def _add_hist(merged: Histogram | None, h: Histogram) -> Histogram | None:
    if not h.count:
        return merged
    return h.copy() if merged is None else merged.merge(h)


def _add_rate(merged: RateValue | None, cell: list[int]) -> RateValue | None:
    if not cell[1]:
        return merged
    return (merged or RateValue()).add(RateValue(cell[0], cell[1]))
