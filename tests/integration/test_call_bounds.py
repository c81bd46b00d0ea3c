"""The idle bound runs from the last byte, not from the start of the body: ``llm_call`` keeps it on one timer per
call (``bounds.CallWatch``) that is re-armed while bytes keep coming, not on a socket timeout per wait."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_llm.testing import MockProcess
from tests.support import run_locust

pytestmark = pytest.mark.slow

ARGS = ["-u", "10", "-r", "10", "-t", "4s", "--stop-timeout", "5", "--only-summary"]


def test_a_stream_longer_than_the_idle_timeout_with_steady_tokens_is_not_cut(tmp_path: Path) -> None:
    """Tokens every 100 ms for about 2.5 s, IDLE_TIMEOUT 1 s: every stream ends well, after 2.5 idle periods.

    (1 s, not less: a token may come 10x its 100 ms late on a machine running 8 such tests on 2 cores.)"""
    env = {"STREAM_RPS": "3", "NONSTREAM_RPS": "0", "MAX_TOKENS": "25", "SMOKE": "false", "IDLE_TIMEOUT": "1"}
    with MockProcess({"ttft_ms": 100, "itl_ms": 100, "seed": 5}) as mock:
        run = run_locust("chat.py", ARGS, {"BASE": mock.base_url, **env}, tmp_path, timeout=40)
        stats = mock.stats()
    assert run.summary is not None, run.output[-3000:]
    failed, total = run.rate("http_req_failed", method="POST")
    assert total == stats["requests"]["POST /v1/chat/completions"] > 0
    assert failed == 0, run.output[-3000:]
    total_ms = run.hist("llm_total_ms")
    assert total_ms.vmin is not None and total_ms.vmin > 2400  # each ran its ~2.5 s past two idle bounds
    assert run.hist("llm_chunk_gap_ms").count >= total * 23
