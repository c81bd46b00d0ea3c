"""Cost of ``--requests-jsonl`` (``llm_metrics.outputs.requests_log``): CPU per call and what 1M calls weigh on disk.

Run: ``.venv/bin/python bench/requests_log.py`` (about 10 s). CPU: the best of several repeats of writing
``--calls`` lines of a streamed chat call (the line built, encoded and written through the log's 64 KiB buffer
to a file on the local disk), in microseconds per call, measured as process CPU time (``time.process_time``)
so that the disk's own latency is not counted, and beside it the cost of ``MetricStore.record_call`` of the
same call, which every call pays anyway. Disk: the file's bytes per line, times one million, plain and
compressed with gzip (level 6), since such files are usually archived compressed.
"""

from __future__ import annotations

import argparse
import gzip
import random
import tempfile
import time
from pathlib import Path

from llm_metrics.engine.calls import CallRecord
from llm_metrics.engine.store import MetricStore
from llm_metrics.outputs.requests_log import RequestsLog


def streamed_call(chunks: int = 64) -> CallRecord:
    t0 = time.perf_counter()
    first = t0 + 0.2 + random.random() * 0.01
    times = [first + i * 0.02 + random.random() * 0.002 for i in range(chunks)]
    return CallRecord(
        scenario="chat_stream",
        name="/v1/chat/completions (chat_stream, short)",
        prompt="short",
        status=200,
        t_scheduled=t0 - 0.0004,
        t_start=t0,
        t_headers=t0 + 0.003,
        t_first_content=first,
        t_first_output=first,
        chunk_times=times,
        t_end=times[-1] + 0.001,
        content_events=chunks,
        usage_completion_tokens=chunks,
        usage_prompt_tokens=random.randint(10, 2000),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    recs = [streamed_call() for _ in range(1000)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.jsonl"
        best = float("inf")
        for _ in range(args.repeat):
            log = RequestsLog(path, suite="chat", worker="worker0", api="chat")
            c0 = time.process_time()
            for i in range(args.calls):
                log.write(recs[i % 1000])
            log.close()
            best = min(best, (time.process_time() - c0) / args.calls * 1e6)
        size = path.stat().st_size
        lines = args.calls
        packed = len(gzip.compress(path.read_bytes(), 6))
    store = MetricStore()
    base = float("inf")
    for _ in range(args.repeat):
        c0 = time.process_time()
        for i in range(args.calls):
            store.record_call(recs[i % 1000])
        base = min(base, (time.process_time() - c0) / args.calls * 1e6)
    print(f"{'what':<52}{'value':>12}")
    print(f"{'requests_log write, per call (CPU µs)':<52}{best:>12.2f}")
    print(f"{'MetricStore.record_call, same call (CPU µs)':<52}{base:>12.2f}")
    print(f"{'bytes per line':<52}{size / lines:>12.1f}")
    print(f"{'1M calls on disk (MB)':<52}{size / lines:>12.1f}")
    print(f"{'1M calls on disk, gzip -6 (MB)':<52}{packed / lines:>12.1f}")


if __name__ == "__main__":
    main()
