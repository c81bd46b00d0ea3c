"""OpenAI-compatible endpoints: ``GET /v1/models``, ``GET /v1/version``, ``POST /v1/chat/completions``.

A stream sends its headers and the role chunk at once, then one chunk per token at the token's deadline,
a chunk with ``finish_reason``, a usage chunk (``choices: []``) when ``stream_options.include_usage``, and
``data: [DONE]``. Stream faults fire at a token index (default: half of the output).

The stream loop (``run_stream``) and the non-streamed wait are shared by every API the mock serves
(``api_more``): each gives its encoder (``chunks.ChatChunks``, ``formats.*``), so the latency model, usage
and faults are the same for all. A call that gives tools is answered with a tool call when its last message
holds ``#tool_call`` or, at random, for a share ``tool_call_rate`` of the calls: its output tokens are then
the pieces of the call's arguments (``{"text": "..."}``) and it ends with ``finish_reason: tool_calls``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mock_llm import chunks
from mock_llm.app import HTML_PAGE, Handler, LlmCall, MockApp
from mock_llm.chunks import Answer, ChatChunks
from mock_llm.prefix_cache import PrefixHit
from mock_llm.protocol import Connection, Request, frame
from mock_llm.text import SEQUENCE_LENGTH, count_message_tokens
from mock_llm.ticker import TokenTicker

_SSE = b"text/event-stream"
_TOKEN_FAULTS = frozenset({"disconnect", "reset", "malformed", "sse_error", "stall", "invalid_json"})
# Tokens already due (the stream is behind its schedule, or itl is 0) go out in one write of up to this many
# chunks, then the stream yields to the others; a token due later is written alone, at its deadline.
_BATCH_MAX = 16


def models(app: MockApp, req: Request, conn: Connection) -> None:
    created = int(app.started)
    data = [{"id": m, "object": "model", "created": created, "owned_by": "mock_llm"} for m in app.cfg.models]
    app.reply_json(req, conn, 200, {"object": "list", "data": data})


def version(app: MockApp, req: Request, conn: Connection) -> None:
    app.reply_json(req, conn, 200, {"version": app.cfg.version, "server": "mock_llm"})


def _int_or_none(value: Any) -> int | str | None:
    """A positive int, None when absent, or an error text."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "expected a positive integer"
    return value


TOOL_CALL_MARKER = "#tool_call"
_ARGS_OPEN = b'{\\"text\\":\\"'  # {"text":" inside a JSON string
_ARGS_CLOSE = b'\\"}'


@dataclass(slots=True)
class ChatParams:
    """The validated fields of a chat-completion request (and of the other APIs' requests)."""

    model: str
    stream: bool
    include_usage: bool
    max_tokens: int | None
    prompt_tokens: int
    timestamps: bool
    messages: list[Any] | None = None  # kept only when the prefix cache is on
    prefill_tokens: float = field(init=False)  # the prompt tokens the TTFT pays prefill for
    prefix: PrefixHit | None = field(default=None, init=False)
    api: str = field(default="chat", init=False)
    tool: str | None = field(default=None, init=False)  # the tool's name: the call is answered with a tool call
    tool_wanted: bool = field(default=False, init=False)  # the prompt asks for a tool call (TOOL_CALL_MARKER)

    def __post_init__(self) -> None:
        self.prefill_tokens = self.prompt_tokens

    def choose_tool(self, tools: Any, messages: Any, app: MockApp) -> None:
        """Note the first tool's name when the request gives tools (``decide_tool`` decides per call)."""
        if not isinstance(tools, list) or not tools or not isinstance(tools[0], dict):
            return
        first = tools[0]
        fn = first.get("function") if isinstance(first.get("function"), dict) else first
        name = fn.get("name") if isinstance(fn, dict) else None
        self.tool = name if isinstance(name, str) and name else "tool"
        last = messages[-1] if isinstance(messages, list) and messages else messages
        text = last.get("content") if isinstance(last, dict) else last
        self.tool_wanted = isinstance(text, str) and TOOL_CALL_MARKER in text

    def decide_tool(self, app: MockApp, call: LlmCall) -> None:
        """Keep ``tool`` only when this call answers with a tool call (marker, or a draw under the rate)."""
        if self.tool is None:
            return
        if not self.tool_wanted:
            rate = app.cfg.tool_call_rate
            if rate <= 0 or call.rng.random() >= rate:
                self.tool = None
                return
        app.stats.tool_calls += 1

    def use_prefix_cache(self, app: MockApp) -> None:
        """Look the prompt up in the prefix cache (an admitted call): cached tokens cost less prefill."""
        if self.messages is None:
            return
        hit = app.prefix_cache.lookup(self.messages)
        self.prefix = hit
        self.prefill_tokens = hit.prompt_tokens - app.cfg.prefix_cache.discount * hit.cached_tokens

    @property
    def cached_tokens(self) -> int | None:
        return None if self.prefix is None else self.prefix.cached_tokens


