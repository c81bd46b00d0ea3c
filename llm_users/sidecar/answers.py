"""The sidecar's JSON answers, read into the facts an LLM call is measured by (``llm_call(parse_json=...)``).

Pure: no Locust, no sockets.

* ``POST /generate`` -> ``{"text": str, "tokens": int, "model": str}``: ``tokens`` is the output token count
  (``llm_output_tokens``, ``llm_tokens_per_sec``). A ``usage.completion_tokens`` is read when ``tokens`` is
  absent.
* ``POST /propose_trade_adjustments/`` -> ``{"adjustments": [{"symbol", "action", "quantity"}, ...],
  "rationale": str}``: no token count in this shape, so output tokens stay unknown (not recorded) unless the
  answer has ``tokens`` or ``usage.completion_tokens``.

A body that is not such an object is a failed call with a short reason (``StreamError.reason``).
"""

from __future__ import annotations

import json
from typing import Any

from llm_users.client.openai_stream import JsonAnswer, StreamError

__all__ = ["parse_generate_json", "parse_trade_json"]


def _object(body: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting deeper than json can read
        raise StreamError("invalid JSON body", body[:60].decode("utf-8", "replace")) from exc
    if not isinstance(obj, dict):
        raise StreamError("unexpected JSON body", "not an object")
    err = obj.get("error")
    if err is not None:
        kind = err.get("type") or err.get("code") or err.get("message") if isinstance(err, dict) else err
        raise StreamError("error object in body", str(kind)[:60])
    return obj


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _tokens(obj: dict[str, Any]) -> tuple[int | None, int | None]:
    """(completion tokens, prompt tokens) from ``tokens`` or ``usage``."""
    raw = obj.get("usage")
    usage: dict[str, Any] = raw if isinstance(raw, dict) else {}
    completion = _count(obj.get("tokens"))
    if completion is None:
        completion = _count(usage.get("completion_tokens"))
    return completion, _count(usage.get("prompt_tokens"))


def parse_generate_json(body: bytes) -> JsonAnswer:
    """``{"text", "tokens", "model"}``; StreamError when the text is missing."""
    obj = _object(body)
    text = obj.get("text")
    if not isinstance(text, str):
        raise StreamError("no text in body")
    completion, prompt = _tokens(obj)
    return JsonAnswer(content_chars=len(text), prompt_tokens=prompt, completion_tokens=completion, finish_reason=None)


def parse_trade_json(body: bytes) -> JsonAnswer:
    """``{"adjustments": [...], "rationale"}``; StreamError when ``adjustments`` is not a list of objects."""
    obj = _object(body)
    adj = obj.get("adjustments")
    if not isinstance(adj, list):
        raise StreamError("no adjustments in body")
    if not all(isinstance(a, dict) for a in adj):
        raise StreamError("unexpected adjustments", "expected a list of objects")
    rationale = obj.get("rationale")
    chars = len(rationale) if isinstance(rationale, str) else 0
    chars += sum(len(json.dumps(a)) for a in adj)
    completion, prompt = _tokens(obj)
    return JsonAnswer(content_chars=chars, prompt_tokens=prompt, completion_tokens=completion, finish_reason=None)
