"""The APIs a suite can load (``API`` / ``--api``): per API its path, request body, headers and decoders.

======================= ====================== ==================================================================
``chat`` (default)      ``/v1/chat/completions`` ``messages``; ``stream_options.include_usage``
``completions``         ``/v1/completions``    ``prompt``: the messages' contents joined by blank lines
``responses``           ``/v1/responses``      ``input``: the messages; ``max_output_tokens``
``anthropic``           ``/v1/messages``       ``messages`` without system ones (their text is ``system``);
                                               ``max_tokens`` is required (``DEFAULT_ANTHROPIC_MAX_TOKENS``);
                                               ``x-api-key`` instead of a bearer key, ``anthropic-version``
``embeddings``          ``/v1/embeddings``     ``input``: the messages' contents joined; never streamed
======================= ====================== ==================================================================

Every API is measured with the same metric names and definitions (``llm_metrics.engine.calls``); which event
starts and ends each metric is in the README's metric table. Tool definitions (chat's format,
``{"type": "function", "function": {...}}``) are converted to each API's own. Pure: no Locust.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llm_users.client.api_anthropic import ANTHROPIC_VERSION, AnthropicAccumulator, parse_anthropic_json
from llm_users.client.api_completions import CompletionsAccumulator, parse_completions_json
from llm_users.client.api_embeddings import parse_embeddings_json
from llm_users.client.api_responses import ResponsesAccumulator, parse_responses_json
from llm_users.client.openai_stream import ChatStreamAccumulator, JsonAnswer, parse_chat_json

DEFAULT_ANTHROPIC_MAX_TOKENS = 1024
"""``max_tokens`` sent to the Messages API (where it is required) when neither the knob nor the variant sets it."""

Messages = list[dict[str, Any]]


def _text(messages: Messages) -> str:
    return "\n\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def _chat_body(model: str, messages: Messages, stream: bool, max_tokens: int, tools: list[Any] | None) -> dict:
    body: dict[str, Any] = {"model": model, "messages": messages, "stream": stream}
    if max_tokens:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"] = tools
    return body


def _completions_body(model: str, messages: Messages, stream: bool, max_tokens: int, _tools: Any) -> dict:
    body: dict[str, Any] = {"model": model, "prompt": _text(messages), "stream": stream}
    if max_tokens:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _function(tool: Any) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) else None
    return fn if isinstance(fn, dict) else {}


def _responses_body(model: str, messages: Messages, stream: bool, max_tokens: int, tools: list[Any] | None) -> dict:
    body: dict[str, Any] = {"model": model, "input": messages, "stream": stream}
    if max_tokens:
        body["max_output_tokens"] = max_tokens
    if tools:
        keep = ("name", "description", "parameters")
        body["tools"] = [{"type": "function", **{k: v for k, v in _function(t).items() if k in keep}} for t in tools]
    return body


def _anthropic_body(model: str, messages: Messages, stream: bool, max_tokens: int, tools: list[Any] | None) -> dict:
    system = [str(m.get("content", "")) for m in messages if m.get("role") == "system"]
    body: dict[str, Any] = {
        "model": model,
        "messages": [m for m in messages if m.get("role") != "system"],
        "max_tokens": max_tokens or DEFAULT_ANTHROPIC_MAX_TOKENS,
        "stream": stream,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if tools:
        body["tools"] = [
            {
                "name": _function(t).get("name", ""),
                "description": _function(t).get("description", ""),
                "input_schema": _function(t).get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
        ]
    return body


def _embeddings_body(model: str, messages: Messages, _stream: bool, _max_tokens: int, _tools: Any) -> dict:
    return {"model": model, "input": _text(messages)}


@dataclass(frozen=True, slots=True)
class Api:
    """One API: where to send, what to send, how to read the answer."""

    name: str
    path: str
    streams: bool
    """False: every call is non-streamed (embeddings)."""
    body: Callable[[str, Messages, bool, int, list[Any] | None], dict[str, Any]]
    decoder: Callable[[bool], Any]
    parse_json: Callable[[bytes], JsonAnswer]

    def payload(
        self, model: str, messages: Messages, *, stream: bool, max_tokens: int = 0, tools: list[Any] | None = None
    ) -> dict[str, Any]:
        """The request body of one call (``max_tokens`` 0: not sent, except where the API requires it)."""
        return self.body(model, messages, stream and self.streams, max_tokens, tools)

    def headers(self, auth: dict[str, str]) -> dict[str, str]:
        """The suite's auth headers as this API wants them (Anthropic: ``x-api-key``, ``anthropic-version``)."""
        if self.name != "anthropic":
            return auth
        out = dict(auth)
        bearer = out.pop("Authorization", "")
        if bearer.startswith("Bearer "):
            out["x-api-key"] = bearer[len("Bearer ") :]
        out["anthropic-version"] = ANTHROPIC_VERSION
        return out


APIS: dict[str, Api] = {
    a.name: a
    for a in (
        Api("chat", "/v1/chat/completions", True, _chat_body, ChatStreamAccumulator, parse_chat_json),
        Api("completions", "/v1/completions", True, _completions_body, CompletionsAccumulator, parse_completions_json),
        Api("responses", "/v1/responses", True, _responses_body, ResponsesAccumulator, parse_responses_json),
        Api("anthropic", "/v1/messages", True, _anthropic_body, AnthropicAccumulator, parse_anthropic_json),
        Api("embeddings", "/v1/embeddings", False, _embeddings_body, ChatStreamAccumulator, parse_embeddings_json),
    )
}
API_NAMES = tuple(APIS)


def get_api(name: str, flag: str = "--api/API") -> Api:
    """The API called ``name`` (case-insensitive); ValueError naming ``flag`` and the choices otherwise."""
    api = APIS.get(str(name).strip().lower())
    if api is None:
        raise ValueError(f"{flag}: expected one of {', '.join(API_NAMES)}, got {name!r}")
    return api


def proxied_call(
    api: Api, conf_path: str, conf_payload: dict[str, Any], stream: bool, include_usage: bool
) -> tuple[str, dict[str, Any]]:
    """Path and body of one LLM call of a configured payload (the gateway suite's ``llm`` section).

    ``chat`` (the default API): ``llm.path`` and ``llm.payload`` of the configuration as written, with
    ``stream`` (and ``stream_options.include_usage`` when ``llm.include_usage``). Another API: the API's path
    (unless ``llm.path`` names another than chat completions' default, e.g. a gateway's own route) and its
    body built from the payload's ``model``, ``messages``, ``max_tokens`` and ``tools``, the payload's other
    keys kept as they are. The embeddings API never streams.
    """
    if api.name == "chat":
        payload = dict(conf_payload)
        payload["stream"] = stream
        if stream and include_usage:
            payload["stream_options"] = {"include_usage": True}
        return conf_path, payload
    path = conf_path if conf_path != APIS["chat"].path else api.path
    messages = conf_payload.get("messages")
    if not isinstance(messages, list):
        messages = [{"role": "user", "content": str(conf_payload.get("prompt", ""))}]
    max_tokens = conf_payload.get("max_tokens")
    tools = conf_payload.get("tools")
    body = api.payload(
        str(conf_payload.get("model", "")),
        messages,
        stream=stream,
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0,
        tools=tools if isinstance(tools, list) else None,
    )
    if not include_usage:
        body.pop("stream_options", None)
    extra = {k: v for k, v in conf_payload.items() if k not in ("model", "messages", "prompt", "max_tokens", "tools")}
    return path, {**extra, **body}