BAD_REQUEST = "invalid_request_error"


def request_model(app: MockApp, req: Request, conn: Connection, body: dict[str, Any]) -> str | None:
    """The request's model (the first served one when absent); None after answering 400/404."""
    model = body.get("model", app.cfg.models[0])
    if not isinstance(model, str) or not model:
        app.error(req, conn, 400, "model: expected a string", BAD_REQUEST, "invalid_model")
        return None
    if app.cfg.reject_unknown_models and model not in app.cfg.models:
        app.error(req, conn, 404, f"The model {model!r} does not exist", BAD_REQUEST, "model_not_found")
        return None
    return model


def request_params(
    app: MockApp,
    req: Request,
    conn: Connection,
    body: dict[str, Any],
    max_key: str,
    max_value: Any,
    prompt_tokens: int,
    messages: list[Any] | None = None,
) -> ChatParams | None:
    """Model, max tokens (``max_value``, named ``max_key`` in the error) and stream of a request of any API;
    None after answering 400/404. ``messages`` are kept for the prefix cache when it is on."""
    model = request_model(app, req, conn, body)
    if model is None:
        return None
    max_tokens = _int_or_none(max_value)
    if isinstance(max_tokens, str):
        app.error(req, conn, 400, f"{max_key}: {max_tokens}", BAD_REQUEST, "invalid_max_tokens")
        return None
    stream = body.get("stream", False)
    options = body.get("stream_options") or {}
    if not isinstance(stream, bool) or not isinstance(options, dict):
        msg = "stream: expected a boolean, stream_options an object"
        app.error(req, conn, 400, msg, BAD_REQUEST, "invalid_stream")
        return None
    timestamps = app.cfg.timestamps or req.headers.get(b"x-mock-timestamps", b"0") in (b"1", b"true")
    kept = messages if app.cfg.prefix_cache.enabled else None
    return ChatParams(model, stream, bool(options.get("include_usage")), max_tokens, prompt_tokens, timestamps, kept)


def request_messages(app: MockApp, req: Request, conn: Connection, body: dict[str, Any]) -> list[Any] | None:
    """The request's ``messages``; None after answering 400 when they are not a non-empty list."""
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        return messages
    app.error(req, conn, 400, "messages: expected a non-empty list", BAD_REQUEST, "invalid_messages")
    return None


def _params(app: MockApp, req: Request, conn: Connection) -> ChatParams | None:
    body = app.json_body(req, conn)
    messages = None if body is None else request_messages(app, req, conn, body)
    if body is None or messages is None:
        return None
    max_value = body.get("max_completion_tokens", body.get("max_tokens"))
    params = request_params(app, req, conn, body, "max_tokens", max_value, count_message_tokens(messages), messages)
    if params is not None:
        params.choose_tool(body.get("tools"), messages, app)
    return params


def chat_completions(app: MockApp, req: Request, conn: Connection) -> Any:
    params = _params(app, req, conn)
    if params is None:
        return None
    return serve(app, req, conn, params, _chat_encoder, _chat_body)


def _chat_encoder(app: MockApp, call: LlmCall, params: ChatParams) -> ChatChunks:
    return ChatChunks(
        f"chatcmpl-mock{call.index:x}", int(time.time()), params.model, params.timestamps, app.cfg.reasoning_field
    )


