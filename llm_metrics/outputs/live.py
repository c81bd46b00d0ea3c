"""Live charts of the web UI's LLM tab: per scenario and per second, TTFT and TPOT p50/p95, output tokens/s,
goodput/s and errors/s, during the run and final after it.

``LiveSeries`` (pure) keeps, per wall-clock second (``int(time.time())`` when a call ends) and scenario, the
calls, failures, calls that met the goodput SLO, output tokens and exact histograms of TTFT and TPOT (the
suite's ``Histogram``, 0.5% precision; failed calls feed neither, as in ``calls``). Workers send what they
recorded since their last report (``take_delta``, key ``llm_live`` of ``report_to_master``); the master merges
it (``merge_wire``), so the charts of a distributed run are the merge of every worker's, as exactly as the
JSON summary's metrics. Memory: the last ``max_seconds`` (default 2 h) seconds are kept.

``to_json()`` is what the charts draw and what the JSON summary holds under ``live_series``::

    {"scenarios": ["(all)", "chat_stream", ...],
     "points": {"(all)": [{"t": second, "requests": n, "errors": n, "good": n, "output_tokens": n,
                            "ttft_ms_p50": .., "ttft_ms_p95": .., "tpot_ms_p50": .., "tpot_ms_p95": ..}, ...], ...}}

``(all)`` merges the scenarios of each second (histograms merged, not averaged). A chart's point for second
``t`` is computed from the same merged histograms as the summary's entry for ``t``, so the two are equal.

The web glue (``attach_live``, called by ``webui.attach_web_ui``): ``llm/live`` (a page of inline SVG charts,
polling ``llm/live.json`` every second whatever the runner's state, so the final numbers stay after a stop
without a reload), behind the web UI's login like every route of the suite; the page is shown inside the
"LLM metrics" tab by a small script added to Locust's index page, and linked from "Download Data".
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_metrics.engine.calls import CallRecord, meets_slo, tpot_ms, ttft_ms
from llm_metrics.engine.histogram import Histogram
from llm_metrics.state import state

__all__ = ["ALL", "LiveSeries", "attach_live", "install_live"]

ALL = "(all)"
WIRE_KEY = "llm_live"
_WIRE_VERSION = 1


class _Cell:
    __slots__ = ("errors", "good", "output_tokens", "requests", "tpot", "ttft")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.good = 0
        self.output_tokens = 0
        self.ttft = Histogram()
        self.tpot = Histogram()

    def merge(self, other: _Cell) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.good += other.good
        self.output_tokens += other.output_tokens
        self.ttft.merge(other.ttft)
        self.tpot.merge(other.tpot)

    def to_wire(self) -> list[Any]:
        return [
            self.requests,
            self.errors,
            self.good,
            self.output_tokens,
            self.ttft.to_wire() if self.ttft.count else None,
            self.tpot.to_wire() if self.tpot.count else None,
        ]

    @classmethod
    def from_wire(cls, row: Any) -> _Cell:
        if not isinstance(row, list | tuple) or len(row) != 6:
            raise ValueError(f"live series wire: malformed cell {row!r:.80}")
        c = cls()
        c.requests, c.errors, c.good, c.output_tokens = (int(x) for x in row[:4])
        if row[4] is not None:
            c.ttft = Histogram.from_wire(row[4])
        if row[5] is not None:
            c.tpot = Histogram.from_wire(row[5])
        return c

    def point(self, t: int) -> dict[str, Any]:
        p50, p95 = self.ttft.percentiles((50.0, 95.0))
        q50, q95 = self.tpot.percentiles((50.0, 95.0))
        return {
            "t": t,
            "requests": self.requests,
            "errors": self.errors,
            "good": self.good,
            "output_tokens": self.output_tokens,
            "ttft_ms_p50": p50,
            "ttft_ms_p95": p95,
            "tpot_ms_p50": q50,
            "tpot_ms_p95": q95,
        }


class LiveSeries:
    """Per second and scenario; see the module docstring."""

    def __init__(self, *, max_seconds: int = 2 * 3600, keep_totals: bool = True) -> None:
        self.max_seconds = max_seconds
        self.keep_totals = keep_totals
        self.clear()

    def clear(self) -> None:
        self._live: dict[tuple[int, str], _Cell] = {}
        self._base: dict[tuple[int, str], _Cell] = {}
        self._newest = 0

    def record(self, t: float, rec: CallRecord, *, good: bool) -> None:
        sec = int(t)
        key = (sec, rec.scenario)
        cell = self._live.get(key)
        if cell is None:
            cell = self._live[key] = _Cell()
            self._saw(sec)
        cell.requests += 1
        if not rec.ok:
            cell.errors += 1
            return
        if good:
            cell.good += 1
        tokens = rec.output_tokens
        if tokens:
            cell.output_tokens += tokens
        v = ttft_ms(rec)
        if v is not None:
            cell.ttft.record(v)
        v = tpot_ms(rec, tokens)
        if v is not None:
            cell.tpot.record(v)

    def _saw(self, sec: int) -> None:
        if sec > self._newest:
            self._newest = sec
            if sec % 60 == 0:
                self.prune()

    def prune(self) -> None:
        oldest = self._newest - self.max_seconds
        for part in (self._live, self._base):
            for key in [k for k in part if k[0] < oldest]:
                del part[key]

    def take_delta(self) -> dict[str, Any]:
        live, self._live = self._live, {}
        wire = {"v": _WIRE_VERSION, "c": [[sec, sc, c.to_wire()] for (sec, sc), c in sorted(live.items())]}
        if self.keep_totals:
            for key, c in live.items():
                self._add(key, c)
        return wire

    def _add(self, key: tuple[int, str], c: _Cell) -> None:
        old = self._base.get(key)
        if old is None:
            self._base[key] = c
        else:
            old.merge(c)

    def merge_wire(self, wire: Mapping[str, Any]) -> None:
        if not isinstance(wire, Mapping) or wire.get("v") != _WIRE_VERSION:
            raise ValueError(f"not a live series wire structure (version {_WIRE_VERSION}): {wire!r:.80}")
        for row in wire.get("c", ()):
            if not isinstance(row, list | tuple) or len(row) != 3:
                raise ValueError(f"live series wire: malformed row {row!r:.80}")
            sec, sc = int(row[0]), str(row[1])
            self._add((sec, sc), _Cell.from_wire(row[2]))
            self._saw(sec)

    def _cells(self) -> dict[tuple[int, str], _Cell]:
        out: dict[tuple[int, str], _Cell] = {}
        for part in (self._base, self._live):
            for key, c in part.items():
                cell = out.get(key)
                if cell is None:
                    cell = out[key] = _Cell()
                cell.merge(c)
        return out

    def to_json(self) -> dict[str, Any]:
        cells = self._cells()
        per_second: dict[int, _Cell] = {}
        for (sec, _), c in cells.items():
            agg = per_second.get(sec)
            if agg is None:
                agg = per_second[sec] = _Cell()
            agg.merge(c)
        scenarios = sorted({sc for _, sc in cells})
        points: dict[str, list[dict[str, Any]]] = {ALL: [per_second[s].point(s) for s in sorted(per_second)]}
        for sc in scenarios:
            points[sc] = [c.point(sec) for (sec, s), c in sorted(cells.items()) if s == sc]
        return {"scenarios": [ALL, *scenarios], "points": points}


# -- Locust glue ----------------------------------------------------------------------------------


def install_live(environment: Any, m: Any) -> None:
    """Feed a ``LiveSeries`` from the request events; workers send deltas, the master merges them."""
    import time

    from locust.runners import MasterRunner, WorkerRunner

    runner = environment.runner
    worker = isinstance(runner, WorkerRunner)
    series = LiveSeries(keep_totals=not worker)
    m.live = series
    events = environment.events

    def on_request(context: dict[str, Any] | None = None, **_kw: Any) -> None:
        ctx = context or {}
        rec = ctx.get("llm")
        if rec is not None:  # the second the summary's own series used for this call (LLMMetrics.on_request)
            series.record(ctx.get("llm_ended_at") or time.time(), rec, good=rec.ok and meets_slo(rec, m.goodput))

    events.request.add_listener(on_request)
    if worker:

        def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            data[WIRE_KEY] = series.take_delta()

        events.report_to_master.add_listener(on_report)
        return
    if isinstance(runner, MasterRunner):

        def on_worker_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            wire = data.get(WIRE_KEY)
            if wire and client_id not in m.excluded_workers:
                series.merge_wire(wire)

        events.worker_report.add_listener(on_worker_report)
    m.on_reset.append(series.clear)
    m.json_sections["live_series"] = series.to_json


def attach_live(environment: Any, web_ui: Any, blueprint: Any) -> None:
    """Routes ``llm/live`` and ``llm/live.json`` on ``blueprint`` and the script that shows the page in the tab."""
    import json

    from flask import Response, request

    from llm_metrics.outputs import summary

    page = _page()

    def _m() -> Any:
        return state(environment).metrics

    @blueprint.route("/llm/live")
    @web_ui.auth_required_if_enabled
    def llm_live() -> Any:
        return Response(page, mimetype="text/html")

    @blueprint.route("/llm/live.json")
    @web_ui.auth_required_if_enabled
    def llm_live_json() -> Any:
        m = _m()
        live = getattr(m, "live", None) if m is not None else None
        if live is None:
            return Response("llm_metrics is not installed", status=404, mimetype="text/plain")
        runner = environment.runner
        doc = {"state": getattr(runner, "state", None), **live.to_json()}
        text = summary.redact(json.dumps(doc, default=str), m.secrets())
        return Response(text, mimetype="application/json", headers={"Cache-Control": "no-store"})

    @web_ui.app.after_request
    def _add_tab_script(response: Any) -> Any:
        if request.endpoint != "locust.index" or response.status_code != 200 or response.direct_passthrough:
            return response
        page = response.get_data(as_text=True)
        if "</body>" in page and "llm-live-frame" not in page:
            response.set_data(page.replace("</body>", TAB_SCRIPT + "</body>", 1))
        return response


TAB_SCRIPT = """<script>
/* llm_metrics.outputs.live: the charts page of the suite inside the "LLM metrics" tab (Locust's extended tabs hold a
   table only). The page polls on its own, so its numbers stay after the run stops. */
(function () {
  function tick() {
    var sel = document.querySelector('[role="tab"][aria-selected="true"]');
    var frame = document.getElementById("llm-live-frame");
    var on = sel && sel.textContent.trim() === "LLM metrics";
    if (!on) { if (frame) frame.remove(); return; }
    var table = document.querySelector("table");
    if (frame || !table) return;
    var host = table.closest(".MuiPaper-root") || table.parentElement;
    frame = document.createElement("iframe");
    frame.id = "llm-live-frame";
    frame.src = "./llm/live";
    frame.title = "LLM live charts";
    frame.style.cssText = "width:100%;height:480px;border:0;display:block;margin-bottom:12px";
    host.parentElement.insertBefore(frame, host);
  }
  setInterval(tick, 500);
})();
</script>"""


def _page() -> str:
    """The charts page (``live_page.html`` beside this module: HTML with inline SVG drawn by plain JavaScript)."""
    return (Path(__file__).with_name("live_page.html")).read_text(encoding="utf-8")
