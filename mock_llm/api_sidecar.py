"""Sidecar endpoints: ``POST /generate``, ``POST /propose_trade_adjustments/``, ``GET /metrics``.

Both LLM endpoints answer one JSON object once the latency model's generation time has passed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mock_llm.app import Handler, LlmCall, MockApp
from mock_llm.protocol import Connection, Request
from mock_llm.stats import render_prometheus
from mock_llm.text import SEQUENCE_LENGTH, count_tokens

_PROMETHEUS = b"text/plain; version=0.0.4; charset=utf-8"
_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "JPM", "XOM", "BRK.B")
_ACTIONS = ("buy", "sell", "hold")


def metrics(app: MockApp, req: Request, conn: Connection) -> None:
    body = render_prometheus(app.stats, app.cfg.sidecar.metric_prefix, app.admission.active, app.admission.queued)
    app.reply(req, conn, 200, body, _PROMETHEUS)


def _prompt(app: MockApp, req: Request, conn: Connection) -> tuple[str, int | None] | None:
    """The ``prompt`` and optional ``max_tokens`` of a sidecar request, or None after answering 400."""
    body = app.json_body(req, conn)
    if body is None:
        return None
    prompt = body.get("prompt")
    max_tokens = body.get("max_tokens")
    if not isinstance(prompt, str):
        app.error(req, conn, 400, "prompt: expected a string", "invalid_request_error", "invalid_prompt")
        return None
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        app.error(
            req, conn, 400, "max_tokens: expected a positive integer", "invalid_request_error", "invalid_max_tokens"
        )
        return None
    return prompt, max_tokens


async def _run(app: MockApp, req: Request, conn: Connection, prompt: str, max_tokens: int | None, build: Any) -> None:
    call = await app.begin_llm(req, conn)
    if call is None:
        return
    try:
        n, _ = app.latency.output_tokens(max_tokens, call.rng)
        if await app.generate(req, conn, call, count_tokens(prompt), n):
            app.reply_generated(req, conn, call, build(app, call, n), n)
    except asyncio.CancelledError:
        app.stats.client_disconnects += 1
        raise
    finally:
        app.end_llm(call)


def _text(app: MockApp, call: LlmCall, n: int) -> str:
    return app.words.text(call.rng.randrange(SEQUENCE_LENGTH), n).rstrip()


def _generated(app: MockApp, call: LlmCall, n: int) -> dict[str, Any]:
    return {"text": _text(app, call, n), "tokens": n, "model": app.cfg.models[0]}


def _trades(app: MockApp, call: LlmCall, n: int) -> dict[str, Any]:
    rng = call.rng
    picks = rng.sample(_SYMBOLS, rng.randint(1, 3))
    adjustments = [{"symbol": s, "action": rng.choice(_ACTIONS), "quantity": rng.randint(1, 500)} for s in picks]
    return {"adjustments": adjustments, "rationale": _text(app, call, n)}


def generate(app: MockApp, req: Request, conn: Connection) -> Any:
    parsed = _prompt(app, req, conn)
    return None if parsed is None else _run(app, req, conn, parsed[0], parsed[1], _generated)


def propose_trade_adjustments(app: MockApp, req: Request, conn: Connection) -> Any:
    parsed = _prompt(app, req, conn)
    return None if parsed is None else _run(app, req, conn, parsed[0], parsed[1], _trades)


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/metrics", metrics, "plain"),
    ("POST", "/generate", generate, "llm"),
    ("POST", "/propose_trade_adjustments/", propose_trade_adjustments, "llm"),
]
