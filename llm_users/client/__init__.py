"""One LLM call: send, read the answer as bytes arrive, time it, fire one request event; SSE and the
decoders of each API (chat completions, completions, responses, anthropic, embeddings).

``call`` (``llm_call``: the request and its event) · ``direct`` (the request through the session's own client,
Locust's layers written out for it) · ``session`` (the session made cheaper per request) · ``bounds`` (time and
size bounds, failure reasons) ·
``answer`` (reading the answer into the ``CallRecord``) · ``sse`` (bytes as they arrive, SSE events) ·
``decoding`` (what every API's decoder shares) · ``openai_stream`` (chat completions) · ``api_*`` (the other
APIs) · ``apis`` (the catalogue of APIs)."""
