"""Timing accuracy of the mock: 50 concurrent streams read by a plain socket client on loopback."""

from __future__ import annotations

import itertools
import statistics
import threading
import time

import pytest

from mock_llm.testing import MockProcess, StreamResult, stream_request

pytestmark = pytest.mark.timing

TTFT_MS, ITL_MS, TOKENS, STREAMS = 200.0, 20.0, 20, 50
STAGGER_S = 0.004  # starts spread over 200 ms: all 50 streams (580 ms each) are open together at the peak
TOLERANCE_MS = 2.0


def run_streams(mock: MockProcess) -> list[StreamResult]:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": TOKENS}
    results: list[StreamResult] = []

    def one(i: int) -> None:
        time.sleep(i * STAGGER_S)
        results.append(stream_request(mock.base_url, "/v1/chat/completions", body, {"X-Mock-Timestamps": "1"}))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(STREAMS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(results) == STREAMS and all(r.complete for r in results)
    return results


def medians(results: list[StreamResult]) -> dict[str, float]:
    """p50 of TTFT, of the gaps between tokens, of the lateness of every token against its schedule, and
    (diagnostics, from the mock's send stamps) of the server-side TTFT and of the client's read delay."""
    ttfts, gaps, lateness, server_ttfts, read_delays = [], [], [], [], []
    for r in results:
        tokens = r.tokens()
        assert len(tokens) == TOKENS
        times = [t * 1000 for t, _ in tokens]
        ttfts.append(times[0])
        gaps += [b - a for a, b in itertools.pairwise(times)]
        lateness += [t - (TTFT_MS + i * ITL_MS) for i, t in enumerate(times)]
        server_ttfts.append((tokens[0][1]["mock_sent_ns"] / 1e9 - r.sent_at) * 1000)
        read_delays += [(r.sent_at + t) * 1000 - e["mock_sent_ns"] / 1e6 for t, e in tokens]
    return {
        "ttft": statistics.median(ttfts),
        "gap": statistics.median(gaps),
        "lateness": statistics.median(lateness),
        "server_ttft": statistics.median(server_ttfts),
        "read_delay": statistics.median(read_delays),
    }


def within(m: dict[str, float]) -> bool:
    return (
        abs(m["ttft"] - TTFT_MS) <= TOLERANCE_MS
        and abs(m["gap"] - ITL_MS) <= TOLERANCE_MS
        and abs(m["lateness"]) <= TOLERANCE_MS  # no drift: token i is due at ttft + i * itl
    )


def test_ttft_and_token_gaps_match_the_configuration_at_50_concurrent_streams() -> None:
    """p50 of TTFT and of the token gaps within 2 ms of the settings. A run starved of CPU by other work on a
    shared machine (the mock's own send stamps then show the lateness) gets one more try."""
    runs = []
    with MockProcess({"ttft_ms": TTFT_MS, "itl_ms": ITL_MS}) as mock:
        for _ in range(2):
            mock.reset()
            runs.append(medians(run_streams(mock)))
            assert mock.stats()["max_active"] >= STREAMS * 0.9
            if within(runs[-1]):
                break
    assert within(runs[-1]), runs
