"""Decoding of an OpenAI embeddings answer (``/v1/embeddings``, never streamed).

The answer is ``{"data": [{"embedding": [...]}, ...], "usage": {"prompt_tokens": N}}``: its facts are the
number of embeddings (``llm_embeddings_per_sec``) and the input tokens (``llm_prompt_tokens``); there are no
output tokens. Pure: no Locust.
"""

from __future__ import annotations

from llm_users.client.decoding import JsonAnswer, StreamError, int_or_none, load_body, usage_of


def parse_embeddings_json(body: bytes) -> JsonAnswer:
    """Parse an embeddings body; raise StreamError with a reason when it holds no embedding."""
    obj = load_body(body)
    data = obj.get("data")
    if not isinstance(data, list) or not data:
        raise StreamError("no embeddings in body")
    for item in data:
        emb = item.get("embedding") if isinstance(item, dict) else None
        if not (isinstance(emb, list) and emb) and not (isinstance(emb, str) and emb):  # floats, or base64
            raise StreamError("no embeddings in body", "an item without an embedding")
    usage = usage_of(obj)
    return JsonAnswer(
        content_chars=0,
        prompt_tokens=int_or_none(usage.get("prompt_tokens")),
        completion_tokens=None,
        finish_reason=None,
        embeddings=len(data),
    )
