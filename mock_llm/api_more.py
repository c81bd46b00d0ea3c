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
(``api_openai.run_stream``) with the API's encoder, or the shared wait (``api_openai.generate_answer``) and the
API's body of the answer: ``api_openai.serve``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from mock_llm import formats
from mock_llm.api_openai import (
    BAD_REQUEST,
    BodyBuilder,
    ChatParams,
    Encoder,
    request_messages,
    request_model,
    request_params,
    serve,
)
from mock_llm.app import Handler, LlmCall, MockApp
from mock_llm.chunks import Answer
from mock_llm.protocol import Connection, Request
from mock_llm.text import count_message_tokens, count_tokens

_BAD = BAD_REQUEST


def _common(
    app: MockApp, req: Request, conn: Connection, body: dict[str, Any], max_key: str, prompt_tokens: int, api: str
) -> ChatParams | None:
    """Model, max tokens and stream of a request; None after answering 400/404."""
    params = request_params(app, req, conn, body, max_key, body.get(max_key), prompt_tokens)
    if params is not None:
        params.api = api
    return params


def _encoder_and_body(
    id_prefix: str, encoder: Callable[[str, int, str, bool], Any], body: Callable[[str, int, str, Answer], Any]
) -> tuple[Encoder, BodyBuilder]:
    """The stream encoder and the body builder of an API whose both take (id, created, model, ...)."""

    def make_encoder(app: MockApp, call: LlmCall, params: ChatParams) -> Any:
        return encoder(f"{id_prefix}{call.index:x}", int(time.time()), params.model, params.timestamps)

    def make_body(app: MockApp, call: LlmCall, params: ChatParams, answer: Answer) -> dict[str, Any]:
        out: dict[str, Any] = body(f"{id_prefix}{call.index:x}", int(time.time()), params.model, answer)
        return out

    return make_encoder, make_body


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


def _texts(app: MockApp, req: Request, conn: Connection, body: dict[str, Any], key: str) -> list[str] | None:
    """``body[key]`` as texts (``_strings``); None after answering 400 when it is none of those."""
    texts = _strings(body.get(key))
    if texts is None:
        app.error(req, conn, 400, f"{key}: expected a string or a list of strings", _BAD, f"invalid_{key}")
    return texts


# --- /v1/completions ---------------------------------------------------------------------------------


def completions(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    prompts = None if body is None else _texts(app, req, conn, body, "prompt")
    if body is None or prompts is None:
        return None
    params = _common(app, req, conn, body, "max_tokens", sum(count_tokens(p) for p in prompts), "completions")
    if params is None:
        return None
    return serve(app, req, conn, params, *_COMPLETIONS)


_COMPLETIONS = _encoder_and_body("cmpl-mock", formats.CompletionChunks, formats.completion_text_body)


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
    return serve(app, req, conn, params, *_RESPONSES)


_RESPONSES = _encoder_and_body("resp_mock", formats.ResponsesEvents, formats.responses_body)


# --- /v1/messages (Anthropic) ------------------------------------------------------------------------


def messages(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    msgs = None if body is None else request_messages(app, req, conn, body)
    if body is None or msgs is None:
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
    return serve(app, req, conn, params, _messages_encoder, _messages_body)


def _messages_encoder(app: MockApp, call: LlmCall, params: ChatParams) -> formats.AnthropicEvents:
    msg_id = f"msg_mock{call.index:x}"
    return formats.AnthropicEvents(msg_id, int(time.time()), params.model, params.timestamps, params.prompt_tokens)


def _messages_body(app: MockApp, call: LlmCall, params: ChatParams, answer: Answer) -> dict[str, Any]:
    return formats.anthropic_body(f"msg_mock{call.index:x}", params.model, answer)


# --- /v1/embeddings ----------------------------------------------------------------------------------


def embeddings(app: MockApp, req: Request, conn: Connection) -> Any:
    body = app.json_body(req, conn)
    inputs = None if body is None else _texts(app, req, conn, body, "input")
    if body is None or inputs is None:
        return None
    model = request_model(app, req, conn, body)
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
