"""Per-request records: one JSON line per LLM call (``--requests-jsonl PATH``, env ``REQUESTS_JSONL``).

Each line is written when the call ends (its request event), through a 64 KiB file buffer, so memory stays
bounded whatever the number of calls; the buffer is flushed at least once a second while calls end, at the
end of a run (``test_stop``) and at quit. Keys of a line (``LINE_KEYS``, in this order)::

    suite, scenario, prompt, api, name, stream, status, ok, error,
    scheduled, sent, headers, first_token, first_output_token, last_token, end,
    prompt_tokens, prompt_tokens_source, output_tokens, output_tokens_source,
    reasoning_tokens, reasoning_tokens_source, worker

Times are epoch seconds rounded to the microsecond (``null`` when the call never got there; ``scheduled`` is
null in the closed model). They are the call's ``time.perf_counter()`` stamps (``calls.CallRecord``) moved to
the wall clock by one offset taken when the line is written, so differences between them are the
client's measured intervals: ``first_token - sent`` is the TTFT the histogram ``llm_ttft_ms`` recorded,
``end - sent`` the total. ``first_token`` is the first token event of any kind, ``first_output_token`` the
first non-reasoning one, ``last_token`` the last token event. Token sources: ``usage`` (the server's usage),
``events`` (token events of a stream counted), ``tokenizer`` (counted by ``--tokenizer``), null (unknown).
``worker``: ``local`` for a single process, ``worker<N>`` for Locust worker N.

Files. A single process writes ``PATH``. In a distributed run each worker writes its own file beside it,
``<stem>.worker<N><suffix>`` (on the worker's machine, relative to its working directory) and reports its
name and line count to the master with its metrics; the master writes nothing itself and lists the files in
the JSON summary under ``requests_jsonl`` (``[{"worker", "path", "lines"}]``). A new run in the same process
(the web UI's second run) starts the file again. The web UI does not offer the option (a path typed into a
browser form would choose where the load generator writes): set it on the command line or in the environment.

Reading them back: ``summary_from_requests(paths)`` rebuilds a JSON summary (the metrics that the lines
determine: TTFB, TTFT, TTFO, TPOT from first and last token, receiving, total, tokens, tokens/s, schedule lag,
failures, the per-second series) so that ``python -m llm_metrics.compare`` and ``python -m
llm_metrics.report_html`` accept a ``.jsonl`` file, or several as a glob or a comma-separated list, wherever
they accept a summary.
"""

from __future__ import annotations

import glob
import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from llm_metrics.engine.calls import (
    METRIC_CHUNK_GAP,
    CallRecord,
    output_tokens,
    reasoning_token_source,
    reasoning_tokens,
    token_source,
)

__all__ = [
    "LINE_KEYS",
    "RequestsLog",
    "add_requests_log_arguments",
    "call_line",
    "install_requests_log",
    "is_requests_path",
    "read_lines",
    "summary_from_requests",
    "worker_path",
]

log = logging.getLogger(__name__)

LINE_KEYS = (
    "suite",
    "scenario",
    "prompt",
    "api",
    "name",
    "stream",
    "status",
    "ok",
    "error",
    "scheduled",
    "sent",
    "headers",
    "first_token",
    "first_output_token",
    "last_token",
    "end",
    "prompt_tokens",
    "prompt_tokens_source",
    "output_tokens",
    "output_tokens_source",
    "reasoning_tokens",
    "reasoning_tokens_source",
    "worker",
)
WIRE_KEY = "llm_requests_jsonl"
BUFFER_BYTES = 1 << 16
FLUSH_EVERY_S = 1.0
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


def _epoch(t: float | None, offset: float) -> float | None:
    return None if t is None else round(t + offset, 6)


def call_line(rec: CallRecord, *, suite: str, api: str | None, worker: str, offset: float) -> dict[str, Any]:
    """The record of one call as a JSON-able dict keyed as ``LINE_KEYS``; ``offset`` = wall clock - perf_counter."""
    last = rec.chunk_times[-1] if rec.chunk_times else None
    prompt_tokens, prompt_src = rec.usage_prompt_tokens, "usage"
    if prompt_tokens is None:
        prompt_tokens, prompt_src = rec.tokenizer_prompt_tokens, "tokenizer"
    return {
        "suite": suite,
        "scenario": rec.scenario,
        "prompt": rec.prompt,
        "api": api,
        "name": rec.name,
        "stream": rec.stream,
        "status": rec.status,
        "ok": rec.ok,
        "error": rec.error,
        "scheduled": _epoch(rec.t_scheduled, offset),
        "sent": _epoch(rec.t_start, offset),
        "headers": _epoch(rec.t_headers, offset),
        "first_token": _epoch(rec.t_first_content, offset),
        "first_output_token": _epoch(rec.t_first_output, offset),
        "last_token": _epoch(last, offset),
        "end": _epoch(rec.t_end, offset),
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_source": None if prompt_tokens is None else prompt_src,
        "output_tokens": output_tokens(rec),
        "output_tokens_source": token_source(rec),
        "reasoning_tokens": reasoning_tokens(rec),
        "reasoning_tokens_source": reasoning_token_source(rec),
        "worker": worker,
    }


