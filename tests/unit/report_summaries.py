"""JSON summaries made in memory, as a run writes them, for the tests of the report, the comparison and the
web UI rows; and a strict HTML checker (``html.parser`` reports nothing on its own)."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

from llm_metrics.engine.calls import CallRecord, GoodputSLO
from llm_metrics.engine.store import MetricStore
from llm_metrics.engine.thresholds import evaluate, parse_thresholds
from llm_metrics.engine.timeseries import TimeSeries
from llm_metrics.outputs.summary import json_summary

T0 = 1_800_000_000
THRESHOLDS = {
    "http_req_failed": ["rate<0.02"],
    "llm_ttft_ms{scenario:chat_stream,prompt:short}": ["p(95)<1000", "p(50)<60"],
    "llm_tpot_ms": ["avg<50"],
    "goodput": ["rate>0.9"],
    "requests_blocked": ["count<1"],
}


def call(ttft_ms: float, *, itl_ms: float = 5.0, tokens: int = 10, status: int = 200, ok: bool = True,
         scenario: str = "chat_stream", prompt: str = "short", name: str = "chat", queue_ms: float | None = None,
         stream: bool = True) -> CallRecord:  # fmt: skip
    first = ttft_ms / 1000.0
    chunks = [first + i * itl_ms / 1000.0 for i in range(tokens)] if stream else []
    end = (chunks[-1] if chunks else first) + 0.001
    return CallRecord(
        scenario=scenario,
        name=name,
        prompt=prompt,
        status=status,
        ok=ok,
        error=None if ok else f"HTTP {status}",
        t_start=0.0,
        t_headers=0.002,
        t_first_content=first if stream else None,
        chunk_times=chunks,
        t_end=end,
        usage_completion_tokens=tokens,
        content_events=tokens if stream else 0,
        queue_ms=queue_ms,
        stream=stream,
    )


def make_summary(
    ttft_ms: float = 50.0,
    *,
    n: int = 200,
    failures: int = 0,
    itl_ms: float = 5.0,
    blocked: int = 0,
    seconds: int = 30,
    thresholds: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    goodput_ttft_ms: float = 1000.0,
) -> dict[str, Any]:
    """A summary of ``n`` streamed calls (TTFT spread over ttft_ms .. 1.09 ttft_ms) and ``failures`` failed
    ones, run for ``seconds`` s with 4 users, as read back from the JSON file."""
    store = MetricStore()
    store.mark_start(float(T0))
    store.mark_stop(float(T0 + seconds))
    series = TimeSeries()
    slo = GoodputSLO(ttft_ms=goodput_ttft_ms)
    name = (tags or {}).get("name", "chat")
    for i in range(n):
        ttft = ttft_ms * (1.0 + 0.01 * (i % 10))
        rec = call(ttft, itl_ms=itl_ms, name=name, queue_ms=float(i % 7))
        store.record_call(rec, slo)
        total = (rec.t_end - rec.t_start) * 1000.0  # type: ignore[operator]
        store.record_request(name=name, method="POST", status=200, scenario="chat_stream", response_time_ms=total,
                             failed=False)  # fmt: skip
        series.record(T0 + i * seconds // n + 0.5, total_ms=total, ttft_ms=ttft, good=ttft <= goodput_ttft_ms,
                      output_tokens=rec.output_tokens)  # fmt: skip
    for i in range(failures):
        rec = call(ttft_ms, status=500, ok=False, name=name)
        store.record_call(rec, slo)
        store.record_request(name=name, method="POST", status=500, scenario="chat_stream", response_time_ms=3.0,
                             failed=True)  # fmt: skip
        series.record(T0 + i % seconds + 0.5, failed=True)
    for _ in range(blocked):
        store.record_request(name=name, method="POST", status=429, scenario="chat_stream", response_time_ms=1.0,
                             failed=False)  # fmt: skip
    for s in range(seconds):
        series.set_users(min(4, s + 1), T0 + s + 0.9)
    ths = parse_thresholds(THRESHOLDS if thresholds is None else thresholds, "conf/thresholds/test.yaml")
    doc = json_summary(evaluate(ths, store), store, {"suite": "chat", "host": "http://127.0.0.1:9"})
    doc["series"] = series.to_json()
    doc["aborted_by"] = []
    data: dict[str, Any] = json.loads(json.dumps(doc))
    return data


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class StrictHTML(HTMLParser):
    """Records what ``html.parser`` lets pass: unbalanced or misnested tags, and every src/href and table row."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            if a.get(key):
                self.links.append(str(a[key]))
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "table":
            self._table = str(a.get("class") or "")
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'} at {self.getpos()}")
            return
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def check_html(page: str) -> StrictHTML:
    p = StrictHTML()
    p.feed(page)
    p.close()
    assert not p.errors, p.errors[:5]
    assert p.stack == [], f"unclosed: {p.stack}"
    return p
