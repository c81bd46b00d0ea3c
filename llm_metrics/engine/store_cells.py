"""The store's hot-path caches (``MetricStore.record_call`` and ``record_request``) and its pending values.

Per call key a ``CallSeries`` and per request key a ``RequestCells`` hold the tags and the live cells a call
or a request writes to, until the live part is sent (``take_delta``). The per-call values of the histograms
(``llm_ttft_ms``, ``llm_total_ms``..., ``http_req_duration``) are not recorded one ``Histogram.record`` at a
time: they are appended to a list per live histogram (``Pending``) and recorded in bulk
(``Histogram.record_many(in_order=True)``: the same buckets, count, min, max and sum as ``record`` one by one)
before anything reads the live part, when it is sent, and every ``FLUSH_EVERY`` requests (a bound on the
values held). That costs one list append per value on the hot path instead of a method call. A call's chunk
times are copied to the end of one list per chunk-gap histogram (``Pending.runs_for``), its length noted, and
the gaps of all those calls recorded at the same moments (``Histogram.record_runs``: in numpy, exactly as one
``record_diffs`` per call), and as soon as ``HELD_TIMES`` times wait (a bound on each flush's work).
"""

from __future__ import annotations

from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.tags import Tags

__all__ = ["FLUSH_EVERY", "HELD_TIMES", "CallSeries", "Pending", "RequestCells", "Runs"]

FLUSH_EVERY = 256
"""Requests between two bulk records of the pending values (about 13 values per streamed call)."""
HELD_TIMES = 8192
"""Chunk times held (all calls together) before their gaps are recorded anyway: 128 calls of 64 chunks, so that a
flush stalls the event loop about as long as the per-call values' flush did before (0.3-0.5 ms, bench/RESULTS.md),
long answers included."""
GAP_SCALE = 1000.0
"""Chunk times are in seconds, their gaps recorded in ms."""


class Runs:
    """Chunk times of many calls waiting for their gaps to be recorded: ``times`` one call after the other,
    ``lengths`` the number of times of each call (at least 2)."""

    __slots__ = ("lengths", "times")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lengths: list[int] = []


class Pending:
    """Values waiting to be recorded into live histograms, one list per histogram."""

    __slots__ = ("held", "lists", "requests", "runs")

    def __init__(self) -> None:
        self.lists: dict[int, tuple[Histogram, list[float]]] = {}
        """id(histogram) -> (the histogram, its pending values); the live part keeps the histograms alive."""
        self.runs: dict[int, tuple[Histogram, Runs]] = {}
        """id(histogram) -> (the histogram, the chunk times whose gaps it waits for)."""
        self.held = 0
        """Chunk times in ``runs`` (``MetricStore.record_call`` counts them)."""
        self.requests = 0
        """Requests since the last flush (``MetricStore.record_request`` counts them)."""

    def list_for(self, h: Histogram) -> list[float]:
        """The list of values pending for ``h`` (made when missing): append to it instead of ``h.record``."""
        entry = self.lists.get(id(h))
        if entry is None:
            entry = self.lists[id(h)] = (h, [])
        return entry[1]

    def runs_for(self, h: Histogram) -> Runs:
        """The chunk times pending for ``h`` (made when missing): extend ``times`` by a call's chunk times and
        append their number to ``lengths`` instead of ``h.record_diffs``."""
        entry = self.runs.get(id(h))
        if entry is None:
            entry = self.runs[id(h)] = (h, Runs())
        return entry[1]

    def flush(self) -> None:
        """Record every pending value into its histogram, in the order appended, and the pending gaps."""
        self.requests = 0
        for h, vals in self.lists.values():
            if vals:
                try:
                    h.record_many(vals, in_order=True)
                finally:  # a value that is not a number raises once, never at every flush after
                    vals.clear()
        self.flush_runs()

    def flush_runs(self) -> None:
        """Record the pending chunk gaps (``Histogram.record_runs`` per histogram)."""
        self.held = 0
        for h, runs in self.runs.values():
            if runs.lengths:
                try:
                    h.record_runs(runs.times, runs.lengths, GAP_SCALE)
                finally:
                    runs.times.clear()
                    runs.lengths.clear()

    def forget(self) -> None:
        """Drop the lists (after a flush, when the live part they belong to is replaced)."""
        self.lists = {}
        self.runs = {}
        self.requests = self.held = 0


class CallSeries:
    """Cached per call key: the tags and the live cells a call writes to."""

    __slots__ = ("gaps", "goodput", "pending", "source_cell", "tags")

    def __init__(self, tags: Tags) -> None:
        self.tags = tags
        self.gaps: Runs | None = None
        """The pending chunk times of the live chunk-gap histogram (``Pending.runs_for``), once used."""
        self.pending: dict[str, list[float]] = {}
        """Per metric, the pending list of its live histogram (``Pending.list_for``)."""
        self.goodput: list[int] | None = None
        self.source_cell: dict[str, tuple[dict[Tags, float], Tags]] = {}
        """Per output-token source: the live ``llm_token_source`` series and the tags to count under."""


class RequestCells:
    """Cached per request key (``record_request``): the tags and the live cells a request writes to."""

    __slots__ = ("duration", "failed", "reqs", "reqs_tags", "tags")

    def __init__(self, tags: Tags, failed: list[int], reqs: tuple[dict[Tags, float], Tags]) -> None:
        self.tags = tags
        self.duration: list[float] | None = None
        """The pending list of the live ``http_req_duration`` histogram (``Pending.list_for``), once used."""
        self.failed = failed
        self.reqs, self.reqs_tags = reqs