def _chat_body(app: MockApp, call: LlmCall, params: ChatParams, answer: Answer) -> dict[str, Any]:
    return chunks.completion_body(
        f"chatcmpl-mock{call.index:x}", int(time.time()), params.model, answer, app.cfg.reasoning_field
    )


# An API's stream encoder for one call, and its non-streamed body of a generated answer.
Encoder = Callable[[MockApp, LlmCall, ChatParams], Any]
BodyBuilder = Callable[[MockApp, LlmCall, ChatParams, Answer], dict[str, Any]]


async def serve(
    app: MockApp, req: Request, conn: Connection, params: ChatParams, encoder: Encoder, body: BodyBuilder
) -> None:
    """The LLM-call pipeline of every API: admission, then the stream with the API's encoder, or the wait and the
    API's body of the answer, then the slot back."""
    call = await app.begin_llm(req, conn)
    if call is None:
        return
    params.use_prefix_cache(app)
    params.decide_tool(app, call)
    reasoning = app.cfg.reasoning_tokens
    try:
        if params.stream:
            await run_stream(app, req, conn, call, params, encoder(app, call, params), reasoning)
        else:
            answer = await generate_answer(app, req, conn, call, params, reasoning)
            if answer is not None:
                app.reply_generated(req, conn, call, body(app, call, params, answer), answer.total)
    except asyncio.CancelledError:
        app.stats.client_disconnects += 1
        raise
    finally:
        app.end_llm(call)


async def generate_answer(
    app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams, reasoning: int
) -> Answer | None:
    """Wait as long as the answer takes, then its texts; None when a fault already ended the exchange."""
    n, finish = app.latency.output_tokens(params.max_tokens, call.rng)
    total = reasoning + n
    if not await app.generate(req, conn, call, params.prefill_tokens, total):
        return None
    offset = call.rng.randrange(SEQUENCE_LENGTH)
    words = app.words
    content = words.text(offset + reasoning, n)
    if params.prefix is not None:
        app.prefix_cache.remember_answer(params.prefix, content)
    reasoning_text = words.text(offset, reasoning) if reasoning else None
    out = Answer(content, reasoning_text, reasoning, total, finish, params.prompt_tokens, params.cached_tokens)
    if params.tool is not None:
        out.finish = "tool_calls"
        args = chunks.dumps({"text": content}).decode()
        out.tool_call = {
            "id": f"call_mock{call.index:x}",
            "type": "function",
            "function": {"name": params.tool, "arguments": args},
        }
    return out


async def run_stream(
    app: MockApp, req: Request, conn: Connection, call: LlmCall, params: ChatParams, enc: Any, reasoning: int
) -> None:
    """Stream the tokens at their deadlines with the API's encoder ``enc``; ``call.sent`` counts them. ``reasoning``
    tokens come first (``enc.reasoning``), then the output (``enc.content``, or the pieces of a
    tool call: ``enc.tool_start`` then ``enc.tool_args``), then ``enc.end`` (finish, usage, terminal event).
    """
    fault = call.fault
    kind = fault.kind if fault is not None else ""
    if kind == "wrong_content_type":
        app.reply(req, conn, 200, HTML_PAGE, b"text/html; charset=utf-8", call.headers)
        return
    n, finish = app.latency.output_tokens(params.max_tokens, call.rng)
    total = reasoning + n
    tool = params.tool
    finish = finish if tool is None else "tool_calls"
    fault_at = _fault_token(kind, fault, total)
    app.start_stream(req, conn, 200, _SSE, call.headers, enc.start())  # the headers and the first event, one write
    if kind == "oversized" and fault is not None:
        conn.write_chunk(enc.raw_content("x" * int(fault.value() or 0)))
    schedule = app.schedule(call, params.prefill_tokens)
    offset = call.rng.randrange(SEQUENCE_LENGTH)
    seq = app.words.seq
    stats = app.stats
    perf = time.perf_counter
    deadline = schedule.next_deadline
    batch: list[bytes] = []  # framed chunks already due, written together before the next wait
    # the plain tokens (no tool call) are written from the clock's wake-ups while the stream keeps its schedule
    ticker = TokenTicker(app, conn, schedule, enc, call, (seq, offset, reasoning)) if tool is None else None
    stop = min(fault_at if fault_at >= 0 else total, total - 1)  # the last token goes out with the end, in one write

    def flush() -> None:
        conn.write_framed(b"".join(batch))
        batch.clear()

    i = 0
    while i < total:
        if i == fault_at:
            flush()
            if await _stream_fault(conn, enc, kind, fault):
                return
            stop = total - 1
        if deadline > perf():
            if batch:
                flush()
            if ticker is not None and i < stop and app.clock.can_call_at():
                i = await ticker.run(i, deadline, total, stop)
                deadline = ticker.deadline
                if conn.closed:
                    return
                if conn.write_paused:
                    await conn.drain()
                continue
            await app.sleep_until(deadline)
            if conn.closed:
                return
        elif len(batch) >= _BATCH_MAX:
            flush()
            await asyncio.sleep(0)  # behind schedule: let the other streams have their turn
            if conn.closed:
                return
        batch.append(frame(_piece(enc, call, tool, seq[(offset + i) % SEQUENCE_LENGTH], i, reasoning, total)))
        if not i:
            stats.observe_ttft(perf() - call.arrived)
        call.sent += 1
        stats.tokens_served += 1
        if conn.write_paused:
            flush()
            await conn.drain()
        i += 1
        if i < total:
            deadline = schedule.advance()
    if fault_at == total:
        flush()
        if await _stream_fault(conn, enc, kind, fault):
            return
    if params.prefix is not None:
        app.prefix_cache.remember_answer(params.prefix, app.words.text(offset + reasoning, n))
    _end_stream(app, conn, enc, params, finish, (total, reasoning), b"".join(batch))