def worker_path(path: str | Path, index: int) -> Path:
    """Where worker ``index`` writes: ``<stem>.worker<index><suffix>`` beside ``path``."""
    p = Path(path)
    return p.with_name(f"{p.stem}.worker{index}{p.suffix}")


class RequestsLog:
    """An open JSONL file of call records (one process's); see the module docstring."""

    def __init__(self, path: str | Path, *, suite: str, worker: str, api: str | None = None) -> None:
        self.path = Path(path)
        self.suite = suite
        self.worker = worker
        self.api = api
        self.lines = 0
        self._flushed_at = time.monotonic()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "w", encoding="utf-8", buffering=BUFFER_BYTES)  # noqa: SIM115

    def write(self, rec: CallRecord, api: str | None = None) -> None:
        f = self._file
        if f is None:
            return
        offset = time.time() - time.perf_counter()
        line = call_line(rec, suite=self.suite, api=api or self.api, worker=self.worker, offset=offset)
        f.write(_dumps(line) + "\n")
        self.lines += 1
        now = time.monotonic()
        if now - self._flushed_at >= FLUSH_EVERY_S:
            self._flushed_at = now
            f.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def restart(self) -> None:
        """Empty the file (a new run in the same process)."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self.lines = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def info(self) -> dict[str, Any]:
        return {"worker": self.worker, "path": str(self.path), "lines": self.lines}


# -- reading back ---------------------------------------------------------------------------------


def is_requests_path(path: str | Path) -> bool:
    """True for what ``summary_from_requests`` reads: a ``.jsonl`` file, a glob of them, a comma list."""
    s = str(path)
    return any(part.strip().endswith(".jsonl") for part in s.split(","))


def expand(path: str | Path) -> list[Path]:
    """The files of a ``.jsonl`` path, glob or comma-separated list (in order; globs sorted)."""
    out: list[Path] = []
    for part in str(path).split(","):
        part = part.strip()
        if not part:
            continue
        if any(c in part for c in "*?["):
            matches = sorted(glob.glob(part))
            if not matches:
                raise ValueError(f"{part}: no file matches")
            out.extend(Path(m) for m in matches)
        else:
            out.append(Path(part))
    return out


def read_lines(paths: Iterable[Path]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, line number, record) of every line; ValueError naming the file and line when one is malformed."""
    for p in paths:
        try:
            f = open(p, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ValueError(f"{p}: cannot read: {exc.strerror or exc}") from None
        with f:
            for n, text in enumerate(f, 1):
                if not text.strip():
                    continue
                try:
                    doc = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{p}:{n}: not JSON ({exc.msg})") from None
                if not isinstance(doc, dict) or "sent" not in doc or "scenario" not in doc:
                    raise ValueError(f"{p}:{n}: not a request record (expected keys such as 'scenario', 'sent')")
                yield str(p), n, doc


def _record(doc: dict[str, Any]) -> CallRecord:
    """A CallRecord from a line (epoch seconds as the clock; chunk times: first and last token only)."""
    first, last = doc.get("first_token"), doc.get("last_token")
    chunks = [float(first)] if first is not None else []
    if last is not None and first is not None and last != first:
        chunks.append(float(last))
    tokens = doc.get("output_tokens")
    return CallRecord(
        scenario=str(doc.get("scenario") or "default"),
        name=str(doc.get("name") or ""),
        prompt=str(doc.get("prompt") or ""),
        status=int(doc.get("status") or 0),
        ok=bool(doc.get("ok")),
        error=doc.get("error"),
        t_start=float(doc["sent"]),
        t_scheduled=doc.get("scheduled"),
        t_headers=doc.get("headers"),
        t_first_content=first,
        t_first_output=doc.get("first_output_token"),
        chunk_times=chunks,
        t_end=doc.get("end"),
        usage_completion_tokens=None if tokens is None else int(tokens),
        usage_prompt_tokens=doc.get("prompt_tokens"),
        usage_reasoning_tokens=doc.get("reasoning_tokens"),
        content_events=len(chunks),
        stream=bool(doc.get("stream", True)),
    )


def summary_from_requests(path: str | Path) -> dict[str, Any]:
    """A JSON summary (``summary.json_summary`` shape plus ``series``) rebuilt from request records.

    Chunk gaps are not in the lines, so ``llm_chunk_gap_ms`` is left out; goodput needs the run's SLO file and
    is left out too. ValueError naming the file when a line cannot be used."""
    from llm_metrics.engine.store import MetricStore
    from llm_metrics.engine.timeseries import TimeSeries
    from llm_metrics.outputs.summary import json_summary

    paths = expand(path)
    store = MetricStore()
    series = TimeSeries(max_seconds=10**9, hist_seconds=10**9)
    t_min: float | None = None
    t_max: float | None = None
    suites: set[str] = set()
    workers: set[str] = set()
    lines = 0
    for source, n, doc in read_lines(paths):
        try:
            rec = _record(doc)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}:{n}: bad request record: {exc}") from None
        end = rec.t_end if rec.t_end is not None else rec.t_start
        total_ms = (end - rec.t_start) * 1000.0
        store.record_request(
            name=rec.name,
            method="POST",
            status=rec.status,
            scenario=rec.scenario,
            response_time_ms=total_ms,
            failed=not rec.ok,
            blocked=None,
        )
        store.record_call(rec)
        series.record_call(rec, end)
        t_min = rec.t_start if t_min is None else min(t_min, rec.t_start)
        t_max = end if t_max is None else max(t_max, end)
        suites.add(str(doc.get("suite") or ""))
        workers.add(str(doc.get("worker") or ""))
        lines += 1
    if t_min is not None and t_max is not None:
        store.mark_start(t_min)
        store.mark_stop(t_max)
    meta = {
        "suite": ",".join(sorted(s for s in suites if s)),
        "source": "requests_jsonl",
        "files": [str(p) for p in paths],
        "lines": lines,
        "workers_reported": len(workers - {"", "local"}),
    }
    doc_out = json_summary(None, store, meta)
    doc_out["metrics"] = [m for m in doc_out["metrics"] if m["name"] != METRIC_CHUNK_GAP]
    doc_out["rollups"] = [m for m in doc_out["rollups"] if m["name"] != METRIC_CHUNK_GAP]
    doc_out["series"] = series.to_json()
    return doc_out


