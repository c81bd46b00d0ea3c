"""The other APIs the mock serves, with chat completions' latency model, usage and faults.

* ``POST /v1/completions``: ``prompt`` (a string or a list of strings), ``max_tokens``, ``stream``,
  ``stream_options.include_usage``; reasoning tokens are sent as text (the API has no reasoning field).
* ``POST /v1/responses``: ``input`` (a string or a list of messages), ``instructions``, ``max_output_tokens``,
  ``stream``, ``tools``; the usage is in ``response.completed``.
* ``POST /v1/messages`` (Anthropic): ``messages``, ``system``, ``max_tokens`` (required, as Anthropic's API
  has it), ``stream``, ``tools``; the usage is in ``message_start`` and ``message_delta``.
* ``POST /v1/embeddings``: ``input`` (a string, a list of strings, or token lists); never streamed; it takes
  the TTFT of its prompt (``ttft_ms`` + ``prefill_ms_per_token`` x input tokens); one vector of
  ``embedding_dim`` floats per input.

Every call goes through ``begin_llm`` (gateway, faults, admission) and the shared stream loop
(``api_openai.run_stream``) or the shared wait (``api_openai.generate_answer``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mock_llm import formats
from mock_llm.api_openai import ChatParams, _int_or_none, generate_answer, run_stream, serve
from mock_llm.app import Handler, LlmCall, MockApp
from mock_llm.protocol import Connection, Request
from mock_llm.text import count_message_tokens, count_tokens

_BAD = "invalid_request_error"


def _model(app: MockApp, req: Request, conn: Connection, body: dict[str, Any]) -> str | None:
    model = body.get("model", app.cfg.models[0])
    if not isinstance(model, str) or not model:
        app.error(req, conn, 400, "model: expected a string", _BAD, "invalid_model")
        return None
    if app.cfg.reject_unknown_models and model not in app.cfg.models:
        app.error(req, conn, 404, f"The model {model!r} does not exist", _BAD, "model_not_found")
        return None
    return model


def _timestamps(app: MockApp, req: Request) -> bool:
    return app.cfg.timestamps or req.headers.get(b"x-mock-timestamps", b"0") in (b"1", b"true")


def _common(
    app: MockApp, req: Request, conn: Connection, body: dict[str, Any], max_key: str, prompt_tokens: int, api: str
) -> ChatParams | None:
    """Model, max tokens and stream of a request; None after answering 400/404."""
    model = _model(app, req, conn, body)
    if model is None:
        return None
    max_tokens = _int_or_none(body.get(max_key))
    if isinstance(max_tokens, str):
        app.error(req, conn, 400, f"{max_key}: {max_tokens}", _BAD, "invalid_max_tokens")
        return None
    stream = body.get("stream", False)
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        app.error(req, conn, 400, "stream: expected a boolean, stream_options an object", _BAD, "invalid_stream")
        return None
    params = ChatParams(
        model, stream, bool(options.get("include_usage")), max_tokens, prompt_tokens, _timestamps(app, req)
    )
    params.api = api
    return params


def _strings(value: Any) -> list[str] | None:
    """A string or a list of strings (or of token-id lists, counted one token per id) as texts; None if neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        out = []
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, list) and all(isinstance(t, int) for t in item):
                out.append(" ".join("t" for _ in item))
            elif isinstance(item, int):
                return [" ".join("t" for _ in value)]  # one prompt of token ids
            else:
                return None
        return out
    return None


# --- /v1/completions ---------------------------------------------------------------------------------


