"""Timing accuracy of the mock: 50 concurrent streams read by a plain socket client on loopback."""

from __future__ import annotations

import itertools
import statistics
import threading
import time

from mock_llm.testing import MockProcess, StreamResult, stream_request

TTFT_MS, ITL_MS, TOKENS, STREAMS = 200.0, 20.0, 20, 50
STAGGER_S = 0.004  # starts spread over 200 ms: all 50 streams (580 ms each) are open together at the peak


def test_ttft_and_token_gaps_match_the_configuration_at_50_concurrent_streams() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True, "max_tokens": TOKENS}
    results: list[StreamResult] = []

    def one(i: int) -> None:
        time.sleep(i * STAGGER_S)
        results.append(stream_request(mock.base_url, "/v1/chat/completions", body, {"X-Mock-Timestamps": "1"}))

    with MockProcess({"ttft_ms": TTFT_MS, "itl_ms": ITL_MS}) as mock:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(STREAMS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        stats = mock.stats()
    assert len(results) == STREAMS and all(r.complete for r in results)
    assert stats["max_active"] >= STREAMS * 0.9, stats
    ttfts, gaps, lasts, server_ttfts, read_delays = [], [], [], [], []
    for r in results:
        tokens = r.tokens()
        assert len(tokens) == TOKENS
        times = [t * 1000 for t, _ in tokens]
        ttfts.append(times[0])
        gaps += [b - a for a, b in itertools.pairwise(times)]
        lasts.append(times[-1])
        server_ttfts.append((tokens[0][1]["mock_sent_ns"] / 1e9 - r.sent_at) * 1000)
        read_delays += [(r.sent_at + t) * 1000 - e["mock_sent_ns"] / 1e6 for t, e in tokens]
    why = (f"server-side ttft p50 {statistics.median(server_ttfts):.3f} ms, "
           f"client read delay p50 {statistics.median(read_delays):.3f} ms")  # fmt: skip
    assert abs(statistics.median(ttfts) - TTFT_MS) <= 2.0, why
    assert abs(statistics.median(gaps) - ITL_MS) <= 2.0, why
    # no drift: the last token is due at ttft + (n - 1) * itl from the request, whatever the wake-ups did
    assert abs(statistics.median(lasts) - (TTFT_MS + (TOKENS - 1) * ITL_MS)) <= 2.0, why