# -- Locust glue ----------------------------------------------------------------------------------


def add_requests_log_arguments(parser: Any) -> None:
    parser.add_argument(
        "--requests-jsonl",
        env_var="REQUESTS_JSONL",
        default="",
        include_in_web_ui=False,
        help="Write one JSON line per LLM call to this file (each worker: <stem>.worker<N><suffix>); "
        "empty: off (env REQUESTS_JSONL)",
    )


def install_requests_log(environment: Any, m: Any) -> None:
    """Open the file of ``--requests-jsonl`` (exit 2 naming the flag when it cannot be) and add the listeners."""
    from locust.runners import MasterRunner, WorkerRunner

    opts = environment.parsed_options
    path = str(getattr(opts, "requests_jsonl", "") or "") if opts is not None else ""
    if not path:
        return
    runner = environment.runner
    events = environment.events
    if isinstance(runner, MasterRunner):
        files: dict[str, dict[str, Any]] = {}
        runs = [0]

        def on_worker_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            info = data.get(WIRE_KEY)
            if isinstance(info, dict):
                files[client_id] = info

        def on_master_start(**_kw: Any) -> None:
            runs[0] += 1
            if runs[0] > 1:  # a new run: the workers start their files again
                files.clear()

        events.worker_report.add_listener(on_worker_report)
        events.test_start.add_listener(on_master_start)
        m.json_sections["requests_jsonl"] = lambda: sorted(files.values(), key=lambda i: str(i.get("worker")))
        return
    if isinstance(runner, WorkerRunner):
        index = runner.worker_index
        target = worker_path(path, index)
        worker = f"worker{index}"
    else:
        target, worker = Path(path), "local"
    api = getattr(opts, "api", None)
    try:
        rlog = RequestsLog(target, suite=m.suite, worker=worker, api=str(api) if api else None)
    except OSError as exc:
        log.error("--requests-jsonl/REQUESTS_JSONL: cannot write %s: %s", target, exc.strerror or exc)
        sys.exit(2)
    environment.llm_requests_log = rlog
    started = [False]

    def on_request(context: dict[str, Any] | None = None, **_kw: Any) -> None:
        rec = (context or {}).get("llm")
        if rec is not None:
            rlog.write(rec, (context or {}).get("api"))

    def on_start(**_kw: Any) -> None:
        if started[0]:
            rlog.restart()
        started[0] = True

    def on_stop(**_kw: Any) -> None:
        rlog.flush()

    def on_quit(**_kw: Any) -> None:
        rlog.close()

    events.request.add_listener(on_request)
    events.test_start.add_listener(on_start)
    events.test_stop.add_listener(on_stop)
    events.quitting.add_listener(on_quit)
    if isinstance(runner, WorkerRunner):

        def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            rlog.flush()
            data[WIRE_KEY] = rlog.info()

        events.report_to_master.add_listener(on_report)
    else:
        m.json_sections["requests_jsonl"] = lambda: [rlog.info()]