def completions(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    if body is None:
        return None
    prompts = _strings(body.get("prompt"))
    if prompts is None:
        app.error(req, conn, 400, "prompt: expected a string or a list of strings", _BAD, "invalid_prompt")
        return None
    params = _common(app, req, conn, body, "max_tokens", sum(count_tokens(p) for p in prompts), "completions")
    if params is None:
        return None
    return serve(app, req, conn, params, _completions_stream, _completions_body)


async def _completions_stream(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    enc = formats.CompletionChunks(f"cmpl-mock{call.index:x}", int(time.time()), params.model, params.timestamps)
    await run_stream(app, req, conn, call, params, enc, app.cfg.reasoning_tokens)


async def _completions_body(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    reasoning = app.cfg.reasoning_tokens
    g = await generate_answer(app, req, conn, call, params, reasoning)
    if g is None:
        return
    text = (g.reasoning_text or "") + g.content
    obj = formats.completion_text_body(
        f"cmpl-mock{call.index:x}", int(time.time()), params.model, text, g.finish, params.prompt_tokens, g.total, None
    )
    app.reply_generated(req, conn, call, obj, g.total)


# --- /v1/responses -----------------------------------------------------------------------------------


def responses(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    if body is None:
        return None
    inp = body.get("input")
    if isinstance(inp, str) and inp:
        messages: list[Any] = [{"role": "user", "content": inp}]
    elif isinstance(inp, list) and inp:
        messages = inp
    else:
        app.error(req, conn, 400, "input: expected a string or a non-empty list of messages", _BAD, "invalid_input")
        return None
    instructions = body.get("instructions")
    tokens = count_message_tokens(messages) + (count_tokens(instructions) if isinstance(instructions, str) else 0)
    params = _common(app, req, conn, body, "max_output_tokens", tokens, "responses")
    if params is None:
        return None
    params.choose_tool(body.get("tools"), messages, app)
    return serve(app, req, conn, params, _responses_stream, _responses_body)


async def _responses_stream(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    enc = formats.ResponsesEvents(f"resp_mock{call.index:x}", int(time.time()), params.model, params.timestamps)
    await run_stream(app, req, conn, call, params, enc, app.cfg.reasoning_tokens)


async def _responses_body(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    reasoning = app.cfg.reasoning_tokens
    g = await generate_answer(app, req, conn, call, params, reasoning)
    if g is None:
        return
    obj = formats.responses_body(
        f"resp_mock{call.index:x}",
        int(time.time()),
        params.model,
        g.content,
        g.reasoning_text,
        params.prompt_tokens,
        g.total,
        reasoning,
        params.cached_tokens,
        g.tool_call,
    )
    app.reply_generated(req, conn, call, obj, g.total)


# --- /v1/messages (Anthropic) ------------------------------------------------------------------------


def messages(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    if body is None:
        return None
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        app.error(req, conn, 400, "messages: expected a non-empty list", _BAD, "invalid_messages")
        return None
    if body.get("max_tokens") is None:
        app.error(req, conn, 400, "max_tokens: field required", _BAD, "invalid_max_tokens")
        return None
    system = body.get("system")
    tokens = count_message_tokens(msgs)
    if isinstance(system, str):
        tokens += count_tokens(system)
    elif isinstance(system, list):
        tokens += count_message_tokens([{"content": system}])
    params = _common(app, req, conn, body, "max_tokens", tokens, "anthropic")
    if params is None:
        return None
    params.include_usage = True
    params.choose_tool(body.get("tools"), msgs, app)
    return serve(app, req, conn, params, _messages_stream, _messages_body)


async def _messages_stream(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    enc = formats.AnthropicEvents(
        f"msg_mock{call.index:x}", int(time.time()), params.model, params.timestamps, params.prompt_tokens
    )
    await run_stream(app, req, conn, call, params, enc, app.cfg.reasoning_tokens)


async def _messages_body(app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams) -> None:
    g = await generate_answer(app, req, conn, call, params, app.cfg.reasoning_tokens)
    if g is None:
        return
    obj = formats.anthropic_body(
        f"msg_mock{call.index:x}",
        params.model,
        g.content,
        g.reasoning_text,
        g.finish,
        params.prompt_tokens,
        g.total,
        g.tool_call,
    )
    app.reply_generated(req, conn, call, obj, g.total)


# --- /v1/embeddings ----------------------------------------------------------------------------------


def embeddings(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    if body is None:
        return None
    inputs = _strings(body.get("input"))
    if inputs is None:
        app.error(req, conn, 400, "input: expected a string or a list of strings", _BAD, "invalid_input")
        return None
    model = _model(app, req, conn, body)
    if model is None:
        return None
    params = ChatParams(model, False, False, 1, sum(count_tokens(t) for t in inputs), False)
    params.api = "embeddings"
    return _embed(app, req, conn, params, len(inputs))


async def _embed(app: MockApp, req: Request, conn: Connection, params: ChatParams, n: int) -> None:
    call = await app.begin_llm(req, conn)
    if call is None:
        return
    try:
        if not await app.generate(req, conn, call, params.prefill_tokens, 1):  # the prompt's TTFT
            return
        dim = app.cfg.embedding_dim
        rng = call.rng
        data = [
            {"object": "embedding", "index": i, "embedding": [round(rng.uniform(-1, 1), 6) for _ in range(dim)]}
            for i in range(n)
        ]
        obj = {
            "object": "list",
            "data": data,
            "model": params.model,
            "usage": {"prompt_tokens": params.prompt_tokens, "total_tokens": params.prompt_tokens},
        }
        app.reply_generated(req, conn, call, obj, 0)
    except asyncio.CancelledError:
        app.stats.client_disconnects += 1
        raise
    finally:
        app.end_llm(call)


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("POST", "/v1/completions", completions, "llm"),
    ("POST", "/v1/responses", responses, "llm"),
    ("POST", "/v1/messages", messages, "llm"),
    ("POST", "/v1/embeddings", embeddings, "llm"),
]