def _end_stream(
    app: MockApp, conn: Connection, enc: Any, params: ChatParams, finish: str, counts: tuple[int, int], before: bytes
) -> None:
    """The chunks still in the batch (``before``), the finish and usage events, the terminating chunk."""
    include = params.include_usage and app.cfg.usage_chunk
    total, reasoning = counts
    tail = enc.end(finish, include, params.prompt_tokens, total, reasoning, params.cached_tokens)
    conn.end_stream(tail, before=before)
    app.stats.completed_streams += 1


def _piece(enc: Any, call: LlmCall, tool: str | None, word: bytes, i: int, reasoning: int, total: int) -> bytes:
    """Token ``i``'s event: reasoning first, then content or the pieces of a tool call."""
    if i < reasoning:
        piece: bytes = enc.reasoning(word)
    elif tool is None:
        piece = enc.content(word)
    else:
        piece = _tool_piece(enc, call, tool, word, i == reasoning, i == total - 1)
    return piece


def _tool_piece(enc: Any, call: LlmCall, tool: str, word: bytes, first: bool, last: bool) -> bytes:
    """A token of a tool call's arguments: the first opens the call (``{"text":"`` in its JSON string), the
    last closes the string."""
    if last:
        word += _ARGS_CLOSE
    piece: bytes = enc.tool_start(f"call_mock{call.index:x}", tool, _ARGS_OPEN + word) if first else enc.tool_args(word)
    return piece


def _fault_token(kind: str, fault: Any, total: int) -> int:
    """The token index at which a stream fault fires (-1: none; ``total``: after the last token)."""
    if fault is None or kind not in _TOKEN_FAULTS:
        return -1
    return 0 if kind == "invalid_json" else fault.at_token(total)


async def _stream_fault(conn: Connection, enc: Any, kind: str, fault: Any) -> bool:
    """Inject a mid-stream fault; True when the stream is over."""
    if kind == "disconnect":
        conn.close()
        return True
    if kind == "reset":
        conn.reset()
        return True
    if kind in ("malformed", "invalid_json"):
        conn.write_chunk(chunks.MALFORMED)
        return False
    if kind == "sse_error":
        conn.end_stream(enc.error("injected mid-stream error"))
        return True
    if kind == "stall":
        await asyncio.sleep(fault.value() or 0.0)
        conn.close()
        return True
    return False


ROUTES: list[tuple[str, str, Handler, str]] = [
    ("GET", "/v1/models", models, "plain"),
    ("GET", "/v1/version", version, "plain"),
    ("POST", "/v1/chat/completions", chat_completions, "llm"),
]
