"""The store's hot-path caches (``MetricStore.record_call`` and ``record_request``) and its pending values.

Per call key a ``CallSeries`` and per request key a ``RequestCells`` hold the tags and the live cells a call
or a request writes to, until the live part is sent (``take_delta``). The per-call values of the histograms
(``llm_ttft_ms``, ``llm_total_ms``..., ``http_req_duration``) are not recorded one ``Histogram.record`` at a
time: they are appended to a list per live histogram (``Pending``) and recorded in bulk
(``Histogram.record_many(in_order=True)``: the same buckets, count, min, max and sum as ``record`` one by one)
before anything reads the live part, when it is sent, and every ``FLUSH_EVERY`` requests (a bound on the
values held). That costs one list append per value on the hot path instead of a method call.
"""

from __future__ import annotations

from llm_metrics.engine.histogram import Histogram
from llm_metrics.engine.tags import Tags

__all__ = ["FLUSH_EVERY", "CallSeries", "Pending", "RequestCells"]

FLUSH_EVERY = 256
"""Requests between two bulk records of the pending values (about 13 values per streamed call)."""


class Pending:
    """Values waiting to be recorded into live histograms, one list per histogram."""

    __slots__ = ("lists", "requests")

    def __init__(self) -> None:
        self.lists: dict[int, tuple[Histogram, list[float]]] = {}
        """id(histogram) -> (the histogram, its pending values); the live part keeps the histograms alive."""
        self.requests = 0
        """Requests since the last flush (``MetricStore.record_request`` counts them)."""

    def list_for(self, h: Histogram) -> list[float]:
        """The list of values pending for ``h`` (made when missing): append to it instead of ``h.record``."""
        entry = self.lists.get(id(h))
        if entry is None:
            entry = self.lists[id(h)] = (h, [])
        return entry[1]

    def flush(self) -> None:
        """Record every pending value into its histogram, in the order appended."""
        for h, vals in self.lists.values():
            if vals:
                h.record_many(vals, in_order=True)
                vals.clear()
        self.requests = 0

    def forget(self) -> None:
        """Drop the lists (after a flush, when the live part they belong to is replaced)."""
        self.lists = {}
        self.requests = 0


class CallSeries:
    """Cached per call key: the tags and the live cells a call writes to."""

    __slots__ = ("goodput", "hists", "pending", "source_cell", "tags")

    def __init__(self, tags: Tags) -> None:
        self.tags = tags
        self.hists: dict[str, Histogram] = {}
        """Live histograms recorded into directly (the chunk gaps, in bulk per call)."""
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
